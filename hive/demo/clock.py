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
:meth:`IdleClock.effective_rate` says how fast it really ran lately.

It is both the run's clock and one of its instruments (the I/O-wait hooks move it)::

    clock = IdleClock(rate=60)
    trio.run(main, clock=clock, instruments=[clock])

Work handed to threads (``trio.to_thread``) counts as waiting: the loop waits while it runs.
A wait that ends on its timeout moves the clock exactly to the deadline it waited for: the
operating system's waits overshoot by up to a millisecond or two, which at ``rate`` 300 would be
half a simulated second added to whatever was waiting. The wall time lost that way is kept as a
balance and taken off the next waits, and a wait shorter than :data:`MIN_SLEEP_S` is not slept at
all (the clock jumps to its deadline, and the balance records it), so over any stretch the pace
stays ``rate`` while every deadline is met exactly.
"""

from __future__ import annotations

import math
import time

import trio

# Shorter waits are jumped instead of slept: epoll and friends wait whole milliseconds.
MIN_SLEEP_S = 0.001
MAX_BALANCE_S = 0.1
RATE_WINDOW_S = 0.5


class IdleClock(trio.abc.Clock, trio.abc.Instrument):
    """Simulated seconds advance at ``rate`` per wall second while trio waits, else not at all."""

    def __init__(self, rate: float) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive finite number, got {rate!r}")
        self.rate = rate
        self._virtual = 0.0
        # Wall seconds slept minus wall seconds' worth of simulated time advanced while waiting:
        # positive when waits overshot (the next ones are shortened), negative after jumps.
        self._balance = 0.0
        # The deadline the next wait is for, and the sleep returned for it.
        self._target: float | None = None
        self._target_sleep = 0.0
        self._wait: tuple[float, float, float] | None = None  # (wall start, virtual, target)
        self._wall_started = time.perf_counter()
        self._last_rate_reading: tuple[float, float] | None = None
        self._last_rate: float | None = None

    # trio.abc.Clock ----------------------------------------------------------------------------

    def start_clock(self) -> None:
        self._wall_started = time.perf_counter()

    def current_time(self) -> float:
        if self._wait is None:
            return self._virtual
        started, virtual, target = self._wait
        return min(target, virtual + (time.perf_counter() - started) * self.rate)

    def deadline_to_sleep_time(self, deadline: float) -> float:
        gap = (deadline - self.current_time()) / self.rate
        sleep = gap - self._balance
        if self._wait is None and math.isfinite(deadline) and sleep < MIN_SLEEP_S:
            # Nothing can run before that deadline: jump to it instead of sleeping.
            self._virtual = max(self._virtual, deadline)
            self._balance = _clamp(self._balance - max(gap, 0.0))
            return 0.0
        self._target, self._target_sleep = deadline, max(sleep, 0.0)
        return max(sleep, 0.0)

    # trio.abc.Instrument: only the I/O wait moves the clock ------------------------------------

    def before_io_wait(self, timeout: float) -> None:
        if self._target is not None and math.isclose(timeout, self._target_sleep):
            target = self._target
        else:  # trio shortened the wait (or there was no deadline to wait for)
            target = self._virtual + max(timeout, 0.0) * self.rate
        self._wait = (time.perf_counter(), self._virtual, target)

    def after_io_wait(self, timeout: float) -> None:
        if self._wait is None:
            return
        started, virtual, target = self._wait
        slept = time.perf_counter() - started
        timed_out = slept >= timeout
        advanced = target - virtual if timed_out else min(target - virtual, slept * self.rate)
        if timeout > 0:
            self._balance = _clamp(self._balance + slept - advanced / self.rate)
        self._virtual = virtual + advanced
        self._wait = None
        self._target = None

    # -------------------------------------------------------------------------------------------

    def effective_rate(self) -> float:
        """Simulated seconds per wall second over the last reading window (at least 0.5 s of
        wall time, so a redraw right after another does not report noise)."""
        wall, virtual = time.perf_counter(), self.current_time()
        last_wall, last_virtual = self._last_rate_reading or (self._wall_started, 0.0)
        if wall - last_wall < RATE_WINDOW_S and self._last_rate is not None:
            return self._last_rate
        self._last_rate_reading = (wall, virtual)
        self._last_rate = (virtual - last_virtual) / (wall - last_wall) if wall > last_wall else 0.0
        return self._last_rate


def _clamp(balance: float) -> float:
    """Keep the balance within a tenth of a second either way: a long stall is not made up."""
    return max(-MAX_BALANCE_S, min(MAX_BALANCE_S, balance))
