"""Proposal life cycle as a transition table, and how each governance mode routes a proposal.

::

    PENDING --approve--> APPROVED --reserve--> EXECUTING --succeed--> SUCCEEDED
       |  \\                 |  \\                    \\--fail-----> FAILED
       |   \\--reserve-->    |   \\--reject--> REJECTED
       |      (autonomous:   \\--expire--> EXPIRED
       |       approve and reserve in one step)
       +--reject--> REJECTED
       +--expire--> EXPIRED

A proposal a hard limit (or the kill switch) stops stays where it is (PENDING in autonomous
mode, APPROVED otherwise) with ``held_by`` naming the limit, and is tried again when budget
frees up, until it expires. Anything not in :data:`TRANSITIONS` is refused: a decided proposal
cannot be decided again, a final one never changes.
"""

from __future__ import annotations

import enum

from hive.config import Governance
from hive.governance.proposal import ProposalState

S = ProposalState


class Step(enum.Enum):
    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    RESERVE = "reserve"
    SUCCEED = "succeed"
    FAIL = "fail"


TRANSITIONS: dict[tuple[ProposalState, Step], ProposalState] = {
    (S.PENDING, Step.APPROVE): S.APPROVED,
    (S.PENDING, Step.REJECT): S.REJECTED,
    (S.PENDING, Step.EXPIRE): S.EXPIRED,
    (S.PENDING, Step.RESERVE): S.EXECUTING,
    (S.APPROVED, Step.RESERVE): S.EXECUTING,
    (S.APPROVED, Step.REJECT): S.REJECTED,
    (S.APPROVED, Step.EXPIRE): S.EXPIRED,
    (S.EXECUTING, Step.SUCCEED): S.SUCCEEDED,
    (S.EXECUTING, Step.FAIL): S.FAILED,
}


class TransitionRefused(ValueError):
    def __init__(self, state: ProposalState, step: Step) -> None:
        super().__init__(f"a {state.value} proposal cannot {step.value}")
        self.state = state
        self.step = step


def step(state: ProposalState, event: Step) -> ProposalState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionRefused(state, event) from None


class Route(enum.Enum):
    WAIT = "wait"  # advisor: the operator decides
    TRY = "try"  # autonomous: execute now if every hard limit passes, else wait held
    ASK = "ask"  # oracle: send the decision packet to the deciders


def route(mode: Governance) -> Route:
    """What happens to a new proposal under ``mode`` (the kill switch never changes the route:
    decisions are still taken and recorded, only execution waits)."""
    return {
        Governance.ADVISOR: Route.WAIT,
        Governance.AUTONOMOUS: Route.TRY,
        Governance.ORACLE: Route.ASK,
    }[mode]


def is_expired(state: ProposalState, expires_ms: int, now_ms: int) -> bool:
    """Undecided (or approved but not started) proposals expire at ``expires_ms``."""
    return state in (S.PENDING, S.APPROVED) and now_ms >= expires_ms
