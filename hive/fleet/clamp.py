"""Clamping members' capacity claims to what the public channel graph shows. Pure.

A member cannot claim more capacity to a peer than the public channels between the two hold
(the sum of their capacities; each channel counted once whichever direction lists it).
Unannounced channels therefore count for nothing in the fleet view: the fleet's share of a
target is a share of the target's public capacity. Every cut yields a :class:`ClampNote`, which
the state map's owner logs and may publish as a reputation note against the member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from hive.node.port import NodeId, PublicChannel
from hive.protocol.gossip.state import MemberState, PeerEdge, ReputationNote

CLAMP_REASON = "capacity-clamped"  # the ReputationNote reason of a clamp (<= 32 bytes)


def _pair(a: NodeId, b: NodeId) -> tuple[NodeId, NodeId]:
    return (a, b) if a <= b else (b, a)


@attrs.frozen
class PublicCapacity:
    """Public capacity (sat) between node pairs and per node, from the public channel list."""

    pairs: Mapping[tuple[NodeId, NodeId], int]  # (lower id, higher id) -> sat
    totals: Mapping[NodeId, int]  # node -> sat over all its public channels

    @classmethod
    def from_channels(cls, channels: Iterable[PublicChannel]) -> PublicCapacity:
        """Index ``channels`` (both directions of one channel are counted once, by scid)."""
        seen: set[str] = set()
        pairs: dict[tuple[NodeId, NodeId], int] = {}
        totals: dict[NodeId, int] = {}
        for channel in channels:
            if channel.short_channel_id in seen or channel.source == channel.destination:
                continue
            seen.add(channel.short_channel_id)
            sat = channel.capacity_msat // 1000
            key = _pair(channel.source, channel.destination)
            pairs[key] = pairs.get(key, 0) + sat
            for node in key:
                totals[node] = totals.get(node, 0) + sat
        return cls(pairs=MappingProxyType(pairs), totals=MappingProxyType(totals))

    def between(self, a: NodeId, b: NodeId) -> int:
        """Sum of the capacities (sat) of the public channels between ``a`` and ``b``."""
        return self.pairs.get(_pair(a, b), 0)

    def total(self, node: NodeId) -> int:
        """Sum of the capacities (sat) of ``node``'s public channels."""
        return self.totals.get(node, 0)


@attrs.frozen
class ClampNote:
    """A member claimed more capacity to ``peer`` than the public graph shows; it was cut."""

    member: NodeId
    peer: NodeId
    claimed_sat: int
    allowed_sat: int

    @property
    def reason(self) -> str:
        """Human-readable, with the figures."""
        return (
            f"member {self.member} claims {self.claimed_sat} sat to {self.peer}, public channels "
            f"hold {self.allowed_sat} sat: cut {self.claimed_sat - self.allowed_sat} sat"
        )

    def as_reputation(self, count: int = 1) -> ReputationNote:
        """The note against the member, to publish in our own state's reputation list."""
        return ReputationNote(peer=bytes.fromhex(self.member), reason=CLAMP_REASON, count=count)

    def to_json(self) -> dict[str, object]:
        return {
            "member": self.member,
            "peer": self.peer,
            "claimed_sat": self.claimed_sat,
            "allowed_sat": self.allowed_sat,
            "reason": self.reason,
        }


def clamp(
    member: NodeId,
    state: MemberState,
    public_channels: Sequence[PublicChannel] | PublicCapacity,
) -> tuple[MemberState, tuple[ClampNote, ...]]:
    """``state`` with every peer's claimed capacity cut to the public capacity between
    ``member`` and that peer, and one :class:`ClampNote` per peer cut.

    Within a peer's edges (in canonical order) capacity is kept first come, first served; an
    edge cut to nothing is dropped. A truthful state comes back unchanged (the same object) with
    no notes. ``public_channels`` may be the channel list or an index built once from it.
    """
    graph = (
        public_channels
        if isinstance(public_channels, PublicCapacity)
        else PublicCapacity.from_channels(public_channels)
    )
    notes: list[ClampNote] = []
    allowance: dict[bytes, int] = {}
    for peer, claimed in state.capacity_by_peer().items():
        allowed = graph.between(member, peer.hex())
        if claimed > allowed:
            notes.append(ClampNote(member, peer.hex(), claimed, allowed))
            allowance[peer] = allowed
    if not notes:
        return state, ()
    topology: list[PeerEdge] = []
    for edge in state.topology:
        if edge.peer not in allowance:
            topology.append(edge)
            continue
        kept = min(edge.capacity_sat, allowance[edge.peer])
        allowance[edge.peer] -= kept
        if kept > 0:
            topology.append(attrs.evolve(edge, capacity_sat=kept))
    return attrs.evolve(state, topology=tuple(topology)), tuple(notes)


__all__ = ["CLAMP_REASON", "ClampNote", "PublicCapacity", "clamp"]
