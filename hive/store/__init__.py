"""Persistence: one SQLite database per companion, ``<data_dir>/hive.sqlite3``.

Usage::

    async with open_store(config.data_dir) as store:
        if await store.add_record(record_hash, "member", node_id, body, now_ms):
            ...  # new record
        answer = await store.redeem_ticket(ticket_id, candidate_node_id, now_ms)

The file is created with mode 0600 and opened in WAL mode (``synchronous=NORMAL``,
``foreign_keys=ON``, a ``busy_timeout``). Every call runs in a worker thread behind a
``CapacityLimiter(1)``; see :class:`Store` for the cancellation guarantees. sqlite3 errors come
out as :class:`StoreError` naming the operation, or :class:`StoreUnavailable` (a
:class:`~hive.errors.TransientError`) for "database is locked" and disk I/O errors.

Layout:

- :mod:`hive.store.schema`: ``MIGRATIONS``, the append-only list of SQL scripts, and
  ``migrate``. ``PRAGMA user_version`` counts the migrations applied; a database newer than
  the code is refused.
- :mod:`hive.store.rows`: the frozen attrs rows returned (never raw tuples or dicts).
- :mod:`hive.store.membership`: the blocking SQL for the tables of migration 1 (meta, records,
  tickets, ticket_uses, peers).
- :mod:`hive.store.core`: :class:`Store` and :func:`open_store`.

Adding tables for a later concern (bans, locks, proposals, the ledger):

1. Append a SQL script to ``MIGRATIONS`` in :mod:`hive.store.schema` (never edit a shipped
   one). It runs once per database, atomically with its ``user_version`` bump.
2. Add its rows to :mod:`hive.store.rows` (or a rows module of its own) and its blocking SQL
   functions, taking a ``sqlite3.Connection``, to a new module such as ``hive/store/bans.py``;
   writers wrap their statements in :func:`hive.store.membership.write_transaction`.
3. Expose them as async methods on :class:`Store` that call ``self.run("operation", fn)``, or
   call ``store.run`` directly from the actor: it gives the thread, the limiter and the error
   translation.
4. Test the migration from the previous version (see ``tests/test_store.py``).

Well-known ``meta`` keys are the ``META_*`` constants below; values are opaque bytes that their
owners encode (e.g. CBOR).
"""

from __future__ import annotations

from hive.store.core import DB_FILE, DEFAULT_BUSY_TIMEOUT_MS, Store, open_store
from hive.store.errors import StoreError, StoreUnavailable
from hive.store.membership import write_transaction
from hive.store.rows import (
    RECORD_KINDS,
    PeerSeen,
    RecordKind,
    Redeem,
    RedeemReason,
    StoredRecord,
    TicketRow,
    TicketUse,
)
from hive.store.schema import MIGRATIONS

META_GENESIS = "genesis"
"""The hive's genesis record, encoded."""
META_OWN_MEMBER = "own-member"
"""This node's own signed member record, encoded."""
META_LAST_SEQ = "last-seq"
"""The last frame sequence number persisted (8 bytes, big-endian)."""
META_REPLAY_SNAPSHOT = "replay-snapshot"
"""The replay guard's snapshot (``ReplayGuard.snapshot()``), encoded."""

__all__ = [
    "DB_FILE",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "META_GENESIS",
    "META_LAST_SEQ",
    "META_OWN_MEMBER",
    "META_REPLAY_SNAPSHOT",
    "MIGRATIONS",
    "RECORD_KINDS",
    "PeerSeen",
    "RecordKind",
    "Redeem",
    "RedeemReason",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredRecord",
    "TicketRow",
    "TicketUse",
    "open_store",
    "write_transaction",
]
