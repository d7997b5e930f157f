"""`hive` on the command line: every bad input is one line on stderr and exit status 2, a kept
fleet resumes, --version and --help say what they should."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hive import __version__
from hive.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse
        rc = int(exit_.code or 0)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _gz(path: Path, content: bytes) -> str:
    path.write_bytes(gzip.compress(content))
    return str(path)


FAST = ["--speed", "2000", "--duration", "60"]


def _bad_graphs(d: Path) -> dict[str, tuple[list[str], str]]:
    whole = json.dumps({"nodes": [{"pub_key": f"{i:066x}"} for i in range(500)], "edges": []})
    (d / "cut.json.gz").write_bytes(gzip.compress(whole.encode())[:-100])
    (d / "plain.json").write_text("{}")
    return {
        "absent": (["--graph", str(d / "nonexistent.json.gz")], "nonexistent.json.gz: no such"),
        "not-gzip": (["--graph", str(d / "plain.json")], "not a gzip file"),
        "truncated": (["--graph", str(d / "cut.json.gz")], "truncated gzip file"),
        "bad-json": (["--graph", _gz(d / "bad.json.gz", b"{nodes")], "not JSON"),
        "other-shape": (["--graph", _gz(d / "list.json.gz", b"[1]")], "no 'nodes' list"),
        "empty-graph": (
            ["--graph", _gz(d / "empty.json.gz", b'{"nodes": [], "edges": []}')],
            "the graph has 0 nodes with channels, too few for --channels 3",
        ),
        "channels-11": (["--graph", "generated", "--channels", "11"], "enough for 1 to 9 opens"),
        "channels-0": (["--graph", "generated", "--channels", "0"], "--channels 0:"),
        "nodes-0": (["--nodes", "0"], "--nodes 0: give 1 to 200"),
        "nodes-many": (["--nodes", "5000"], "--nodes 5000: give 1 to 200"),
        "speed-0": (["--speed", "0"], "--speed 0.0: give a positive number"),
        "speed-nan": (["--speed", "nan"], "--speed nan: give a positive number"),
        "speed-inf": (["--speed", "inf"], "--speed inf: give a positive number"),
        "duration-negative": (["--duration", "-5"], "--duration -5.0: give a positive number"),
        "demo-proposals-0": (
            ["--demo-proposals", "0"],
            "--demo-proposals 0.0: give a positive number of simulated seconds",
        ),
        "nodes-not-a-number": (["--nodes", "five"], "argument --nodes: invalid int value"),
        "unknown-option": (["--colour"], "unrecognized arguments: --colour"),
        "data-dir-is-a-file": (["--data-dir", str(d / "plain.json")], "is not a directory"),
        "data-dir-foreign": (["--data-dir", str(d)], "is not empty and holds no demo fleet"),
    }


CASES = [
    "absent",
    "not-gzip",
    "truncated",
    "bad-json",
    "other-shape",
    "empty-graph",
    "channels-11",
    "channels-0",
    "nodes-0",
    "nodes-many",
    "speed-0",
    "speed-nan",
    "speed-inf",
    "duration-negative",
    "demo-proposals-0",
    "nodes-not-a-number",
    "unknown-option",
    "data-dir-is-a-file",
    "data-dir-foreign",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_status_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_GRAPH", raising=False)
    cases = _bad_graphs(tmp_path)
    assert sorted(cases) == sorted(CASES)
    argv, cause = cases[case]
    rc, _, err = run(["demo", *FAST, *argv], capsys)
    assert rc == 2, err
    assert err.startswith(("hive demo: ", "hive: "))
    assert err.count("\n") == 1, err
    assert cause in err
    assert "Traceback" not in err


def test_hive_graph_naming_a_missing_file_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVE_GRAPH", "/nope")
    rc, _, err = run(["demo", *FAST], capsys)
    assert rc == 2
    assert err == (
        "hive demo: /nope: no such file (named by HIVE_GRAPH; unset it to use the snapshot "
        "shipped with hive)\n"
    )


def test_no_command_and_unknown_command_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["fly"]):
        rc, _, err = run(argv, capsys)
        assert rc == 2
        assert err.count("\n") == 1
        assert err.startswith("hive: ")
        assert "hive --help" in err


def test_a_kept_fleet_resumes_and_other_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    argv = ["demo", "--graph", "generated", "--nodes", "3", "--data-dir", str(fleet), *FAST]
    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert out.count("hive-genesis -> hive ") == 1
    assert out.count("-> member #3") == 1
    hive_id = out.split("hive-genesis -> hive ")[1][:16]
    first = json.loads((fleet / "demo.json").read_text())
    assert sorted(p.name for p in fleet.iterdir()) == ["demo.json", "hive-1", "hive-2", "hive-3"]

    rc, out, err = run(argv, capsys)
    assert rc == 0, err
    assert f"resumed hive {hive_id}.. with 3 members" in out
    assert "hive-genesis" not in out
    assert "hive-join" not in out
    assert f"hive {hive_id}.. | 3 members" in out
    # Simulated time went on from where the first run stopped.
    assert json.loads((fleet / "demo.json").read_text())["clock_ms"] > first["clock_ms"]

    rc, _, err = run([*argv, "--seed", "2"], capsys)
    assert rc == 2
    assert err == (
        f"hive demo: --data-dir {fleet} keeps a fleet of 3 companions made with --graph "
        "generated --seed 1; rerun with those options (--nodes 3) or use another --data-dir\n"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0
    assert out == f"hive {__version__}\n"


def test_help_explains_the_tools_and_how_to_reach_the_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    assert "demo" in out
    assert "--version" in out
    assert "lightning-cli hive-status" in " ".join(out.split())
    assert "hive-invite" in out
    rc, out, _ = run(["demo", "--help"], capsys)
    assert rc == 0
    for option in ("--nodes", "--graph", "--speed", "--duration", "--channels", "--seed"):
        assert option in out
    assert "resumes the same fleet" in " ".join(out.split())
    assert "--demo-proposals S" in out
    assert "built-in demo proposer: random opens and fee changes" in " ".join(out.split())


def test_a_kept_key_file_others_can_read_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    argv = ["demo", "--graph", "generated", "--nodes", "2", "--data-dir", str(fleet), *FAST]
    assert run(argv, capsys)[0] == 0
    (fleet / "hive-2" / "hive_key").chmod(0o644)
    rc, _, err = run(argv, capsys)
    assert rc == 2
    assert err == (
        f"hive demo: {fleet / 'hive-2' / 'hive_key'} is readable by others (mode 644); "
        "chmod 600 it\n"
    )


def test_an_unreadable_kept_record_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "demo.json").write_text("{")
    rc, _, err = run(["demo", "--graph", "generated", "--data-dir", str(fleet), *FAST], capsys)
    assert rc == 2
    assert err.startswith(f"hive demo: {fleet / 'demo.json'} cannot be read (")
    assert err.endswith("; use another --data-dir\n")


@pytest.mark.parametrize(("argv", "every"), [([], None), (["--demo-proposals", "600"], 600.0)])
def test_demo_proposals_are_off_unless_asked_for(
    argv: list[str], every: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hive.demo import run as demo_run

    seen: list[demo_run.DemoOptions] = []
    monkeypatch.setattr(demo_run, "run", lambda options, _out: seen.append(options))  # no loop
    assert main(["demo", *argv]) == 0
    assert seen[0].proposal_interval_s == every
