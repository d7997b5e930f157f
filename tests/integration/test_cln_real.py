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

HIVE_OPTIONS = (
    "hive-data-dir",
    "hive-governance",
    "hive-log-level",
    "hive-saturation-cap",
    "hive-saturation-release",
)


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


def test_three_nodes_form_a_hive(node_factory: Any, hive_plugin: Path) -> None:
    """genesis on l1; l2 and l3 join with single-use tickets through l1 over real custom
    messages; every node lists the same three members, and a spent ticket is refused."""
    from pyln.client import RpcError
    from pyln.testing.utils import wait_for

    l1, l2, l3 = node_factory.get_nodes(3, opts={"plugin": str(hive_plugin)})
    created = l1.rpc.call("hive-genesis", {"name": "regtest"})
    ticket = ""
    for joiner in (l2, l3):
        ticket = l1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
        joined = joiner.rpc.call(
            "hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"}
        )
        assert joined["hive_id"] == created["hive_id"]
    everyone = {l1.info["id"], l2.info["id"], l3.info["id"]}

    def listed(node: Any) -> set[str]:
        return {m["node_id"] for m in node.rpc.call("hive-members")["members"]}

    for node in (l1, l2, l3):
        wait_for(lambda node=node: listed(node) == everyone)
        assert node.rpc.call("hive-status")["hive"]["members"] == 3

    l4 = node_factory.get_node(options={"plugin": str(hive_plugin)})
    with pytest.raises(RpcError, match="ticket-exhausted"):
        l4.rpc.call(
            "hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"}
        )


def test_governance_commands_and_options_on_a_real_node(
    node_factory: Any, hive_plugin: Path
) -> None:
    """The governance options are accepted by lightningd (hive-webhook-url repeated), the
    commands answer, and the kill switch survives a restart of the node."""
    from pyln.client import RpcError

    opts = {
        "plugin": str(hive_plugin),
        "hive-governance": "autonomous",
        "hive-proposal-ttl": "2h",
        "hive-limit-daily-capital-sat": "2000000",
        "hive-limit-action-capital-sat": "1000000",
        "hive-webhook-secret": "0123456789abcdef",
        "hive-webhook-url": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
    }
    node = node_factory.get_node(options=opts)
    assert node.rpc.call("hive-pending") == {"mode": "autonomous", "paused": None, "pending": []}
    budget = node.rpc.call("hive-budget")
    assert budget["limits"]["daily_capital_sat"]["value"] == 2_000_000
    assert budget["usage"]["capital_sat"]["spent_24h"] == 0
    node.rpc.call("hive-pause", ["maintenance"])
    assert node.rpc.call("hive-status")["paused"]["reason"] == "maintenance"
    with pytest.raises(RpcError, match="is not a proposal id"):
        node.rpc.call("hive-approve", ["nonsense"])
    with pytest.raises(RpcError, match="no proposal"):
        node.rpc.call("hive-why", ["p-0000000000"])
    node.restart()
    assert node.rpc.call("hive-status")["paused"]["reason"] == "maintenance"
    node.rpc.call("hive-resume")
    entries = [e["entry"] for e in node.rpc.call("hive-ledger")["entries"]]
    assert entries[:2] == ["resumed", "paused"]
    status = node.rpc.call("hive-status")
    assert status["paused"] is None
    assert set(status["decisions"]["webhooks"]) == {"http://127.0.0.1:9/a", "http://127.0.0.1:9/b"}
