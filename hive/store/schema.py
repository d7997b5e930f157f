"""The schema as an append-only list of migrations, and the code that applies them.

``PRAGMA user_version`` holds how many migrations a database has received. Migration ``i``
(1-based) is ``MIGRATIONS[i - 1]``; opening a database runs the missing ones in order, each in
its own ``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump, so a failed
migration leaves the database exactly at the previous version. Never edit or reorder a
migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hive.store.errors import StoreError

V1_MEMBERSHIP = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Signed membership records (member admissions and exits), append-only; rowid = arrival order.
CREATE TABLE records (
    hash      BLOB PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('member', 'exit')),
    subject   TEXT NOT NULL,
    body      BLOB NOT NULL,
    stored_ms INTEGER NOT NULL
);
CREATE INDEX records_subject ON records (subject);

-- Invite tickets this node issued; it is the single authority for their use count.
CREATE TABLE tickets (
    ticket_id  BLOB PRIMARY KEY,
    body       BLOB NOT NULL,
    issued_ms  INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL CHECK (expires_ms > issued_ms),
    max_uses   INTEGER NOT NULL CHECK (max_uses >= 1),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses)
);

CREATE TABLE ticket_uses (
    ticket_id BLOB NOT NULL REFERENCES tickets (ticket_id) ON DELETE CASCADE,
    node_id   TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, node_id)
);

CREATE TABLE peers (
    node_id      TEXT PRIMARY KEY,
    last_seen_ms INTEGER NOT NULL
);
"""

V_FLEET_CONTACT = """
-- Where each member can be reached (issue 13: members without a channel between them must find
-- each other again after a restart). source: 'join' (given to hive-join) or 'record' (published
-- in the member's state record).
CREATE TABLE member_addresses (
    node_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('join', 'record')),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (node_id, address, source)
);
-- The latest state record held of each member (its canonical CBOR), so the fleet view survives
-- a restart: a member unreachable since is shown stale, not forgotten.
CREATE TABLE fleet_states (
    node_id  TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    body     BLOB NOT NULL,
    heard_ms INTEGER NOT NULL
);
"""

V_REBALANCING = """
-- Member fee policy (issue 15): the fee our channels with a member had before the member
-- policy was applied, restored when the member leaves or is revoked.
CREATE TABLE member_fees (
    peer_id   TEXT PRIMARY KEY,
    base_msat INTEGER NOT NULL CHECK (base_msat >= 0),
    ppm       INTEGER NOT NULL CHECK (ppm >= 0),
    since_ms  INTEGER NOT NULL
);

-- Every circular rebalance we started; 'paying' rows are resolved from the node at start.
CREATE TABLE rebalances (
    id                   INTEGER PRIMARY KEY,
    label                TEXT NOT NULL UNIQUE,
    created_ms           INTEGER NOT NULL,
    need_scid            TEXT NOT NULL,
    in_peer              TEXT NOT NULL,
    out_peer             TEXT NOT NULL,
    amount_msat          INTEGER NOT NULL CHECK (amount_msat > 0),
    expected_income_msat INTEGER NOT NULL,
    cost_msat            INTEGER NOT NULL CHECK (cost_msat >= 0),
    route                TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('paying', 'succeeded', 'failed')),
    fee_paid_msat        INTEGER,
    failing_node         TEXT,
    reason               TEXT,
    finished_ms          INTEGER
);
CREATE INDEX rebalances_status ON rebalances (status);

-- Who provided and who consumed the liquidity of each settled rebalance (sum per member and
-- period: the contribution ratio of the reputation issue).
CREATE TABLE liquidity_shares (
    rebalance_id INTEGER NOT NULL REFERENCES rebalances (id),
    member       TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('provided', 'consumed')),
    amount_msat  INTEGER NOT NULL CHECK (amount_msat >= 0),
    fee_msat     INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (rebalance_id, member, role)
);
CREATE INDEX liquidity_shares_member ON liquidity_shares (member, at_ms);
"""

V_GOVERNANCE = """
-- Proposals and where each stands (hive/governance). body: the frozen Proposal as JSON.
CREATE TABLE proposals (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'executing', 'succeeded',
                                              'failed', 'rejected', 'expired')),
    decision   TEXT,
    outcome    TEXT,
    held_by    TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX proposals_state ON proposals (state);

-- The append-only ledger: every proposal, decision, reservation, execution, outcome and
-- kill-switch change, with who did it and why.
CREATE TABLE ledger (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    proposal_id TEXT,
    kind        TEXT,
    entry       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX ledger_proposal ON ledger (proposal_id);
CREATE INDEX ledger_kind ON ledger (kind, seq);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- One budget entry per execution: reserved at its start, then spent or released.
CREATE TABLE budget (
    proposal_id     TEXT PRIMARY KEY REFERENCES proposals (id),
    kind            TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('reserved', 'spent', 'released')),
    onchain_fee_sat INTEGER NOT NULL CHECK (onchain_fee_sat >= 0),
    capital_sat     INTEGER NOT NULL CHECK (capital_sat >= 0),
    routing_fee_sat INTEGER NOT NULL CHECK (routing_fee_sat >= 0),
    reserved        TEXT NOT NULL,
    settled_ms      INTEGER
);
CREATE INDEX budget_window ON budget (state, at_ms);
"""

