"""Rebalancing tables: member fees kept for restoring, rebalances, liquidity shares. Blocking
SQL over one connection (the :class:`~hive.store.Store` runs these in its worker thread via
:meth:`~hive.store.Store.run`; nothing here touches trio)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import attrs

from hive.fleet.rebalance import Share
from hive.node.port import FeePolicy, Route, RouteHop
from hive.store.membership import write_transaction


@attrs.frozen
class MemberFee:
    peer_id: str
    previous: FeePolicy
    since_ms: int


@attrs.frozen
class RebalanceRow:
    id: int
    label: str
    created_ms: int
    need_scid: str
    in_peer: str
    out_peer: str
    amount_msat: int
    expected_income_msat: int
    cost_msat: int
    route: Route
    status: str
    fee_paid_msat: int | None
    failing_node: str | None
    reason: str | None
    finished_ms: int | None

    def to_json(self) -> dict[str, object]:
        out = attrs.asdict(self, recurse=False)
        out["route"] = [attrs.asdict(h) for h in self.route.hops]
        return out


# --- member fees -----------------------------------------------------------------------------


def member_fees(conn: sqlite3.Connection) -> list[MemberFee]:
    rows = conn.execute(
        "SELECT peer_id, base_msat, ppm, since_ms FROM member_fees ORDER BY peer_id"
    ).fetchall()
    return [MemberFee(p, FeePolicy(base_msat=b, ppm=f), s) for p, b, f, s in rows]


def keep_member_fee(
    conn: sqlite3.Connection, peer_id: str, previous: FeePolicy, now_ms: int
) -> bool:
    """Store the fee ``peer_id``'s channels had before the member policy; a fee already kept
    is never overwritten (it is the operator's, not ours). True when stored now."""
    with write_transaction(conn):
        cur = conn.execute(
            "INSERT OR IGNORE INTO member_fees (peer_id, base_msat, ppm, since_ms) "
            "VALUES (?, ?, ?, ?)",
            (peer_id, previous.base_msat, previous.ppm, now_ms),
        )
        return cur.rowcount == 1


def drop_member_fee(conn: sqlite3.Connection, peer_id: str) -> None:
    with write_transaction(conn):
        conn.execute("DELETE FROM member_fees WHERE peer_id = ?", (peer_id,))


# --- rebalances ------------------------------------------------------------------------------


def _route_json(route: Route) -> str:
    return json.dumps([[h.node_id, h.short_channel_id, h.amount_msat, h.delay] for h in route.hops])


def _route_of(text: str) -> Route:
    return Route(
        hops=tuple(
            RouteHop(node_id=n, short_channel_id=c, amount_msat=a, delay=d)
            for n, c, a, d in json.loads(text)
        )
    )


_COLUMNS = (
    "id, label, created_ms, need_scid, in_peer, out_peer, amount_msat, expected_income_msat, "
    "cost_msat, route, status, fee_paid_msat, failing_node, reason, finished_ms"
)


def _row(r: Sequence[object]) -> RebalanceRow:
    values = list(r)
    values[9] = _route_of(str(values[9]))
    return RebalanceRow(*values)  # type: ignore[arg-type]


def start_rebalance(
    conn: sqlite3.Connection,
    *,
    label: str,
    now_ms: int,
    need_scid: str,
    in_peer: str,
    out_peer: str,
    amount_msat: int,
    expected_income_msat: int,
    route: Route,
) -> int:
    """Record a rebalance as 'paying' *before* the payment is sent (crash safety)."""
    with write_transaction(conn):
        cur = conn.execute(
            "INSERT INTO rebalances (label, created_ms, need_scid, in_peer, out_peer, "
            "amount_msat, expected_income_msat, cost_msat, route, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'paying')",
            (
                label,
                now_ms,
                need_scid,
                in_peer,
                out_peer,
                amount_msat,
                expected_income_msat,
                route.fee_msat,
                _route_json(route),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid


def finish_rebalance(
    conn: sqlite3.Connection,
    rebalance_id: int,
    *,
    succeeded: bool,
    now_ms: int,
    fee_paid_msat: int | None = None,
    failing_node: str | None = None,
    reason: str | None = None,
    shares: Sequence[Share] = (),
) -> None:
    """Close a 'paying' rebalance, with its liquidity shares, in one transaction."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE rebalances SET status = ?, fee_paid_msat = ?, failing_node = ?, reason = ?, "
            "finished_ms = ? WHERE id = ? AND status = 'paying'",
            (
                "succeeded" if succeeded else "failed",
                fee_paid_msat,
                failing_node,
                reason,
                now_ms,
                rebalance_id,
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO liquidity_shares "
            "(rebalance_id, member, role, amount_msat, fee_msat, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            [(rebalance_id, s.member, s.role, s.amount_msat, s.fee_msat, now_ms) for s in shares],
        )


def rebalances(
    conn: sqlite3.Connection, *, status: str | None = None, limit: int = 100
) -> list[RebalanceRow]:
    """Newest first."""
    if status is None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM rebalances ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM rebalances WHERE status = ? ORDER BY id DESC LIMIT ?",
            (status, limit),
        ).fetchall()
    return [_row(r) for r in rows]


def fees_spent_since(conn: sqlite3.Connection, since_ms: int) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(fee_paid_msat), 0) FROM rebalances "
        "WHERE status = 'succeeded' AND finished_ms >= ?",
        (since_ms,),
    ).fetchone()
    return int(row[0])


@attrs.frozen
class MemberTotals:
    member: str
    provided_msat: int
    consumed_msat: int
    fees_msat: int
    rebalances: int


def liquidity_totals(
    conn: sqlite3.Connection, since_ms: int = 0, until_ms: int | None = None
) -> list[MemberTotals]:
    """Per member, over [since_ms, until_ms): liquidity provided and consumed, fees, moves."""
    until = until_ms if until_ms is not None else 2**62
    rows = conn.execute(
        "SELECT member, "
        "SUM(CASE WHEN role = 'provided' THEN amount_msat ELSE 0 END), "
        "SUM(CASE WHEN role = 'consumed' THEN amount_msat ELSE 0 END), "
        "SUM(fee_msat), COUNT(DISTINCT rebalance_id) "
        "FROM liquidity_shares WHERE at_ms >= ? AND at_ms < ? GROUP BY member ORDER BY member",
        (since_ms, until),
    ).fetchall()
    return [MemberTotals(m, int(p), int(c), int(f), int(n)) for m, p, c, f, n in rows]


__all__ = [
    "MemberFee",
    "MemberTotals",
    "RebalanceRow",
    "drop_member_fee",
    "fees_spent_since",
    "finish_rebalance",
    "keep_member_fee",
    "liquidity_totals",
    "member_fees",
    "rebalances",
    "start_rebalance",
]
