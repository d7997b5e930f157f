"""Operator-facing events: one line each, saying what a companion did or saw.

An event is what an operator wants to see scroll by: the hive formed, a member joined, a channel
confirmed, a target was ignored for saturation, and later a proposal was made or approved. The
runtime holds one :class:`EventSink` (``Runtime.events``); an actor that has something to tell
the operator is given that sink when the runtime builds it and calls ``emit``. ``emit`` is
synchronous and must not block, so it is safe anywhere, including inside a cancel scope.

Where the line goes is the sink's business: :class:`LogSink` (the default, used by the plugin)
logs it on the ``hive.events`` logger, so it lands in lightningd's log; ``hive demo`` gives
each companion a sink that writes into the screen's scrolling event log
(:meth:`hive.demo.screen.EventLog.sink`).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("hive.events")


class EventSink(Protocol):
    def emit(self, kind: str, text: str) -> None:
        """Record one event: ``kind`` is a short tag ("formed", "channel", "proposal", ...),
        ``text`` one line for an operator."""


class LogSink:
    """Logs each event at INFO on ``hive.events``, prefixed with its kind."""

    def emit(self, kind: str, text: str) -> None:
        log.info("%s: %s", kind, text)
