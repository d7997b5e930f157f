"""Strategy gossip on real Core Lightning nodes: l1 (a member) forwards l4's payments to l3
and earns; it commits to a report on l3, reveals it after hive-strategy-delay, and l2 (the
other member) lists it as consistent with its own view of the graph. Skipped where
``lightningd``/``bitcoind`` or pyln-testing are missing (as ``test_cln_real.py``)."""

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


def test_a_report_revealed_on_one_member_is_verified_by_another(
    node_factory: Any, bitcoind: Any, hive_plugin: Path
) -> None:
    hive = {
        "plugin": str(hive_plugin),
        "hive-strategy-delay": "10",
        "hive-strategy-check": "10",
    }
    l1, l2 = node_factory.get_nodes(2, opts=hive)
    l3, l4 = node_factory.get_nodes(2)  # outsiders without the plugin
    # l4 -> l1 -> l3 carries the payments; l2 -> l1 makes l2 a member with a channel.
    node_factory.join_nodes([l4, l1, l3], wait_for_announce=True)
    node_factory.join_nodes([l2, l1], wait_for_announce=True)
    l1.rpc.setchannel(l3.info["id"], feebase=0, feeppm=5000)
    wait_for(
        lambda: any(
            c["fee_per_millionth"] == 5000
            for c in l4.rpc.listchannels(source=l1.info["id"])["channels"]
            if c["destination"] == l3.info["id"]
        )
    )

    l1.rpc.call("hive-genesis", {"name": "regtest"})
    ticket = l1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
    l2.rpc.call("hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"})
    wait_for(lambda: len(l2.rpc.call("hive-members")["members"]) == 2)

    for i in range(6):
        invoice = l3.rpc.invoice(100_000_000, f"strategy-{i}", "forwarded by l1")["bolt11"]
        l4.rpc.pay(invoice)

    wait_for(lambda: l1.rpc.call("hive-strategies")["ours"] != [], timeout=120)
    (ours,) = l1.rpc.call("hive-strategies")["ours"]
    assert ours["peer"] == l3.info["id"]

    def verdict() -> str | None:
        received = l2.rpc.call("hive-strategies", {"peer": l3.info["id"]})["received"]
        return received[0]["verdict"] if received else None

    wait_for(lambda: verdict() not in (None, "pending"), timeout=120)
    (report,) = l2.rpc.call("hive-strategies", {"peer": l3.info["id"]})["received"]
    assert report["issuer"] == l1.info["id"]
    assert report["verdict"] == "consistent"
    assert report["forwards"] == 6
    assert report["earned_msat"] >= 6 * 500_000  # 5000 ppm of 100 000 sat, each
