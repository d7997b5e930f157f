"""In the demo, the built-in demo proposer's proposals appear: pending on the advisor
companion, decided and executed on the autonomous ones."""

from __future__ import annotations

import io
from pathlib import Path

import trio
import trio.testing

from hive.demo.run import DemoOptions, run_demo
from hive.node.sim import generate_graph


async def test_demo_shows_pending_and_decided_proposals(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    options = DemoOptions(nodes=2, graph="generated", duration_s=3 * 3600, data_dir=tmp_path)
    await run_demo(options, out, graph=generate_graph(40, seed=2))
    last = out.getvalue().split("hive demo | simulated")[-1]
    assert "proposals (pending first; from the planner and the built-in demo proposer):" in last
    rows = [line.split() for line in last.splitlines() if line.startswith("  hive-")]
    states = {(row[0], row[4]) for row in rows}
    assert ("hive-1", "pending") in states  # the advisor companion waits for its operator
    assert any(c != "hive-1" and s == "succeeded" for c, s in states)
    assert any(row[5] == "autonomous" for row in rows if row[0] != "hive-1")


def test_event_lines_and_rows_for_the_screen() -> None:
    from hive.demo.governance import event_line, governance_lines
    from hive.governance import Cost, Decision, EngineEvent, EventKind, Proposal, ProposalState
    from hive.governance.proposal import ProposalStatus

    p = Proposal(
        id="p-0123456789",
        kind="set-fee",
        params={},
        reason="demo: x",
        evidence={},
        cost=Cost(),
        expected_value_sat=0,
        confidence=0.9,
        proposer="demo-proposer",
        target="02" + "ab" * 32,
        created_ms=0,
        expires_ms=1,
    )
    decided = ProposalStatus(p, ProposalState.APPROVED, Decision(True, "autonomous", "ok", 0))
    held = ProposalStatus(p, ProposalState.PENDING, held_by="daily_capital_sat")
    assert event_line("hive-1", EngineEvent(EventKind.DECIDED, 0, decided)) == (
        "hive-1: p-0123456789 set-fee 02ababababab approved by autonomous"
    )
    assert event_line("hive-1", EngineEvent(EventKind.HELD, 0, held)).endswith(
        "held by daily_capital_sat"
    )
    assert event_line("hive-1", EngineEvent(EventKind.PAUSED, 0, None, "storm")) == (
        "hive-1: governance paused storm"
    )
    assert "none yet" in governance_lines([])[1]


def test_a_proposal_row_fits_the_80_column_screen() -> None:
    from hive.demo.governance import governance_lines

    row = {
        "companion": "hive-5",
        "id": "p-6b7176939f",
        "kind": "open-channel",
        "target": "03a1f3afd646",
        "state": "succeeded",
        "by": "autonomous",
        "note": "cost 4,445,500 sat and a long explanation that would wrap",
    }
    line = governance_lines([row])[-1]
    assert len(line) <= 79
    assert line.split()[4:6] == ["succeeded", "autonomous"]
