"""`hive demo`: the fleet forms on the simulated network; signals end it cleanly."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest
import trio
import trio.testing

from hive.cli import build_parser
from hive.demo import DemoOptions, render_table, run_demo
from hive.node.sim import generate_graph


async def test_demo_fleet_opens_channels_and_sees_each_other(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    options = DemoOptions(
        nodes=4,
        graph="generated",
        duration_s=1200,
        data_dir=tmp_path,
        store_inline=True,
        proposal_interval_s=None,
    )
    statuses = await run_demo(options, out, graph=generate_graph(60, seed=2))
    assert [s["alias"] for s in statuses] == ["hive-1", "hive-2", "hive-3", "hive-4"]
    for s in statuses:
        # Three channels of 2M sat each confirmed after ten simulated minutes, and the
        # planner's opens (autonomous in the demo) on top of them.
        assert s["channels_normal"] >= 3
        assert s["onchain_sat"] <= 20_000_000 - 3 * 2_000_000 - 3 * 2_000
        assert len(s["peers"]) == 3
        assert all(p["pongs_received"] >= 30 for p in s["peers"])
        assert s["hive"]["members"] == 4
    assert [s["hive"]["role"] for s in statuses] == ["admin", "member", "member", "member"]
    # Every companion planned; each planned open was proposed and either opened under an
    # intent lock (autonomous companions) or waits for the operator (the advisor, hive-1).
    assert all(s["planner"]["last_plan_ms"] is not None for s in statuses)
    planned = sum(s["planner"]["ours_planned"] for s in statuses)
    assert planned >= 1
    done = sum(s["locks"]["executed"] for s in statuses)
    waiting = sum(s["decisions"]["pending"] for s in statuses)
    assert done + waiting >= planned
    text = out.getvalue()
    assert "plan: routed demand" in text
    assert "hive demo - simulated time 00:20:00" in text
    assert text.count("hive-4") >= 2


def test_render_table_shows_one_row_per_companion() -> None:
    status = {
        "alias": "hive-1",
        "hive": {"hive_id": "ab" * 32, "role": "admin", "members": 3},
        "node_id": "02" + "ab" * 32,
        "channels_normal": 2,
        "channels_opening": 1,
        "local_sat": 4_000_000,
        "onchain_sat": 15_000_000,
        "peers": [
            {"last_seen_s_ago": 10.0, "rtt_ms": 200},
            {"last_seen_s_ago": None, "rtt_ms": None},
        ],
        "messages": {"sent": 7, "received": 5, "rejected": {"replay": 2}},
        "actors": [{"restarts": 1}, {"restarts": 0}],
    }
    table = render_table([status], 3725.0)
    lines = table.splitlines()
    assert lines[0] == "hive demo - simulated time 01:02:05   hive abababababababab.., 3 members"
    row = lines[3].split()
    assert row[:3] == ["hive-1", "02ababababab..", "admin"]
    assert row[3:] == ["2", "1", "4,000,000", "15,000,000", "1/2", "200", "7", "5", "2", "1"]


def test_demo_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["demo", "--help"])
    assert exit_info.value.code == 0
    demo_help = capsys.readouterr().out
    for option in ("--nodes", "--graph", "--speed", "--duration", "--seed", "--data-dir"):
        assert option in demo_help


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_stops_the_demo_within_one_second(signum: int, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "hive", "demo", "--graph", "generated", "--nodes", "3"]
    command += ["--speed", "20", "--data-dir", str(tmp_path)]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        rc, seen = await _run_until_table_then_signal(command, env, stderr, signum)
    errors = (tmp_path / "stderr.txt").read_text()
    assert rc == 0, errors
    assert "stopping" in errors
    assert "Traceback" not in errors
    assert b"hive-3" in seen


async def _run_until_table_then_signal(
    command: list[str], env: dict[str, str], stderr: BinaryIO, signum: int
) -> tuple[int, bytes]:
    proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(60):
            while b"Ctrl-C to stop" not in seen:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"demo exited early: {seen.decode()}"
                seen += chunk
        proc.send_signal(signum)
        with trio.fail_after(1):
            rc = await proc.wait()
        return rc, seen
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


def test_render_table_shows_the_fleet_view() -> None:
    fleet = {
        "members": 4,
        "stale": ["02" + "cd" * 32],
        "coverage": 9,
        "fleet_capacity_sat": 24_000_000,
        "top_targets": [
            {"target": "03" + "ef" * 32, "share": 0.3125, "members": 3},
            {"target": "02" + "11" * 32, "share": 0.05, "members": 1, "alias": "ACINQ"},
        ],
        "ignored": {"03" + "ef" * 32: "fleet share 31% (...) > cap 25%"},
    }
    status = {
        "alias": "hive-1",
        "hive": {"hive_id": "ab" * 32, "role": "admin", "members": 5},
        "node_id": "02" + "ab" * 32,
        "channels_normal": 2,
        "channels_opening": 0,
        "local_sat": 4_000_000,
        "onchain_sat": 15_000_000,
        "peers": [],
        "messages": {"sent": 7, "received": 5, "rejected": {}},
        "actors": [],
        "gossip": {"states_sent": 12, "relayed": 30, "fleet": fleet},
    }
    other = dict(status, alias="hive-2", gossip={"states_sent": 3, "relayed": 4, "fleet": fleet})
    lines = render_table([status, other], 60.0).splitlines()
    start = lines.index("")
    assert lines[start + 1] == (
        "fleet: 4 fresh members, 1 stale, coverage 9 targets, capacity 24,000,000 sat, "
        "states sent 15, relayed 34"
    )
    assert lines[start + 2] == (
        "top targets by fleet share: 03efefefefef.. 31.25% (3), ACINQ 5.00% (1)"
    )
    assert lines[start + 3] == "ignored for saturation: 03efefefefef.."
    # Without gossip figures (a companion still starting) there is no fleet section.
    assert not any(line.startswith("fleet:") for line in render_table([], 0.0).splitlines())
