"""Signed bans on real Core Lightning nodes: a ban issued on l1 makes l2 refuse a channel open
from the banned peer l3 (l2 drops l3's connection when no channel is at stake, and its
``openchannel`` hook rejects an open that gets in first), while an unbanned peer l4 still
opens. Skipped where ``lightningd``/``bitcoind`` or pyln-testing are missing (as
``test_cln_real.py``)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH", allow_module_level=True)
pytest.importorskip("pyln.testing", reason="pyln-testing is not installed")

from pyln.client import RpcError  # noqa: E402
from pyln.testing.fixtures import *  # noqa: E402, F403  (node_factory and its fixtures)
from pyln.testing.utils import wait_for  # noqa: E402

pytestmark = pytest.mark.integration


def test_a_ban_issued_on_one_member_is_enforced_by_another(
    node_factory: Any, bitcoind: Any, hive_plugin: Path
) -> None:
    hive = {"plugin": str(hive_plugin), "hive-governance": "autonomous"}
    l1, l2 = node_factory.get_nodes(2, opts=hive)
    l3, l4 = node_factory.get_nodes(2)  # outsiders without the plugin
    l1.rpc.call("hive-genesis", {"name": "regtest"})
    ticket = l1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
    l2.rpc.call("hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"})
    wait_for(lambda: len(l2.rpc.call("hive-members")["members"]) == 2)

    banned = l3.info["id"]
    proposal = l1.rpc.call("hive-ban", {"peer": banned, "reason": "regtest jamming"})
    assert proposal["kind"] == "ban-peer"
    wait_for(lambda: l2.rpc.call("hive-bans", {"peer": banned})["banned"])

    for outsider in (l3, l4):
        outsider.fundwallet(2_000_000)
    l4.rpc.connect(l2.info["id"], "localhost", l2.port)
    with contextlib.suppress(RpcError):  # l2 may drop the banned peer before connect returns
        l3.rpc.connect(l2.info["id"], "localhost", l2.port)
    # l2 refuses l3 twice over: it drops l3's connection at once (no channel at stake), and
    # its openchannel hook rejects an open that gets in before the drop. Either way the open
    # fails, and l2 counts which of the two stopped it.
    with pytest.raises(RpcError, match=r"banned by the fleet|disconnect|[Cc]onnect|peer"):
        l3.rpc.fundchannel(l2.info["id"], 200_000)
    l4.rpc.fundchannel(l2.info["id"], 200_000)  # an unbanned peer is still welcome
    bans = l2.rpc.call("hive-bans")
    assert bans["refused_opens"] >= 1 or bans["disconnected_on_connect"] >= 1
    assert not [c for c in l2.rpc.listpeerchannels()["channels"] if c["peer_id"] == banned]
