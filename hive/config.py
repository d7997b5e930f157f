"""Companion configuration: what the operator sets through `hive-*` options or the CLI."""

from __future__ import annotations

import enum
from pathlib import Path

import attrs

from hive.fleet.rebalance import RebalancePolicy
from hive.fleet.reputation import ReputationRules
from hive.governance.limits import Limits
from hive.web.access import Bind


class Governance(enum.Enum):
    """Who decides: the operator, the node within hard limits, or an external oracle."""

    ADVISOR = "advisor"
    AUTONOMOUS = "autonomous"
    ORACLE = "oracle"


@attrs.frozen
class MembershipConfig:
    # How often connected members compare roster digests (and we retry connecting to members).
    sync_interval_s: float = 300.0
    # How often handshake deadlines are checked.
    tick_s: float = 1.0
    # Hive software version announced in a join manifest.
    hive_version: str = "0.1.0"
    # A record learned from another member is passed on to this many other connected members,
    # chosen at random (None: to all). Its signer already sent it to every member it is
    # connected to, so forwarding only has to reach the few it is not; digests repair the rest.
    relay_fanout: int | None = 3


@attrs.frozen
class GossipConfig:
    """State gossip, the fleet state map and saturation (ARCHITECTURE.md, "Actors": gossip and
    fleetstate; docs/PROTOCOL.md, "State gossip")."""

    # Keepalive period: with nothing material to publish, a member still says "my state is
    # still version V" this often; anti-entropy digests go out on the same period.
    interval_s: float = 300.0
    # How often our own state is rebuilt from the node and checked for a material change
    # (channel events also trigger a check at once).
    check_s: float = 30.0
    # A member silent for more than this many intervals is stale (left out of the fleet view).
    stale_intervals: int = 3
    # Material change: a channel added or removed or resized, a peer's local share moving by
    # more than this (parts per million: 50_000 = 5 percentage points), or outbound, inbound or
    # on-chain liquidity moving by more than ``liquidity_fraction`` of its published value.
    share_change_ppm: int = 50_000
    liquidity_fraction: float = 0.10
    # Relaying: hop limit, and how many eligible members a new frame is forwarded to (chosen
    # at random; None: every eligible member, the protocol's plain flooding).
    max_hops: int = 4
    relay_fanout: int | None = 2
    # Anti-entropy: periodic digests go to this many connected members (chosen at random).
    digest_fanout: int = 3
    # At most one snapshot request per origin this often, one snapshot answer per requester.
    request_gap_s: float = 30.0
    # How often the public capacity of the fleet's targets is refreshed from the node's graph.
    graph_refresh_s: float = 600.0
    # A claim our graph does not hold is "unconfirmed" (not counted, nobody blamed) for this
    # long before it counts as contradicted: channels are announced at 6 confirmations and
    # gossip takes minutes more to reach us (see hive/fleet/claims.py).
    claim_grace_s: float = 7200.0
    # Saturation: ignore a target for opens above ``saturation_cap`` fleet share, release it
    # below ``saturation_release``.
    saturation_cap: float = 0.25
    saturation_release: float = 0.15


@attrs.frozen
class RebalanceConfig:
    """Member fee policy and rebalancing (docs/REBALANCING.md)."""

    # What we charge members to forward through our channels with them (0/0: free).
    member_fee_base_msat: int = 0
    member_fee_ppm: int = 0
    # How often member channels' fees are checked and re-asserted (channel events and
    # membership changes also trigger a check at once).
    fee_check_s: float = 600.0
    # How often forecasts are refreshed and needs planned.
    check_s: float = 300.0
    # At most this many moves started per check.
    max_moves_per_check: int = 2
    # Source channels tried per need (each a route query).
    sources_per_need: int = 3
    policy: RebalancePolicy = attrs.field(factory=RebalancePolicy)


@attrs.frozen
class DecisionConfig:
    """The decision engine (hive/actors/governance/engine.py): expiry, the oracle, webhooks, hard
    limits."""

    # Undecided proposals expire after this long (hive-proposal-ttl).
    proposal_ttl_s: float = 86_400.0
    # The HTTP oracle (hive-oracle-url) and how long deciders get to answer (fail closed).
    oracle_url: str | None = None
    oracle_timeout_s: float = 30.0
    # Webhooks (hive-webhook-url, repeatable), signed with HMAC-SHA256 (hive-webhook-secret).
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    limits: Limits = attrs.field(factory=Limits)
    # Proposals a hard limit holds are tried again this often (and whenever budget frees up).
    retry_s: float = 60.0
    # Executions running at once.
    max_concurrent: int = 4


@attrs.frozen
class WebConfig:
    """The web server (``hive/web/``): where it listens and the bounds that protect the
    companion. ``bind`` None (the default here, so tests and embedders opt in) serves nothing;
    the plugin's ``hive-web-bind`` defaults to loopback."""

    bind: Bind | None = None
    refresh_s: float = 2.0  # how often the state topic is recomputed (trio clock)
    max_clients: int = 64
    queue_size: int = 256  # messages waiting per client before it is dropped as slow
    max_message_bytes: int = 8 * 1024 * 1024
    close_timeout_s: float = 2.0


