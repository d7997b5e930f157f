"""A peer's force close on real Core Lightning reaches the ban rules as a close the peer
forced: l2 (no plugin) fails its channel with l1 (``dev-fail``, a unilateral close: pyln-testing
runs nodes with ``--developer``), and l1's ``hive-bans`` shows the channel among those l2
force-closed, from ``channel_state_changed`` with its ``cause`` (docs/REPUTATION.md, "Who
closed"). Skipped where ``lightningd``/``bitcoind`` or pyln-testing are missing (as
``test_cln_real.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH", allow_module_level=True)
pytest.importorskip("pyln.testing", reason="pyln-testing is not installed")

from pyln.testing.fixtures import *  # noqa: E402, F403  (node_factory and its fixtures)
from pyln.testing.utils import wait_for  # noqa: E402

pytestmark = pytest.mark.integration


def test_a_peer_s_force_close_reaches_the_rules_as_forced_by_the_peer(
    node_factory: Any, bitcoind: Any, hive_plugin: Path
) -> None:
    l1 = node_factory.get_node(options={"plugin": str(hive_plugin)})
    l2 = node_factory.get_node()  # the outsider that force-closes, without the plugin
    l1.rpc.call("hive-genesis", {"name": "regtest"})
    l2.rpc.connect(l1.info["id"], "localhost", l1.port)
    scid, _ = l2.fundchannel(l1, 200_000)
    assert l1.rpc.call("hive-bans")["watching"]["force_closes"] == {}

    l2.rpc.dev_fail(l1.info["id"])
    l2.daemon.wait_for_log("Failing due to dev-fail command")
    l2.wait_for_channel_onchain(l1.info["id"])
    bitcoind.generate_block(1)
    l1.daemon.wait_for_log(" to ONCHAIN")

    def watched() -> Any:
        return l1.rpc.call("hive-bans")["watching"]["force_closes"].get(l2.info["id"])

    wait_for(lambda: watched() == [scid])
    # One close is no pattern: force-closes needs two (force_close_count), so nothing yet.
    pending = l1.rpc.call("hive-pending")["pending"]
    assert not [p for p in pending if p["kind"] == "ban-peer"]
