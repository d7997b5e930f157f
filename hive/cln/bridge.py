"""The bridge between pyln-client's blocking plugin loop and trio (rationale: docs/CLN_BRIDGE.md).

Threads and ownership:

* trio owns the main thread: the runtime, the node port, the RPC gateway and command handlers;
* pyln-client's :meth:`Plugin.run` runs in one ``trio.to_thread`` worker and does what it is
  good at: JSON-RPC framing on stdin/stdout, ``getmanifest``, ``init``, option handling and
  dispatch. It reads stdin with raw ``os.read`` calls (not a buffered file), so the worker
  holds no Python lock while blocked and can be abandoned at shutdown.

Crossings (all non-blocking for lightningd):

* hook calls and notifications -> :class:`~hive.cln.events.RawEvent` pushed with
  ``trio.from_thread.run_sync`` + ``send_nowait`` into a bounded channel; when it is full the
  event is dropped and counted, and the hook still answers ``continue`` at once;
* RPC methods are pyln *async* methods: the worker hands the request to trio the same way and
  returns; a trio task runs the command and answers with ``request.set_result`` /
  ``set_exception`` later, so a long command never stalls the loop;
* ``init`` hands its options to trio and returns; nothing calls lightningd's RPC from the loop.

Exit: stdin EOF ends :meth:`Plugin.run`, the worker returns and :meth:`PluginBridge.run`
returns; the ``shutdown`` notification sets :attr:`PluginBridge.shutdown`. Either way the
caller cancels its nursery, and the process exits without waiting for the blocked worker.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import trio

from hive.cln.events import RawEvent

log = logging.getLogger(__name__)

READ_CHUNK = 65536
DEFAULT_EVENT_CAPACITY = 1024
DEFAULT_COMMAND_CAPACITY = 64


class RawStdin:
    """Stands in for ``sys.stdin`` in :meth:`Plugin.run`: its ``buffer`` yields raw chunks
    read with ``os.read`` (pyln splits them on blank lines itself)."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd

    @property
    def buffer(self) -> Iterator[bytes]:
        while True:
            chunk = os.read(self.fd, READ_CHUNK)
            if not chunk:
                return
            yield chunk


@attrs.frozen
class InitParams:
    """What lightningd's ``init`` carried."""

    options: Mapping[str, Any]
    configuration: Mapping[str, Any]


@attrs.frozen
class CommandCall:
    """One call of one of our RPC methods, waiting for an answer through ``request``."""

    name: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    request: Any  # pyln.client.plugin.Request


class PluginBridge:
    """Owns the crossing points between pyln's worker thread and trio.

    Methods whose names start with ``from_loop_`` run in pyln's worker thread; everything else
    runs in trio.
    """

    def __init__(
        self,
        plugin: Any,
        *,
        event_capacity: int = DEFAULT_EVENT_CAPACITY,
        command_capacity: int = DEFAULT_COMMAND_CAPACITY,
    ) -> None:
        self.plugin = plugin
        self._event_send, self.events = trio.open_memory_channel[RawEvent](event_capacity)
        self._call_send, self.calls = trio.open_memory_channel[CommandCall](command_capacity)
        self.init_received = trio.Event()
        self.init: InitParams | None = None
        self.shutdown = trio.Event()
        self.events_dropped: collections.Counter[str] = collections.Counter()
        self.events_passed = 0
        # Answers the openchannel hooks in pyln's thread: peer -> refusal reason or None. Set
        # once the runtime runs (hive.actors.bans.Bans.refuse_open reads an immutable snapshot).
        self.open_gate: Callable[[str], str | None] | None = None

    # ------------------------------------------------------------------------------------------
    # trio side

    async def run(self) -> None:
        """Run pyln's loop in a worker thread until stdin reaches EOF (returns) or the caller
        is cancelled (the worker is abandoned, blocked in ``os.read``)."""
        await trio.to_thread.run_sync(self.plugin.run, abandon_on_cancel=True)
        log.info("lightningd closed our stdin")

    def statistics(self) -> dict[str, Any]:
        return {"passed": self.events_passed, "dropped": dict(self.events_dropped)}

    # ------------------------------------------------------------------------------------------
    # pyln worker side

    def from_loop_event(self, topic: str, params: Mapping[str, Any]) -> None:
        """Pass a hook call or notification to trio without waiting; drop it when full."""
        raw = RawEvent(topic=topic, params=dict(params))

        def push() -> None:
            try:
                self._event_send.send_nowait(raw)
                self.events_passed += 1
            except trio.WouldBlock:
                self.events_dropped["queue_full"] += 1
                log.warning("event queue full: dropped %s", topic)

        self._to_trio(push, f"event {topic}")

    def from_loop_init(self, options: Mapping[str, Any], configuration: Mapping[str, Any]) -> None:
        params = InitParams(options=dict(options), configuration=dict(configuration))

        def deliver() -> None:
            self.init = params
            self.init_received.set()

        self._to_trio(deliver, "init")

    def from_loop_shutdown(self) -> None:
        self._to_trio(self.shutdown.set, "shutdown")

    def from_loop_command(self, call: CommandCall, busy: Callable[[CommandCall], None]) -> None:
        """Queue a command for trio; ``busy(call)`` answers it at once when the queue is full."""

        def push() -> bool:
            try:
                self._call_send.send_nowait(call)
            except trio.WouldBlock:
                return False
            return True

        if not self._to_trio(push, f"command {call.name}"):
            busy(call)

    def _to_trio(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return trio.from_thread.run_sync(fn)
        except (trio.RunFinishedError, trio.Cancelled):
            self.events_dropped["shutting_down"] += 1
            log.debug("%s arrived while shutting down; dropped", what)
            return None
