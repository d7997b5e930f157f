"""Saturation with hysteresis: which targets this member stops considering for new channels.
Pure state machine; the caller applies the changes (local ignore list, and
``clboss-unmanage TARGET open`` where CLBOSS runs) and logs their reasons.

Rules, evaluated against a fleet view and the peers we are connected to:

* a target we do not ignore becomes ignored when the fleet's share of it is above ``cap`` and
  we are NOT connected to it (members already connected keep managing their channel);
* an ignored target is released when its share falls below ``release`` (a target no fresh
  member reaches any more has share 0), or as soon as we are connected to it (so an ignored
  target is never one of ours);
* between ``release`` and ``cap`` nothing changes (hysteresis: no flapping around one
  threshold), and an ignored target whose share is unknown (no public capacity figure) stays.

Every change carries a reason with the figures, e.g. ``fleet share 34% (3400000 of 10000000
sat) > cap 25%``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable

import attrs

from hive.fleet.view import FleetView, TargetView
from hive.node.port import NodeId


def _fraction(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if type(value) not in (int, float) or not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be a fraction in (0, 1], got {value!r}")


@attrs.frozen
class SaturationPolicy:
    """Ignore a target above ``cap`` fleet share, release it below ``release`` (< cap)."""

    cap: float = attrs.field(validator=_fraction)
    release: float = attrs.field(validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if not self.release < self.cap:
            raise ValueError(f"release {self.release} must be below cap {self.cap}")


class Action(enum.Enum):
    IGNORE = "ignore"
    RELEASE = "release"


@attrs.frozen
class SaturationChange:
    """One target newly ignored or released, and why."""

    action: Action
    target: NodeId
    share: float | None  # the fleet share at the evaluation (None: unknown)
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "target": self.target,
            "share": self.share,
            "reason": self.reason,
        }


@attrs.frozen
class SaturationResult:
    ignored: frozenset[NodeId]  # every target ignored after this evaluation
    changes: tuple[SaturationChange, ...]  # since the previous evaluation, sorted by target


def _percents(share: float, threshold: float) -> tuple[str, str]:
    """Both as percentages, with as many decimals as it takes to tell them apart."""
    for decimals in range(7):
        a, b = f"{share * 100:.{decimals}f}%", f"{threshold * 100:.{decimals}f}%"
        if a != b:
            return a, b
    return f"{share * 100}%", f"{threshold * 100}%"


def _figures(view: TargetView | None) -> str:
    if view is None:
        return "no fresh member has a channel to it"
    return f"{view.fleet_capacity_sat} of {view.public_capacity_sat} sat"


class SaturationTracker:
    """Holds the set of ignored targets between evaluations."""

    def __init__(self, policy: SaturationPolicy, ignored: Iterable[NodeId] = ()) -> None:
        self.policy = policy
        self._ignored: set[NodeId] = set(ignored)

    @property
    def ignored(self) -> frozenset[NodeId]:
        return frozenset(self._ignored)

    def evaluate(self, view: FleetView, connected: Collection[NodeId]) -> SaturationResult:
        """Update the ignored set from ``view`` and the peers we are ``connected`` to."""
        cap, release = self.policy.cap, self.policy.release
        targets = {target.target: target for target in view.targets}
        changes: list[SaturationChange] = []
        for node in sorted(set(targets) | self._ignored):
            target = targets.get(node)
            share = 0.0 if target is None else target.share
            if node in self._ignored:
                if node in connected:
                    reason = "we are connected to it"
                    if share is not None:
                        reason += f" (fleet share {_percents(share, cap)[0]})"
                    changes.append(SaturationChange(Action.RELEASE, node, share, reason))
                elif share is not None and share < release:
                    shown, limit = _percents(share, release)
                    reason = f"fleet share {shown} ({_figures(target)}) < release {limit}"
                    changes.append(SaturationChange(Action.RELEASE, node, share, reason))
            elif node not in connected and share is not None and share > cap:
                shown, limit = _percents(share, cap)
                reason = f"fleet share {shown} ({_figures(target)}) > cap {limit}"
                changes.append(SaturationChange(Action.IGNORE, node, share, reason))
        for change in changes:
            if change.action is Action.IGNORE:
                self._ignored.add(change.target)
            else:
                self._ignored.discard(change.target)
        return SaturationResult(ignored=self.ignored, changes=tuple(changes))


__all__ = [
    "Action",
    "SaturationChange",
    "SaturationPolicy",
    "SaturationResult",
    "SaturationTracker",
]