@attrs.frozen
class BanConfig:
    """Signed bans (hive/actors/bans.py, docs/REPUTATION.md): detection thresholds and bounds."""

    # htlc-failure-rate: a peer whose forwards fail at least `failure_min_rate` and at least
    # `failure_multiple` times the rate of our other peers, over `failure_min_attempts` forwards
    # within `window_s`.
    failure_min_attempts: int = 50
    failure_min_rate: float = 0.5
    failure_multiple: float = 5.0
    # dust-opens: at least `dust_open_count` channels of under `dust_open_sat` opened to us by
    # one peer within `window_s`.
    dust_open_sat: int = 50_000
    dust_open_count: int = 3
    window_s: float = 86_400.0
    # slow-htlc-jamming: at least `jam_min_count` forwards of at most `jam_small_sat` from or
    # through one peer within `window_s`, each held at least `jam_min_hold_s` and at least
    # `jam_hold_multiple` times the median hold of our other peers' forwards.
    jam_small_sat: int = 10_000
    jam_min_hold_s: float = 30.0
    jam_hold_multiple: float = 10.0
    jam_min_count: int = 20
    # force-closes: at least `force_close_count` channels closed unilaterally by one peer
    # (it sent an error or broadcast its commitment) within `force_close_window_s`.
    force_close_count: int = 2
    force_close_window_s: float = 30 * 86_400.0
    # Bounds on every member's bans (all members enforce them on every ban they accept).
    default_ttl_s: float = 7 * 86_400.0
    max_ttl_s: float = 30 * 86_400.0
    max_per_day: int = 5
    permanent_quorum: int = 3
    # Repair: ban-book digests go to connected members this often. A member whose digest
    # differs gets our book at most `sync_answer_burst` times at once, then once per
    # `sync_answer_gap_s` (digests arriving faster are counted and ignored).
    sync_interval_s: float = 300.0
    sync_answer_gap_s: float = 60.0
    sync_answer_burst: int = 2


@attrs.frozen
class StrategyConfig:
    """Strategy gossip (hive/actors/strategy.py, docs/REPUTATION.md "Strategy gossip")."""

    # Exclusivity: a report is revealed this long after its commitment (hive-strategy-delay).
    delay_s: float = 86_400.0
    # Members in `leech` standing receive our reveals this much later (None: never;
    # hive-strategy-leech-delay).
    leech_delay_s: float | None = 86_400.0
    # Discovery: every `check_s` (hive-strategy-check), peers whose channels with us earned at
    # least `min_yield_ppm` of their capacity over the last `window_s`, in at least
    # `min_forwards` forwards, are committed to, at most `max_per_check` per check and one per
    # peer per `repeat_s`.
    check_s: float = 3_600.0
    window_s: float = 7 * 86_400.0
    min_yield_ppm: int = 100
    min_forwards: int = 5
    max_per_check: int = 2
    repeat_s: float = 7 * 86_400.0
    # Verification: a reported channel our graph does not show is pending this long after the
    # report arrived, then absent (graph lag); our observation is compared with `tolerance`
    # and at least `tolerance_floor_msat` of slack.
    verify_grace_s: float = 7_200.0
    tolerance: float = 0.10
    tolerance_floor_msat: int = 10_000_000
    # Bounds every member enforces on every commitment (hive/protocol/strategy/book.py).
    max_per_day: int = 8
    # Repair: strategy-book digests go to connected members this often. A member whose digest
    # differs gets our book at most `sync_answer_burst` times at once, then once per
    # `sync_answer_gap_s` (as for bans: a digest must not buy a whole book each time).
    sync_interval_s: float = 300.0
    sync_answer_gap_s: float = 60.0
    sync_answer_burst: int = 2


@attrs.frozen
class HiveConfig:
    data_dir: Path
    governance: Governance = Governance.ADVISOR
    log_level: str = "info"
    # Seconds between liveness pings to connected members.
    ping_interval_s: float = 60.0
    membership: MembershipConfig = attrs.field(factory=MembershipConfig)
    gossip: GossipConfig = attrs.field(factory=GossipConfig)
    rebalance: RebalanceConfig = attrs.field(factory=RebalanceConfig)
    decisions: DecisionConfig = attrs.field(factory=DecisionConfig)
    web: WebConfig = attrs.field(factory=WebConfig)
    bans: BanConfig = attrs.field(factory=BanConfig)
    # Contribution standings (docs/REPUTATION.md): smoothing, grace for new members, bounds.
    reputation: ReputationRules = attrs.field(factory=ReputationRules)
    strategy: StrategyConfig = attrs.field(factory=StrategyConfig)
