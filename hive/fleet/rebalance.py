"""Rebalancing rules: what a channel needs, who can provide it, whether a move pays, and who
provided and consumed the liquidity of a circular payment. Pure: no I/O, no clock.

In honest Lightning terms a circular payment moves liquidity only between the payer's own
channels: the payer spends local balance on one channel (the *source*) and gains local balance
on another (the *need*, about to run dry). Every node in between forwards: its outbound on the
channel it forwards into drops by the amount, its inbound on the channel it receives on grows.
A fleet member forwarding at zero fee therefore *provides* liquidity to the payer for free; the
payer *consumes* it and pays only the non-member hops.

Sizes: a need refills the channel up to ``target_fraction`` of its capacity, in one move of at
most ``max_amount_msat`` and at least ``min_amount_msat``.

The expected-value gate (:func:`justify`): the income the refill makes possible over the
horizon is the fee we charge on forwards that *would have failed* without it, that is the
forecast outflow beyond what the channel can still carry before it reaches its floor, capped by
the amount moved; it is weighted by the forecast's confidence. A move is proposed only when
that weighted income exceeds the route's cost times ``margin`` plus ``min_net_msat``, its fee
stays within ``max_fee_ppm`` of the amount, and the rolling budget has room.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from hive.fleet.forecast import ChannelForecast
from hive.node.port import ChannelState, ChannelView, FeePolicy, NodeId, Route

PPM = 1_000_000


@attrs.frozen
class RebalancePolicy:
    horizon_s: float = 24 * 3600.0
    floor_fraction: float = 0.10  # a channel runs dry when local falls below this share
    target_fraction: float = 0.50  # a refill aims at this share of capacity
    min_amount_msat: int = 50_000_000  # 50k sat: smaller moves cost more than they earn
    max_amount_msat: int = 2_000_000_000  # 2M sat per move
    min_confidence: float = 0.3
    margin: float = 1.5  # weighted income must exceed cost * margin ...
    min_net_msat: int = 1_000  # ... plus this
    max_fee_ppm: int = 1_000  # hard cap of a move's fee relative to its amount
    budget_msat: int = 100_000_000  # most fees spent on rebalancing per budget window
    budget_window_s: float = 24 * 3600.0
    backoff_s: float = 600.0  # first wait after a failure on a channel, doubled per failure
    backoff_cap_s: float = 24 * 3600.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.floor_fraction < self.target_fraction <= 1:
            raise ValueError("need 0 <= floor_fraction < target_fraction <= 1")
        if not 0 < self.min_amount_msat <= self.max_amount_msat:
            raise ValueError("need 0 < min_amount_msat <= max_amount_msat")
        if self.margin < 1 or self.max_fee_ppm < 0 or self.budget_msat < 0:
            raise ValueError("margin must be >= 1, max_fee_ppm and budget_msat >= 0")
        if not self.horizon_s > 0 or not 0 <= self.min_confidence <= 1:
            raise ValueError("horizon_s must be > 0 and min_confidence in [0, 1]")

    def floor_msat(self, capacity_msat: int) -> int:
        return int(capacity_msat * self.floor_fraction)


@attrs.frozen
class Need:
    """A channel forecast to run dry: refill ``amount_msat`` of local balance through it."""

    channel: ChannelView
    forecast: ChannelForecast
    amount_msat: int

    @property
    def peer(self) -> NodeId:
        return self.channel.peer_id

    @property
    def scid(self) -> str:
        assert self.channel.short_channel_id is not None
        return self.channel.short_channel_id


@attrs.frozen
class Balance:
    """Surplus and deficit of one channel, per direction (what goes into the state record)."""

    peer: NodeId
    surplus_out_msat: int  # local we can spare over the horizon
    deficit_out_msat: int  # local missing before the horizon (the channel runs dry)
    surplus_in_msat: int  # remote (inbound) we can spare
    deficit_in_msat: int  # inbound missing before the horizon (the channel fills up)


def usable(channel: ChannelView) -> bool:
    return (
        channel.state is ChannelState.NORMAL
        and channel.short_channel_id is not None
        and channel.capacity_msat > 0
    )


def balance(channel: ChannelView, forecast: ChannelForecast, policy: RebalancePolicy) -> Balance:
    """Surplus and deficit per direction of one channel over the policy's horizon."""
    cap = channel.capacity_msat
    floor = policy.floor_msat(cap)
    target = int(cap * policy.target_fraction)
    horizon = policy.horizon_s
    keep_local = max(target, floor + int(forecast.out_rate_msat_s * horizon))
    keep_remote = max(cap - target, floor + int(forecast.in_rate_msat_s * horizon))
    dry = forecast.runs_dry_within(horizon)
    full = forecast.fill_s is not None and forecast.fill_s <= horizon
    return Balance(
        peer=channel.peer_id,
        surplus_out_msat=max(0, channel.local_msat - keep_local),
        deficit_out_msat=max(0, target - channel.local_msat) if dry else 0,
        surplus_in_msat=max(0, channel.remote_msat - keep_remote),
        deficit_in_msat=max(0, target - channel.remote_msat) if full else 0,
    )


