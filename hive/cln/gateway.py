"""The RPC gateway: lightningd's JSON-RPC over its unix socket, from trio.

pyln-client's :class:`~pyln.client.LightningRpc` is blocking, so every call runs in a trio
worker thread (``trio.to_thread.run_sync``) behind a :class:`trio.CapacityLimiter`, which bounds
how many calls are in flight at once. Each call has a timeout; on expiry the caller gets
:class:`~hive.errors.NodeUnavailable` naming the method, and the abandoned thread keeps its
limiter slot until lightningd answers or the socket breaks, so a hung node cannot pile up
threads beyond the limit.

Errors are mapped exactly once, here:

* lightningd's JSON-RPC error object -> :class:`~hive.errors.NodeError` with CLN's code and
  message;
* socket failures (refused, missing socket file, broken pipe, reset, lost connection) ->
  :class:`~hive.errors.NodeUnavailable`;
* a malformed response -> NodeError.

Per-method statistics (calls, errors, timeouts, latency) feed ``hive-status``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio
from pyln.client import LightningRpc, RpcError

from hive.errors import NodeError, NodeUnavailable

log = logging.getLogger(__name__)

Params = Mapping[str, Any]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONCURRENCY = 4


@attrs.define
class MethodStats:
    """Counters for one RPC method."""

    calls: int = 0
    errors: int = 0
    timeouts: int = 0
    total_s: float = 0.0
    max_s: float = 0.0

    def record(self, elapsed_s: float) -> None:
        self.total_s += elapsed_s
        self.max_s = max(self.max_s, elapsed_s)

    def as_json(self) -> dict[str, Any]:
        answered = self.calls - self.timeouts
        return {
            "calls": self.calls,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "mean_ms": round(1000 * self.total_s / answered, 3) if answered else None,
            "max_ms": round(1000 * self.max_s, 3),
        }


class RpcGateway:
    """Calls lightningd's JSON-RPC methods from trio.

    ``socket_path`` is lightningd's RPC socket (``<lightning-dir>/<rpc-file>``); tests point it
    at a socket served by the lightningd double.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        caller_name: str = "hive",
    ) -> None:
        self.socket_path = os.fspath(socket_path)
        self.timeout_s = timeout_s
        self._caller_name = caller_name
        self._limiter = trio.CapacityLimiter(concurrency)
        self._ids = itertools.count(1)
        self._stats: dict[str, MethodStats] = {}

    async def call(
        self, method: str, params: Params | None = None, *, timeout_s: float | None = None
    ) -> Any:
        """Call ``method`` and return its ``result``.

        Raises NodeError (lightningd refused, with its code), NodeUnavailable (no answer within
        the timeout, or the socket failed).
        """
        stats = self._stats.setdefault(method, MethodStats())
        stats.calls += 1
        timeout = self.timeout_s if timeout_s is None else timeout_s
        payload = {k: v for k, v in (params or {}).items() if v is not None}
        blocking = self._blocking_call(method, payload, next(self._ids))
        started = time.monotonic()
        with trio.move_on_after(timeout):
            try:
                result = await trio.to_thread.run_sync(
                    blocking, limiter=self._limiter, abandon_on_cancel=True
                )
            except (NodeError, NodeUnavailable):
                stats.errors += 1
                stats.record(time.monotonic() - started)
                raise
            stats.record(time.monotonic() - started)
            return result
        stats.timeouts += 1
        stats.errors += 1
        log.warning("lightningd did not answer %s within %gs", method, timeout)
        raise NodeUnavailable(f"lightningd did not answer {method} within {timeout:g}s")

    def _blocking_call(self, method: str, payload: dict[str, Any], seq: int) -> Callable[[], Any]:
        socket_path, caller = self.socket_path, self._caller_name

        def run() -> Any:
            rpc = LightningRpc(socket_path)
            rpc.caller_name = caller
            rpc.next_id = seq  # unique ids across threads: "hive:<method>#<seq>"
            try:
                return rpc.call(method, payload)
            except RpcError as exc:
                raise _node_error(method, exc.error) from None
            except OSError as exc:  # refused, no socket file, broken pipe, reset
                raise NodeUnavailable(f"{method}: cannot reach lightningd: {exc}") from exc
            except ValueError as exc:  # pyln: malformed response, mismatched id
                raise NodeError(f"{method}: malformed response from lightningd: {exc}") from exc

        return run

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-method counters, JSON-able, for ``hive-status``."""
        return {name: s.as_json() for name, s in sorted(self._stats.items())}

    def method_stats(self, method: str) -> MethodStats:
        return self._stats.get(method, MethodStats())


class RpcFailure(NodeError):
    """lightningd answered with a JSON-RPC error; ``data`` is its optional ``data`` object
    (``waitsendpay`` puts the failing hop there)."""

    def __init__(
        self, message: str, *, code: int | None, data: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.data = data


def _node_error(method: str, error: object) -> NodeError | NodeUnavailable:
    if isinstance(error, Mapping):
        code = error.get("code")
        data = error.get("data")
        return RpcFailure(
            f"{method}: {error.get('message', 'error without a message')}",
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            data=data if isinstance(data, Mapping) else None,
        )
    # pyln reports a connection closed before the answer as a bare string error.
    return NodeUnavailable(f"{method}: {error}")
