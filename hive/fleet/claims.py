"""Judging a member's claims against our view of the public graph, which lags. Pure.

A member publishes a channel as soon as it is usable; the channel is announced later (Lightning
announces at 6 confirmations) and reaches our node's graph later still, and a member that just
started or reconnected may be missing much of the graph. So a claim above what our graph holds
is first only **unconfirmed**: figures count what the graph confirms (the claim is cut in the
effective record), but nobody is accused. It becomes **contradicted** (a :class:`ClampNote`,
logged, counted and published as a reputation note) only when

* it has stayed above the graph for ``grace_ms`` since we first saw it (kept per member and
  peer across the member's versions, so a new version does not restart the clock), and
* the member's public channels were fetched again after the record arrived (we judge the
  freshest graph we can have, never the one the record happened to arrive to);

or when the same claim was contradicted already (it stays so while it stands). Liquidity is
different: a member's outbound and inbound can never exceed the capacity of the public channels
it claims itself, nor its on-chain funds all bitcoin, so such a claim contradicts the record
itself and is a :class:`LiquidityNote` at once. Effective liquidity is also cut to the
capacity the graph confirms (without a note while that capacity is only unconfirmed).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from hive.fleet.clamp import CLAMP_REASON, ClampNote, PublicCapacity, clamp
from hive.node.port import NodeId
from hive.protocol.gossip.state import Liquidity, MemberState

LIQUIDITY_REASON = "liquidity-clamped"  # the ReputationNote reason of a liquidity clamp
MAX_ONCHAIN_SAT = 21_000_000 * 100_000_000  # every bitcoin there will ever be
DEFAULT_GRACE_MS = 7_200_000  # two hours: 6 blocks to the announcement, then propagation


@attrs.frozen
class LiquidityNote:
    """A member claimed liquidity its own record (or all bitcoin) cannot hold; it was cut."""

    member: NodeId
    field: str  # "outbound+inbound_msat" or "onchain_sat"
    claimed: int
    allowed: int

    @property
    def reputation_reason(self) -> str:
        return LIQUIDITY_REASON

    @property
    def key(self) -> tuple[NodeId, str, int]:
        return (self.member, self.field, self.claimed)

    @property
    def reason(self) -> str:
        return (
            f"member {self.member} claims {self.field} {self.claimed}, at most {self.allowed} "
            f"is possible: cut {self.claimed - self.allowed}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "member": self.member,
            "field": self.field,
            "claimed": self.claimed,
            "allowed": self.allowed,
            "reason": self.reason,
        }


Note = ClampNote | LiquidityNote
"""A contradicted claim: what the state map's owner logs, counts and publishes."""


def note_key(note: Note) -> tuple[NodeId, str, int]:
    """What makes two notes the same accusation (figures of the graph may move under it)."""
    if isinstance(note, LiquidityNote):
        return note.key
    return (note.member, note.peer, note.claimed_sat)


def reputation_reason(note: Note) -> str:
    return note.reputation_reason if isinstance(note, LiquidityNote) else CLAMP_REASON


@attrs.frozen
class Unconfirmed:
    """A claim our graph does not hold (yet): cut in the figures, not held against anyone."""

    member: NodeId
    peer: NodeId
    claimed_sat: int
    confirmed_sat: int
    since_ms: int  # when we first saw a claim to this peer above the graph

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)


@attrs.frozen
class Judgement:
    effective: MemberState
    contradicted: tuple[Note, ...]
    unconfirmed: tuple[Unconfirmed, ...]
    since: Mapping[NodeId, int]  # peer -> first seen above the graph (what to keep)


def judge(
    member: NodeId,
    state: MemberState,
    graph: PublicCapacity,
    *,
    now_ms: int,
    grace_ms: int,
    since: Mapping[NodeId, int],
    refreshed: bool,
    standing: tuple[Note, ...],
) -> Judgement:
    """Judge ``state`` (see the module docstring).

    ``since``: peer -> when a claim to it was first seen above the graph; ``refreshed``: the
    member's public channels were fetched after this record arrived; ``standing``: the notes the
    member's previous judgement left standing.
    """
    cut, notes = clamp(member, state, graph)
    standing_keys = {note_key(note) for note in standing}
    kept_since: dict[NodeId, int] = {}
    contradicted: list[Note] = []
    unconfirmed: list[Unconfirmed] = []
    for note in notes:
        first = since.get(note.peer, now_ms)
        kept_since[note.peer] = first
        due = refreshed and now_ms - first >= grace_ms
        if due or note_key(note) in standing_keys:
            contradicted.append(note)
        else:
            unconfirmed.append(
                Unconfirmed(member, note.peer, note.claimed_sat, note.allowed_sat, first)
            )
    liquidity, liquidity_notes = _liquidity(member, state, cut)
    contradicted.extend(liquidity_notes)
    if liquidity != cut.liquidity:
        cut = attrs.evolve(cut, liquidity=liquidity)
    return Judgement(
        effective=state if cut == state else cut,
        contradicted=tuple(contradicted),
        unconfirmed=tuple(unconfirmed),
        since=kept_since,
    )


def _liquidity(
    member: NodeId, state: MemberState, cut: MemberState
) -> tuple[Liquidity, list[LiquidityNote]]:
    """Liquidity cut to the confirmed capacity, and the notes of what the record contradicts."""
    notes: list[LiquidityNote] = []
    claimed = state.liquidity
    channels_msat = sum(edge.capacity_sat for edge in state.topology) * 1000
    both = claimed.outbound_msat + claimed.inbound_msat
    if both > channels_msat:
        notes.append(LiquidityNote(member, "outbound+inbound_msat", both, channels_msat))
    if claimed.onchain_sat > MAX_ONCHAIN_SAT:
        notes.append(LiquidityNote(member, "onchain_sat", claimed.onchain_sat, MAX_ONCHAIN_SAT))
    confirmed_msat = sum(edge.capacity_sat for edge in cut.topology) * 1000
    outbound, inbound = claimed.outbound_msat, claimed.inbound_msat
    if both > confirmed_msat:
        outbound = outbound * confirmed_msat // both
        inbound = confirmed_msat - outbound if inbound else 0
        inbound = min(inbound, claimed.inbound_msat)
    liquidity = Liquidity(
        outbound_msat=outbound,
        inbound_msat=inbound,
        onchain_sat=min(claimed.onchain_sat, MAX_ONCHAIN_SAT),
    )
    return (claimed if liquidity == claimed else liquidity), notes


__all__ = [
    "DEFAULT_GRACE_MS",
    "LIQUIDITY_REASON",
    "MAX_ONCHAIN_SAT",
    "Judgement",
    "LiquidityNote",
    "Note",
    "Unconfirmed",
    "judge",
    "note_key",
    "reputation_reason",
]
