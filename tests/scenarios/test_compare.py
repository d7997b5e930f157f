"""A CI-sized comparison on the generated graph, through the real planner and rebalancer."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from hive.cli import main
from hive.fleet.planner import PlannerConfig
from hive.node.sim.graph import generate_graph
from hive.scenarios.compare import SCENARIOS, StudyConfig, run_study
from hive.scenarios.demand import DemandConfig
from hive.scenarios.report import summarise


def _config(**kw: object) -> StudyConfig:
    base = StudyConfig(
        nodes=3,
        seeds=2,
        scenarios=SCENARIOS,
        demand=DemandConfig(payments=800, period_s=2 * 86400.0),
        planner=PlannerConfig(min_age_blocks=0),
    )
    return attrs.evolve(base, **kw)


def test_every_scenario_runs_and_its_figures_come_from_the_flow() -> None:
    graph = generate_graph(120, seed=3)
    seen: list[tuple[int, int]] = []
    runs = run_study(graph, _config(), lambda done, total: seen.append((done, total)))
    assert [(r.scenario, r.seed) for r in runs] == [(s, k) for k in (1, 2) for s in SCENARIOS]
    assert seen[-1] == (2 * 800 * len(SCENARIOS),) * 2
    by = {(r.scenario, r.seed): r.figures for r in runs}
    by_run = {(r.scenario, r.seed): r for r in runs}
    for seed in (1, 2):
        # The whale is down from the middle of the period: it routes nothing after that.
        assert by["whale-down", seed]["share_after_down_at"] == 0.0
        assert by["hive", seed]["channels"] > 0
        assert by["whale", seed]["channels"] > 0
        assert by["hive", seed]["plans"] > 0
        for s in SCENARIOS:
            f = by[s, seed]
            assert 0.0 <= f["routing_share"] <= 1.0
            assert 0.0 < f["success_rate"] <= 1.0
            assert (f["fee_income_sat"] > 0) == (f["forwarded_sat"] > 0)
            # Every open and close is paid on chain: 2,500 sat each.
            assert f["onchain_fees_sat"] >= 2_500 * (f["opens"] + f["closes"])
            assert f["duplicate_channels"] <= f["overlapping_channels"]
            assert f["channels"] <= f["opens"] - f["closes"] + 0.5
            # The exits split the fee income: each forward's fee is credited to one exit.
            exits = by_run[s, seed].exits
            fees = [e["fee_sat"] for e in exits]
            assert fees == sorted(fees, reverse=True)
            assert sum(fees) <= f["fee_income_sat"] + 1e-6
            top = fees[0] / f["fee_income_sat"] if fees and f["fee_income_sat"] else 0.0
            assert f["top_exit_fee_share"] == pytest.approx(top)
            assert all(e["channels"] >= 1 or e["target"] == "member" for e in exits)
            assert len({e["target"] for e in exits}) == len(exits)  # members merged into one
    summary = summarise(runs)
    assert "fleet_vs_whale" in summary  # None when the whale routed nothing on every seed
    assert any(f["routing_share"] > 0 for f in by.values())  # someone routed something
    kept = summary["scenarios"]["hive"].get("share_kept_one_down")  # None: hive routed nothing
    assert kept is None or 0.0 <= kept[0] <= 1.0


def test_hive_sim_on_the_generated_graph_writes_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["sim", "--graph", "generated", "--seeds", "2", "--payments", "120", "--nodes", "3"]
    assert main([*argv, "--days", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| routing share |" in printed
    assert "fleet's routing share / whale's" in printed
    names = {p.name for p in out.iterdir()}
    assert {"results.json", "runs.csv", "summary.md", "routing_share.png"} <= names
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == 2 * 5
    assert (out / "runs.csv").read_text().count("\n") == 1 + 2 * 5


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--graph", "/nonexistent/graph.json"], "no such file"),
        (["--scenarios", "hive,moon"], "unknown ['moon']"),
        (["--nodes", "0"], "--nodes 0"),
        (["--merchant-share", "2"], "merchant_share"),
        (["--capital", "3104999"], "at least 3,105,000 sat per node"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert err.startswith("hive sim: ")


def test_worker_processes_do_not_change_the_figures() -> None:
    graph = generate_graph(120, seed=3)
    config = _config(scenarios=("hive", "uncoordinated"), demand=DemandConfig(payments=300))
    serial = run_study(graph, config)
    seen: list[int] = []
    forked = run_study(graph, config, lambda done, _total: seen.append(done), jobs=2)
    assert [(r.scenario, r.seed, r.figures) for r in forked] == [
        (r.scenario, r.seed, r.figures) for r in serial
    ]
    assert seen[-1] == 2 * 2 * 300


def test_the_least_capital_the_cli_accepts_funds_the_fleets_ring_and_an_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2,000,000 sat was accepted and crashed: the ring alone takes 2,002,500 of each member.
    argv = ["sim", "--graph", "generated", "--capital", "3105000", "--seeds", "1"]
    argv += ["--payments", "100", "--days", "1", "--scenarios", "hive,whale"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert "hive" in capsys.readouterr().out
