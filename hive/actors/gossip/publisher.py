"""The gossip actor: publishes our state record, spreads every member's, repairs what was lost.

Only active members take part: a companion that is not a member publishes nothing and ignores
state frames. The wire format and rules are docs/PROTOCOL.md, "State gossip".

Publishing. Every ``check_s``, and at once after a channel event, our record is rebuilt from
the node (:func:`hive.fleet.own.build_state`). A material change (:func:`~hive.fleet.own.
material_change`) is published at once as a :class:`StateDelta` under the next version; with
none, every ``interval_s`` a delta carrying whatever drifted, or a keepalive when nothing did.
The first publication after start is a :class:`StateSnapshot`. Versions follow
:func:`hive.protocol.gossip.state.first_version` and the last one is persisted (store meta
``gossip-version``), so they grow across restarts.

Dissemination. Our frames go directly to every connected member. A newly accepted snapshot,
delta or keepalive of another member (the replay guard deduplicates by origin and seq) is
forwarded inside :class:`Relayed` when it brought us a newer version (or is a keepalive:
members not connected to its origin hear from it that way), with the hop limit of
:class:`RelayPolicy`, to ``relay_fanout`` members chosen at random among the eligible ones
(connected, not the one it came from, not its origin), plus every member that asked us for
that origin's state. Frames go out signed once and the same frame goes to every receiver
(``Outgoing(frame=...)``), so the replay guard's deduplication by (origin, seq) recognises
copies that travelled different paths; a relayed inner frame is forwarded verbatim.

Repair. A delta we cannot apply (a gap) or a keepalive ahead of what we hold makes us send a
:class:`StateRequest` (at most one per origin per ``request_gap_s``): to the origin when
connected, else to the member that delivered the frame, which forwards the request toward the
origin (to it when connected, else like any relayed frame) and remembers who asked. The origin
answers with a fresh snapshot (to the requester when connected, else to the member that
delivered the request). Anti-entropy: a :class:`StateDigest` goes to a member when it connects
or joins, after our first publication since start and every ``interval_s`` to
``digest_fanout`` connected members; a receiver requests
what the digest shows newer, and answers with its own digest (at most once per
``request_gap_s`` per member) when the sender lacks something it holds.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs
import trio

from hive.actors.gossip.fleetstate import FleetState
from hive.actors.membership.roster import Membership
from hive.actors.wire.transport import Outgoing, Transport
from hive.config import GossipConfig
from hive.fleet.own import Earnings, MaterialPolicy, build_state, material_change, same_content
from hive.fleet.rebalance import Balance
from hive.node.port import (
    ChannelOpened,
    ChannelStateChanged,
    Forwarded,
    NodeEvent,
    NodeId,
    NodePort,
    PeerConnected,
)
from hive.protocol.errors import DELTA_GAP, OWN_FRAME, REPLAY, ProtocolError
from hive.protocol.gossip.relay import RelayPolicy, open_relayed
from hive.protocol.gossip.state import (
    NO_REBALANCING,
    MemberState,
    RebalanceTotals,
    Relayed,
    ReputationNote,
    StateDelta,
    StateDigest,
    StateRequest,
    StateSnapshot,
    compare,
    diff,
    digest_versions,
    first_version,
    keepalive,
    make_digest,
)
from hive.protocol.messages import Message
from hive.protocol.wire.codec import encode_message
from hive.protocol.wire.envelope import MIN_FRAME_LEN
from hive.protocol.wire.facade import Received
from hive.store import Store
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

META_GOSSIP_VERSION = "gossip-version"
"""The last state version we published (8 bytes, big-endian)."""
META_EARNINGS = "gossip-earnings"
"""Fees earned per peer (JSON: node id -> [earned_msat, forwards]), so they survive restarts."""

GOSSIP_KINDS: tuple[type[Message], ...] = (
    StateSnapshot,
    StateDelta,
    StateRequest,
    StateDigest,
    Relayed,
)
INTEREST_TTL_MS = 120_000  # how long we remember who asked for an origin's state


@attrs.define
class GossipStats:
    states_sent: int = 0  # our snapshots, deltas and keepalives (one per receiver)
    states_received: int = 0  # snapshots, deltas and keepalives accepted (direct or relayed)
    states_applied: int = 0  # of which brought a newer version
    snapshots_sent: int = 0
    snapshots_received: int = 0
    keepalives_sent: int = 0
    relayed: int = 0  # frames we forwarded inside Relayed
    relayed_received: int = 0
    duplicates: int = 0  # relayed frames we already had (or our own, back round a loop)
    delta_gaps: int = 0
    requests_sent: int = 0
    requests_received: int = 0
    digests_sent: int = 0
    digests_received: int = 0
    bytes_sent: int = 0  # signed frame bytes of everything above we sent
    bytes_received: int = 0  # frame bytes of the gossip frames we accepted
    published_version: int | None = None
    last_reason: str | None = None  # why we last published
    rejected: Counter[str] = attrs.field(factory=Counter)


def frame_len(message: Message) -> int:
    """The signed frame size of ``message`` (header, CBOR body, signature)."""
    return MIN_FRAME_LEN + len(encode_message(message)[1])


class RebalancingSource(Protocol):
    """What the rebalancing actors add to our published state."""

    def balances(self) -> Sequence[Balance]: ...

    def totals_record(self) -> RebalanceTotals: ...

    def reputation(self) -> Sequence[ReputationNote]: ...


class Gossip:
    """Publisher, receiver, relay and anti-entropy of state gossip."""

    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        membership: Membership,
        fleet: FleetState,
        store: Store,
        node_id: NodeId,
        now_ms: Callable[[], int],
        rng: random.Random,
        config: GossipConfig | None = None,
    ) -> None:
        self.node = node
        self.transport = transport
        self.membership = membership
        self.fleet = fleet
        self.store = store
        self.node_id = node_id
        self.hive_key = transport.wire.hive_key
        self.now_ms = now_ms
        self.rng = rng
        self.config = config or GossipConfig()
        self.policy = RelayPolicy(max_hops=self.config.max_hops)
        self.material = MaterialPolicy(
            share_change_ppm=self.config.share_change_ppm,
            liquidity_fraction=self.config.liquidity_fraction,
        )
        self.stats = GossipStats()
        self.inbox: Inbox[Received] = Inbox(512)
        self.events: Inbox[NodeEvent] = Inbox(256)
        self.published: MemberState | None = None
        self.earnings: dict[NodeId, Earnings] = {}
        self._saved_earnings = b""
        self._last_version: int | None = None
        self._last_sent_ms = 0
        self._wake = trio.Event()
        self._requested: dict[NodeId, int] = {}  # origin -> when we last asked for it
        self._answered: dict[NodeId, int] = {}  # requester -> when we last sent it a snapshot
        self._digest_replied: dict[NodeId, int] = {}
        self._interest: dict[NodeId, dict[NodeId, int]] = {}  # origin -> {peer: expiry ms}
        self._scid_peer: dict[str, NodeId] = {}
        # Set by the runtime: surplus/deficit, rebalancing totals and notes (issue 15).
        self.rebalancing: RebalancingSource | None = None
        # Further reputation notes for our record (the strategy actor's false reports).
        self.note_sources: list[Callable[[], Sequence[ReputationNote]]] = []
        transport.subscribe(GOSSIP_KINDS, self.inbox)
        transport.subscribe_events(self.events)

    # ------------------------------------------------------------------------------------------
    # Identities

    def _node_of(self, hive_key: bytes) -> NodeId | None:
        roster = self.membership.roster
        record = None if roster is None else roster.by_hive_key(hive_key)
        if record is None or not self.membership.is_member:
            return None
        node_id = record.body.cert.node_id
        return node_id.hex() if roster is not None and node_id in roster.active() else None

    def _hive_keys(self) -> dict[NodeId, bytes]:
        roster = self.membership.roster
        if roster is None:
            return {}
        return {n.hex(): r.body.cert.hive_key for n, r in roster.active().items()}

    def _connected_members(self) -> list[NodeId]:
        connected = self.membership.connected
        return [peer for peer in self.membership.fleet_peers() if peer in connected]

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def load(self) -> None:
        stored = await self.store.get_meta(META_GOSSIP_VERSION)
        self._last_version = None if stored is None else int.from_bytes(stored, "big")
        self.earnings = decode_earnings(await self.store.get_meta(META_EARNINGS))
        self._saved_earnings = encode_earnings(self.earnings)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._messages)
            nursery.start_soon(self._node_events)
            nursery.start_soon(self._publish_loop)
            nursery.start_soon(self._digest_loop)
            nursery.start_soon(self._roster_loop)
            task_status.started()

    # ------------------------------------------------------------------------------------------
    # Sending

    async def _send(self, peers: Iterable[NodeId], message: Message) -> int:
        """Send ``message``, signed once, to each of ``peers``; return how many."""
        targets = list(peers)
        if targets:
            # Signed once: copies arriving over several paths are one (origin, seq).
            frame = self.transport.wire.sign(message, self.now_ms())
            for peer in targets:
                await self.transport.outbox.send(Outgoing(peer, frame=frame))
            self.stats.bytes_sent += len(frame) * len(targets)
        return len(targets)

    # ------------------------------------------------------------------------------------------
    # Publishing

    def _next_version(self) -> int:
        if self._last_version is None or self.published is None:
            version = first_version(self._last_version, self.now_ms())
        else:
            version = self._last_version + 1
        self._last_version = version
        return version

    async def _publish_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.check_s):
                await self._wake.wait()
            self._wake = trio.Event()
            if self.membership.is_member:
                await self.publish()

    async def publish(self) -> str | None:
        """Rebuild our state; publish it if it changed materially, or when the keepalive
        interval is up. Returns what was published and why, or None."""
        channels = await self.node.list_channels()
        self._scid_peer = {c.short_channel_id: c.peer_id for c in channels if c.short_channel_id}
        earnings = encode_earnings(self.earnings)
        if earnings != self._saved_earnings:
            await self.store.set_meta(META_EARNINGS, earnings)
            self._saved_earnings = earnings
        onchain = await self.node.onchain_balance_sat()
        base = 0 if self.published is None else self.published.version
        extra = self.rebalancing
        current = build_state(
            base,
            channels,
            onchain,
            reputation=(
                *self.fleet.reputation(),
                *(extra.reputation() if extra else ()),
                *(note for source in self.note_sources for note in source()),
            ),
            earnings=self.earnings,
            addresses=self.fleet.contact.own,
            balances=extra.balances() if extra else (),
            rebalancing=extra.totals_record() if extra else NO_REBALANCING,
        )
        now = self.now_ms()
        due = now - self._last_sent_ms >= self.config.interval_s * 1000
        reason: str | None
        if self.published is None:
            reason = "first publication since start"
        else:
            reason = material_change(self.published, current, self.material)
            if reason is None and due:
                reason = None if same_content(self.published, current) else "interval: drift"
        if reason is None and not due:
            return None
        peers = self._connected_members()
        message: Message
        if reason is None:
            assert self.published is not None
            message = keepalive(self.published)
            self.stats.keepalives_sent += len(peers)
            self.fleet.statemap.touch(self.node_id, now)
            what = "keepalive"
        else:
            new = attrs.evolve(current, version=self._next_version())
            await self.store.set_meta(META_GOSSIP_VERSION, new.version.to_bytes(8, "big"))
            if self.published is None:
                message = StateSnapshot(state=new)
                self.stats.snapshots_sent += len(peers)
            else:
                message = diff(self.published, new)
            self.published = new
            self.stats.published_version = new.version
            self.stats.last_reason = reason
            self.fleet.statemap.update(self.node_id, new, now)
            self.fleet.member_updated(self.node_id)
            what = f"version {new.version} ({reason})"
            log.info("gossip: publishing %s to %d members", what, len(peers))
        first = self.published is not None and isinstance(message, StateSnapshot)
        self.stats.states_sent += await self._send(peers, message)
        self._last_sent_ms = now
        if first:
            # After a start our map is empty: a digest makes its receivers answer with theirs.
            for peer in self._sample(peers, self.config.digest_fanout):
                await self._send_digest(peer)
        return what

    # ------------------------------------------------------------------------------------------
    # Node events: channel changes wake the publisher, forwards count as earnings, members that
    # connect get a digest

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, ChannelOpened | ChannelStateChanged):
                self._wake.set()
            elif isinstance(event, Forwarded):
                peer = self._scid_peer.get(event.out_channel)
                if event.settled and peer is not None and event.fee_msat > 0:
                    earned = self.earnings.setdefault(peer, Earnings())
                    earned.earned_msat += event.fee_msat
                    earned.forwards += 1
            elif (
                isinstance(event, PeerConnected) and event.peer_id in self.membership.fleet_peers()
            ):
                await self._send_digest(event.peer_id)

    async def _roster_loop(self) -> None:
        """New members get our snapshot; becoming a member publishes at once.

        No digest goes with it: every member sends the newcomer its own snapshot, so a digest
        would only make the newcomer request the states that are already on their way (for
        N members, N requests per join); the periodic digests repair whatever was lost."""
        known = set(self.membership.fleet_peers())
        while True:
            await self.membership.wait_changed()
            current = set(self.membership.fleet_peers())
            if self.membership.is_member and self.published is None:
                self._wake.set()
            for peer in sorted(current - known):
                if peer in self.membership.connected and self.published is not None:
                    self.stats.snapshots_sent += 1
                    self.stats.states_sent += await self._send(
                        [peer], StateSnapshot(state=self.published)
                    )
            known = current

    # ------------------------------------------------------------------------------------------
    # Anti-entropy

    def _digest(self) -> StateDigest:
        return make_digest(
            {e.origin: e.version for e in self.fleet.statemap.digest_entries(self._hive_keys())}
        )

    async def _send_digest(self, peer: NodeId) -> None:
        if not self.membership.is_member:
            return
        self.stats.digests_sent += await self._send([peer], self._digest())

    async def _digest_loop(self) -> None:
        while True:
            await trio.sleep(self.config.interval_s)
            peers = self._connected_members()
            for peer in self._sample(peers, self.config.digest_fanout):
                await self._send_digest(peer)

    async def _on_digest(self, peer: NodeId, digest: StateDigest) -> None:
        self.stats.digests_received += 1
        keys = self._hive_keys()
        nodes = {key: node for node, key in keys.items()}
        theirs = {nodes[k]: v for k, v in digest_versions(digest).items() if k in nodes}
        ours = {m: v for m, v in self.fleet.statemap.versions().items() if m in keys}
        send, request = compare(ours, theirs)
        for origin in request:
            if origin != self.node_id:
                await self._request(origin, ours.get(origin, 0), via=peer)
        if not send:
            return
        if self.node_id in send and self.published is not None:
            self.stats.snapshots_sent += 1
            self.stats.states_sent += await self._send([peer], StateSnapshot(state=self.published))
        now = self.now_ms()
        if set(send) - {self.node_id} and self._allowed(self._digest_replied, peer, now):
            await self._send_digest(peer)

    def _allowed(self, last: dict[NodeId, int], key: NodeId, now: int) -> bool:
        """Rate limit: True (and noted) unless ``key`` was allowed within ``request_gap_s``."""
        before = last.get(key)
        if before is not None and now - before < self.config.request_gap_s * 1000:
            return False
        last[key] = now
        return True

    async def _request(self, origin: NodeId, have: int, *, via: NodeId) -> None:
        """Ask for ``origin``'s state (rate-limited per origin)."""
        key = self._hive_keys().get(origin)
        if key is None or not self._allowed(self._requested, origin, self.now_ms()):
            return
        target = origin if origin in self.membership.connected else via
        await self._send([target], StateRequest(origin=key, have_version=have))
        self.stats.requests_sent += 1

    # ------------------------------------------------------------------------------------------
    # Receiving

    async def _messages(self) -> None:
        async for received in self.inbox.receive:
            if not self.membership.is_member:
                continue
            message = received.message
            if isinstance(message, Relayed):
                await self._on_relayed(received, message)
            elif isinstance(message, StateDigest):
                await self._on_digest(received.peer_id, message)
            else:
                await self._on_frame(received, hops_left=None)

    async def _on_relayed(self, received: Received, relayed: Relayed) -> None:
        try:
            inner = open_relayed(
                relayed,
                peer_id=received.peer_id,
                relayer=received.sender,
                own_key=self.hive_key,
                replay=self.transport.wire.replay,
                now_ms=self.now_ms(),
            )
        except ProtocolError as exc:
            if exc.reason in (OWN_FRAME, REPLAY):
                self.stats.duplicates += 1
            else:
                self._reject(received.peer_id, exc.reason, exc.detail)
            return
        self.stats.relayed_received += 1
        await self._on_frame(inner, hops_left=relayed.hops_left)

    async def _on_frame(self, received: Received, *, hops_left: int | None) -> None:
        origin = self._node_of(received.sender)
        if origin is None:
            self._reject(received.peer_id, "not-member", "state frame of no active member")
            return
        message = received.message
        self.stats.bytes_received += len(received.frame)
        if isinstance(message, StateRequest):
            await self._on_request(received, message, origin, hops_left)
            return
        if not isinstance(message, StateSnapshot | StateDelta):
            return
        self.stats.states_received += 1
        applied = await self._apply(origin, message, came_from=received.peer_id)
        interested = self._take_interest(origin) if isinstance(message, StateSnapshot) else set()
        # A version is spread on by each member once, when it first lands there; a keepalive
        # (new as a frame) is spread so members not connected to its origin hear from it.
        spread = applied or (isinstance(message, StateDelta) and message.is_empty)
        await self._relay(received, origin, hops_left if spread else 0, interested)

    async def _apply(
        self, origin: NodeId, message: StateSnapshot | StateDelta, *, came_from: NodeId
    ) -> bool:
        """Put the record into the state map; True when it brought a newer version."""
        statemap = self.fleet.statemap
        now = self.now_ms()
        try:
            if isinstance(message, StateSnapshot):
                self.stats.snapshots_received += 1
                result = statemap.update(origin, message.state, now)
            else:
                result = statemap.apply_delta(origin, message, now)
        except ProtocolError as exc:
            if exc.reason != DELTA_GAP:
                self._reject(came_from, exc.reason, exc.detail)
                return False
            self.stats.delta_gaps += 1
            log.info("gossip: %s: asking %s for a snapshot", exc.detail, origin)
            await self._request(origin, statemap.version_of(origin) or 0, via=came_from)
            return False
        if result.applied:
            self.stats.states_applied += 1
            self.fleet.report_clamps(result.clamps)
            self.fleet.member_updated(origin)
            await self.fleet.keep(origin)
        return result.applied

    def _sample(self, peers: Sequence[NodeId], count: int | None) -> list[NodeId]:
        ordered = sorted(peers)
        if count is None or len(ordered) <= count:
            return ordered
        return sorted(self.rng.sample(ordered, count))

    async def _relay(
        self,
        received: Received,
        origin: NodeId,
        hops_left: int | None,
        interested: set[NodeId],
    ) -> None:
        """Forward to ``relay_fanout`` eligible members and every ``interested`` one;
        ``hops_left`` 0 means: only to the interested ones."""
        onward = None if hops_left == 0 else self.policy.onward_hops(hops_left)
        eligible = RelayPolicy.targets(
            self._connected_members(), came_from=received.peer_id, origin=origin
        )
        chosen = set(interested & eligible)
        if onward is not None:
            chosen.update(self._sample(list(eligible), self.config.relay_fanout))
        if chosen:
            message = Relayed(hops_left=onward or 1, frame=received.frame)
            self.stats.relayed += await self._send(sorted(chosen), message)

    def _take_interest(self, origin: NodeId) -> set[NodeId]:
        now = self.now_ms()
        waiting = self._interest.pop(origin, {})
        return {peer for peer, expiry in waiting.items() if expiry > now}

    async def _on_request(
        self, received: Received, request: StateRequest, requester: NodeId, hops_left: int | None
    ) -> None:
        self.stats.requests_received += 1
        now = self.now_ms()
        if request.origin == self.hive_key:
            if self.published is None or not self._allowed(self._answered, requester, now):
                return
            target = requester if requester in self.membership.connected else received.peer_id
            self.stats.snapshots_sent += 1
            self.stats.states_sent += await self._send(
                [target], StateSnapshot(state=self.published)
            )
            return
        origin = self._node_of(request.origin)
        onward = self.policy.onward_hops(hops_left)
        if origin is None or onward is None:
            return
        self._interest.setdefault(origin, {})[received.peer_id] = now + INTEREST_TTL_MS
        if origin in self.membership.connected:
            targets = [origin]
        else:
            eligible = RelayPolicy.targets(
                self._connected_members(), came_from=received.peer_id, origin=requester
            )
            targets = self._sample(list(eligible), self.config.relay_fanout)
        message = Relayed(hops_left=onward, frame=received.frame)
        self.stats.relayed += await self._send(targets, message)

    def _reject(self, peer: NodeId, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        log.info("gossip: refused input from %s: %s (%s)", peer, reason, detail)

    # ------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        stats = attrs.asdict(self.stats)
        stats["rejected"] = dict(self.stats.rejected)
        return stats


__all__ = ["GOSSIP_KINDS", "META_GOSSIP_VERSION", "Gossip", "GossipStats", "frame_len"]


def encode_earnings(earnings: dict[NodeId, Earnings]) -> bytes:
    table = {peer: [e.earned_msat, e.forwards] for peer, e in sorted(earnings.items())}
    return json.dumps(table, separators=(",", ":")).encode()


def decode_earnings(raw: bytes | None) -> dict[NodeId, Earnings]:
    """Saved earnings; anything unreadable is logged and forgotten (they are statistics)."""
    if raw is None:
        return {}
    try:
        table = json.loads(raw)
        return {
            str(peer): Earnings(earned_msat=int(value[0]), forwards=int(value[1]))
            for peer, value in table.items()
        }
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.warning("saved earnings are unreadable (%s); starting from zero", exc)
        return {}
