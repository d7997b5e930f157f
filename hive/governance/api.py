"""The engine's public contract: what producers, executors, the live view and agents call.

Implemented by :class:`hive.actors.governance.engine.Engine` (one per companion, reachable as
``runtime.engine``). Nothing executes around it: a producer never calls the node port for an
action itself, it submits a proposal and lets the engine decide, reserve budget, call the kind's
executor and record the outcome.

Producer (planner, rebalancer, ban logic)::

    engine.register_kind(OPEN_CHANNEL, my_executor, replace=True)   # optional: own executor
    status = await engine.submit(Draft(kind="open-channel", params={...}, reason=...,
                                       cost=Cost(capital_sat=..., onchain_fee_sat=...),
                                       proposer="planner", evidence={...}, target=peer))
    final = await engine.wait_final(status.id)     # SUCCEEDED / FAILED / REJECTED / EXPIRED
    # or follow every proposal:
    async with engine.subscribe(capacity=64) as events:
        async for event in events: ...             # EngineEvent(kind, at_ms, status, detail)

Deciding (operator commands, the browser's Approve/Reject buttons, tests)::

    await engine.approve(pid, by="operator:web", reason="looks right")
    await engine.reject(pid, by="operator", reason="not this peer")

Oracle agents (websocket)::

    async with engine.deciders.attached(agent):    # agent implements governance.decider.Decider
        ...                                        # while attached, it is asked in oracle mode

Failures a caller should read are :class:`Refused` with a stable ``code``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from hive.governance.events import EngineEvent
from hive.governance.kinds import KindSpec
from hive.governance.proposal import Cost, Draft, ExecutionResult, Proposal, ProposalStatus

if TYPE_CHECKING:
    import trio

    from hive.actors.governance.deciders import DeciderPanel


class Refused(Exception):
    """The engine refused a request; nothing changed. ``code`` is one of:

    ``unknown-kind``, ``invalid`` (a draft's shape or parameters), ``unknown-id``,
    ``not-pending`` (already decided, executing or final), ``expired``, ``no-executor``,
    ``not-running`` (the engine is not serving yet).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ExecutionFailed(Exception):
    """Raised by an executor when the action failed; ``cost`` is what it still cost (e.g. an
    on-chain fee of a transaction that was broadcast and then failed)."""

    def __init__(
        self, message: str, *, cost: Cost | None = None, calls: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.cost = cost if cost is not None else Cost()
        self.calls = tuple(calls)


class Executor(Protocol):
    """Performs one kind's approved proposals through the node port.

    ``execute`` returns the real cost and the node calls made, or raises
    :class:`ExecutionFailed` / :class:`hive.errors.NodeError` (the action failed: the
    reservation is released, minus ``ExecutionFailed.cost``). A
    :class:`hive.errors.TransientError` means "not known whether it happened": the reservation
    stays and ``reconcile`` decides later.

    ``reconcile`` answers, from the node's own records, whether a proposal whose execution was
    interrupted (a crash, a timeout) took effect: an :class:`ExecutionResult` (it did; its cost),
    or None (it did not). When the node's records cannot tell, it must answer conservatively
    (as if it happened, at the reserved cost), so budget is never under-counted.
    """

    async def execute(self, proposal: Proposal) -> ExecutionResult: ...

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None: ...


class EngineApi(Protocol):
    @property
    def deciders(self) -> DeciderPanel: ...

    @property
    def paused(self) -> bool: ...

    def register_kind(self, spec: KindSpec, executor: Executor, *, replace: bool = False) -> None:
        """Make a kind available (before or while the engine runs)."""
        ...

    async def submit(self, draft: Draft) -> ProposalStatus:
        """Record a proposal and route it by the governance mode. Raises Refused."""
        ...

    async def approve(
        self, proposal_id: str, *, by: str = "operator", reason: str = ""
    ) -> ProposalStatus:
        """Approve a pending proposal (it executes when limits and the kill switch allow)."""
        ...

    async def approve_all(
        self, *, by: str = "operator", reason: str = ""
    ) -> list[ProposalStatus]: ...

    async def reject(
        self, proposal_id: str, *, by: str = "operator", reason: str = ""
    ) -> ProposalStatus: ...

    async def record_measurement(
        self, proposal_id: str, measured: dict[str, object], *, by: str
    ) -> None:
        """Append a later measured result of an action (fees earned, liquidity moved) to the
        ledger, for ``hive-why``."""
        ...

    async def pause(self, reason: str, *, by: str = "operator") -> None: ...

    async def resume(self, *, by: str = "operator") -> None: ...

    def pending(self) -> list[ProposalStatus]:
        """Proposals not yet final (pending, approved, executing), oldest first."""
        ...

    def recent(self) -> list[ProposalStatus]:
        """Proposals that became final in this run, most recent last (bounded)."""
        ...

    def get(self, proposal_id: str) -> ProposalStatus | None:
        """A proposal of this run or a recent one (final ones are kept a while), or None."""
        ...

    async def wait_final(self, proposal_id: str) -> ProposalStatus:
        """Wait until the proposal is final; raises Refused(unknown-id)."""
        ...

    def subscribe(
        self, capacity: int = 64
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[EngineEvent]]:
        """A bounded channel of every event from now on; overflow is dropped and counted."""
        ...
