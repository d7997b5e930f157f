"""Governance tables: proposals, the append-only ledger and the budget (blocking SQL).

Every change of a proposal is one ``BEGIN IMMEDIATE`` transaction that updates its row *and*
appends its ledger entry, guarded by the state the caller expects (so two deciders racing on
one proposal cannot both win). A reservation reads the budget, checks it with the pure rule
(:func:`hive.governance.budget.check`), and inserts the reservation in that same transaction;
a settlement turns the reservation into spent or released in one transaction with the
proposal's final state. A crash therefore leaves each execution either unreserved (never
started) or reserved (reconciled at the next start from the node's records), never half.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import attrs

from hive.governance.budget import DAY_MS as _DAY_MS
from hive.governance.budget import BudgetEntry, EntryState, Usage, check, usage
from hive.governance.kinds import KindSpec
from hive.governance.limits import Limits
from hive.governance.proposal import (
    Cost,
    Decision,
    Outcome,
    ProposalState,
    ProposalStatus,
    proposal_from_json,
)
from hive.store.membership import write_transaction

MAX_LEDGER_PAGE = 500


@attrs.frozen
class LedgerRow:
    seq: int
    at_ms: int
    proposal_id: str | None
    kind: str | None
    entry: str
    actor: str
    detail: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at_ms": self.at_ms,
            "proposal_id": self.proposal_id,
            "kind": self.kind,
            "entry": self.entry,
            "actor": self.actor,
            "detail": dict(self.detail),
        }


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _append(
    conn: sqlite3.Connection,
    at_ms: int,
    proposal_id: str | None,
    kind: str | None,
    entry: str,
    actor: str,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO ledger (at_ms, proposal_id, kind, entry, actor, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at_ms, proposal_id, kind, entry, actor, _dumps(dict(detail))),
    )


def append_ledger(
    conn: sqlite3.Connection,
    at_ms: int,
    entry: str,
    actor: str,
    detail: Mapping[str, Any],
    *,
    proposal_id: str | None = None,
    kind: str | None = None,
) -> None:
    """A ledger entry on its own (kill switch, limits in effect, a measured result)."""
    with write_transaction(conn):
        _append(conn, at_ms, proposal_id, kind, entry, actor, detail)


def _row_values(status: ProposalStatus) -> tuple[Any, ...]:
    return (
        status.state.value,
        None if status.decision is None else _dumps(status.decision.to_json()),
        None if status.outcome is None else _dumps(status.outcome.to_json()),
        status.held_by,
    )


def insert_proposal(conn: sqlite3.Connection, status: ProposalStatus, at_ms: int) -> None:
    p = status.proposal
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO proposals (id, kind, body, state, decision, outcome, held_by, "
            "created_ms, expires_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                p.id,
                p.kind,
                _dumps(p.to_json()),
                *_row_values(status),
                p.created_ms,
                p.expires_ms,
                at_ms,
            ),
        )
        _append(conn, at_ms, p.id, p.kind, "proposed", p.proposer, p.to_json())


def _update(
    conn: sqlite3.Connection, status: ProposalStatus, expect: ProposalState, at_ms: int
) -> bool:
    cur = conn.execute(
        "UPDATE proposals SET state = ?, decision = ?, outcome = ?, held_by = ?, updated_ms = ? "
        "WHERE id = ? AND state = ?",
        (*_row_values(status), at_ms, status.id, expect.value),
    )
    return cur.rowcount == 1


def transition(
    conn: sqlite3.Connection,
    status: ProposalStatus,
    expect: ProposalState,
    entry: str,
    actor: str,
    detail: Mapping[str, Any],
    at_ms: int,
) -> bool:
    """Store ``status`` if the row is still in ``expect``, with its ledger entry; False (nothing
    written) when another change got there first."""
    with write_transaction(conn):
        if not _update(conn, status, expect, at_ms):
            return False
        _append(conn, at_ms, status.id, status.proposal.kind, entry, actor, detail)
        return True


def budget_entries(conn: sqlite3.Connection, now_ms: int) -> list[BudgetEntry]:
    """Open reservations and every entry of the last 24 hours."""
    rows = conn.execute(
        "SELECT proposal_id, kind, at_ms, state, onchain_fee_sat, capital_sat, routing_fee_sat "
        "FROM budget WHERE state = 'reserved' OR at_ms > ? ORDER BY at_ms",
        (now_ms - _DAY_MS,),
    ).fetchall()
    return [
        BudgetEntry(
            proposal_id=r[0],
            kind=r[1],
            at_ms=r[2],
            state=EntryState(r[3]),
            cost=Cost(onchain_fee_sat=r[4], capital_sat=r[5], routing_fee_sat=r[6]),
        )
        for r in rows
    ]


def current_usage(conn: sqlite3.Connection, now_ms: int) -> Usage:
    return usage(budget_entries(conn, now_ms), now_ms)


def reserve(
    conn: sqlite3.Connection,
    status: ProposalStatus,
    expect: ProposalState,
    limits: Limits,
    spec: KindSpec,
    onchain_balance_sat: int | None,
    actor: str,
    now_ms: int,
    *,
    decided: Decision | None = None,
) -> str | None:
    """Reserve ``status``'s estimated cost and move it to EXECUTING, atomically.

    ``decided`` is a decision taken by this very step (autonomous mode), recorded in the same
    transaction. Returns None when reserved; else the name of the limit that refused (nothing
    written), or ``"state-changed"`` when the proposal is no longer in ``expect``.
    """
    p = status.proposal
    with write_transaction(conn):
        refused = check(
            limits, current_usage(conn, now_ms), p, spec, onchain_balance_sat=onchain_balance_sat
        )
        if refused is not None:
            return refused
        if not _update(conn, status, expect, now_ms):
            return "state-changed"
        if decided is not None:
            _append(conn, now_ms, p.id, p.kind, "decided", decided.by, decided.to_json())
        c = p.cost
        conn.execute(
            "INSERT INTO budget (proposal_id, kind, at_ms, state, onchain_fee_sat, capital_sat, "
            "routing_fee_sat, reserved) VALUES (?, ?, ?, 'reserved', ?, ?, ?, ?)",
            (
                p.id,
                p.kind,
                now_ms,
                c.onchain_fee_sat,
                c.capital_sat,
                c.routing_fee_sat,
                _dumps(c.to_json()),
            ),
        )
        _append(conn, now_ms, p.id, p.kind, "reserved", actor, {"cost": c.to_json()})
        return None


def settle(
    conn: sqlite3.Connection,
    status: ProposalStatus,
    actual: Cost,
    actor: str,
    detail: Mapping[str, Any],
    now_ms: int,
) -> bool:
    """Settle an EXECUTING proposal: ``status`` is SUCCEEDED (entry becomes spent at
    ``actual``) or FAILED (released, keeping what it still cost). False when it was not
    executing (already settled: settling twice never double-counts)."""
    state = "spent" if status.state is ProposalState.SUCCEEDED else "released"
    p = status.proposal
    with write_transaction(conn):
        if not _update(conn, status, ProposalState.EXECUTING, now_ms):
            return False
        cur = conn.execute(
            "UPDATE budget SET state = ?, onchain_fee_sat = ?, capital_sat = ?, "
            "routing_fee_sat = ?, settled_ms = ? WHERE proposal_id = ? AND state = 'reserved'",
            (
                state,
                actual.onchain_fee_sat,
                actual.capital_sat,
                actual.routing_fee_sat,
                now_ms,
                p.id,
            ),
        )
        if cur.rowcount != 1:
            raise sqlite3.IntegrityError(f"proposal {p.id} is executing without a reservation")
        _append(conn, now_ms, p.id, p.kind, "outcome", actor, dict(detail))
        return True


def _status(row: tuple[Any, ...]) -> ProposalStatus:
    body, state, decision, outcome, held_by = row
    d = None if decision is None else json.loads(decision)
    o = None if outcome is None else json.loads(outcome)
    return ProposalStatus(
        proposal=proposal_from_json(json.loads(body)),
        state=ProposalState(state),
        decision=None if d is None else Decision(d["approve"], d["by"], d["reason"], d["at_ms"]),
        outcome=None
        if o is None
        else Outcome(
            ok=o["ok"],
            cost=Cost.from_json(o["cost"]),
            error=o["error"],
            calls=tuple(o["calls"]),
            detail=o["detail"],
            at_ms=o["at_ms"],
        ),
        held_by=held_by,
    )


_COLUMNS = "body, state, decision, outcome, held_by"


def open_proposals(conn: sqlite3.Connection) -> list[ProposalStatus]:
    """Every proposal not final, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM proposals WHERE state IN ('pending', 'approved', 'executing') "
        "ORDER BY created_ms, id"
    ).fetchall()
    return [_status(r) for r in rows]


