"""A crash (SIGKILL) between the reservation and the outcome leaves the budget consistent:
after a restart the execution is reconciled from the node's own records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from lightningd_double import LightningdDouble, Network

from .test_governance_plugin import GOVERNANCE_PLUGIN, START, _until_final


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("took_effect", [True, False], ids=["opened", "never-sent"])
async def test_sigkill_between_reservation_and_outcome(
    network: Network, tmp_path: Path, took_effect: bool
) -> None:
    data = tmp_path / "data"
    options = {"hive-data-dir": str(data), "hive-governance": "autonomous"}
    alice = LightningdDouble(network, "alice")
    bob = LightningdDouble(network, "bob")
    arrived = alice.stall("fundchannel", executed=took_effect)
    with trio.fail_after(START):
        async with alice.running(GOVERNANCE_PLUGIN, options):
            proposed = await alice.call_plugin(
                "hive-test-propose", [bob.node_id, 400_000, "127.0.0.1", bob.port]
            )
            await arrived.wait()
            assert alice.process is not None
            alice.process.kill()  # SIGKILL: no shutdown, no cleanup
            await alice.process.wait()
    pid = proposed["id"]
    db = data / "hive.sqlite3"
    assert _rows(db, f"SELECT state FROM proposals WHERE id = '{pid}'") == [("executing",)]
    assert _rows(db, "SELECT proposal_id, state, capital_sat FROM budget") == [
        (pid, "reserved", 400_000)
    ]
    # The same node (same key, same channels), its plugin started again on the same data.
    again = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with again.running(GOVERNANCE_PLUGIN, options):
            why = await _until_final(again, pid)
            budget = await again.call_plugin("hive-budget")
            status = await again.call_plugin("hive-status")
    usage = budget["usage"]
    assert usage["reservations_open"] == 0
    assert usage["capital_sat"]["reserved"] == 0
    assert status["decisions"]["counters"]["reconciled"] == 1
    fundchannels = [m for m, _ in again.rpc_calls if m == "fundchannel"]
    assert fundchannels == []  # reconciled, never executed twice
    if took_effect:
        assert why["proposal"]["state"] == "succeeded"
        assert usage["capital_sat"]["spent_24h"] == 400_000
        assert usage["onchain_fee_sat"]["spent_24h"] == 2_000  # the reserved estimate
        assert why["ledger"][-1]["actor"] == "reconcile"
    else:
        assert why["proposal"]["state"] == "failed"
        assert usage["capital_sat"]["spent_24h"] == 0
        assert "did not take effect" in why["proposal"]["outcome"]["error"]
    assert _rows(db, "SELECT COUNT(*) FROM budget") == [(1,)]
