"""The :class:`Store`: one SQLite connection driven from trio through a worker thread."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import trio

from hive.store import membership as m
from hive.store.errors import StoreError, translate
from hive.store.rows import PeerSeen, Redeem, StoredRecord, TicketRow, TicketUse
from hive.store.schema import MIGRATIONS, migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILE = "hive.sqlite3"
DEFAULT_BUSY_TIMEOUT_MS = 5_000
FILE_MODE = 0o600
_SIDE_FILES = ("-wal", "-shm")


class Store:
    """The companion's database. Open with :meth:`open` or :func:`open_store`.

    Every call runs in a worker thread (``trio.to_thread.run_sync``) behind a
    ``CapacityLimiter(1)``, so calls on one store never overlap and the trio thread never
    blocks on disk. Calls are not abandoned on cancellation: a cancelled caller waits until its
    statement or transaction has finished (committed or rolled back) and gets its result; the
    cancellation is delivered at the caller's next checkpoint (trio's ``to_thread`` semantics
    with ``abandon_on_cancel=False``). So a transaction is never cut in half and no thread
    keeps using the connection after its caller has gone.
    Writers run in ``BEGIN IMMEDIATE`` transactions, so several stores (or processes) on the
    same file stay consistent; a writer waits up to ``busy_timeout_ms`` for the lock, then
    fails with :class:`~hive.store.errors.StoreUnavailable`.

    ``run_inline=True`` runs each call on the trio thread instead. It exists for tests under an
    autojump ``MockClock`` only: that clock jumps to the next deadline whenever every task is
    waiting, and a task waiting for a worker thread counts as waiting, so threaded calls would
    let virtual time leap forward during every query.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path, schema_version: int, *, run_inline: bool
    ) -> None:
        """Use :meth:`open`; this wraps an already configured and migrated connection."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._schema_version = schema_version
        self._run_inline = run_inline
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        migrations: Sequence[str] = MIGRATIONS,
        run_inline: bool = False,
    ) -> Store:
        """Open (creating it, mode 0600, if needed) and migrate the database at ``path``.

        Raises :class:`StoreError` (operation ``"open"`` or ``"migrate"``) when the file cannot
        be opened or is not a database, when WAL mode cannot be enabled, and when the database
        was written by a newer hive (its schema version exceeds ``len(migrations)``).
        """
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")

        def connect() -> sqlite3.Connection:
            return _connect(path, busy_timeout_ms, migrations)

        if run_inline:
            await trio.lowlevel.checkpoint()
            conn = connect()
        else:
            conn = await trio.to_thread.run_sync(connect, abandon_on_cancel=False)
        return cls(conn, path, len(migrations), run_inline=run_inline)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        """The schema version (``PRAGMA user_version``) after migration."""
        return self._schema_version

    @property
    def closed(self) -> bool:
        return self._conn is None

    async def aclose(self) -> None:
        """Close the connection once the call in progress (if any) has finished. Idempotent.

        Shielded from cancellation, so leaving an ``async with`` block by cancellation still
        closes the file.
        """

        def close() -> None:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise translate("close", exc) from exc

        with trio.CancelScope(shield=True):
            await self._offload(close)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def run(self, operation: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the worker thread; the extension point for new tables.

        ``fn`` must be blocking SQL only, and open its own transaction when it writes (see
        :func:`hive.store.membership.write_transaction`). sqlite3 errors it raises come back as
        :class:`StoreError` / :class:`StoreUnavailable` naming ``operation``. Raises
        :class:`StoreError` when the store is closed.
        """

        def work() -> T:
            conn = self._conn
            if conn is None:
                raise StoreError(operation, "the store is closed")
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise translate(operation, exc) from exc

        return await self._offload(work)

    async def _offload(self, work: Callable[[], T]) -> T:
        if self._run_inline:
            async with self._limiter:
                return work()
        return await trio.to_thread.run_sync(work, limiter=self._limiter, abandon_on_cancel=False)

    # ------------------------------------------------------------------------------------------
    # meta

    async def get_meta(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""
        return await self.run("get_meta", lambda c: m.get_meta(c, key))

    async def set_meta(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        await self.run("set_meta", lambda c: m.set_meta(c, key, value))

    async def delete_meta(self, key: str) -> bool:
        """Remove ``key``; False when it was not there."""
        return await self.run("delete_meta", lambda c: m.delete_meta(c, key))

    # ------------------------------------------------------------------------------------------
    # membership records

    async def add_record(
        self, hash: bytes, kind: str, subject: str, body: bytes, now_ms: int
    ) -> bool:
        """Store a signed record under its hash; False (nothing written) when already present.

        ``kind`` is "member" or "exit" (anything else: ValueError); ``subject`` is the node id
        the record is about; ``body`` its encoded bytes.
        """
        return await self.run(
            "add_record", lambda c: m.add_record(c, hash, kind, subject, body, now_ms)
        )

    async def delete_record(self, hash: bytes) -> bool:
        """Remove the record stored under ``hash``; False when there was none."""
        return await self.run("delete_record", lambda c: m.delete_record(c, hash))

    async def clear_hive(self, meta_keys: tuple[str, ...]) -> None:
        """Forget the hive (records, tickets and their uses, ``meta_keys``) atomically; the
        peers table and other meta stay."""
        await self.run("clear_hive", lambda c: m.clear_hive(c, meta_keys))

    async def records(self) -> list[StoredRecord]:
        """Every stored record, in the order they were first added."""
        return await self.run("records", m.records)

    # ------------------------------------------------------------------------------------------
    # tickets

    async def add_ticket(
        self, ticket_id: bytes, body: bytes, issued_ms: int, expires_ms: int, max_uses: int
    ) -> None:
        """Store a ticket this node issued, with no uses yet.

        Raises :class:`StoreError` when ``ticket_id`` is already stored, ``max_uses < 1`` or
        ``expires_ms <= issued_ms`` (schema constraints).
        """
        await self.run(
            "add_ticket",
            lambda c: m.add_ticket(c, ticket_id, body, issued_ms, expires_ms, max_uses),
        )

    async def tickets(self) -> list[TicketRow]:
        """Every stored ticket, in the order they were added."""
        return await self.run("tickets", m.tickets)

    async def ticket(self, ticket_id: bytes) -> TicketRow | None:
        """One ticket, or None when this node never stored it."""
        return await self.run("ticket", lambda c: m.ticket(c, ticket_id))

    async def ticket_uses(self, ticket_id: bytes) -> list[TicketUse]:
        """The redemptions of one ticket, oldest first."""
        return await self.run("ticket_uses", lambda c: m.ticket_uses(c, ticket_id))

    async def redeem_ticket(self, ticket_id: bytes, node_id: str, now_ms: int) -> Redeem:
        """Count one use of a ticket by ``node_id``, atomically (one ``BEGIN IMMEDIATE``).

        Reasons: "granted"; "already-redeemed-by-this-node" (granted again: retries are
        idempotent); "unknown-ticket"; "expired" (``now_ms >= expires_ms``); "exhausted".
        Concurrent calls, from this store or another connection to the same file, never grant
        more than ``max_uses`` distinct nodes.
        """
        return await self.run(
            "redeem_ticket", lambda c: m.redeem_ticket(c, ticket_id, node_id, now_ms)
        )

    # ------------------------------------------------------------------------------------------
    # peers

    async def touch_peer(self, node_id: str, now_ms: int) -> None:
        """Note that ``node_id`` was heard from at ``now_ms`` (never moves backwards)."""
        await self.run("touch_peer", lambda c: m.touch_peer(c, node_id, now_ms))

    async def last_seen(self, node_id: str) -> int | None:
        """When ``node_id`` was last heard from, or None."""
        return await self.run("last_seen", lambda c: m.last_seen(c, node_id))

    async def peers(self) -> list[PeerSeen]:
        """Every peer heard from, by node id."""
        return await self.run("peers", m.peers)


@asynccontextmanager
async def open_store(
    data_dir: Path,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    migrations: Sequence[str] = MIGRATIONS,
    run_inline: bool = False,
) -> AsyncIterator[Store]:
    """``async with open_store(data_dir) as store:`` opens ``<data_dir>/hive.sqlite3``."""
    store = await Store.open(
        data_dir / DB_FILE,
        busy_timeout_ms=busy_timeout_ms,
        migrations=migrations,
        run_inline=run_inline,
    )
    async with store:
        yield store


# ----------------------------------------------------------------------------------------------
# Opening (blocking; runs in the worker thread)


def _connect(path: Path, busy_timeout_ms: int, migrations: Sequence[str]) -> sqlite3.Connection:
    try:
        _prepare_file(path)
    except OSError as exc:
        raise StoreError("open", f"cannot create {path}: {exc}") from exc
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # used from trio's worker threads, one at a time
        )
    except sqlite3.Error as exc:
        raise translate("open", exc) from exc
    try:
        _configure(conn, path, busy_timeout_ms)
        try:
            before = migrate(conn, migrations)
        except sqlite3.Error as exc:
            raise translate("migrate", exc) from exc
        if before != len(migrations):
            log.info("store %s migrated from schema %d to %d", path, before, len(migrations))
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare_file(path: Path) -> None:
    """Create the database file with mode 0600 (and its directory with 0700) if missing;
    tighten the mode of an existing file and of its WAL side files when others can read them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    for file in (path, *(path.with_name(path.name + s) for s in _SIDE_FILES)):
        try:
            mode = file.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.warning("%s had mode %o; setting 600", file, mode)
            os.chmod(file, FILE_MODE)


def _set_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> object:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the lock: SQLite
    answers a mode change on a fresh file with "database is locked" at once, without waiting
    for the busy timeout, when a second connection opens the file at the same moment. Runs in
    the store's worker thread (or inline at open), so a short sleep blocks no event loop."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _configure(conn: sqlite3.Connection, path: Path, busy_timeout_ms: int) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        mode = _set_wal(conn, busy_timeout_ms)
        if str(mode).lower() != "wal":
            raise StoreError("open", f"{path}: journal mode is {mode!r}, WAL could not be set")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise translate("open", exc) from exc
