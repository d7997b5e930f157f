"""Blocking SQL for the intent-lock and planned-open tables (migration ``V_INTENTS``); run
through :meth:`hive.store.Store.run`."""

from __future__ import annotations

import sqlite3

import attrs

from hive.store.membership import write_transaction


@attrs.frozen
class IntentRow:
    intent_id: bytes
    kind: str
    target: str
    amount_sat: int
    score: int
    lease_ms: int
    state: str
    reason: str
    created_ms: int
    updated_ms: int


@attrs.frozen
class PlannedOpenRow:
    target: str
    proposal_id: str
    amount_sat: int
    state: str
    txid: str
    unmanaged: bool
    updated_ms: int


def save_intent(conn: sqlite3.Connection, row: IntentRow) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO intents (intent_id, kind, target, amount_sat, score, lease_ms, state,"
            " reason, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (intent_id) DO UPDATE SET state = excluded.state,"
            " reason = excluded.reason, updated_ms = excluded.updated_ms",
            attrs.astuple(row),
        )


def live_intents(conn: sqlite3.Connection) -> list[IntentRow]:
    rows = conn.execute(
        "SELECT intent_id, kind, target, amount_sat, score, lease_ms, state, reason, created_ms,"
        " updated_ms FROM intents WHERE state IN ('holding', 'executing') ORDER BY created_ms"
    ).fetchall()
    return [IntentRow(*row) for row in rows]


def recent_intents(conn: sqlite3.Connection, limit: int) -> list[IntentRow]:
    rows = conn.execute(
        "SELECT intent_id, kind, target, amount_sat, score, lease_ms, state, reason, created_ms,"
        " updated_ms FROM intents ORDER BY updated_ms DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [IntentRow(*row) for row in rows]


def prune_intents(conn: sqlite3.Connection, before_ms: int) -> int:
    with write_transaction(conn):
        cur = conn.execute(
            "DELETE FROM intents WHERE state NOT IN ('holding', 'executing') AND updated_ms < ?",
            (before_ms,),
        )
        return cur.rowcount


def save_open(conn: sqlite3.Connection, row: PlannedOpenRow) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO planned_opens (target, proposal_id, amount_sat, state, txid, unmanaged,"
            " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET"
            " proposal_id = excluded.proposal_id, amount_sat = excluded.amount_sat,"
            " state = excluded.state, txid = excluded.txid, unmanaged = excluded.unmanaged,"
            " updated_ms = excluded.updated_ms",
            (
                row.target,
                row.proposal_id,
                row.amount_sat,
                row.state,
                row.txid,
                int(row.unmanaged),
                row.updated_ms,
            ),
        )


def planned_opens(conn: sqlite3.Connection) -> list[PlannedOpenRow]:
    rows = conn.execute(
        "SELECT target, proposal_id, amount_sat, state, txid, unmanaged, updated_ms"
        " FROM planned_opens ORDER BY updated_ms"
    ).fetchall()
    return [PlannedOpenRow(t, p, a, s, x, bool(u), m) for t, p, a, s, x, u, m in rows]


def delete_open(conn: sqlite3.Connection, target: str) -> None:
    with write_transaction(conn):
        conn.execute("DELETE FROM planned_opens WHERE target = ?", (target,))
