"""A built wheel, installed in a fresh virtualenv outside the source tree, runs the demo on the
mainnet snapshot it ships (what an operator gets from `pip install /path/to/hive`).

Costs about 20 s: building the wheel (pip fetches setuptools for the isolated build), a new
virtualenv, installing the dependencies from the package index, and a short demo run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = "hive/data/ln_graph_mainnet_2025-10-25.json.gz"


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_wheel_ships_the_snapshot_and_runs_the_demo_outside_the_source_tree(
    tmp_path: Path,
) -> None:
    # Build from a copy of what the package is made of, so the source tree gets no build/.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "hive", source / "hive", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HIVE_GRAPH")}
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
        tmp_path,
        env,
    )
    (wheel,) = dist.glob("hive-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert SNAPSHOT in archive.namelist()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path, env
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import hive; print(hive.__file__)"], elsewhere, env
    )
    assert where.startswith(str(venv)), where
    assert _run([str(venv / "bin" / "hive"), "--version"], elsewhere, env).startswith("hive ")
    out = _run(
        [str(venv / "bin" / "hive"), "demo", "--nodes", "2", "--duration", "60", "--speed", "600"],
        elsewhere,
        env,
    )
    assert "graph: 12,827 nodes, 49,570 channels" in out
    assert "-> member #2" in out