def load_status(conn: sqlite3.Connection, proposal_id: str) -> ProposalStatus | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
    return None if row is None else _status(row)


def reservation(conn: sqlite3.Connection, proposal_id: str) -> BudgetEntry | None:
    row = conn.execute(
        "SELECT proposal_id, kind, at_ms, state, onchain_fee_sat, capital_sat, routing_fee_sat "
        "FROM budget WHERE proposal_id = ?",
        (proposal_id,),
    ).fetchone()
    if row is None:
        return None
    return BudgetEntry(row[0], row[1], row[2], EntryState(row[3]), Cost(row[4], row[5], row[6]))


def _ledger_rows(rows: list[tuple[Any, ...]]) -> list[LedgerRow]:
    return [LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]


def ledger_page(
    conn: sqlite3.Connection,
    *,
    kind: str | None,
    since_ms: int | None,
    limit: int,
    before_seq: int | None = None,
) -> list[LedgerRow]:
    """Newest first; ``before_seq`` pages further back."""
    clauses: list[str] = []
    args: list[Any] = []
    if kind is not None:
        clauses.append("kind = ?")
        args.append(kind)
    if since_ms is not None:
        clauses.append("at_ms >= ?")
        args.append(since_ms)
    if before_seq is not None:
        clauses.append("seq < ?")
        args.append(before_seq)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT seq, at_ms, proposal_id, kind, entry, actor, detail FROM ledger {where} "
        "ORDER BY seq DESC LIMIT ?",
        (*args, min(limit, MAX_LEDGER_PAGE)),
    ).fetchall()
    return _ledger_rows(rows)


