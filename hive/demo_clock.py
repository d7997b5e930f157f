"""The demo's simulated time: it runs only while the process waits, never while it computes.

trio's ``MockClock(rate=X)`` advances X times the wall clock whatever the process is doing, so
every millisecond a companion spends verifying a signature or redrawing the screen becomes X
simulated milliseconds, and at ``--speed 300`` a ping round trip of a few hundred simulated
milliseconds of network latency is shown as seconds. :class:`IdleClock` is a trio clock that
advances only while trio's event loop waits for I/O or a deadline (at ``rate`` simulated seconds
per wall second), and stands still while tasks run. Simulated time is then what a companion on
an infinitely fast computer would see: the simulated network's latency, confirmation delays and
timers, and none of this process's own computation. When the machine cannot keep up, the demo
runs slower than ``rate`` instead of showing computation as latency;
:meth:`IdleClock.effective_rate` says how fast it really ran.

It is both the run's clock and one of its instruments (the I/O-wait hooks move it)::

    clock = IdleClock(rate=60)
    trio.run(main, clock=clock, instruments=[clock])

Work handed to threads (``trio.to_thread``) counts as waiting: the loop waits while it runs.
A wait that ends on its timeout moves the clock exactly to the deadline it waited for (the
operating system's wait overshoots by up to a millisecond, which at ``rate`` 300 would be 0.3
simulated seconds), and a gap to the next deadline shorter than :data:`MIN_SLEEP_S` of wall time
is jumped at once: nothing can run before that deadline but the next timer.
"""

from __future__ import annotations

import math
import time

import trio

# Shorter waits are jumped instead of slept: epoll and friends wait whole milliseconds.
MIN_SLEEP_S = 0.001


class IdleClock(trio.abc.Clock, trio.abc.Instrument):
    """Simulated seconds advance at ``rate`` per wall second while trio waits, else not at all."""

    def __init__(self, rate: float) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive finite number, got {rate!r}")
        self.rate = rate
        self._virtual = 0.0
        self._wait_started: float | None = None
        # Simulated time at which the current wait's timeout expires.
        self._wait_until = 0.0
        self._wall_started = time.perf_counter()

    # trio.abc.Clock ----------------------------------------------------------------------------

    def start_clock(self) -> None:
        self._wall_started = time.perf_counter()

    def current_time(self) -> float:
        if self._wait_started is None:
            return self._virtual
        return self._virtual + (time.perf_counter() - self._wait_started) * self.rate

    def deadline_to_sleep_time(self, deadline: float) -> float:
        sleep = (deadline - self.current_time()) / self.rate
        if sleep < MIN_SLEEP_S:
            if self._wait_started is None and math.isfinite(deadline):
                self._virtual = max(self._virtual, deadline)
            return 0.0
        return sleep

    # trio.abc.Instrument: only the I/O wait moves the clock ------------------------------------

    def before_io_wait(self, timeout: float) -> None:
        self._wait_until = self._virtual + timeout * self.rate
        self._wait_started = time.perf_counter()

    def after_io_wait(self, timeout: float) -> None:
        self._virtual = min(self.current_time(), self._wait_until)
        self._wait_started = None

    # -------------------------------------------------------------------------------------------

    def effective_rate(self) -> float:
        """Simulated seconds per wall second since the run started (at most ``rate``)."""
        wall = time.perf_counter() - self._wall_started
        return self.current_time() / wall if wall > 0 else 0.0
