"""A discrete-event clock for one run: callbacks at simulated times, in time order."""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    @property
    def now_ms(self) -> int:
        """The time in whole milliseconds, rounded: a callback set for ``due_ms / 1000`` must
        read ``due_ms`` (truncating read 1001 ms as 1000, so a lock book's timer that is due at
        1001 found nothing due and asked for 1001 again, for ever)."""
        return round(self.now_s * 1000)

    def at(self, t_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at ``t_s`` (never earlier than now); same-time calls keep their order."""
        self._seq += 1
        heapq.heappush(self._heap, (max(t_s, self.now_s), self._seq, fn))

    def run_until(self, t_s: float) -> None:
        """Everything due up to and including ``t_s``; then the clock reads ``t_s``."""
        while self._heap and self._heap[0][0] <= t_s:
            when, _, fn = heapq.heappop(self._heap)
            self.now_s = when
            fn()
        self.now_s = max(self.now_s, t_s)
