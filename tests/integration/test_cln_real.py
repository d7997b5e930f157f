"""The plugin in real Core Lightning nodes (pyln-testing's ``node_factory``).

Runs where ``lightningd`` and ``bitcoind`` are on PATH and pyln-testing is installed; skipped
at collection otherwise (without importing anything that is missing).
"""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH", allow_module_level=True)
pytest.importorskip("pyln.testing", reason="pyln-testing is not installed")

from pyln.testing.fixtures import *  # noqa: E402, F403  (node_factory and its fixtures)

pytestmark = pytest.mark.integration

HIVE_OPTIONS = ("hive-data-dir", "hive-governance", "hive-log-level")


@pytest.fixture
def hive_plugin(tmp_path: Path) -> Path:
    """An executable lightningd can start: this interpreter running ``python -m hive.cln``."""
    script = tmp_path / "hive-plugin"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hive.cln "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def test_manifest_accepted_and_status_answers(node_factory: Any, hive_plugin: Path) -> None:
    node = node_factory.get_node(options={"plugin": str(hive_plugin), "hive-governance": "advisor"})
    plugins = node.rpc.plugin_list()["plugins"]
    ours = [p for p in plugins if p["name"].endswith("hive-plugin")]
    assert ours
    assert ours[0]["active"]
    config = node.rpc.listconfigs()["configs"]
    assert all(name in config for name in HIVE_OPTIONS)
    status = node.rpc.call("hive-status")
    assert status["node_id"] == node.info["id"]
    assert status["governance"] == "advisor"


def test_two_nodes_load_the_plugin_and_connect(node_factory: Any, hive_plugin: Path) -> None:
    l1, l2 = node_factory.get_nodes(2, opts={"plugin": str(hive_plugin)})
    l1.rpc.connect(l2.info["id"], "localhost", l2.port)
    assert l1.rpc.call("hive-status")["node_id"] == l1.info["id"]
    assert l2.rpc.call("hive-status")["node_id"] == l2.info["id"]
