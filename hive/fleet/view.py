"""The fleet view: frozen, JSON-able results derived from the state map (see
:meth:`hive.fleet.statemap.StateMap.fleet_view`)."""

from __future__ import annotations

from typing import Any

import attrs

from hive.node.port import NodeId
from hive.protocol.gossip.state import MemberState


@attrs.frozen
class TargetView:
    """The fleet's position towards one external node (a peer of at least one fresh member)."""

    target: NodeId
    fleet_capacity_sat: int  # sum over fresh members' (clamped) edges to the target
    members: tuple[NodeId, ...]  # fresh members with an edge to it, sorted
    public_capacity_sat: int | None  # the target's total public capacity (at least the fleet's)
    share: float | None  # fleet_capacity / public capacity

    @property
    def member_count(self) -> int:
        return len(self.members)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "fleet_capacity_sat": self.fleet_capacity_sat,
            "members": list(self.members),
            "member_count": self.member_count,
            "public_capacity_sat": self.public_capacity_sat,
            "share": self.share,
        }


@attrs.frozen
class MemberSummary:
    """One fresh member's figures in the fleet view."""

    member: NodeId
    version: int
    age_ms: int  # since it was last heard from
    channels: int  # topology edges (after clamping)
    capacity_sat: int  # sum of its (clamped) edge capacities
    outbound_msat: int
    inbound_msat: int
    onchain_sat: int
    clamped: bool  # some of its claims are contradicted by the public graph (and were cut)
    unconfirmed: bool = False  # some of its claims our graph does not hold yet (cut, no blame)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class FleetView:
    """The fleet as a whole at ``now_ms``: fresh members' liquidity, per target capacity and
    share, coverage. Stale members are left out of every figure and listed in ``stale``."""

    now_ms: int
    members: tuple[MemberSummary, ...]  # fresh members, sorted by node id
    stale: tuple[NodeId, ...]  # sorted
    targets: tuple[TargetView, ...]  # sorted by target

    @property
    def coverage(self) -> int:
        """Distinct external nodes the fresh members reach with a channel."""
        return len(self.targets)

    @property
    def fleet_capacity_sat(self) -> int:
        """Capacity over all fresh members' edges to external nodes."""
        return sum(target.fleet_capacity_sat for target in self.targets)

    def target(self, node: NodeId) -> TargetView | None:
        """The view of one target, or None when no fresh member has a channel to it."""
        for view in self.targets:
            if view.target == node:
                return view
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "now_ms": self.now_ms,
            "coverage": self.coverage,
            "fleet_capacity_sat": self.fleet_capacity_sat,
            "members": [member.to_json() for member in self.members],
            "stale": list(self.stale),
            "targets": [target.to_json() for target in self.targets],
        }


def state_to_json(state: MemberState) -> dict[str, Any]:
    """A member's record as plain JSON (node ids as hex)."""
    return {
        "version": state.version,
        "topology": [
            {
                "peer": edge.peer.hex(),
                "capacity_sat": edge.capacity_sat,
                "local_share_ppm": edge.local_share_ppm,
            }
            for edge in state.topology
        ],
        "liquidity": {
            "outbound_msat": state.liquidity.outbound_msat,
            "inbound_msat": state.liquidity.inbound_msat,
            "onchain_sat": state.liquidity.onchain_sat,
        },
        "reputation": [
            {"peer": note.peer.hex(), "reason": note.reason, "count": note.count}
            for note in state.reputation
        ],
        "opportunities": [
            {"peer": opp.peer.hex(), "earned_msat": opp.earned_msat, "forwards": opp.forwards}
            for opp in state.opportunities
        ],
    }


__all__ = ["FleetView", "MemberSummary", "TargetView", "state_to_json"]
