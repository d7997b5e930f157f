"""The decider interface: who answers APPROVE or DENY in ``oracle`` mode.

A decider receives a *decision packet* (:func:`hive.governance.packet.build_packet`, a JSON
object documented in ``docs/ORACLE.md`` and ``docs/oracle-packet.schema.json``) and returns a
:class:`Verdict`. Two implementations plug in:

* the HTTP oracle (:class:`hive.actors.governance.oracle.HttpOracle`): POSTs the packet to
  ``hive-oracle-url`` and parses the answer with :func:`hive.governance.packet.parse_answer`;
* websocket agents (the observers concern): each connected agent is one :class:`Decider` that
  sends the packet over its socket and waits for the answer; an agent registry adds each agent
  to the engine's :class:`~hive.actors.governance.deciders.DeciderPanel` when it connects and
  removes it
  when it leaves (``async with panel.attached(agent): ...``).

Contract for an implementation:

* ``name`` is stable and unique among connected deciders (``oracle:<url>``, ``agent:<name>``);
  it is recorded as who decided;
* ``decide`` returns a :class:`Verdict`, or raises :class:`DeciderError` (a malformed, oversized
  or mismatched answer, a transport failure) with a short reason code; it may take as long as it
  likes: the panel cancels it at the deadline (``hive-oracle-timeout``), which counts as DENY;
* ``decide`` must not raise anything else for a bad answer: the panel treats any
  :class:`DeciderError` as that decider's DENY and counts it by reason.

How several deciders combine (:class:`~hive.actors.governance.deciders.DeciderPanel`): every
attached
decider is asked at once; the proposal is approved when at least one APPROVE came back and no
DENY did, by the deadline or when all have answered. No answer at all is DENY (fail closed).
An APPROVE is still bound by the hard limits at execution time.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

JsonDict = dict[str, Any]


@attrs.frozen
class Verdict:
    approve: bool
    reason: str


class DeciderError(Exception):
    """A decider could not give a valid answer; ``reason`` is a short stable code
    (``malformed``, ``oversized``, ``wrong-proposal``, ``http-500``, ``unreachable`` ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class Decider(Protocol):
    @property
    def name(self) -> str: ...

    async def decide(self, packet: JsonDict) -> Verdict: ...