V_INTENTS = """
-- Our own intent locks (hive/actors/opens/locks.py), written before each is announced and at each
-- state change, so a restart resumes or releases them; and the opens the planner started,
-- tracked to confirmation (hive/actors/opens/planner.py).
CREATE TABLE intents (
    intent_id  BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    amount_sat INTEGER NOT NULL,
    score      INTEGER NOT NULL,
    lease_ms   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX intents_state ON intents (state);

CREATE TABLE planned_opens (
    target      TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL,
    amount_sat  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    txid        TEXT NOT NULL DEFAULT '',
    unmanaged   INTEGER NOT NULL DEFAULT 0,
    updated_ms  INTEGER NOT NULL
);
"""


# Signed bans (issue 12): the ban book (records as canonical CBOR, digest as key), lifts
# (tombstones) and the operator's local overrides (peers never banned on this node).
V_BANS = """
CREATE TABLE bans (
    digest      BLOB PRIMARY KEY,
    peer        TEXT NOT NULL,
    record      BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE unbans (
    ban_digest  BLOB PRIMARY KEY,
    record      BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE ban_overrides (
    peer        TEXT PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    note        TEXT NOT NULL
);
"""

# Strategy gossip (issue 12): forwards per hour bucket (in_peer '' when not a member), the
# hours we observed throughout, our own commitments with their salt (revealed after a restart
# with the same report and salt), and the commitments and reports held with their verdicts.
V_STRATEGY = """
CREATE TABLE strategy_forwards (
    hour        INTEGER NOT NULL,
    in_peer     TEXT NOT NULL,
    out_peer    TEXT NOT NULL,
    in_msat     INTEGER NOT NULL,
    out_msat    INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (hour, in_peer, out_peer)
);
CREATE TABLE strategy_coverage (
    hour        INTEGER PRIMARY KEY
);
CREATE TABLE strategy_own (
    commitment  BLOB PRIMARY KEY,
    peer        TEXT NOT NULL,
    salt        BLOB NOT NULL,
    body        BLOB NOT NULL,
    commit_rec  BLOB NOT NULL,
    reveal_ms   INTEGER NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL
);
CREATE TABLE strategy_commits (
    digest      BLOB PRIMARY KEY,
    record      BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE strategy_reports (
    digest      BLOB PRIMARY KEY,
    record      BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    verdict     TEXT NOT NULL,
    checks      TEXT NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (
    V1_MEMBERSHIP,
    V_FLEET_CONTACT,
    V_GOVERNANCE,
    V_REBALANCING,
    V_BANS,
    V_INTENTS,
    V_STRATEGY,
)
"""Every migration, oldest first. Append only."""


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> int:
    """Bring the database up to ``len(migrations)``; return the version it had before.

    Each step reads ``user_version`` inside its own ``BEGIN IMMEDIATE`` transaction, so two
    connections opening a fresh file at once do not both run the same migration: the second
    waits for the write lock and then finds the work done. Raises :class:`StoreError` when the
    database is newer than ``migrations`` knows (a newer hive wrote it; older code could lose
    data). sqlite3 errors propagate for the caller to translate; a failing migration is rolled
    back whole. ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    known = len(migrations)
    before: int | None = None
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = user_version(conn)
            if before is None:
                before = found
            if found > known:
                raise StoreError(
                    "migrate",
                    f"database schema version {found} is newer than this hive knows ({known}); "
                    "run the newer hive version or restore a backup",
                )
            if found < known:
                for statement in split_statements(migrations[found]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {found + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        if found >= known:
            return before


def split_statements(script: str) -> list[str]:
    """The SQL statements of ``script``, split where SQLite itself sees a statement end.

    Semicolons inside string literals, comments and trigger bodies do not split (the check is
    :func:`sqlite3.complete_statement`). ``executescript`` cannot be used: it commits any open
    transaction before it starts.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_code(pending.removesuffix(";")):
        raise ValueError(f"migration ends with an incomplete statement: {pending.strip()!r}")
    return statements


def _has_code(sql: str) -> bool:
    """False when ``sql`` holds only whitespace, comments and semicolons."""
    for line in sql.splitlines():
        code = line.split("--", 1)[0].strip().strip(";").strip()
        if code:
            return True
    return False
