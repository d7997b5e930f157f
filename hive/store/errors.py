"""Store errors and the one place where sqlite3 exceptions are translated into them."""

from __future__ import annotations

import sqlite3

from hive.errors import HiveError, TransientError

# Primary SQLite result codes (https://sqlite.org/rescode.html) that a retry may cure.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_IOERR = 10
_TRANSIENT_CODES = frozenset({SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR})
_TRANSIENT_TEXT = ("database is locked", "database table is locked", "disk i/o error")


class StoreError(HiveError):
    """A store operation failed; ``operation`` names it (e.g. ``"redeem_ticket"``)."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"store {operation}: {message}")
        self.operation = operation


class StoreUnavailable(StoreError, TransientError):
    """The database is locked by another writer or the disk failed; a retry may succeed.

    A :class:`~hive.errors.TransientError`, so a supervised actor that lets it escape is
    restarted with backoff rather than bringing the runtime down.
    """


def is_transient(exc: sqlite3.Error) -> bool:
    """True for "database is locked" (busy/locked) and disk I/O errors."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _TRANSIENT_CODES:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _TRANSIENT_TEXT)


def translate(operation: str, exc: sqlite3.Error) -> StoreError:
    """The store error for ``exc`` raised while running ``operation`` (raise it ``from exc``)."""
    name = getattr(exc, "sqlite_errorname", None)
    detail = f"{exc} ({name})" if name else str(exc)
    if is_transient(exc):
        return StoreUnavailable(operation, detail)
    return StoreError(operation, detail)
