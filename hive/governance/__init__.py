"""Governance: the pure rules of the decision engine (no I/O, no trio, no clock reads).

Every action Hive takes on the node is a proposal that passes through one engine
(:class:`hive.actors.governance.engine.Engine`, the actor) before anything touches the node. This
package
holds what can be decided without I/O, so it can be tested exhaustively:

- :mod:`~hive.governance.proposal`: :class:`Draft` (what a producer submits), :class:`Proposal`
  (the recorded, frozen action), :class:`Cost`, :class:`Decision`, :class:`Outcome`,
  :class:`ProposalStatus` (a proposal and where it stands), :class:`ProposalState`;
- :mod:`~hive.governance.kinds`: :class:`KindSpec` and :class:`KindRegistry`, the built-in
  kinds (``open-channel``, ``rebalance``, ``set-fee``, ``ban-peer``, ``unban-peer``);
- :mod:`~hive.governance.events`: :class:`EngineEvent` and :class:`EventKind`, what subscribers
  receive;
- :mod:`~hive.governance.decider`: the :class:`Decider` protocol and :class:`Verdict` that the
  HTTP oracle and websocket agents implement;
- :mod:`~hive.governance.packet`: the versioned oracle decision packet and answer parsing;
- :mod:`~hive.governance.api`: the engine's public contract (:class:`EngineApi`,
  :class:`Executor`, :class:`Refused`, :class:`ExecutionFailed`).
"""

from hive.governance.api import EngineApi, ExecutionFailed, Executor, Refused
from hive.governance.decider import Decider, DeciderError, Verdict
from hive.governance.events import EngineEvent, EventKind
from hive.governance.kinds import (
    BAN_PEER,
    BUILTIN_KINDS,
    OPEN_CHANNEL,
    REBALANCE,
    SET_FEE,
    UNBAN_PEER,
    KindRegistry,
    KindSpec,
)
from hive.governance.proposal import (
    Cost,
    Decision,
    Draft,
    ExecutionResult,
    Outcome,
    Proposal,
    ProposalInvalid,
    ProposalState,
    ProposalStatus,
)

__all__ = [
    "BAN_PEER",
    "BUILTIN_KINDS",
    "OPEN_CHANNEL",
    "REBALANCE",
    "SET_FEE",
    "UNBAN_PEER",
    "Cost",
    "Decider",
    "DeciderError",
    "Decision",
    "Draft",
    "EngineApi",
    "EngineEvent",
    "EventKind",
    "ExecutionFailed",
    "ExecutionResult",
    "Executor",
    "KindRegistry",
    "KindSpec",
    "Outcome",
    "Proposal",
    "ProposalInvalid",
    "ProposalState",
    "ProposalStatus",
    "Refused",
    "Verdict",
]
