"""Strategy gossip tables (hive/store/schema.py ``V_STRATEGY``): blocking SQL for the strategy
actor, run by :meth:`~hive.store.Store.run`. Records are stored as canonical CBOR bytes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.strategy import ReportBody, StrategyCommit, StrategyReport
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER
from hive.store.membership import write_transaction

HOUR_MS = 3_600_000
Bucket = tuple[int, str, str]  # hour, in_peer ('' when not a member), out_peer


@attrs.frozen
class OwnRow:
    commitment: bytes
    peer: str
    salt: bytes
    body: ReportBody
    commit: StrategyCommit
    reveal_ms: int
    state: str  # pending, revealed, withdrawn
    note: str
    created_ms: int


@attrs.frozen
class HeldReport:
    report: StrategyReport
    received_ms: int
    verdict: str
    checks: list[dict[str, str]]


def _decode(raw: bytes, cls: type[Any]) -> Any:
    return CONVERTER.structure(cbor.decode(bytes(raw)), cls)


# --- observations ----------------------------------------------------------------------------


def add_observations(
    conn: sqlite3.Connection,
    buckets: dict[Bucket, list[int]],
    covered: Sequence[int],
    keep_from_hour: int,
) -> None:
    """Add forward totals per bucket and the hours observed throughout; drop older hours."""
    with write_transaction(conn):
        conn.executemany(
            "INSERT INTO strategy_forwards (hour, in_peer, out_peer, in_msat, out_msat, count) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, in_peer, out_peer) DO UPDATE SET "
            "in_msat = in_msat + excluded.in_msat, out_msat = out_msat + excluded.out_msat, "
            "count = count + excluded.count",
            [(h, i, o, v[0], v[1], v[2]) for (h, i, o), v in buckets.items()],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO strategy_coverage (hour) VALUES (?)", [(h,) for h in covered]
        )
        conn.execute("DELETE FROM strategy_forwards WHERE hour < ?", (keep_from_hour,))
        conn.execute("DELETE FROM strategy_coverage WHERE hour < ?", (keep_from_hour,))


def first_covered_hour(conn: sqlite3.Connection, from_hour: int) -> int | None:
    row = conn.execute(
        "SELECT MIN(hour) FROM strategy_coverage WHERE hour >= ?", (from_hour,)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def covered(conn: sqlite3.Connection, from_hour: int, to_hour: int) -> bool:
    """Whether every hour in [from_hour, to_hour] was observed throughout."""
    row = conn.execute(
        "SELECT COUNT(*) FROM strategy_coverage WHERE hour >= ? AND hour <= ?",
        (from_hour, to_hour),
    ).fetchone()
    return int(row[0]) == to_hour - from_hour + 1


def forwards_since(
    conn: sqlite3.Connection, from_hour: int
) -> list[tuple[str, str, int, int, int]]:
    """(in_peer, out_peer, in_msat, out_msat, count) summed over hours >= from_hour."""
    rows = conn.execute(
        "SELECT in_peer, out_peer, SUM(in_msat), SUM(out_msat), SUM(count) "
        "FROM strategy_forwards WHERE hour >= ? GROUP BY in_peer, out_peer",
        (from_hour,),
    ).fetchall()
    return [(str(i), str(o), int(a), int(b), int(c)) for i, o, a, b, c in rows]


def sent_to(conn: sqlite3.Connection, out_peer: str, from_hour: int, to_hour: int) -> int:
    """What our forwards delivered out through our channels with ``out_peer``, in msat."""
    row = conn.execute(
        "SELECT COALESCE(SUM(out_msat), 0) FROM strategy_forwards "
        "WHERE out_peer = ? AND hour >= ? AND hour <= ?",
        (out_peer, from_hour, to_hour),
    ).fetchone()
    return int(row[0])


# --- our own commitments ---------------------------------------------------------------------


def save_own(conn: sqlite3.Connection, row: OwnRow, commit_digest: bytes) -> None:
    """Our commitment, its salt and report, and the commit record, in one transaction."""
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO strategy_own (commitment, peer, salt, body, commit_rec, reveal_ms, "
            "state, note, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.commitment,
                row.peer,
                row.salt,
                canonical_bytes(row.body),
                canonical_bytes(row.commit),
                row.reveal_ms,
                row.state,
                row.note,
                row.created_ms,
            ),
        )
        _insert_commit(conn, commit_digest, row.commit, row.created_ms)


def set_own_state(conn: sqlite3.Connection, commitment: bytes, state: str, note: str) -> None:
    with write_transaction(conn):
        conn.execute(
            "UPDATE strategy_own SET state = ?, note = ? WHERE commitment = ?",
            (state, note, commitment),
        )


def reveal_own(
    conn: sqlite3.Connection, commitment: bytes, digest: bytes, report: StrategyReport, now_ms: int
) -> None:
    """Our signed reveal and the end of the pending state, in one transaction."""
    with write_transaction(conn):
        _insert_report(conn, digest, report, now_ms, "own", [])
        conn.execute(
            "UPDATE strategy_own SET state = 'revealed' WHERE commitment = ?", (commitment,)
        )


def load_own(conn: sqlite3.Connection) -> list[OwnRow]:
    rows = conn.execute(
        "SELECT commitment, peer, salt, body, commit_rec, reveal_ms, state, note, created_ms "
        "FROM strategy_own ORDER BY created_ms"
    ).fetchall()
    return [
        OwnRow(
            bytes(c), str(p), bytes(s), _decode(b, ReportBody), _decode(r, StrategyCommit),
            int(t), str(st), str(n), int(at),
        )
        for c, p, s, b, r, t, st, n, at in rows
    ]  # fmt: skip


def forget_own(conn: sqlite3.Connection, before_ms: int) -> None:
    with write_transaction(conn):
        conn.execute(
            "DELETE FROM strategy_own WHERE state != 'pending' AND created_ms < ?", (before_ms,)
        )


# --- held records ----------------------------------------------------------------------------


def _insert_commit(
    conn: sqlite3.Connection, digest: bytes, commit: StrategyCommit, now_ms: int
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO strategy_commits (digest, record, received_ms) VALUES (?, ?, ?)",
        (digest, canonical_bytes(commit), now_ms),
    )


def _insert_report(
    conn: sqlite3.Connection,
    digest: bytes,
    report: StrategyReport,
    now_ms: int,
    verdict: str,
    checks: list[dict[str, str]],
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO strategy_reports (digest, record, received_ms, verdict, checks) "
        "VALUES (?, ?, ?, ?, ?)",
        (digest, canonical_bytes(report), now_ms, verdict, json.dumps(checks)),
    )


def save_commit(
    conn: sqlite3.Connection, digest: bytes, commit: StrategyCommit, now_ms: int
) -> None:
    with write_transaction(conn):
        _insert_commit(conn, digest, commit, now_ms)


def save_report(
    conn: sqlite3.Connection, digest: bytes, report: StrategyReport, now_ms: int, verdict: str
) -> None:
    with write_transaction(conn):
        _insert_report(conn, digest, report, now_ms, verdict, [])


def set_verdict(
    conn: sqlite3.Connection, digest: bytes, verdict: str, checks: list[dict[str, str]]
) -> None:
    with write_transaction(conn):
        conn.execute(
            "UPDATE strategy_reports SET verdict = ?, checks = ? WHERE digest = ?",
            (verdict, json.dumps(checks), digest),
        )


def delete_records(
    conn: sqlite3.Connection, commits: Iterable[bytes], reports: Iterable[bytes]
) -> None:
    with write_transaction(conn):
        conn.executemany("DELETE FROM strategy_commits WHERE digest = ?", [(d,) for d in commits])
        conn.executemany("DELETE FROM strategy_reports WHERE digest = ?", [(d,) for d in reports])


def load_held(conn: sqlite3.Connection) -> tuple[list[StrategyCommit], list[HeldReport]]:
    commits = [
        _decode(row[0], StrategyCommit)
        for row in conn.execute("SELECT record FROM strategy_commits ORDER BY received_ms")
    ]
    reports = [
        HeldReport(_decode(r, StrategyReport), int(at), str(v), json.loads(c))
        for r, at, v, c in conn.execute(
            "SELECT record, received_ms, verdict, checks FROM strategy_reports ORDER BY received_ms"
        )
    ]
    return commits, reports
