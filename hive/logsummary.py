"""Aggregated log lines for events that can come in floods (refused frames): the first of each
kind per key is logged at once, the rest are counted and logged as one line per key and kind
at the end of each interval. Pure state, time passed in; bounded in memory."""

from __future__ import annotations

import logging
from collections import Counter

MAX_KEYS = 1024  # (key, kind) pairs counted per interval; beyond that only a total is kept


class LogSummary:
    """``note`` each event; ``flush`` at least every ``interval_s`` (see the module docstring)."""

    def __init__(self, logger: logging.Logger, what: str, interval_s: float = 60.0) -> None:
        self.log = logger
        self.what = what  # e.g. "rejected messages"
        self.interval_s = interval_s
        self._seen: set[tuple[str, str]] = set()  # logged in full this interval
        self._counts: Counter[tuple[str, str]] = Counter()
        self._overflow = 0

    def note(self, key: str, kind: str, detail: str, level: int = logging.INFO) -> None:
        pair = (key, kind)
        if pair in self._counts or pair in self._seen:
            self._counts[pair] += 1
            return
        if len(self._seen) >= MAX_KEYS:
            self._overflow += 1
            return
        self._seen.add(pair)
        self._counts[pair] = 0
        self.log.log(level, "%s from %s: %s (%s)", self.what, key, kind, detail)

    def flush(self) -> int:
        """Log what was counted since the last flush; returns how many lines it wrote."""
        lines = 0
        for (key, kind), count in sorted(self._counts.items()):
            if count:
                self.log.info(
                    "%s from %s: %d more %s in the last %.0f s",
                    self.what,
                    key,
                    count,
                    kind,
                    self.interval_s,
                )
                lines += 1
        if self._overflow:
            self.log.info(
                "%s: %d more from other peers in the last %.0f s",
                self.what,
                self._overflow,
                self.interval_s,
            )
            lines += 1
        self._seen.clear()
        self._counts.clear()
        self._overflow = 0
        return lines


__all__ = ["LogSummary"]