def needs(
    channels: Iterable[ChannelView],
    forecasts: Mapping[str, ChannelForecast],
    policy: RebalancePolicy,
) -> list[Need]:
    """Channels forecast to run dry within the horizon, most urgent first."""
    found: list[Need] = []
    for channel in channels:
        if not usable(channel):
            continue
        assert channel.short_channel_id is not None
        fc = forecasts.get(channel.short_channel_id)
        if fc is None or not fc.runs_dry_within(policy.horizon_s):
            continue
        if fc.confidence < policy.min_confidence:
            continue
        target = int(channel.capacity_msat * policy.target_fraction)
        amount = min(target - channel.local_msat, policy.max_amount_msat, channel.remote_msat)
        if amount < policy.min_amount_msat:
            continue
        found.append(Need(channel=channel, forecast=fc, amount_msat=amount))
    found.sort(key=lambda n: (n.forecast.depletion_s or 0.0, n.scid))
    return found


def sources(
    need: Need,
    channels: Iterable[ChannelView],
    balances: Mapping[str, Balance],
    members: Iterable[NodeId],
    member_surplus: Mapping[NodeId, int] | None = None,
    leeches: Collection[NodeId] = (),
) -> list[ChannelView]:
    """Our channels that can pay out ``need.amount_msat`` without running dry themselves,
    best first: channels to fleet members (their hops are free), then to non-members, then
    to leech members (their channels are used last); within each, members that publish a
    surplus first, then the channel with the most surplus."""
    fleet = set(members) - set(leeches)
    leech_set = set(leeches)
    published = member_surplus or {}
    found: list[tuple[tuple[int, int, int, str], ChannelView]] = []
    for channel in channels:
        if not usable(channel) or channel.short_channel_id == need.scid:
            continue
        if channel.peer_id == need.peer:
            continue  # same peer: the move would cross one peer's two channels, rarely useful
        assert channel.short_channel_id is not None
        bal = balances.get(channel.short_channel_id)
        surplus = 0 if bal is None else bal.surplus_out_msat
        if surplus < need.amount_msat:
            continue
        rank = (
            0 if channel.peer_id in fleet else 2 if channel.peer_id in leech_set else 1,
            0 if published.get(channel.peer_id, 0) >= need.amount_msat else 1,
            -surplus,
            channel.short_channel_id,
        )
        found.append((rank, channel))
    found.sort(key=lambda item: item[0])
    return [channel for _, channel in found]


def serve_last(found: Sequence[Need], leeches: Collection[NodeId]) -> list[Need]:
    """``found`` with the needs of our channels to leech members moved behind all others
    (the order within each group kept): a pass that stops at ``max_moves_per_check`` serves
    them only when nothing else is waiting."""
    return sorted(found, key=lambda n: n.peer in leeches)


def leech_hops(route: Route, leeches: Collection[NodeId]) -> int:
    """How many of ``route``'s forwarding hops are leech members."""
    return sum(1 for hop in route.hops[:-1] if hop.node_id in leeches)


def route_rank(route: Route, leeches: Collection[NodeId]) -> tuple[bool, int]:
    """Smaller is better: any route without a leech among its hops before any with one,
    then the cheaper."""
    return leech_hops(route, leeches) > 0, route.fee_msat


# ---------------------------------------------------------------------------------------------
# The expected-value gate


@attrs.frozen
class Justification:
    """Both figures of a proposal, and the verdict."""

    amount_msat: int
    expected_income_msat: int  # confidence-weighted fee income over the horizon
    cost_msat: int  # route fee
    confidence: float
    horizon_s: float
    ok: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "amount_msat": self.amount_msat,
            "expected_income_msat": self.expected_income_msat,
            "cost_msat": self.cost_msat,
            "confidence": round(self.confidence, 3),
            "horizon_s": self.horizon_s,
            "ok": self.ok,
            "reason": self.reason,
        }


def expected_income_msat(need: Need, fee: FeePolicy, policy: RebalancePolicy) -> int:
    """Fee income the refill makes possible over the horizon, weighted by confidence."""
    fc = need.forecast
    carry = max(0, need.channel.local_msat - fc.floor_msat)  # what the channel still carries
    unmet = max(0.0, fc.outflow_msat(policy.horizon_s) - carry)
    volume = min(float(need.amount_msat), unmet)
    forwards = volume / fc.avg_forward_msat if fc.avg_forward_msat > 0 else 0.0
    income = volume * fee.ppm / PPM + forwards * fee.base_msat
    return int(income * fc.confidence)


def max_fee_msat(need: Need, fee: FeePolicy, policy: RebalancePolicy) -> int:
    """The most a route for ``need`` may cost and still pass the gate."""
    by_ppm = need.amount_msat * policy.max_fee_ppm // PPM
    by_income = int((expected_income_msat(need, fee, policy) - policy.min_net_msat) / policy.margin)
    return max(0, min(by_ppm, by_income))


