"""Supervision policy: transient failures restart one actor, bugs bring everything down."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from hive.errors import NodeUnavailable
from hive.supervisor import Backoff, Inbox, Supervisor, actor, classify


class Boom(Exception):
    """A programming error stand-in."""


async def ticker(counter: list[int], *, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()
    while True:
        await trio.sleep(1)
        counter.append(1)


async def flaky(starts: list[float], failures: int, *, task_status: trio.TaskStatus[None]) -> None:
    starts.append(trio.current_time())
    task_status.started()
    await trio.sleep(0.1)
    if len(starts) <= failures:
        raise NodeUnavailable("rpc timed out")
    await trio.sleep_forever()


async def test_transient_failure_restarts_with_backoff_and_others_keep_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []
    ticks: list[int] = []
    backoff = Backoff(initial_s=1.0, factor=2.0, maximum_s=8.0)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery, backoff=backoff)
            await sup.start("flaky", actor(flaky, starts, 4))
            await sup.start("ticker", actor(ticker, ticks))
            await trio.sleep(30.5)
            stats = {s.name: s for s in sup.stats()}
            nursery.cancel_scope.cancel()
    # Four failures, each 0.1 s after its start, then waits of 1, 2, 4, 8 s.
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    assert gaps == [1.1, 2.1, 4.1, 8.1]
    assert stats["flaky"].restarts == 4
    assert stats["flaky"].last_error == "NodeUnavailable: rpc timed out"
    assert stats["flaky"].running
    assert stats["ticker"].restarts == 0
    # The ticker ran undisturbed the whole time.
    assert len(ticks) == 30


async def test_backoff_resets_after_a_stable_run(autojump_clock: trio.testing.MockClock) -> None:
    starts: list[float] = []

    async def unstable(*, task_status: trio.TaskStatus[None]) -> None:
        starts.append(trio.current_time())
        task_status.started()
        # The third run is long and healthy, then fails again.
        await trio.sleep(100 if len(starts) == 3 else 0.5)
        raise NodeUnavailable("gone")

    backoff = Backoff(initial_s=1.0, factor=2.0, maximum_s=60.0, stable_after_s=50.0)
    async with trio.open_nursery() as nursery:
        await Supervisor(nursery, backoff=backoff).start("unstable", unstable)
        await trio.sleep(110)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    # 0.5 + 1, 0.5 + 2, then a stable run of 100 s resets the backoff to 1 s.
    assert gaps[:3] == [1.5, 2.5, 101.0]


async def test_programming_error_cancels_all_and_surfaces(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []

    async def victim(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append("victim")

    async def buggy(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(5)
        raise Boom("bad invariant")

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="bad invariant")):
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery)
            await sup.start("victim", victim)
            await sup.start("buggy", buggy)
    assert cancelled == ["victim"]
    assert trio.current_time() == pytest.approx(5)


async def test_failure_during_first_start_is_retried_when_transient(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []

    async def slow_to_start(*, task_status: trio.TaskStatus[None]) -> None:
        attempts.append(trio.current_time())
        if len(attempts) < 3:
            raise NodeUnavailable("node still starting")
        task_status.started()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await Supervisor(nursery, backoff=Backoff(initial_s=2.0)).start("s", slow_to_start)
        # start() returned only once the third attempt reported ready.
        assert attempts == [0.0, 2.0, 6.0]
        nursery.cancel_scope.cancel()


async def test_non_restartable_actor_escalates_transient_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def once(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)
        raise NodeUnavailable("gone")

    with pytest.RaisesGroup(NodeUnavailable):
        async with trio.open_nursery() as nursery:
            await Supervisor(nursery).start("once", once, restart=False)


async def test_shutdown_leaves_no_tasks_running(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[int] = []
    root = trio.lowlevel.current_root_task()
    before = _count_tasks(root)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            sup = Supervisor(nursery)
            for i in range(5):
                await sup.start(f"t{i}", actor(ticker, ticks))
            assert _count_tasks(root) >= before + 5
            scope.cancel()
    assert _count_tasks(root) == before
    assert all(not s.running for s in sup.stats())


def _count_tasks(task: trio.lowlevel.Task) -> int:
    return 1 + sum(_count_tasks(child) for n in task.child_nurseries for child in n.child_tasks)


async def test_full_inbox_applies_backpressure(autojump_clock: trio.testing.MockClock) -> None:
    inbox: Inbox[int] = Inbox(4)
    sent: list[int] = []

    async def producer() -> None:
        for i in range(10):
            await inbox.send(i)
            sent.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.sleep(1)
        # The consumer has not read anything: the producer is parked after filling the inbox.
        assert sent == [0, 1, 2, 3]
        assert inbox.stats().depth == 4
        with pytest.raises(trio.WouldBlock):
            inbox.send_nowait(99)
        received = [await inbox.receive.receive() for _ in range(10)]
    assert received == list(range(10))
    stats = inbox.stats()
    assert stats.peak == 4
    assert stats.depth == 0
    assert stats.sent == 10


async def test_duplicate_actor_name_refused() -> None:
    async def idle(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        sup = Supervisor(nursery)
        await sup.start("a", idle)
        with pytest.raises(ValueError, match="already running"):
            await sup.start("a", idle)
        nursery.cancel_scope.cancel()


def test_backoff_is_capped() -> None:
    backoff = Backoff(initial_s=0.5, factor=2.0, maximum_s=10.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


async def test_transient_error_inside_an_actors_own_nursery_restarts_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    async def with_children(*, task_status: trio.TaskStatus[None]) -> None:
        starts.append(trio.current_time())
        async with trio.open_nursery() as inner:
            inner.start_soon(trio.sleep_forever)
            task_status.started()
            await trio.sleep(1)
            if len(starts) == 1:
                raise NodeUnavailable("rpc timed out")

    async with trio.open_nursery() as nursery:
        sup = Supervisor(nursery, backoff=Backoff(initial_s=1.0))
        await sup.start("nested", with_children)
        await trio.sleep(10)
        (stats,) = sup.stats()
        nursery.cancel_scope.cancel()
    assert starts == [0.0, 2.0]
    assert stats.restarts == 1
    assert stats.last_error == "NodeUnavailable: rpc timed out"


def test_classify_looks_inside_groups() -> None:
    transient = NodeUnavailable("x")
    assert classify(transient) == "transient"
    assert classify(Boom()) == "fatal"
    assert classify(BaseExceptionGroup("g", [transient, ExceptionGroup("h", [Boom()])])) == "fatal"
    assert classify(ExceptionGroup("g", [transient, NodeUnavailable("y")])) == "transient"
