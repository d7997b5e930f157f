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
from hive.demo.run import DemoOptions, run_demo
from hive.node.sim import generate_graph


async def test_demo_fleet_opens_channels_and_sees_each_other(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    out = io.StringIO()
    options = DemoOptions(
        nodes=4, graph="generated", duration_s=1200, data_dir=tmp_path, proposal_interval_s=None
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
    # Formation and later events are printed once each, as they happen (not wiped by redraws).
    assert text.count("hive-1   hive-genesis -> hive ") == 1
    assert text.count("from hive-1 -> member #4") == 1
    assert text.count("hive-2   3 channels confirmed (3)") == 1
    assert "| 4 members" in text
    header = [line for line in text.splitlines() if line.startswith("hive demo | simulated")]
    assert header[-1].startswith("hive demo | simulated 00:2")  # 20 min after formation
    assert "plan: routed demand" in text


def test_demo_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["demo", "--help"])
    assert exit_info.value.code == 0
    demo_help = capsys.readouterr().out
    for option in ("--nodes", "--graph", "--speed", "--duration", "--seed", "--data-dir"):
        assert option in demo_help


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
async def test_signal_stops_the_demo_within_one_second_and_removes_its_temporary_data(
    signum: int, tmp_path: Path
) -> None:
    # SIGHUP is what closing the terminal sends.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp))
    command = [sys.executable, "-m", "hive", "demo", "--graph", "generated", "--nodes", "3"]
    command += ["--speed", "20"]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        rc, seen, kept = await _run_until_table_then_signal(command, env, stderr, signum, tmp)
    errors = (tmp_path / "stderr.txt").read_text()
    assert rc == 0, errors
    assert "stopping" in errors
    assert "Traceback" not in errors
    assert b"hive-3" in seen
    # While it ran, each companion's key and database were in a hive-demo-* directory ...
    assert [p.name for p in kept] == ["hive-1", "hive-2", "hive-3"]
    # ... which is gone once it stopped.
    assert list(tmp.iterdir()) == []


async def _run_until_table_then_signal(
    command: list[str], env: dict[str, str], stderr: BinaryIO, signum: int, tmp: Path
) -> tuple[int, bytes, list[Path]]:
    proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(60):
            while b"Ctrl-C to stop" not in seen:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"demo exited early: {seen.decode()}"
                seen += chunk
        kept = sorted(p for d in tmp.glob("hive-demo-*") for p in d.iterdir())  # noqa: ASYNC240
        proc.send_signal(signum)
        with trio.fail_after(1):
            rc = await proc.wait()
        return rc, seen, kept
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


def test_a_closed_output_pipe_ends_the_demo_quietly(tmp_path: Path) -> None:
    # `hive demo | head -3`: the reader leaves; no traceback, and the temporary data goes.
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    command = [sys.executable, "-m", "hive", "demo", "--graph", "generated", "--nodes", "2"]
    proc = subprocess.Popen(
        [*command, "--speed", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    try:
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    errors = proc.stderr.read().decode()
    proc.stderr.close()
    assert rc == 0, errors
    assert errors == ""
    assert list(tmp_path.iterdir()) == []


def test_the_plan_section_says_why_nothing_is_planned() -> None:
    from hive.demo.run import _plan_lines

    why = "no target qualifies (left out: too-small 12)"
    status = {
        "alias": "hive-1",
        "planner": {"ours_planned": 0, "routed_demand_ppm": 0.0, "reach_ppm": 10.0},
        "locks": None,
    }
    assert len(_plan_lines([status])) == 1
    status["planner"]["why_nothing"] = why  # type: ignore[index]
    assert _plan_lines([status])[-1] == f"nothing to open: {why}"
