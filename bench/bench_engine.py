"""Benchmark the decision engine: proposals through the whole pipeline, the reservation
transaction, and ledger reads, with SQLite on disk (WAL, the Store's worker thread).

Usage: .venv/bin/python bench/bench_engine.py [--proposals 300] [--ledger 10000]

Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import trio

from hive.actors.governance.engine import Engine
from hive.actors.governance.executors import register_builtin
from hive.config import DecisionConfig, Governance
from hive.governance import Cost, Draft
from hive.governance.kinds import SET_FEE
from hive.governance.limits import Limits
from hive.governance.proposal import Proposal, ProposalState, ProposalStatus
from hive.node.sim import SimNetwork
from hive.node.sim.testing import line_graph
from hive.store import governance as sql
from hive.store import open_store

OPEN = Limits(actions_per_hour=1_000, actions_per_day=10_000, min_confidence_pct=0)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def pipeline(n: int, data: Path) -> None:
    """Submit n set-fee proposals in autonomous mode; each is recorded, reserved, executed on
    the simulator and settled: three transactions (record, decide + reserve, settle)."""
    net = SimNetwork(line_graph(3), seed=1)
    me = net.add_node("me", onchain_sat=10_000_000)
    peer = net.graph.node_ids[0]
    await me.connect(peer)
    await me.open_channel(peer, 1_000_000)
    async with open_store(data) as store, trio.open_nursery() as nursery:
        await nursery.start(net.run)
        engine = Engine(
            node=me,
            store=store,
            config=DecisionConfig(limits=OPEN),
            mode=Governance.AUTONOMOUS,
            node_id=me.node_id,
            alias="me",
            now_ms=now_ms,
        )
        register_builtin(engine, me)
        await engine.load()
        await nursery.start(engine.run)
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            draft = Draft(
                kind="set-fee",
                params={"peer": peer, "base_msat": 0, "ppm": i % 500},
                reason="bench",
                cost=Cost(),
                proposer="bench",
            )
            status = await engine.submit(draft)
            await engine.wait_final(status.id)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    print(f"pipeline: {n} proposals submit->autonomous->executed->settled in {elapsed:.2f} s")
    print(
        f"  {n / elapsed:,.0f} proposals/s; latency median "
        f"{statistics.median(latencies) * 1000:.1f} ms, p95 "
        f"{sorted(latencies)[int(0.95 * n)] * 1000:.1f} ms"
    )


async def reservations(n: int, data: Path) -> None:
    """reserve + settle transactions alone (the budget rule over the last 24 h of entries)."""
    async with open_store(data) as store:
        t = now_ms()
        statuses = []
        for i in range(n):
            p = Proposal(
                f"p-{i:010x}",
                "set-fee",
                {},
                "bench",
                {},
                Cost(),
                0,
                1.0,
                "bench",
                None,
                t,
                t + 86_400_000,
            )
            status = ProposalStatus(p, ProposalState.PENDING)
            await store.run("insert", lambda c, s=status: sql.insert_proposal(c, s, t))
            statuses.append(status)
        start = time.perf_counter()
        for status in statuses:
            executing = ProposalStatus(status.proposal, ProposalState.EXECUTING)
            done = ProposalStatus(status.proposal, ProposalState.SUCCEEDED)
            await store.run(
                "reserve",
                lambda c, e=executing: sql.reserve(
                    c, e, ProposalState.PENDING, OPEN, SET_FEE, None, "bench", now_ms()
                ),
            )
            await store.run("settle", lambda c, d=done: sql.settle(c, d, Cost(), "b", {}, now_ms()))
        elapsed = time.perf_counter() - start
    print(
        f"reserve+settle: {n} pairs in {elapsed:.2f} s, {elapsed / n * 1e3:.2f} ms per pair "
        f"(with {n} budget entries in the window by the end)"
    )


async def ledger(n: int, data: Path) -> None:
    async with open_store(data) as store:
        rng = random.Random(1)
        kinds = ["open-channel", "set-fee", "rebalance"]

        def fill(c: object) -> None:
            import sqlite3

            assert isinstance(c, sqlite3.Connection)
            c.execute("BEGIN IMMEDIATE")
            for i in range(n):
                c.execute(
                    "INSERT INTO ledger (at_ms, proposal_id, kind, entry, actor, detail) "
                    "VALUES (?, ?, ?, 'proposed', 'bench', '{}')",
                    (i, f"p-{i // 5:010x}", rng.choice(kinds)),
                )
            c.execute("COMMIT")

        await store.run("fill", fill)
        for label, fn in (
            ("newest 50", lambda c: sql.ledger_page(c, kind=None, since_ms=None, limit=50)),
            (
                "kind=rebalance, 50",
                lambda c: sql.ledger_page(c, kind="rebalance", since_ms=None, limit=50),
            ),
            ("one proposal's story", lambda c: sql.ledger_for(c, f"p-{n // 10:010x}")),
        ):
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                await store.run("read", fn)
                times.append(time.perf_counter() - t0)
            print(
                f"ledger of {n:,} entries, {label}: median {statistics.median(times) * 1e3:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=300)
    parser.add_argument("--ledger", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(pipeline, args.proposals, Path(tmp) / "a")
        trio.run(reservations, args.proposals, Path(tmp) / "b")
        trio.run(ledger, args.ledger, Path(tmp) / "c")


if __name__ == "__main__":
    main()
