"""The decider panel: asks every attached decider and combines their answers, fail closed.

Deciders (:class:`hive.governance.decider.Decider`) come and go: the HTTP oracle is attached for
the engine's whole life when ``hive-oracle-url`` is set; websocket agents attach while they are
connected. :meth:`DeciderPanel.ask` asks all of them at once and returns one
:class:`~hive.governance.proposal.Decision`:

* any DENY (or a :class:`~hive.governance.decider.DeciderError`, counted by reason) -> DENY,
  recorded as that decider's;
* otherwise at least one APPROVE by the deadline -> APPROVE (recorded as the first approver's);
* nobody answered by the deadline, or nobody is attached -> DENY by ``timeout``.

The panel returns as soon as every decider has answered or any has denied; it never waits past
the deadline. It does no I/O itself.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from hive.governance.decider import Decider, DeciderError, Verdict
from hive.governance.proposal import Decision

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class DeciderPanel:
    def __init__(self, *, now_ms: Callable[[], int]) -> None:
        self._deciders: dict[str, Decider] = {}
        self._now_ms = now_ms
        self.asked = 0
        self.approved = 0
        self.denied = 0
        self.timeouts = 0
        # Refused answers by decider and reason ("oracle:http://...": {"malformed": 2}).
        self.refused: collections.Counter[str] = collections.Counter()

    @property
    def names(self) -> list[str]:
        return sorted(self._deciders)

    def add(self, decider: Decider) -> None:
        if decider.name in self._deciders:
            raise ValueError(f"a decider named {decider.name!r} is already attached")
        self._deciders[decider.name] = decider
        log.info("decider %s attached", decider.name)

    def remove(self, name: str) -> None:
        if self._deciders.pop(name, None) is not None:
            log.info("decider %s detached", name)

    @asynccontextmanager
    async def attached(self, decider: Decider) -> AsyncIterator[None]:
        """Attach ``decider`` for the duration of the block (a websocket agent's connection)."""
        self.add(decider)
        try:
            yield
        finally:
            self.remove(decider.name)

    async def ask(self, packet: JsonDict, timeout_s: float) -> Decision:
        """One decision for ``packet`` from every attached decider, by ``timeout_s``."""
        self.asked += 1
        deciders = list(self._deciders.values())
        answers: list[tuple[str, Verdict]] = []
        if not deciders:
            self.timeouts += 1
            return Decision(False, "timeout", "no oracle or agent is attached", self._now_ms())

        async def one(decider: Decider, scope: trio.CancelScope) -> None:
            try:
                verdict = await decider.decide(packet)
            except DeciderError as exc:
                self.refused[f"{decider.name}:{exc.reason}"] += 1
                log.warning("decider %s gave no valid answer: %s", decider.name, exc)
                verdict = Verdict(False, f"answer refused ({exc.reason}): {exc.message}")
            answers.append((decider.name, verdict))
            if not verdict.approve or len(answers) == len(deciders):
                scope.cancel()

        with trio.move_on_after(timeout_s):
            async with trio.open_nursery() as nursery:
                for decider in deciders:
                    nursery.start_soon(one, decider, nursery.cancel_scope)
        now = self._now_ms()
        for name, verdict in answers:
            if not verdict.approve:
                self.denied += 1
                return Decision(False, name, verdict.reason, now)
        if answers:
            self.approved += 1
            name, verdict = answers[0]
            return Decision(True, name, verdict.reason, now)
        self.timeouts += 1
        names = ", ".join(d.name for d in deciders)
        return Decision(
            False, f"timeout:{names}", f"no answer within {timeout_s:g}s (fail closed)", now
        )

    def status(self) -> JsonDict:
        return {
            "attached": self.names,
            "asked": self.asked,
            "approved": self.approved,
            "denied": self.denied,
            "timeouts": self.timeouts,
            "refused": dict(self.refused),
        }