def ledger_for(conn: sqlite3.Connection, proposal_id: str) -> list[LedgerRow]:
    rows = conn.execute(
        "SELECT seq, at_ms, proposal_id, kind, entry, actor, detail FROM ledger "
        "WHERE proposal_id = ? ORDER BY seq",
        (proposal_id,),
    ).fetchall()
    return _ledger_rows(rows)


META_PAUSED = "governance-paused"
"""The kill switch: JSON ``{"reason", "by", "at_ms"}`` while paused, absent otherwise."""
META_LIMITS = "governance-limits"
"""The hard limits in effect at the last start (JSON), to record changes in the ledger."""


def set_paused(
    conn: sqlite3.Connection, paused: Mapping[str, Any] | None, actor: str, at_ms: int
) -> None:
    """Set (``paused`` given) or lift the kill switch, with its ledger entry, atomically."""
    with write_transaction(conn):
        if paused is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (META_PAUSED,))
            _append(conn, at_ms, None, None, "resumed", actor, {})
        else:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (META_PAUSED, _dumps(dict(paused)).encode()),
            )
            _append(conn, at_ms, None, None, "paused", actor, dict(paused))


def get_json_meta(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(bytes(row[0]))


def note_limits(conn: sqlite3.Connection, limits: Mapping[str, Any], at_ms: int) -> bool:
    """Remember the limits in effect; a change from the last start gets a ledger entry.
    True when they changed (or were recorded for the first time)."""
    with write_transaction(conn):
        before = get_json_meta(conn, META_LIMITS)
        if before == dict(limits):
            return False
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (META_LIMITS, _dumps(dict(limits)).encode()),
        )
        _append(conn, at_ms, None, None, "limits", "config", {"before": before, "now": limits})
        return True