def justify(
    need: Need,
    fee: FeePolicy,
    cost_msat: int,
    policy: RebalancePolicy,
    *,
    spent_in_window_msat: int = 0,
    max_fee_ppm: int | None = None,
) -> Justification:
    """The gate: propose only when weighted income > cost * margin + min_net, within caps.

    ``max_fee_ppm`` overrides the policy's cap (the decision engine's limit, when it has one).
    """
    income = expected_income_msat(need, fee, policy)
    cap_ppm = policy.max_fee_ppm if max_fee_ppm is None else max_fee_ppm
    fee_ppm = cost_msat * PPM // need.amount_msat if need.amount_msat else PPM
    if fee_ppm > cap_ppm:
        ok, reason = False, f"fee {fee_ppm} ppm above the cap of {cap_ppm} ppm"
    elif spent_in_window_msat + cost_msat > policy.budget_msat:
        ok, reason = (
            False,
            f"budget: {spent_in_window_msat} + {cost_msat} msat above {policy.budget_msat} msat "
            f"per {policy.budget_window_s:.0f} s",
        )
    elif income <= cost_msat * policy.margin + policy.min_net_msat:
        ok, reason = (
            False,
            f"expected income {income} msat does not cover cost {cost_msat} msat "
            f"x {policy.margin} + {policy.min_net_msat}",
        )
    else:
        ok, reason = (
            True,
            f"expected income {income} msat > cost {cost_msat} msat x {policy.margin}",
        )
    return Justification(
        amount_msat=need.amount_msat,
        expected_income_msat=income,
        cost_msat=cost_msat,
        confidence=need.forecast.confidence,
        horizon_s=policy.horizon_s,
        ok=ok,
        reason=reason,
    )


# ---------------------------------------------------------------------------------------------
# Accounting


@attrs.frozen
class Share:
    """One member's part in a rebalance: ``provided`` (forwarded it) or ``consumed`` (paid)."""

    member: NodeId
    role: str  # "provided" | "consumed"
    amount_msat: int
    fee_msat: int  # fee this member charged (providers) or paid (the consumer)


def shares(route: Route, payer: NodeId, members: Iterable[NodeId]) -> list[Share]:
    """Who provided and who consumed the liquidity of a settled circular ``route``.

    Every member that forwards (an intermediate hop) provides the amount it forwards on; the
    payer consumes the amount delivered and pays the route's whole fee."""
    fleet = set(members)
    out: list[Share] = []
    hops = route.hops
    for i in range(len(hops) - 1):
        node = hops[i].node_id
        if node in fleet and node != payer:
            forwarded = hops[i + 1].amount_msat
            out.append(
                Share(
                    member=node,
                    role="provided",
                    amount_msat=forwarded,
                    fee_msat=hops[i].amount_msat - forwarded,
                )
            )
    out.append(
        Share(member=payer, role="consumed", amount_msat=route.amount_msat, fee_msat=route.fee_msat)
    )
    return out


def free_share(route: Route, members: Iterable[NodeId], payer: NodeId) -> float:
    """Fraction of the route's forwarding hops done by members at zero fee."""
    fleet = set(members)
    hops = route.hops
    forwarding = range(len(hops) - 1)
    if not forwarding:
        return 1.0
    free = sum(
        1
        for i in forwarding
        if hops[i].node_id in fleet
        and hops[i].node_id != payer
        and hops[i].amount_msat == hops[i + 1].amount_msat
    )
    return free / len(forwarding)


# ---------------------------------------------------------------------------------------------
# Failures back off per channel


@attrs.define
class Backoff:
    """Consecutive failures per need channel, and when it may be tried again."""

    failures: dict[str, int] = attrs.field(factory=dict)
    until_ms: dict[str, int] = attrs.field(factory=dict)

    def ready(self, scid: str, now_ms: int) -> bool:
        return now_ms >= self.until_ms.get(scid, 0)

    def failed(self, scid: str, now_ms: int, policy: RebalancePolicy) -> float:
        """Record a failure; returns the wait in seconds."""
        n = self.failures.get(scid, 0) + 1
        self.failures[scid] = n
        wait = float(min(policy.backoff_cap_s, policy.backoff_s * 2.0 ** (n - 1)))
        self.until_ms[scid] = now_ms + int(wait * 1000)
        return wait

    def succeeded(self, scid: str) -> None:
        self.failures.pop(scid, None)
        self.until_ms.pop(scid, None)


def fleet_channels(channels: Sequence[ChannelView], members: Iterable[NodeId]) -> list[str]:
    """Short channel ids of our usable channels with members."""
    fleet = set(members)
    return [
        c.short_channel_id
        for c in channels
        if usable(c) and c.peer_id in fleet and c.short_channel_id is not None
    ]


__all__ = [
    "Backoff",
    "Balance",
    "Justification",
    "Need",
    "RebalancePolicy",
    "Share",
    "balance",
    "expected_income_msat",
    "fleet_channels",
    "free_share",
    "justify",
    "leech_hops",
    "max_fee_msat",
    "needs",
    "route_rank",
    "serve_last",
    "shares",
    "sources",
]
