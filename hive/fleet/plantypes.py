"""The planner's inputs and results as plain frozen attrs classes (no numpy), so that modules
that only pass plans around (the planner actor, commands) load without the numeric stack;
the algorithm is :mod:`hive.fleet.planner`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hive.node.port import NodeId

PPM = 1_000_000


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) not in (int, float) or value < 0:
        raise ValueError(f"planner {attribute.name} must be a non-negative number, got {value!r}")


@attrs.frozen
class PlannerConfig:
    """Tunables of the objective and of what a member may open (defaults in docs/PLANNER.md)."""

    amount_msat: int = attrs.field(default=50_000_000, validator=_positive)
    hop_cost_msat: int = attrs.field(default=20_000, validator=_positive)
    fleet_fee_ppm: int | None = None  # what members charge to leave the fleet; None: the median
    sources: int = attrs.field(default=48, validator=_positive)
    quantiles: int = attrs.field(default=8, validator=_positive)
    candidates: int = attrs.field(default=240, validator=_positive)
    entry_candidates: int = attrs.field(default=40, validator=_positive)
    reach_fee_msat: int = attrs.field(default=150_000, validator=_positive)
    min_channel_sat: int = attrs.field(default=1_000_000, validator=_positive)
    max_channel_sat: int = attrs.field(default=5_000_000, validator=_positive)
    reserve_sat: int = attrs.field(default=100_000, validator=_positive)
    open_fee_sat: int = attrs.field(default=2_500, validator=_positive)
    max_opens_per_member: int = attrs.field(default=2, validator=_positive)
    min_target_channels: int = attrs.field(default=4, validator=_positive)
    min_target_capacity_sat: int = attrs.field(default=5_000_000, validator=_positive)
    max_disabled_ratio: float = attrs.field(default=0.5, validator=_positive)
    min_age_blocks: int = attrs.field(default=4_320, validator=_positive)
    robustness: float = attrs.field(default=0.5, validator=_positive)
    cost_ppm_per_ksat: float = attrs.field(default=1.0, validator=_positive)
    min_score_ppm: float = attrs.field(default=5.0, validator=_positive)
    # A leech member's channels (standing "leech", hive/fleet/reputation.py) count as if every
    # path through it cost this much more (two hops' worth by default), so what only a leech
    # reaches counts as less covered and other members are preferred for new opens.
    leech_penalty_msat: int = attrs.field(default=40_000, validator=_positive)
    # Demand weight bonus of a peer that a member's revealed strategy report, verified here,
    # found earning well (0.5: half as much again). Off by default: not measured yet.
    strategy_bonus: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


@attrs.frozen
class PlanMember:
    """One member as the plan sees it: its channel peers, spare funds, its own live intents."""

    node_id: NodeId
    peers: frozenset[NodeId] = frozenset()
    onchain_sat: int = 0
    pending: frozenset[NodeId] = frozenset()  # targets it holds a live intent for
    # Extra cost on every path entering or leaving the fleet at this member (a leech's
    # channels weigh less; 0 for every other member, "new" ones included).
    penalty_msat: int = 0


@attrs.frozen
class Alternative:
    member: NodeId
    target: NodeId
    score_ppm: float

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "target": self.target, "score_ppm": round(self.score_ppm, 2)}


@attrs.frozen
class PlannedOpen:
    """One suggested open and why."""

    member: NodeId
    target: NodeId
    amount_sat: int
    score_ppm: float
    routed_gain_ppm: float  # marginal routed demand
    reach_gain_ppm: float  # marginal reach
    why: str
    next_targets: tuple[Alternative, ...]  # the member's next best targets
    other_members: tuple[Alternative, ...]  # the same target by other members

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "target": self.target,
            "amount_sat": self.amount_sat,
            "score_ppm": round(self.score_ppm, 2),
            "routed_gain_ppm": round(self.routed_gain_ppm, 2),
            "reach_gain_ppm": round(self.reach_gain_ppm, 2),
            "why": self.why,
            "next_targets": [alt.to_json() for alt in self.next_targets],
            "other_members": [alt.to_json() for alt in self.other_members],
        }


@attrs.frozen
class Plan:
    """The assignment and its figures (ppm of the network's capacity-weighted demand)."""

    opens: tuple[PlannedOpen, ...]
    routed_before_ppm: float
    routed_after_ppm: float
    reach_before_ppm: float
    reach_after_ppm: float
    importance_ppm: Mapping[NodeId, float]  # routed demand lost if the member is down
    kept_without_top: float  # share of routed demand kept when the most important one is down
    left_out: Mapping[str, tuple[int, tuple[tuple[NodeId, str], ...]]]

    def for_member(self, member: NodeId) -> tuple[PlannedOpen, ...]:
        return tuple(o for o in self.opens if o.member == member)

    def why_nothing(self) -> str | None:
        """Why the plan has no opens, in one line (None when it has some)."""
        if self.opens:
            return None
        if "no-funds" in self.left_out:
            head = "no member has the on-chain funds for an open"
        elif "no-gain" in self.left_out:
            head = (
                "no open would make the fleet's route to a destination cheaper than what "
                "typical payers pay today"
            )
        else:
            head = "no target qualifies"
        counts = ", ".join(f"{r} {count}" for r, (count, _) in sorted(self.left_out.items()))
        return f"{head} (left out: {counts})" if counts else head

    def to_json(self, member: NodeId | None = None) -> dict[str, Any]:
        opens = self.opens if member is None else self.for_member(member)
        return {
            "opens": [o.to_json() for o in opens],
            "routed_demand_ppm": {
                "before": round(self.routed_before_ppm, 2),
                "after": round(self.routed_after_ppm, 2),
            },
            "reach_ppm": {
                "before": round(self.reach_before_ppm, 2),
                "after": round(self.reach_after_ppm, 2),
            },
            "importance_ppm": {m: round(v, 2) for m, v in sorted(self.importance_ppm.items())},
            "kept_without_most_important": round(self.kept_without_top, 4),
            "why_nothing": self.why_nothing(),
            "left_out": {
                reason: {
                    "count": count,
                    "examples": [{"target": t, "detail": d} for t, d in examples],
                }
                for reason, (count, examples) in sorted(self.left_out.items())
            },
        }


__all__ = ["Alternative", "Plan", "PlanMember", "PlannedOpen", "PlannerConfig"]
