"""Ban tables (hive/store/schema.py ``V_BANS``): blocking SQL for the ban actor, run by
:meth:`~hive.store.Store.run`. Records are stored as their canonical CBOR bytes."""

from __future__ import annotations

import sqlite3

from hive.protocol.bans import Ban, Unban
from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER
from hive.store.membership import write_transaction


def save_ban(conn: sqlite3.Connection, digest: bytes, ban: Ban, now_ms: int) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO bans (digest, peer, record, received_ms) VALUES (?, ?, ?, ?)",
            (digest, ban.body.peer.hex(), canonical_bytes(ban), now_ms),
        )


def save_unban(conn: sqlite3.Connection, unban: Unban, now_ms: int) -> None:
    """The lift and the removal of the ban it lifts, in one transaction."""
    with write_transaction(conn):
        conn.execute("DELETE FROM bans WHERE digest = ?", (unban.body.ban_digest,))
        conn.execute(
            "INSERT OR IGNORE INTO unbans (ban_digest, record, received_ms) VALUES (?, ?, ?)",
            (unban.body.ban_digest, canonical_bytes(unban), now_ms),
        )


def delete_bans(conn: sqlite3.Connection, digests: list[bytes], unbans: list[bytes]) -> None:
    with write_transaction(conn):
        conn.executemany("DELETE FROM bans WHERE digest = ?", [(d,) for d in digests])
        conn.executemany("DELETE FROM unbans WHERE ban_digest = ?", [(d,) for d in unbans])


def load_all(conn: sqlite3.Connection) -> tuple[list[Ban], list[Unban], dict[str, str]]:
    bans = [
        CONVERTER.structure(cbor.decode(bytes(row[0])), Ban)
        for row in conn.execute("SELECT record FROM bans ORDER BY received_ms")
    ]
    unbans = [
        CONVERTER.structure(cbor.decode(bytes(row[0])), Unban)
        for row in conn.execute("SELECT record FROM unbans ORDER BY received_ms")
    ]
    overrides = dict(conn.execute("SELECT peer, note FROM ban_overrides").fetchall())
    return bans, unbans, overrides


def set_override(conn: sqlite3.Connection, peer: str, on: bool, now_ms: int, note: str) -> None:
    with write_transaction(conn):
        if on:
            conn.execute(
                "INSERT OR REPLACE INTO ban_overrides (peer, at_ms, note) VALUES (?, ?, ?)",
                (peer, now_ms, note),
            )
        else:
            conn.execute("DELETE FROM ban_overrides WHERE peer = ?", (peer,))
