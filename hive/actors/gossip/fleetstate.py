"""The fleet-state actor: the state map of every member's latest record, clamped to the public
graph, staleness, the fleet view, and saturation-aware ignore sync.

The gossip actor (:mod:`hive.actors.gossip.publisher`) puts records into
:attr:`FleetState.statemap` as
they arrive and calls :meth:`FleetState.member_updated`; this actor then

* refreshes that member's public channels from the node (``list_public_channels``) and judges
  every record against them (:mod:`hive.fleet.claims`): a claim our graph does not hold yet is
  *unconfirmed* (cut in the figures, nobody blamed) and the member's channels are fetched again
  every ``check_s`` until it is confirmed or, after ``claim_grace_s``, *contradicted*; each
  contradicted claim (on refresh or on a record's arrival) is logged with its figures and
  counted, and while it stands our published state carries a reputation note against the
  member whose count is the contradictions of the last ``NOTE_WINDOW_MS``
  (:meth:`reputation`): the note is withdrawn when the claim is mended or confirmed;
* learns the public capacity of every target the fleet reaches (new ones at once, all of them
  every ``graph_refresh_s``, and again sooner, with backoff from ``check_s``, a target our graph
  shows with less public capacity than the fleet's own confirmed channels to it) for the
  fleet's share of it;
* forgets members that left or were revoked;
* evaluates saturation (:class:`~hive.fleet.saturation.SaturationTracker`) after every change
  and every ``check_s``: each target newly ignored or released goes to
  ``node.set_open_ignored`` (which runs ``clboss-unmanage`` where CLBOSS runs) and is logged
  with its reason; the ignored set is persisted (store meta ``saturation-ignored``) and
  re-asserted at start, so a restart neither forgets nor flaps. Saturation is not evaluated
  before every active member's record is held or one interval has passed since start (an empty
  map would otherwise release every ignored target at once).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from hive.actors.membership.contact import AddressBook
from hive.actors.membership.roster import Membership
from hive.config import GossipConfig
from hive.fleet.claims import Note, reputation_reason
from hive.fleet.clamp import PublicCapacity
from hive.fleet.saturation import SaturationChange, SaturationPolicy, SaturationTracker
from hive.fleet.statemap import StateMap
from hive.fleet.view import FleetView
from hive.node.port import ChannelState, NodeId, NodePort, PublicChannel
from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.state import MAX_NOTES, ReputationNote, StateSnapshot
from hive.protocol.wire.codec import decode_message, encode_message
from hive.store import Store
from hive.store import fleet as tables

log = logging.getLogger(__name__)
IGNORE_HOLDER = "saturation"  # our hold on a saturated target (hive/node/ignores.py)

META_SATURATION = "saturation-ignored"
"""The targets we ignore for saturation: JSON ``{target: reason}``."""

TOP_TARGETS = 5
NOTE_WINDOW_MS = 24 * 3600 * 1000
"""A reputation note counts the contradictions of the last day (older ones decay away)."""
MAX_EVENTS = 10_000  # contradictions remembered per member and reason (bounded memory)


@attrs.define
class FleetStats:
    clamps: int = 0  # contradicted claims logged (on refresh or on a record's arrival)
    graph_refreshes: int = 0  # public-channel lookups of members and targets
    ignored: int = 0  # saturation changes to "ignored"
    released: int = 0  # saturation changes to "released"
    removed_members: int = 0


class FleetState:
    """Owner of the state map, the public-capacity figures and the saturation tracker."""

    def __init__(
        self,
        *,
        node: NodePort,
        store: Store,
        membership: Membership,
        node_id: NodeId,
        now_ms: Callable[[], int],
        config: GossipConfig | None = None,
        contact: AddressBook | None = None,
    ) -> None:
        self.node = node
        self.contact = contact or membership.contact
        self.store = store
        self.membership = membership
        self.node_id = node_id
        self.now_ms = now_ms
        self.config = config or GossipConfig()
        interval_ms = int(self.config.interval_s * 1000)
        self.statemap = StateMap(
            stale_after_ms=interval_ms * self.config.stale_intervals,
            grace_ms=int(self.config.claim_grace_s * 1000),
        )
        self.tracker = SaturationTracker(
            SaturationPolicy(cap=self.config.saturation_cap, release=self.config.saturation_release)
        )
        self.ignore_reasons: dict[NodeId, str] = {}
        self.stats = FleetStats()
        self._member_channels: dict[NodeId, list[PublicChannel]] = {}
        self._target_totals: dict[NodeId, int] = {}
        self._clamp_events: dict[tuple[NodeId, str], deque[int]] = {}  # -> times, oldest first
        self._target_retry: dict[NodeId, tuple[int, float]] = {}  # -> (next ms, backoff s)
        self._pending: set[NodeId] = set()
        self._wake = trio.Event()
        self._started_ms: int | None = None
        self.changes: list[SaturationChange] = []  # every saturation change, oldest first

    # ------------------------------------------------------------------------------------------
    # Called by the gossip actor and the commands (synchronous, never wait)

    def member_updated(self, member: NodeId) -> None:
        """A newer record of ``member`` landed in the map: refresh its public channels."""
        self._pending.add(member)
        self._wake.set()

    def report_clamps(self, notes: Iterable[Note]) -> None:
        """Log and count contradicted claims (from a record's arrival or a refresh)."""
        now = self.now_ms()
        for note in notes:
            self.stats.clamps += 1
            key = (note.member, reputation_reason(note))
            self._clamp_events.setdefault(key, deque(maxlen=MAX_EVENTS)).append(now)
            log.warning("fleet state: clamped a claim: %s", note.reason)

    def reputation(self) -> tuple[ReputationNote, ...]:
        """Our notes against members whose claims stand contradicted now; each counts the
        contradictions of the last NOTE_WINDOW_MS (at least 1 while one stands)."""
        now = self.now_ms()
        standing: set[tuple[NodeId, str]] = set()
        for member in self.statemap.members():
            entry = self.statemap.entry(member)
            if entry is not None:
                standing.update((member, reputation_reason(note)) for note in entry.clamps)
        notes = []
        for key in sorted(self._clamp_events):
            events = self._clamp_events[key]
            while events and now - events[0] > NOTE_WINDOW_MS:
                events.popleft()
            if not events and key not in standing:
                del self._clamp_events[key]
                continue
            if key in standing:
                count = min(max(len(events), 1), 2**32 - 1)
                notes.append(ReputationNote(peer=bytes.fromhex(key[0]), reason=key[1], count=count))
        return tuple(notes[:MAX_NOTES])

    def view(self) -> FleetView:
        return self.statemap.fleet_view(self.now_ms(), self._target_totals)

    def describe(self, member: NodeId) -> dict[str, Any] | None:
        return self.statemap.describe(member, self.now_ms())

    def summary(self) -> dict[str, Any]:
        """The fleet view in brief, for `hive-status` and the demo's table."""
        view = self.view()
        ranked = sorted(
            (t for t in view.targets if t.share is not None),
            key=lambda t: (-(t.share or 0.0), t.target),
        )
        return {
            "members": len(view.members),
            "stale": list(view.stale),
            "coverage": view.coverage,
            "fleet_capacity_sat": view.fleet_capacity_sat,
            "top_targets": [
                {"target": t.target, "share": t.share, "members": t.member_count}
                for t in ranked[:TOP_TARGETS]
            ],
            "ignored": dict(sorted(self.ignore_reasons.items())),
        }

    def status(self) -> dict[str, Any]:
        return {
            **attrs.asdict(self.stats),
            "unconfirmed_claims": sum(
                len(entry.unconfirmed)
                for member in self.statemap.members()
                if (entry := self.statemap.entry(member)) is not None
            ),
            "fleet": self.summary(),
        }

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def keep(self, member: NodeId) -> None:
        """Persist the record held of ``member`` and the addresses it publishes, so a restart
        neither forgets the member (shown stale if silent since) nor how to reach it."""
        entry = self.statemap.entry(member)
        if entry is None:
            return
        _, body = encode_message(StateSnapshot(state=entry.state))
        stored = tables.StoredState(member, entry.state.version, body, entry.heard_ms)
        await tables.save_state(self.store, stored)
        if member != self.node_id:
            await self.contact.learn(member, entry.state.addresses, "record")

    async def load(self) -> None:
        """Restore the records held before a restart (as last heard: stale if long silent),
        and the ignored set (re-asserted on the node at start: idempotent)."""
        await self.contact.load()
        active = set(self.membership.fleet_peers()) | {self.node_id}
        for row in await tables.states(self.store):
            if row.node_id not in active:
                continue
            try:
                message = decode_message(0x0040, row.body)
            except ProtocolError as exc:
                log.warning("fleet state: stored record of %s unreadable (%s)", row.node_id, exc)
                continue
            if isinstance(message, StateSnapshot):
                self.statemap.update(row.node_id, message.state, row.heard_ms)
        stored = await self.store.get_meta(META_SATURATION)
        if stored is None:
            return
        reasons = json.loads(stored.decode())
        if not isinstance(reasons, dict):
            raise ValueError(f"store meta {META_SATURATION!r} is not a JSON object")
        self.ignore_reasons = {str(k): str(v) for k, v in reasons.items()}
        self.tracker = SaturationTracker(self.tracker.policy, self.ignore_reasons)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._started_ms = self.now_ms()
        # Judge every claim from the first record on (an empty graph confirms nothing yet).
        self.statemap.set_public_graph(PublicCapacity.from_channels(()), self._started_ms)
        for target, reason in sorted(self.ignore_reasons.items()):
            await self.node.set_open_ignored(target, True, reason, holder=IGNORE_HOLDER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh_loop)
            nursery.start_soon(self._targets_loop)
            nursery.start_soon(self._roster_loop)
            task_status.started()

    async def _refresh_loop(self) -> None:
        """Refresh the channels of updated members and of members with unconfirmed claims,
        judge, then re-evaluate saturation."""
        while True:
            with trio.move_on_after(self.config.check_s):
                await self._wake.wait()
            self._wake = trio.Event()
            pending, self._pending = self._pending, set()
            due = pending | set(self.statemap.unconfirmed_members())
            refreshed = await self._refresh_members(due)
            if pending or refreshed:
                self._reclamp(refreshed)
            await self._fetch_targets(only_new=True)
            await self.evaluate_saturation()

    async def _targets_loop(self) -> None:
        while True:
            await trio.sleep(self.config.graph_refresh_s)
            self._reclamp(await self._refresh_members(self.statemap.members()))
            await self._fetch_targets(only_new=False)

    async def _refresh_members(self, members: Iterable[NodeId]) -> frozenset[NodeId]:
        refreshed: set[NodeId] = set()
        for member in sorted(members):
            if member in self.statemap:
                self._member_channels[member] = list(await self.node.list_public_channels(member))
                self.stats.graph_refreshes += 1
                refreshed.add(member)
        return frozenset(refreshed)

    async def _roster_loop(self) -> None:
        """Forget members that are no longer active."""
        while True:
            await self.membership.wait_changed()
            active = set(self.membership.fleet_peers()) | {self.node_id}
            for member in self.statemap.members():
                if member not in active:
                    self.statemap.remove(member)
                    self._member_channels.pop(member, None)
                    await self.contact.forget(member)
                    await tables.forget_member(self.store, member)
                    self.stats.removed_members += 1
                    log.info("fleet state: forgot %s (no longer an active member)", member)
            self._wake.set()

    def _reclamp(self, refreshed: frozenset[NodeId] = frozenset()) -> None:
        graph = PublicCapacity.from_channels(
            channel for channels in self._member_channels.values() for channel in channels
        )
        self.report_clamps(self.statemap.set_public_graph(graph, self.now_ms(), refreshed))

    async def _fetch_targets(self, *, only_new: bool) -> None:
        """Learn targets' public capacity: new ones, ones our graph shows below the fleet's
        confirmed capacity to them (with backoff), or all of them (``only_new`` False)."""
        now = self.now_ms()
        view = self.view()
        floors = {t.target: t.fleet_capacity_sat for t in view.targets}
        for target in sorted(floors):
            known = self._target_totals.get(target)
            retry_ms, backoff_s = self._target_retry.get(target, (0, self.config.check_s))
            lagging = known is not None and known < floors[target]
            if only_new and known is not None and not (lagging and now >= retry_ms):
                continue
            channels = await self.node.list_public_channels(target)
            self.stats.graph_refreshes += 1
            seen: set[str] = set()
            total = 0
            for channel in channels:
                if channel.short_channel_id not in seen:
                    seen.add(channel.short_channel_id)
                    total += channel.capacity_msat // 1000
            self._target_totals[target] = total
            if total < floors[target]:
                wait = min(backoff_s * 2, self.config.graph_refresh_s)
                self._target_retry[target] = (now + int(backoff_s * 1000), wait)
            else:
                self._target_retry.pop(target, None)

    # ------------------------------------------------------------------------------------------
    # Saturation

    def _warmed_up(self) -> bool:
        active = set(self.membership.fleet_peers()) | {self.node_id}
        if active <= set(self.statemap.members()):
            return True
        started = self._started_ms if self._started_ms is not None else self.now_ms()
        return self.now_ms() - started >= self.config.interval_s * 1000

    async def evaluate_saturation(self) -> list[SaturationChange]:
        """Apply the tracker's changes to the node, log and persist them; return them."""
        if not self.membership.is_member or not self._warmed_up():
            return []
        ours = {
            c.peer_id for c in await self.node.list_channels() if c.state is not ChannelState.CLOSED
        }
        result = self.tracker.evaluate(self.view(), ours)
        for change in result.changes:
            ignored = change.action.value == "ignore"
            await self.node.set_open_ignored(
                change.target, ignored, change.reason, holder=IGNORE_HOLDER
            )
            if ignored:
                self.ignore_reasons[change.target] = change.reason
                self.stats.ignored += 1
            else:
                self.ignore_reasons.pop(change.target, None)
                self.stats.released += 1
            self.changes.append(change)
            log.info("saturation: %s %s: %s", change.action.value, change.target, change.reason)
        if result.changes:
            payload = json.dumps(self.ignore_reasons, sort_keys=True).encode()
            await self.store.set_meta(META_SATURATION, payload)
        return list(result.changes)


__all__ = ["META_SATURATION", "FleetState", "FleetStats"]
