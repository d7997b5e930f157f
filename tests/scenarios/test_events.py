"""The discrete-event clock of the value study."""

from __future__ import annotations

import functools

from hive.scenarios.events import Clock


def test_now_ms_reads_the_millisecond_a_callback_was_set_for() -> None:
    # 1001 / 1000.0 * 1000 is 1000.9999999999999 in binary floating point.
    seen: list[int] = []
    clock = Clock()

    def check(due: int) -> None:
        seen.append(clock.now_ms - due)

    for due in (1001, 1015, 2002, 4004, 604_799_999, 302_400_123):
        clock.at(due / 1000.0, functools.partial(check, due))
    clock.run_until(700_000.0)
    assert seen == [0] * 6


def test_a_timer_that_reschedules_until_its_deadline_passes_ends() -> None:
    # The lock book's pattern: tick at the deadline; if now_ms has not reached it, ask again.
    clock = Clock()
    calls = [0]

    def tick(due_ms: int) -> None:
        calls[0] += 1
        assert calls[0] < 10, "the timer keeps firing at the same instant"
        if clock.now_ms < due_ms:
            clock.at(due_ms / 1000.0, lambda: tick(due_ms))

    clock.at(1.001, lambda: tick(1001))
    clock.run_until(2.0)
    assert calls[0] == 1


def test_same_time_callbacks_keep_their_order_and_never_run_early() -> None:
    clock = Clock()
    order: list[str] = []
    clock.at(5.0, lambda: order.append("a"))
    clock.at(5.0, lambda: order.append("b"))
    clock.at(9.0, lambda: order.append("late"))
    clock.run_until(5.0)
    assert order == ["a", "b"]
    assert clock.now_s == 5.0
    clock.at(1.0, lambda: order.append("past"))  # never earlier than now
    clock.run_until(6.0)
    assert order == ["a", "b", "past"]
