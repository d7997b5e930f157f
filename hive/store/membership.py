"""Membership tables: blocking SQL over one connection (the :class:`~hive.store.Store` runs
these in its worker thread; nothing here touches trio).

Every writer opens its own ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock up
front, so a read-then-write (the ticket redemption) cannot interleave with another writer, in
this process or another one, and a waiting writer is served by ``busy_timeout`` instead of
failing halfway through.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from hive.store.rows import (
    RECORD_KINDS,
    PeerSeen,
    RecordKind,
    Redeem,
    StoredRecord,
    TicketRow,
    TicketUse,
)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (cancellation cannot
    reach here: the worker thread always runs to the end of the transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


# ----------------------------------------------------------------------------------------------
# meta


def get_meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else bytes(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: bytes) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, bytes(value)),
        )


def delete_meta(conn: sqlite3.Connection, key: str) -> bool:
    with write_transaction(conn):
        return conn.execute("DELETE FROM meta WHERE key = ?", (key,)).rowcount > 0


# ----------------------------------------------------------------------------------------------
# records


def add_record(
    conn: sqlite3.Connection, hash: bytes, kind: str, subject: str, body: bytes, now_ms: int
) -> bool:
    if kind not in RECORD_KINDS:
        raise ValueError(f"record kind must be one of {sorted(RECORD_KINDS)}, got {kind!r}")
    with write_transaction(conn):
        cursor = conn.execute(
            "INSERT INTO records (hash, kind, subject, body, stored_ms) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            (bytes(hash), kind, subject, bytes(body), now_ms),
        )
        return cursor.rowcount == 1


def delete_record(conn: sqlite3.Connection, hash: bytes) -> bool:
    with write_transaction(conn):
        cursor = conn.execute("DELETE FROM records WHERE hash = ?", (bytes(hash),))
        return cursor.rowcount == 1


def clear_hive(conn: sqlite3.Connection, meta_keys: tuple[str, ...]) -> None:
    """Forget the hive: its records, tickets and the given meta keys, in one transaction."""
    with write_transaction(conn):
        conn.execute("DELETE FROM records")
        conn.execute("DELETE FROM ticket_uses")
        conn.execute("DELETE FROM tickets")
        conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in meta_keys])


def adopt_hive(
    conn: sqlite3.Connection,
    meta: dict[str, bytes],
    rows: list[tuple[bytes, str, str, bytes]],
    now_ms: int,
    *,
    forget_tickets: bool,
    forget_meta: tuple[str, ...] = (),
) -> None:
    """Replace the hive's records with ``rows`` (hash, kind, subject, body) and set ``meta``,
    in one transaction: a join or a genesis is stored whole or not at all. With
    ``forget_tickets`` the tickets of an earlier hive go too; ``forget_meta`` keys are removed.
    """
    for _hash, kind, _subject, _body in rows:
        if kind not in RECORD_KINDS:
            raise ValueError(f"record kind must be one of {sorted(RECORD_KINDS)}, got {kind!r}")
    with write_transaction(conn):
        conn.execute("DELETE FROM records")
        if forget_tickets:
            conn.execute("DELETE FROM ticket_uses")
            conn.execute("DELETE FROM tickets")
        conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in forget_meta])
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(key, bytes(value)) for key, value in meta.items()],
        )
        conn.executemany(
            "INSERT INTO records (hash, kind, subject, body, stored_ms) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            [(bytes(h), k, subj, bytes(b), now_ms) for h, k, subj, b in rows],
        )


def records(conn: sqlite3.Connection) -> list[StoredRecord]:
    rows = conn.execute(
        "SELECT hash, kind, subject, body, stored_ms FROM records ORDER BY rowid"
    ).fetchall()
    return [StoredRecord(bytes(h), _kind(k), s, bytes(b), ms) for h, k, s, b, ms in rows]


def _kind(value: str) -> RecordKind:
    if value == "member":
        return "member"
    if value == "exit":
        return "exit"
    raise sqlite3.DataError(f"records.kind holds {value!r}, outside the CHECK constraint")


# ----------------------------------------------------------------------------------------------
# tickets

_TICKET_COLUMNS = "ticket_id, body, issued_ms, expires_ms, max_uses, uses"


def add_ticket(
    conn: sqlite3.Connection,
    ticket_id: bytes,
    body: bytes,
    issued_ms: int,
    expires_ms: int,
    max_uses: int,
) -> None:
    with write_transaction(conn):
        conn.execute(
            f"INSERT INTO tickets ({_TICKET_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0)",
            (bytes(ticket_id), bytes(body), issued_ms, expires_ms, max_uses),
        )


def tickets(conn: sqlite3.Connection) -> list[TicketRow]:
    rows = conn.execute(f"SELECT {_TICKET_COLUMNS} FROM tickets ORDER BY rowid").fetchall()
    return [TicketRow(bytes(t), bytes(b), i, e, m, u) for t, b, i, e, m, u in rows]


def ticket(conn: sqlite3.Connection, ticket_id: bytes) -> TicketRow | None:
    row = conn.execute(
        f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE ticket_id = ?", (bytes(ticket_id),)
    ).fetchone()
    if row is None:
        return None
    t, b, i, e, m, u = row
    return TicketRow(bytes(t), bytes(b), i, e, m, u)


def ticket_uses(conn: sqlite3.Connection, ticket_id: bytes) -> list[TicketUse]:
    rows = conn.execute(
        "SELECT ticket_id, node_id, at_ms FROM ticket_uses WHERE ticket_id = ? ORDER BY rowid",
        (bytes(ticket_id),),
    ).fetchall()
    return [TicketUse(bytes(t), n, at) for t, n, at in rows]


def redeem_ticket(conn: sqlite3.Connection, ticket_id: bytes, node_id: str, now_ms: int) -> Redeem:
    """Count one use of ``ticket_id`` by ``node_id`` at ``now_ms``, atomically.

    Order of the checks: unknown ticket; a node that already redeemed it is granted again
    (idempotent, even after expiry or exhaustion: its claim was granted before); expired
    (``now_ms >= expires_ms``); exhausted (``uses >= max_uses``); else granted.
    """
    key = bytes(ticket_id)
    with write_transaction(conn):
        row = conn.execute(
            "SELECT expires_ms, max_uses, uses FROM tickets WHERE ticket_id = ?", (key,)
        ).fetchone()
        if row is None:
            return Redeem(granted=False, uses=0, reason="unknown-ticket")
        expires_ms, max_uses, uses = row
        again = conn.execute(
            "SELECT 1 FROM ticket_uses WHERE ticket_id = ? AND node_id = ?", (key, node_id)
        ).fetchone()
        if again is not None:
            (use,) = conn.execute(
                "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ? AND rowid <= "
                "(SELECT rowid FROM ticket_uses WHERE ticket_id = ? AND node_id = ?)",
                (key, key, node_id),
            ).fetchone()
            return Redeem(
                granted=True, uses=uses, reason="already-redeemed-by-this-node", use=int(use)
            )
        if now_ms >= expires_ms:
            return Redeem(granted=False, uses=uses, reason="expired")
        if uses >= max_uses:
            return Redeem(granted=False, uses=uses, reason="exhausted")
        conn.execute(
            "INSERT INTO ticket_uses (ticket_id, node_id, at_ms) VALUES (?, ?, ?)",
            (key, node_id, now_ms),
        )
        conn.execute("UPDATE tickets SET uses = uses + 1 WHERE ticket_id = ?", (key,))
        return Redeem(granted=True, uses=uses + 1, reason="granted", use=uses + 1)


# ----------------------------------------------------------------------------------------------
# peers


def touch_peer(conn: sqlite3.Connection, node_id: str, now_ms: int) -> None:
    """Record that ``node_id`` was heard from at ``now_ms``; the time never moves backwards."""
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO peers (node_id, last_seen_ms) VALUES (?, ?) "
            "ON CONFLICT (node_id) DO UPDATE "
            "SET last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            (node_id, now_ms),
        )


def last_seen(conn: sqlite3.Connection, node_id: str) -> int | None:
    row = conn.execute("SELECT last_seen_ms FROM peers WHERE node_id = ?", (node_id,)).fetchone()
    return None if row is None else int(row[0])


def peers(conn: sqlite3.Connection) -> list[PeerSeen]:
    rows = conn.execute("SELECT node_id, last_seen_ms FROM peers ORDER BY node_id").fetchall()
    return [PeerSeen(n, ms) for n, ms in rows]
