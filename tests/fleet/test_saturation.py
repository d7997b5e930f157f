"""Saturation with hysteresis: examples, reasons, and a state machine against a model."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hive.fleet.saturation import Action, SaturationPolicy, SaturationTracker
from hive.fleet.view import FleetView, TargetView

from .helpers import node

PUBLIC = 1_000_000
TARGETS = [node(30 + i) for i in range(5)]


def view(shares: dict[str, float | None]) -> FleetView:
    """A fleet view with the given shares (None: public capacity unknown)."""
    targets = tuple(
        TargetView(
            target=target,
            fleet_capacity_sat=round((share or 0.5) * PUBLIC),
            members=(node(1),),
            public_capacity_sat=None if share is None else PUBLIC,
            share=share,
        )
        for target, share in sorted(shares.items())
    )
    return FleetView(now_ms=0, members=(), stale=(), targets=targets)


@pytest.mark.parametrize(
    ("cap", "release"), [(0.25, 0.25), (0.2, 0.25), (0.0, 0.0), (1.5, 0.5), (True, 0.5)]
)
def test_policy_needs_release_below_cap_in_range(cap: float, release: float) -> None:
    with pytest.raises(ValueError, match=r"release|cap"):
        SaturationPolicy(cap=cap, release=release)


def test_ignore_then_hold_then_release_with_reasons() -> None:
    t = TARGETS[0]
    tracker = SaturationTracker(SaturationPolicy(cap=0.25, release=0.20))
    result = tracker.evaluate(view({t: 0.34}), connected=())
    assert result.ignored == {t}
    (change,) = result.changes
    assert change.action is Action.IGNORE
    assert change.reason == "fleet share 34% (340000 of 1000000 sat) > cap 25%"
    # Between release and cap: nothing moves either way.
    for share in (0.25, 0.22, 0.20, 0.2499):
        assert tracker.evaluate(view({t: share}), connected=()).changes == ()
    assert tracker.ignored == {t}
    result = tracker.evaluate(view({t: 0.18}), connected=())
    (change,) = result.changes
    assert change.action is Action.RELEASE
    assert change.reason == "fleet share 18% (180000 of 1000000 sat) < release 20%"
    assert result.ignored == frozenset()
    assert tracker.evaluate(view({t: 0.24}), connected=()).changes == ()  # not above cap


def test_close_figures_are_shown_apart() -> None:
    t = TARGETS[0]
    tracker = SaturationTracker(SaturationPolicy(cap=0.25, release=0.2))
    (change,) = tracker.evaluate(view({t: 0.2500001}), connected=()).changes
    assert change.reason == "fleet share 25.00001% (250000 of 1000000 sat) > cap 25.00000%"


def test_members_connected_to_a_target_keep_it() -> None:
    t = TARGETS[0]
    tracker = SaturationTracker(SaturationPolicy(cap=0.25, release=0.2))
    assert tracker.evaluate(view({t: 0.9}), connected={t}).ignored == frozenset()
    assert tracker.evaluate(view({t: 0.9}), connected=()).ignored == {t}  # the channel closed
    (change,) = tracker.evaluate(view({t: 0.9}), connected={t}).changes
    assert change.action is Action.RELEASE
    assert change.reason == "we are connected to it (fleet share 90%)"


def test_a_target_the_fleet_left_is_released_and_unknown_shares_hold() -> None:
    t, u = TARGETS[0], TARGETS[1]
    tracker = SaturationTracker(SaturationPolicy(cap=0.25, release=0.2), ignored={t, u})
    result = tracker.evaluate(view({u: None}), connected=())
    assert result.ignored == {u}
    (change,) = result.changes
    assert (change.action, change.target, change.share) == (Action.RELEASE, t, 0.0)
    assert "no fresh member has a channel to it" in change.reason
    assert tracker.evaluate(view({u: None}), connected=()).changes == ()
    assert change.to_json()["action"] == "release"


SHARES = st.one_of(
    st.none(),
    st.sampled_from([0.0, 0.19, 0.2, 0.21, 0.25, 0.26, 1.0]),
    st.floats(0, 1.2, allow_nan=False),
)


class SaturationMachine(RuleBasedStateMachine):
    """The tracker against a model of the rules, with shares moving around both thresholds."""

    @initialize(
        policy=st.tuples(st.floats(0.05, 1.0), st.floats(0.01, 0.99))
        .map(lambda p: (max(p), min(p)))
        .filter(lambda p: p[1] < p[0])
    )
    def setup(self, policy: tuple[float, float]) -> None:
        self.policy = SaturationPolicy(cap=policy[0], release=policy[1])
        self.tracker = SaturationTracker(self.policy)
        self.shares: dict[str, float | None] = {}
        self.connected: set[str] = set()
        self.expected: frozenset[str] = frozenset()

    @rule(node_id=st.sampled_from(TARGETS), share=SHARES)
    def set_share(self, node_id: str, share: float | None) -> None:
        self.shares[node_id] = share

    @rule(node_id=st.sampled_from(TARGETS))
    def fleet_leaves(self, node_id: str) -> None:
        self.shares.pop(node_id, None)

    @rule(node_id=st.sampled_from(TARGETS), on=st.booleans())
    def connect(self, node_id: str, on: bool) -> None:
        if on:
            self.connected.add(node_id)
        else:
            self.connected.discard(node_id)

    @rule()
    def evaluate(self) -> None:
        before = self.tracker.ignored
        assert before == self.expected
        cap, release = self.policy.cap, self.policy.release
        expected: set[str] = set()
        for target in TARGETS:
            share = self.shares.get(target, 0.0)
            if target in before:
                released = target in self.connected or (share is not None and share < release)
                if not released:
                    expected.add(target)
            elif target not in self.connected and share is not None and share > cap:
                expected.add(target)
        result = self.tracker.evaluate(view(self.shares), frozenset(self.connected))
        assert result.ignored == expected
        assert not result.ignored & self.connected  # never a target we are connected to
        assert {c.target for c in result.changes} == set(before ^ result.ignored)
        for change in result.changes:
            if change.action is Action.IGNORE:
                assert change.target not in before
                assert change.share is not None
                assert change.share > cap
                assert "> cap" in change.reason
            else:
                assert change.target in before
                assert "< release" in change.reason or "connected" in change.reason
            assert "%" in change.reason or "connected" in change.reason
        self.expected = result.ignored

    @invariant()
    def no_flapping_in_the_band(self) -> None:
        # A target whose share sits in [release, cap] is never changed by an evaluation, so
        # re-evaluating the same inputs changes nothing at all (idempotence).
        if not hasattr(self, "tracker"):
            return
        probe = SaturationTracker(self.policy, ignored=self.tracker.ignored)
        first = probe.evaluate(view(self.shares), frozenset(self.connected))
        assert probe.evaluate(view(self.shares), frozenset(self.connected)).changes == ()
        for change in first.changes:
            share = change.share
            assert (
                share is None
                or not self.policy.release <= share <= self.policy.cap
                or (change.target in self.connected)
            )


TestSaturationMachine = SaturationMachine.TestCase
TestSaturationMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
