"""Where pyln-client's defaults do not match what lightningd expects of a plugin.

* **Error answers.** ``Request.set_exception`` adds ``"traceback": traceback.format_exc()``;
  we answer from trio, outside any ``except`` block, so every error carried
  ``"NoneType: None"``. :func:`answer_error` writes the JSON-RPC error object itself (code and
  message, nothing else), through pyln's locked writer.
* **Log levels.** pyln's log handler sends Python's WARNING as lightningd's ``info``. Python
  levels map to the ones lightningd has (io, debug, info, unusual, broken): WARNING ->
  ``unusual``, ERROR and CRITICAL -> ``broken`` (a bug: pyln-testing fails a test on any
  BROKEN line), and Python ``warnings`` go through logging.
* **check.** lightningd forwards ``lightning-cli check <our command> ...`` to a plugin whose
  manifest says ``"cancheck": true``, as a request named ``check`` carrying the original
  params; otherwise it passes the check unvalidated and logs UNUSUAL. :class:`HivePlugin` says
  so and serves ``check`` without listing it as an RPC method of its own.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from pyln.client import Plugin
from pyln.client.plugin import Method, MethodType, PluginLogHandler, Request, RequestState

CHECK = "check"

LIGHTNINGD_LEVELS = {
    logging.CRITICAL: "broken",
    logging.ERROR: "broken",
    logging.WARNING: "unusual",
    logging.INFO: "info",
    logging.DEBUG: "debug",
    logging.NOTSET: "debug",
}


def answer_error(request: Request, code: int, message: str) -> None:
    """Answer ``request`` with a JSON-RPC error of ``code`` and ``message`` only."""
    if request.state != RequestState.PENDING:
        raise ValueError(f"request {request.id} was answered already ({request.state})")
    request.plugin._write_locked(
        {"jsonrpc": "2.0", "id": request.id, "error": {"code": code, "message": message}}
    )
    request.state = RequestState.FAILED
    request.termination_tb = "".join(traceback.extract_stack().format()[:-1])


def use_lightningd_levels() -> int:
    """Give every pyln log handler on the root logger lightningd's levels; route Python
    ``warnings`` through logging. Returns how many handlers it adjusted."""
    logging.captureWarnings(True)
    adjusted = 0
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PluginLogHandler):
            handler.levels = dict(LIGHTNINGD_LEVELS)
            adjusted += 1
    return adjusted


class HivePlugin(Plugin):  # type: ignore[misc]
    """pyln's Plugin with a ``check`` handler (see the module docstring)."""

    def set_check(self, handler: Callable[..., None]) -> None:
        """``handler(request, *args, **kwargs)`` answers ``check`` requests (background)."""
        self.methods[CHECK] = Method(CHECK, handler, MethodType.RPCMETHOD)
        self.methods[CHECK].background = True

    def _getmanifest(self, **kwargs: Any) -> Any:
        manifest = super()._getmanifest(**kwargs)
        if CHECK in self.methods:
            manifest["rpcmethods"] = [m for m in manifest["rpcmethods"] if m["name"] != CHECK]
            manifest["cancheck"] = True
        return manifest


__all__ = ["CHECK", "LIGHTNINGD_LEVELS", "HivePlugin", "answer_error", "use_lightningd_levels"]
