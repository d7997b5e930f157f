"""The fleet state map: every member's latest state record, when it was last heard, its claims
clamped to the public graph, and the fleet view derived from all of it. Pure: time comes in as
``now_ms``, nothing is read or sent here; the state-map actor owns one :class:`StateMap`.

Members are keyed by Lightning node id (hex ``str``). The map keeps each member's record as
the member signed it (deltas apply to that, and digests advertise its version) and, beside it,
the *effective* record: clamped to the public graph when one is known
(:meth:`StateMap.set_public_graph`), else the same record. Figures use the effective records.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from hive.fleet.clamp import ClampNote, PublicCapacity, clamp
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
    """The outcome of an update and the clamps of the stored record (empty unless APPLIED)."""

    outcome: Outcome
    clamps: tuple[ClampNote, ...] = ()

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED


@attrs.frozen
class MemberEntry:
    """What the map holds for one member."""

    member: NodeId
    state: MemberState  # as the member published it
    effective: MemberState  # clamped to the public graph (the same object when nothing was cut)
    clamps: tuple[ClampNote, ...]
    heard_ms: int  # last time anything of the member's was accepted
    updated_ms: int  # when the current version was stored


class StateMap:
    """Latest state per member, staleness, clamping and the fleet view."""

    def __init__(self, stale_after_ms: int) -> None:
        if type(stale_after_ms) is not int or stale_after_ms <= 0:
            raise ValueError(f"stale_after_ms must be a positive integer, got {stale_after_ms!r}")
        self.stale_after_ms = stale_after_ms
        self._entries: dict[NodeId, MemberEntry] = {}
        self._graph: PublicCapacity | None = None

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
        return self._entries.pop(member, None) is not None

    def set_public_graph(self, graph: PublicCapacity | None) -> list[ClampNote]:
        """Use ``graph`` for clamping (None: no graph known, claims are taken as they are) and
        re-clamp every record; return the clamps that are new or changed by it."""
        self._graph = graph
        changed: list[ClampNote] = []
        for member, entry in list(self._entries.items()):
            effective, clamps = self._clamp(member, entry.state)
            if clamps != entry.clamps:
                changed.extend(note for note in clamps if note not in entry.clamps)
            self._entries[member] = attrs.evolve(entry, effective=effective, clamps=clamps)
        return changed

    def _clamp(
        self, member: NodeId, state: MemberState
    ) -> tuple[MemberState, tuple[ClampNote, ...]]:
        if self._graph is None:
            return state, ()
        return clamp(member, state, self._graph)

    def _store(self, member: NodeId, state: MemberState, now_ms: int) -> UpdateResult:
        effective, clamps = self._clamp(member, state)
        previous = self._entries.get(member)
        heard = now_ms if previous is None else max(now_ms, previous.heard_ms)
        self._entries[member] = MemberEntry(
            member=member,
            state=state,
            effective=effective,
            clamps=clamps,
            heard_ms=heard,
            updated_ms=now_ms,
        )
        return UpdateResult(Outcome.APPLIED, clamps)

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
        }

    def fleet_view(self, now_ms: int, public_capacity: Mapping[NodeId, int]) -> FleetView:
        """The fleet view at ``now_ms`` from fresh members' effective records.

        ``public_capacity``: target -> its total public capacity (sat), e.g.
        ``PublicCapacity.totals``; a target missing from it has no share (None). Peers that are
        members themselves (fresh or stale) are not targets.
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
            public = public_capacity.get(target)
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
