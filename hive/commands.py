"""Operator commands (`hive-*`), independent of how they arrive (CLN JSON-RPC, the demo's CLI).

A command handler takes keyword parameters as decoded JSON and returns a JSON-able dict. Failures
the operator should read are :class:`CommandError` with a stable numeric code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

JsonDict = dict[str, Any]
Handler = Callable[[Mapping[str, Any]], Awaitable[JsonDict]]


class CommandError(Exception):
    """A command failed in a way the operator should read; ``code`` is stable per cause."""

    # Codes follow JSON-RPC's "server error" range; lightningd passes them through unchanged.
    INVALID_PARAMS = -32602
    NOT_READY = 1401
    REFUSED = 1402
    NODE_ERROR = 1403
    NOT_FOUND = 1404

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Command:
    """One operator command: its name as registered with lightningd, usage and handler."""

    name: str
    usage: str
    description: str
    handler: Handler
