"""Reservation arithmetic over the real SQLite store: approve, reserve, succeed, fail, crash
and restart at random; spent + reserved never exceeds a cap and no reservation is lost."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hive.governance.budget import CATEGORIES, DAY_MS, HOUR_MS, EntryState, check, usage
from hive.governance.kinds import OPEN_CHANNEL, REBALANCE, SET_FEE
from hive.governance.limits import Limits
from hive.governance.proposal import Cost, Proposal, ProposalState, ProposalStatus
from hive.store import governance as sql
from hive.store.schema import MIGRATIONS, migrate

S = ProposalState
KINDS = {k.name: k for k in (OPEN_CHANNEL, REBALANCE, SET_FEE)}
LIMITS = Limits(
    daily_onchain_fee_sat=10_000,
    action_onchain_fee_sat=6_000,
    daily_capital_sat=3_000_000,
    action_capital_sat=2_000_000,
    daily_routing_fee_sat=3_000,
    action_routing_fee_sat=2_000,
    max_rebalance_ppm=1_000,
    actions_per_hour=3,
    actions_per_day=8,
    min_confidence_pct=0,
    onchain_reserve_sat=100_000,
)
PEER = "02" + "11" * 32


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    # Restarts here close and reopen the file (the process dies, the OS keeps the file); power
    # loss is not modelled, so no fsync is needed (the SIGKILL test runs the real Store).
    conn.execute("PRAGMA synchronous = OFF")
    migrate(conn, MIGRATIONS)
    return conn


costs = st.builds(
    Cost,
    onchain_fee_sat=st.integers(0, 7_000),
    capital_sat=st.integers(0, 2_500_000),
    routing_fee_sat=st.integers(0, 2_500),
    ppm=st.integers(0, 1_500),
)


class BudgetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="budget-machine-"))
        self.conn = connect(self.dir / "hive.sqlite3")
        self.now = 1_761_350_400_000
        self.count = 0
        self.ever_reserved: set[str] = set()
        self.ledger_rows = 0

    def teardown(self) -> None:
        self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _open(self) -> list[ProposalStatus]:
        return sql.open_proposals(self.conn)

    def _in(self, *states: ProposalState) -> list[ProposalStatus]:
        return [s for s in self._open() if s.state in states]

    @rule(kind=st.sampled_from(sorted(KINDS)), cost=costs)
    def submit(self, kind: str, cost: Cost) -> None:
        self.count += 1
        p = Proposal(
            id=f"p-{self.count:010x}",
            kind=kind,
            params={"peer": PEER, "feerate_perkw": 1000},
            reason="machine",
            evidence={},
            cost=cost,
            expected_value_sat=0,
            confidence=1.0,
            proposer="machine",
            target=PEER,
            created_ms=self.now,
            expires_ms=self.now + DAY_MS,
        )
        sql.insert_proposal(self.conn, ProposalStatus(p, S.PENDING), self.now)

    @precondition(lambda self: self._in(S.PENDING))
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        status = data.draw(st.sampled_from(self._in(S.PENDING)))
        new = ProposalStatus(status.proposal, S.APPROVED)
        assert sql.transition(self.conn, new, S.PENDING, "decided", "op", {}, self.now)
        # The same change a second time loses: it was no longer pending.
        assert not sql.transition(self.conn, new, S.PENDING, "decided", "op", {}, self.now)

    @precondition(lambda self: self._in(S.PENDING, S.APPROVED))
    @rule(data=st.data(), balance=st.integers(0, 10_000_000))
    def reserve(self, data: st.DataObject, balance: int) -> None:
        status = data.draw(st.sampled_from(self._in(S.PENDING, S.APPROVED)))
        spec = KINDS[status.proposal.kind]
        before = usage(sql.budget_entries(self.conn, self.now), self.now)
        expected = check(LIMITS, before, status.proposal, spec, onchain_balance_sat=balance)
        executing = ProposalStatus(status.proposal, S.EXECUTING)
        refused = sql.reserve(
            self.conn, executing, status.state, LIMITS, spec, balance, "machine", self.now
        )
        assert refused == expected
        if refused is None:
            self.ever_reserved.add(status.id)

    def _settle(self, data: st.DataObject, ok: bool) -> None:
        status = data.draw(st.sampled_from(self._in(S.EXECUTING)))
        reserved = status.proposal.cost
        # Executors never cost more than they reserved; a failure may still cost something.
        actual = Cost(**{c: data.draw(st.integers(0, getattr(reserved, c))) for c in CATEGORIES})
        final = ProposalStatus(status.proposal, S.SUCCEEDED if ok else S.FAILED)
        assert sql.settle(self.conn, final, actual, "machine", {}, self.now)
        assert not sql.settle(self.conn, final, actual, "machine", {}, self.now)  # no double count

    @precondition(lambda self: self._in(S.EXECUTING))
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        self._settle(data, True)

    @precondition(lambda self: self._in(S.EXECUTING))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        self._settle(data, False)

    @rule()
    def restart(self) -> None:
        """The process dies between any two transactions and starts again on the same file."""
        self.conn.close()
        self.conn = connect(self.dir / "hive.sqlite3")

    @rule(ms=st.integers(0, 30 * HOUR_MS))
    def advance(self, ms: int) -> None:
        self.now += ms

    @invariant()
    def spent_plus_reserved_within_every_cap(self) -> None:
        used = usage(sql.budget_entries(self.conn, self.now), self.now)
        for c in CATEGORIES:
            assert used.used(c) <= getattr(LIMITS, "daily_" + c), c
        for kind in KINDS:
            assert used.actions_hour.get(kind, 0) <= LIMITS.actions_per_hour
            assert used.actions_day.get(kind, 0) <= LIMITS.actions_per_day

    @invariant()
    def no_reservation_lost_or_orphaned(self) -> None:
        executing = {s.id for s in self._in(S.EXECUTING)}
        rows = self.conn.execute("SELECT proposal_id, state FROM budget").fetchall()
        reserved = {pid for pid, state in rows if state == EntryState.RESERVED.value}
        assert reserved == executing
        assert {pid for pid, _ in rows} == self.ever_reserved
        finals = dict(
            self.conn.execute(
                "SELECT id, state FROM proposals WHERE state IN ('succeeded', 'failed')"
            ).fetchall()
        )
        for pid, state in rows:
            if state == "spent":
                assert finals[pid] == "succeeded"
            elif state == "released":
                assert finals[pid] == "failed"

    @invariant()
    def ledger_only_grows(self) -> None:
        (rows,) = self.conn.execute("SELECT COUNT(*) FROM ledger").fetchone()
        assert rows >= self.ledger_rows
        self.ledger_rows = rows


TestBudgetMachine = BudgetMachine.TestCase
TestBudgetMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_the_ledger_refuses_updates_and_deletes(tmp_path: Path) -> None:
    conn = connect(tmp_path / "hive.sqlite3")
    sql.append_ledger(conn, 1, "paused", "operator", {"reason": "x"})
    for statement in ("UPDATE ledger SET actor = 'someone else'", "DELETE FROM ledger"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()
