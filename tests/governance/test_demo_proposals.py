"""In the demo, the real producers' proposals appear: the planner's opens pending on the
advisor companion, decided and executed on the autonomous ones; the built-in demo proposer's
random ones (labelled "demo:") only with ``--demo-proposals``."""

from __future__ import annotations

import io
from pathlib import Path

import trio
import trio.testing

from hive.demo.run import DemoOptions, run_demo
from hive.node.sim import generate_graph


def proposal_rows(text: str) -> list[list[str]]:
    """The proposal rows of every screen drawn: companion, id, kind, target, state, by, ..."""
    return [line.split() for line in text.splitlines() if line.startswith("  hive-")]


async def test_the_default_demo_shows_the_planners_proposals_and_no_demo_ones(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    options = DemoOptions(graph="generated", duration_s=3600, data_dir=tmp_path)
    assert options.proposal_interval_s is None  # the demo proposer is off by default
    # 400 nodes: on 200 or 300 the plan, pricing each way in at the peer's own fee, finds
    # work for the two members with the cheapest ways in only, and the advisor (hive-1) has
    # nothing to wait on (on mainnet every member gets its opens).
    await run_demo(options, out, graph=generate_graph(400, seed=2))
    text = out.getvalue()
    last = text.split("hive demo | simulated")[-1]
    assert "proposals (pending first; by: the proposer while pending, then who decided):" in last
    rows = proposal_rows(last)
    # The advisor companion's planned opens wait for its operator ...
    assert ["hive-1", "open-channel", "pending", "planner"] in [
        [row[0], row[2], row[4], row[5]] for row in rows
    ]
    # ... the autonomous companions' were decided and executed within the limits.
    assert any(
        row[0] != "hive-1"
        and row[2:6:2] == ["open-channel", "succeeded"]
        and row[5] == "autonomous"
        for row in rows
    )
    assert "nothing to open" not in last
    # Nothing from the demo proposer on any screen: no random proposal, no fee change.
    everything = proposal_rows(text)
    assert everything
    assert not [row for row in everything if "demo" in row[5:6] or row[2] == "set-fee"]


async def test_demo_proposals_add_random_ones_when_asked(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    options = DemoOptions(
        nodes=2, graph="generated", duration_s=900, data_dir=tmp_path, proposal_interval_s=60.0
    )
    await run_demo(options, out, graph=generate_graph(40, seed=2))
    rows = proposal_rows(out.getvalue())
    assert ["hive-1", "pending", "demo"] in [[row[0], row[4], row[5]] for row in rows]


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
