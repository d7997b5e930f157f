"""The proposal life cycle's transition table, and the routes per mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.config import Governance
from hive.governance.modes import (
    TRANSITIONS,
    Route,
    Step,
    TransitionRefused,
    is_expired,
    route,
    step,
)
from hive.governance.proposal import FINAL_STATES, ProposalState

S = ProposalState


@given(st.lists(st.sampled_from(list(Step)), max_size=30))
def test_any_sequence_follows_the_table_and_final_states_never_change(steps: list[Step]) -> None:
    state = S.PENDING
    approvals = 0
    for event in steps:
        try:
            new = step(state, event)
        except TransitionRefused:
            assert (state, event) not in TRANSITIONS
            continue
        assert state not in FINAL_STATES
        approvals += event is Step.APPROVE
        assert approvals <= 1  # approved at most once
        if event is Step.REJECT:
            # Rejected while waiting, or approved and not started yet (held by a limit): the
            # operator can still stop it. Never once it executes.
            assert state in (S.PENDING, S.APPROVED)
        state = new
    assert state in set(S)


def test_every_state_but_the_final_ones_can_leave_and_reach_an_end() -> None:
    for state in S:
        exits = {new for (old, _), new in TRANSITIONS.items() if old is state}
        assert bool(exits) == (state not in FINAL_STATES)


def test_executing_cannot_expire_or_be_rejected() -> None:
    for event in (Step.EXPIRE, Step.REJECT, Step.APPROVE):
        with pytest.raises(TransitionRefused, match="cannot"):
            step(S.EXECUTING, event)
    assert not is_expired(S.EXECUTING, 0, 10)
    assert is_expired(S.APPROVED, 5, 5)
    assert not is_expired(S.PENDING, 6, 5)


def test_routes() -> None:
    assert route(Governance.ADVISOR) is Route.WAIT
    assert route(Governance.AUTONOMOUS) is Route.TRY
    assert route(Governance.ORACLE) is Route.ASK
