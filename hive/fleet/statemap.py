"""The fleet state map: every member's latest state record, when it was last heard, its claims
clamped to the public graph, and the fleet view derived from all of it. Pure: time comes in as
``now_ms``, nothing is read or sent here; the state-map actor owns one :class:`StateMap`.

Members are keyed by Lightning node id (hex ``str``). The map keeps each member's record as
the member signed it (deltas apply to that, and digests advertise its version) and, beside it,
the *effective* record: cut to what our view of the public graph confirms
(:meth:`StateMap.set_public_graph`). Figures use the effective records. A cut claim is only
*unconfirmed* until :mod:`hive.fleet.claims` finds it *contradicted* (our graph lags; see there).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from hive.fleet.claims import DEFAULT_GRACE_MS, Note, Unconfirmed, judge, note_key
from hive.fleet.clamp import PublicCapacity
from hive.fleet.view import FleetView, MemberSummary, TargetView, state_to_json
from hive.node.port import NodeId
from hive.protocol.errors import DELTA_GAP, ProtocolError
from hive.protocol.gossip.state import DigestEntry, MemberState, StateDelta, apply


class Outcome(enum.Enum):
    """What an update did."""

    APPLIED = "applied"  # a newer version: stored
    CURRENT = "current"  # the version we hold (a keepalive or a duplicate): only heard-from
    OLDER = "older"  # below the version we hold: ignored (only heard-from)


@attrs.frozen
class UpdateResult:
    """The outcome of an update and the contradicted claims it newly brought (to report)."""

    outcome: Outcome
    clamps: tuple[Note, ...] = ()

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED


@attrs.frozen
class MemberEntry:
    """What the map holds for one member."""

    member: NodeId
    state: MemberState  # as the member published it
    effective: MemberState  # cut to the public graph (the same object when nothing was cut)
    clamps: tuple[Note, ...]  # contradicted claims
    heard_ms: int  # last time anything of the member's was accepted
    updated_ms: int  # when the current version was stored
    unconfirmed: tuple[Unconfirmed, ...] = ()  # claims our graph does not hold yet


class StateMap:
    """Latest state per member, staleness, clamping and the fleet view."""

    def __init__(self, stale_after_ms: int, *, grace_ms: int = DEFAULT_GRACE_MS) -> None:
        if type(stale_after_ms) is not int or stale_after_ms <= 0:
            raise ValueError(f"stale_after_ms must be a positive integer, got {stale_after_ms!r}")
        if type(grace_ms) is not int or grace_ms < 0:
            raise ValueError(f"grace_ms must be a non-negative integer, got {grace_ms!r}")
        self.stale_after_ms = stale_after_ms
        self.grace_ms = grace_ms
        self._entries: dict[NodeId, MemberEntry] = {}
        self._graph: PublicCapacity | None = None  # None: no graph known, claims taken as made
        self._since: dict[NodeId, dict[NodeId, int]] = {}  # member -> peer -> first seen above
        self._refreshed_ms: dict[NodeId, int] = {}  # member -> its channels last fetched

    # --- updates ------------------------------------------------------------------------------

    def update(self, member: NodeId, state: MemberState, now_ms: int) -> UpdateResult:
        """Store ``state`` (from a snapshot) if it is newer than what we hold."""
        current = self._entries.get(member)
        if current is not None and state.version <= current.state.version:
            self.touch(member, now_ms)
            older = state.version < current.state.version
            return UpdateResult(Outcome.OLDER if older else Outcome.CURRENT)
        return self._store(member, state, now_ms)

    def apply_delta(self, member: NodeId, delta: StateDelta, now_ms: int) -> UpdateResult:
        """Apply ``delta`` to the member's record.

        A delta to a version we hold already (a keepalive, a duplicate) or below only counts as
        hearing from the member. Raises ProtocolError "delta-gap" when we hold no record of the
        member or one of another version than ``delta.base_version`` (ask for a snapshot), and
        "bad-field" for a malformed delta (see :func:`hive.protocol.gossip.state.apply`).
        """
        current = self._entries.get(member)
        if current is None:
            raise ProtocolError(
                DELTA_GAP, f"delta to version {delta.version} of {member}, we hold no state of it"
            )
        if delta.version <= current.state.version:
            self.touch(member, now_ms)
            older = delta.version < current.state.version
            return UpdateResult(Outcome.OLDER if older else Outcome.CURRENT)
        return self._store(member, apply(current.state, delta), now_ms)

    def touch(self, member: NodeId, now_ms: int) -> None:
        """Record that something of ``member``'s was accepted at ``now_ms`` (no-op if unknown)."""
        current = self._entries.get(member)
        if current is not None and now_ms > current.heard_ms:
            self._entries[member] = attrs.evolve(current, heard_ms=now_ms)

    def remove(self, member: NodeId) -> bool:
        """Forget a member (it left the hive or was revoked). True if it was held."""
        self._since.pop(member, None)
        self._refreshed_ms.pop(member, None)
        return self._entries.pop(member, None) is not None

    def set_public_graph(
        self,
        graph: PublicCapacity | None,
        now_ms: int,
        refreshed: frozenset[NodeId] = frozenset(),
    ) -> list[Note]:
        """Judge every record against ``graph`` at ``now_ms`` (None: no graph known, claims are
        taken as made); ``refreshed``: the members whose public channels were fetched just
        now. Returns the claims newly contradicted."""
        self._graph = graph
        for member in refreshed:
            self._refreshed_ms[member] = now_ms
        changed: list[Note] = []
        for member, entry in list(self._entries.items()):
            fresh = self._refreshed_ms.get(member, -1) >= entry.updated_ms
            judged = self._judge(member, entry.state, now_ms, fresh, entry.clamps)
            known = {note_key(note) for note in entry.clamps}
            changed.extend(note for note in judged.clamps if note_key(note) not in known)
            self._entries[member] = attrs.evolve(
                entry,
                effective=judged.effective,
                clamps=judged.clamps,
                unconfirmed=judged.unconfirmed,
            )
        return changed

    def unconfirmed_members(self) -> list[NodeId]:
        """Members with claims our graph does not hold yet (worth fetching again), sorted."""
        return sorted(m for m, entry in self._entries.items() if entry.unconfirmed)

    def _judge(
        self,
        member: NodeId,
        state: MemberState,
        now_ms: int,
        fresh: bool,
        standing: tuple[Note, ...],
    ) -> MemberEntry:
        if self._graph is None:
            return MemberEntry(member, state, state, (), heard_ms=0, updated_ms=0)
        judged = judge(
            member,
            state,
            self._graph,
            now_ms=now_ms,
            grace_ms=self.grace_ms,
            since=self._since.get(member, {}),
            refreshed=fresh,
            standing=standing,
        )
        self._since[member] = dict(judged.since)
        return MemberEntry(
            member=member,
            state=state,
            effective=judged.effective,
            clamps=judged.contradicted,
            heard_ms=0,
            updated_ms=0,
            unconfirmed=judged.unconfirmed,
        )

    def _store(self, member: NodeId, state: MemberState, now_ms: int) -> UpdateResult:
        previous = self._entries.get(member)
        standing = () if previous is None else previous.clamps
        judged = self._judge(member, state, now_ms, False, standing)
        heard = now_ms if previous is None else max(now_ms, previous.heard_ms)
        self._entries[member] = attrs.evolve(judged, heard_ms=heard, updated_ms=now_ms)
        known = {note_key(note) for note in standing}
        return UpdateResult(
            Outcome.APPLIED, tuple(n for n in judged.clamps if note_key(n) not in known)
        )

    # --- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, member: object) -> bool:
        return member in self._entries

    def entry(self, member: NodeId) -> MemberEntry | None:
        return self._entries.get(member)

    def members(self) -> list[NodeId]:
        """Every member held, sorted."""
        return sorted(self._entries)

    def version_of(self, member: NodeId) -> int | None:
        """The version of ``member``'s record we hold, or None."""
        entry = self._entries.get(member)
        return None if entry is None else entry.state.version

    def versions(self) -> dict[NodeId, int]:
        """member -> version held."""
        return {member: entry.state.version for member, entry in self._entries.items()}

    def is_stale(self, member: NodeId, now_ms: int) -> bool:
        """True when ``member`` is held and silent for more than ``stale_after_ms``."""
        entry = self._entries.get(member)
        return entry is not None and now_ms - entry.heard_ms > self.stale_after_ms

    def stale(self, now_ms: int) -> set[NodeId]:
        """Members silent for more than ``stale_after_ms``."""
        return {member for member in self._entries if self.is_stale(member, now_ms)}

    def digest_entries(self, hive_keys: Mapping[NodeId, bytes]) -> tuple[DigestEntry, ...]:
        """Our holdings as digest entries (origin hive key, version), sorted by origin.

        ``hive_keys`` maps node id -> hive key (from membership); members without a known key
        are left out. Stale members are included: their last record is still worth repairing.
        """
        entries = [
            DigestEntry(origin=hive_keys[member], version=entry.state.version)
            for member, entry in self._entries.items()
            if member in hive_keys
        ]
        return tuple(sorted(entries, key=lambda e: (e.origin, e.version)))

    def describe(self, member: NodeId, now_ms: int) -> dict[str, Any] | None:
        """One member's record, its age and clamps as JSON (``hive-state MEMBER``)."""
        entry = self._entries.get(member)
        if entry is None:
            return None
        return {
            "member": member,
            "version": entry.state.version,
            "age_ms": now_ms - entry.heard_ms,
            "updated_ms": entry.updated_ms,
            "stale": self.is_stale(member, now_ms),
            "state": state_to_json(entry.state),
            "clamps": [note.to_json() for note in entry.clamps],
            "unconfirmed": [claim.to_json() for claim in entry.unconfirmed],
        }

    def fleet_view(self, now_ms: int, public_capacity: Mapping[NodeId, int]) -> FleetView:
        """The fleet view at ``now_ms`` from fresh members' effective records.

        ``public_capacity``: target -> its total public capacity (sat), e.g.
        ``PublicCapacity.totals``. The fleet's effective capacity to a target is public capacity
        of that target (the graph confirmed it), so once a graph is set it is the floor of the
        target's figure: a target whose own channels our graph lags on is never shown with 0 or
        a share above 1. Without a graph, a target missing from ``public_capacity`` has no
        figure and no share (None).
        Peers that are members themselves (fresh or stale) are not targets.
        """
        stale = self.stale(now_ms)
        summaries: list[MemberSummary] = []
        capacity: dict[NodeId, int] = {}
        connected: dict[NodeId, set[NodeId]] = {}
        for member in sorted(self._entries):
            if member in stale:
                continue
            entry = self._entries[member]
            state = entry.effective
            summaries.append(
                MemberSummary(
                    member=member,
                    version=entry.state.version,
                    age_ms=now_ms - entry.heard_ms,
                    channels=len(state.topology),
                    capacity_sat=sum(edge.capacity_sat for edge in state.topology),
                    outbound_msat=state.liquidity.outbound_msat,
                    inbound_msat=state.liquidity.inbound_msat,
                    onchain_sat=state.liquidity.onchain_sat,
                    clamped=bool(entry.clamps),
                    unconfirmed=bool(entry.unconfirmed),
                )
            )
            for edge in state.topology:
                target = edge.peer.hex()
                if target in self._entries or edge.capacity_sat == 0:
                    continue
                capacity[target] = capacity.get(target, 0) + edge.capacity_sat
                connected.setdefault(target, set()).add(member)
        targets = []
        for target in sorted(capacity):
            floor = 0 if self._graph is None else capacity[target]
            public = max(public_capacity.get(target) or 0, floor) or None
            share = capacity[target] / public if public else None
            targets.append(
                TargetView(
                    target=target,
                    fleet_capacity_sat=capacity[target],
                    members=tuple(sorted(connected[target])),
                    public_capacity_sat=public,
                    share=share,
                )
            )
        return FleetView(
            now_ms=now_ms,
            members=tuple(summaries),
            stale=tuple(sorted(stale)),
            targets=tuple(targets),
        )


__all__ = ["MemberEntry", "Outcome", "StateMap", "UpdateResult"]
