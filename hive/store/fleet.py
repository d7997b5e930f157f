"""Fleet contact tables: members' addresses and the latest state record of each member.
Blocking SQL over one connection, run by :meth:`hive.store.Store.run` in its worker thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import attrs

from hive.store.core import Store
from hive.store.membership import write_transaction

ADDRESS_SOURCES = ("join", "record")


@attrs.frozen
class StoredState:
    node_id: str
    version: int
    body: bytes
    heard_ms: int


def _set_addresses(
    conn: sqlite3.Connection, node_id: str, source: str, addresses: Sequence[str], now_ms: int
) -> None:
    with write_transaction(conn):
        conn.execute(
            "DELETE FROM member_addresses WHERE node_id = ? AND source = ?", (node_id, source)
        )
        conn.executemany(
            "INSERT INTO member_addresses (node_id, address, source, updated_ms) "
            "VALUES (?, ?, ?, ?)",
            [(node_id, address, source, now_ms) for address in addresses],
        )


async def set_addresses(
    store: Store, node_id: str, source: str, addresses: Sequence[str], now_ms: int
) -> None:
    """Replace what ``source`` says about where ``node_id`` can be reached."""
    if source not in ADDRESS_SOURCES:
        raise ValueError(f"unknown address source {source!r}")
    await store.run(
        "set_addresses", lambda c: _set_addresses(c, node_id, source, tuple(addresses), now_ms)
    )


async def addresses(store: Store) -> dict[str, dict[str, list[str]]]:
    """node id -> source -> addresses (sorted)."""

    def read(conn: sqlite3.Connection) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        rows = conn.execute(
            "SELECT node_id, source, address FROM member_addresses ORDER BY node_id, address"
        )
        for node_id, source, address in rows:
            out.setdefault(str(node_id), {}).setdefault(str(source), []).append(str(address))
        return out

    return await store.run("addresses", read)


async def forget_member(store: Store, node_id: str) -> None:
    """Drop a member's addresses and state (it left or was revoked)."""

    def forget(conn: sqlite3.Connection) -> None:
        with write_transaction(conn):
            conn.execute("DELETE FROM member_addresses WHERE node_id = ?", (node_id,))
            conn.execute("DELETE FROM fleet_states WHERE node_id = ?", (node_id,))

    await store.run("forget_member", forget)


async def save_state(store: Store, state: StoredState) -> None:
    """Keep ``state`` as the latest of its member (an older version never replaces a newer)."""

    def save(conn: sqlite3.Connection) -> None:
        with write_transaction(conn):
            conn.execute(
                "INSERT INTO fleet_states (node_id, version, body, heard_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, "
                "body = excluded.body, heard_ms = excluded.heard_ms "
                "WHERE excluded.version >= fleet_states.version",
                (state.node_id, state.version, state.body, state.heard_ms),
            )

    await store.run("save_state", save)


async def states(store: Store) -> list[StoredState]:
    def read(conn: sqlite3.Connection) -> list[StoredState]:
        rows = conn.execute(
            "SELECT node_id, version, body, heard_ms FROM fleet_states ORDER BY node_id"
        )
        return [StoredState(str(n), int(v), bytes(b), int(h)) for n, v, b, h in rows]

    return await store.run("states", read)


__all__ = [
    "ADDRESS_SOURCES",
    "StoredState",
    "addresses",
    "forget_member",
    "save_state",
    "set_addresses",
    "states",
]
