"""Supervision: run actors in one nursery, restart the ones that fail transiently.

Every actor is ``async def run(*, task_status)``: it calls ``task_status.started()`` once it is
ready to serve and then runs until cancelled. The :class:`Supervisor` starts each actor with
``nursery.start`` so that the runtime is ready only when every actor is, and applies one policy:

* :class:`~hive.errors.TransientError` (the node's RPC timing out, a peer vanishing): the actor is
  restarted after an exponential backoff; the other actors keep running; its inbox survives, so no
  queued message is lost.
* Anything else is a programming error: it propagates, the nursery cancels every other actor, and
  the original exception (with its traceback) surfaces to whoever runs the runtime.
* An actor that returns normally has finished on purpose and is not restarted.

Inboxes are bounded: a sender waits when the receiver falls behind (backpressure) instead of
memory growing without limit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import attrs
import trio

from hive.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ActorFn(Protocol):
    def __call__(self, *, task_status: trio.TaskStatus[None]) -> Awaitable[None]: ...


@attrs.define
class InboxStats:
    capacity: int
    depth: int = 0
    peak: int = 0
    sent: int = 0


class Inbox(Generic[T]):
    """A bounded channel with one receiving owner and statistics on its depth.

    Senders use :meth:`send` (waits when full: backpressure) or :meth:`send_nowait` (raises
    :class:`trio.WouldBlock` when full, for callers that must never wait, such as hooks).
    The receive side is handed to exactly one actor; it is never closed by a restart.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an inbox needs room for at least one message")
        self._send, self.receive = trio.open_memory_channel[T](capacity)
        self._stats = InboxStats(capacity=capacity)

    @property
    def send_channel(self) -> trio.MemorySendChannel[T]:
        """The raw send side, for producers that take a channel (the node port's events)."""
        return self._send

    async def send(self, item: T) -> None:
        await self._send.send(item)
        self._note_sent()

    def send_nowait(self, item: T) -> None:
        self._send.send_nowait(item)
        self._note_sent()

    def _note_sent(self) -> None:
        self._stats.sent += 1
        depth = self._send.statistics().current_buffer_used
        self._stats.peak = max(self._stats.peak, depth)

    def stats(self) -> InboxStats:
        depth = self._send.statistics().current_buffer_used
        self._stats.peak = max(self._stats.peak, depth)
        return attrs.evolve(self._stats, depth=depth)


@attrs.define
class ActorStats:
    name: str
    restartable: bool
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    inbox: InboxStats | None = None


@attrs.frozen
class Backoff:
    """Exponential backoff between restarts, reset after a stable run."""

    initial_s: float = 0.5
    factor: float = 2.0
    maximum_s: float = 60.0
    # A run that lasted this long counts as healthy: the next failure starts from `initial_s`.
    stable_after_s: float = 60.0

    def delay(self, consecutive_failures: int) -> float:
        exponent = max(consecutive_failures - 1, 0)
        return min(self.initial_s * math.pow(self.factor, exponent), self.maximum_s)


class _FirstStart:
    """Passes only the first ``started()`` of a restarting actor on to ``nursery.start``."""

    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self._outer: trio.TaskStatus[None] | None = outer

    def started(self, value: None = None) -> None:
        if self._outer is not None:
            outer, self._outer = self._outer, None
            outer.started(value)


class Supervisor:
    """Starts actors in a nursery it is given and applies the restart policy."""

    def __init__(self, nursery: trio.Nursery, *, backoff: Backoff | None = None) -> None:
        self._nursery = nursery
        self._backoff = backoff or Backoff()
        self._stats: dict[str, ActorStats] = {}
        self._inboxes: dict[str, Inbox[Any]] = {}

    async def start(
        self,
        name: str,
        run: ActorFn,
        *,
        restart: bool = True,
        inbox: Inbox[Any] | None = None,
    ) -> None:
        """Start ``run`` and return once it has called ``task_status.started()``."""
        if name in self._stats:
            raise ValueError(f"an actor named {name!r} is already running")
        self._stats[name] = ActorStats(name=name, restartable=restart)
        if inbox is not None:
            self._inboxes[name] = inbox
        await self._nursery.start(self._supervise, name, run, restart)

    def stats(self) -> list[ActorStats]:
        result = []
        for name, stats in self._stats.items():
            inbox = self._inboxes.get(name)
            result.append(attrs.evolve(stats, inbox=inbox.stats() if inbox else None))
        return result

    async def _supervise(
        self,
        name: str,
        run: ActorFn,
        restart: bool,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        stats = self._stats[name]
        status = _FirstStart(task_status)
        failures = 0
        while True:
            began = trio.current_time()
            stats.running = True
            try:
                await run(task_status=status)
            except BaseException as exc:
                stats.running = False
                verdict = classify(exc)
                if verdict == "transient" and restart:
                    stats.last_error = _describe(exc)
                    if trio.current_time() - began >= self._backoff.stable_after_s:
                        failures = 0
                    failures += 1
                    stats.restarts += 1
                    delay = self._backoff.delay(failures)
                    log.warning(
                        "actor %s failed transiently (%s); restart %d in %.1fs",
                        name,
                        stats.last_error,
                        stats.restarts,
                        delay,
                    )
                    await trio.sleep(delay)
                    continue
                if verdict != "cancelled":
                    stats.last_error = _describe(exc)
                    log.error("actor %s failed: %s", name, stats.last_error)
                raise
            stats.running = False
            log.info("actor %s finished", name)
            return


def classify(exc: BaseException) -> str:
    """``"cancelled"``, ``"transient"`` or ``"fatal"``, looking inside exception groups.

    Actors run nurseries of their own, so their failures arrive wrapped in exception groups,
    usually beside the ``Cancelled`` of the siblings that the failure cancelled. A group is
    transient when every leaf is a :class:`TransientError` or a ``Cancelled``, and cancelled when
    every leaf is a ``Cancelled``.
    """
    leaves = list(_leaves(exc))
    if all(isinstance(e, trio.Cancelled) for e in leaves):
        return "cancelled"
    if all(isinstance(e, TransientError | trio.Cancelled) for e in leaves):
        return "transient"
    return "fatal"


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    leaves = [e for e in _leaves(exc) if not isinstance(e, trio.Cancelled)]
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves) or "cancelled"


def actor(fn: Callable[..., Awaitable[None]], /, *args: Any, **kwargs: Any) -> ActorFn:
    """Bind an actor's collaborators now, leaving ``task_status`` for the supervisor."""

    def bound(*, task_status: trio.TaskStatus[None]) -> Awaitable[None]:
        return fn(*args, task_status=task_status, **kwargs)

    return bound
