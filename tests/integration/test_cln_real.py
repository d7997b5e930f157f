"""The plugin in real Core Lightning nodes (pyln-testing's ``node_factory``).

Runs where ``lightningd`` and ``bitcoind`` are on PATH and pyln-testing is installed; skipped
at collection otherwise (without importing anything that is missing). ``conftest.py`` sets
``RUST=0`` unless given, so a lightningd built without cln-grpc is not handed ``--grpc-port``.
"""

from __future__ import annotations

import shutil
import stat
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
    "hive-member-fee-ppm",
    "hive-member-fee-base-msat",
    "hive-web-bind",
)


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


def _form(node_factory: Any, hive_plugin: Path, count: int) -> list[Any]:
    """``count`` nodes without channels between them; l1 founds the hive, the others join it
    at l1's address with tickets from l1."""
    nodes = node_factory.get_nodes(count, opts={"plugin": str(hive_plugin)})
    founder = nodes[0]
    founder.rpc.call("hive-genesis", {"name": "regtest"})
    for joiner in nodes[1:]:
        ticket = founder.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
        address = f"{founder.info['id']}@localhost:{founder.port}"
        joiner.rpc.call("hive-join", {"ticket": ticket, "member": address})
    return list(nodes)


def _holds_state_of(node: Any, member: Any) -> bool:
    from pyln.client import RpcError

    try:
        return int(node.rpc.call("hive-state", {"member": member.info["id"]})["version"]) > 0
    except RpcError:  # not held yet
        return False


def _connected(node: Any, other: Any) -> bool:
    peers = node.rpc.listpeers(other.info["id"])["peers"]
    return bool(peers) and bool(peers[0]["connected"])


def test_check_validates_hive_commands(node_factory: Any, hive_plugin: Path) -> None:
    """``lightning-cli check hive-...`` reaches the plugin (manifest ``cancheck``), which
    validates the parameters without running the command."""
    from pyln.client import RpcError

    node = node_factory.get_node(options={"plugin": str(hive_plugin)})
    ok = node.rpc.call("check", {"command_to_check": "hive-invite", "valid_hours": 5})
    assert ok["command_to_check"] == "hive-invite"
    with pytest.raises(RpcError, match="valid_hours must be a whole number"):
        node.rpc.call("check", {"command_to_check": "hive-invite", "valid_hours": "abc"})
    with pytest.raises(RpcError, match="ticket is needed"):
        node.rpc.call("check", ["hive-join"])
    assert node.rpc.call("hive-status")["hive"]["member"] is False  # nothing ran
    assert not node.daemon.is_in_log("does not support check command")


def test_errors_carry_no_traceback(node_factory: Any, hive_plugin: Path) -> None:
    from pyln.client import RpcError

    node = node_factory.get_node(options={"plugin": str(hive_plugin)})
    with pytest.raises(RpcError) as refused:
        node.rpc.call("hive-revoke", {"node": "not-a-node-id"})
    assert "traceback" not in refused.value.error
    assert "not a node id" in refused.value.error["message"]


def test_a_bad_option_is_logged_where_operators_look(node_factory: Any, hive_plugin: Path) -> None:
    node = node_factory.get_node(
        options={"plugin": str(hive_plugin), "hive-governance": "bogus"}, may_fail=True
    )
    assert node.daemon.is_in_log(r"UNUSUAL.*hive plugin disabled: hive-governance must be")


def test_members_without_a_channel_reconnect_after_restarts(
    node_factory: Any, hive_plugin: Path
) -> None:
    from pyln.testing.utils import wait_for

    l1, l2 = _form(node_factory, hive_plugin, 2)
    wait_for(lambda: _holds_state_of(l1, l2) and _holds_state_of(l2, l1))
    l2.restart()  # l2's node forgets l1 (no channel): the hive must find it again
    wait_for(lambda: _connected(l2, l1))
    l1.restart()
    wait_for(lambda: _connected(l1, l2))
    assert l1.rpc.call("hive-status")["hive"]["members"] == 2


def test_an_unreachable_member_stays_in_the_fleet_view_after_a_restart(
    node_factory: Any, hive_plugin: Path
) -> None:
    from pyln.testing.utils import wait_for

    l1, _l2, l3 = _form(node_factory, hive_plugin, 3)
    wait_for(lambda: _holds_state_of(l1, l3))
    l3.stop()
    l1.restart()
    view = l1.rpc.call("hive-state")
    shown = {m["member"] for m in view["members"]} | set(view["stale"])
    assert l3.info["id"] in shown


def _form_hive(l1: Any, others: list[Any]) -> None:
    from pyln.testing.utils import wait_for

    l1.rpc.call("hive-genesis", {"name": "regtest"})
    for joiner in others:
        ticket = l1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
        joiner.rpc.call(
            "hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"}
        )
    for node in (l1, *others):
        wait_for(lambda node=node: node.rpc.call("hive-status")["hive"]["members"] == 3)


def _channel(node: Any, peer: Any) -> dict[str, Any]:
    (channel,) = node.rpc.listpeerchannels(peer.info["id"])["channels"]
    return dict(channel)


def _local_fee(node: Any, peer: Any) -> tuple[int, int]:
    local = _channel(node, peer)["updates"]["local"]
    return int(local["fee_base_msat"]), int(local["fee_proportional_millionths"])


def test_members_forward_a_circular_rebalance_at_zero_fee(
    node_factory: Any, bitcoind: Any, hive_plugin: Path
) -> None:
    """Three members in a line, l1 - l2 - l3, and l3 - l1 closing the circle (l3 funded it, so
    l1's side is empty). Member channels get the member fee (0/0), then l1 refills its channel
    with l3 by paying itself l1 -> l2 -> l3 -> l1: l2 (the middle) and l3 forward at zero fee,
    the payment costs nothing, and the balances move by the amount."""
    from pyln.testing.utils import wait_for

    opts = {"plugin": str(hive_plugin), "hive-governance": "autonomous"}
    l1, l2, l3 = node_factory.get_nodes(3, opts=opts)
    _form_hive(l1, [l2, l3])
    l1.fundchannel(l2, 1_000_000)
    l2.fundchannel(l3, 1_000_000)
    l3.fundchannel(l1, 1_000_000)
    bitcoind.generate_block(5)
    for node in (l1, l2, l3):
        wait_for(lambda node=node: len(node.rpc.listchannels()["channels"]) == 6)
    # the member fee policy, on both sides of every member channel
    for node, peers in ((l1, (l2, l3)), (l2, (l1, l3)), (l3, (l1, l2))):
        for peer in peers:
            wait_for(lambda node=node, peer=peer: _local_fee(node, peer) == (0, 0))
        kept = node.rpc.call("hive-status")["member_fees"]["member_channels"]
        assert set(kept) == {p.info["id"] for p in peers}
    # our fee updates must reach l1's gossip before it routes (askrene reads gossip fees)
    wait_for(
        lambda: all(
            c["base_fee_millisatoshi"] == 0 and c["fee_per_millionth"] == 0
            for c in l1.rpc.listchannels()["channels"]
        )
    )
    before_l1 = int(_channel(l1, l3)["to_us_msat"])
    before_l2 = int(_channel(l2, l3)["to_us_msat"])
    amount_sat = 100_000
    proposed = l1.rpc.call(
        "hive-rebalance",
        {"out_peer": l2.info["id"], "in_peer": l3.info["id"], "amount_sat": amount_sat},
    )
    assert proposed["decision"] == "proposed"
    assert proposed["plan"]["route"] == [l2.info["id"], l3.info["id"], l1.info["id"]]
    pid = proposed["proposal"]

    def final_state() -> str:
        return str(l1.rpc.call("hive-why", {"id": pid})["proposal"]["state"])

    wait_for(lambda: final_state() in ("succeeded", "failed"))
    assert final_state() == "succeeded"
    assert int(_channel(l1, l3)["to_us_msat"]) == before_l1 + amount_sat * 1000
    assert int(_channel(l2, l3)["to_us_msat"]) == before_l2 - amount_sat * 1000
    (forward,) = [f for f in l2.rpc.listforwards()["forwards"] if f["status"] == "settled"]
    assert forward["fee_msat"] == 0  # the middle member forwarded for free
    report = l1.rpc.call("hive-rebalance", {"since_hours": 1})
    by_member = {t["member"]: t for t in report["liquidity_by_member"]}
    assert by_member[l2.info["id"]]["provided_msat"] == amount_sat * 1000
    assert by_member[l1.info["id"]]["consumed_msat"] == amount_sat * 1000
    assert by_member[l1.info["id"]]["fees_msat"] == 0


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


def test_live_view_api_and_token_on_a_real_node(
    node_factory: Any, hive_plugin: Path, tmp_path: Path
) -> None:
    import httpx
    from pyln.testing.utils import wait_for

    data_dir = tmp_path / "hive-data"
    node = node_factory.get_node(
        options={
            "plugin": str(hive_plugin),
            "hive-data-dir": str(data_dir),
            "hive-web-bind": "127.0.0.1:0",
        }
    )
    wait_for(lambda: node.rpc.call("hive-web-token")["listening"] is not None)
    answer = node.rpc.call("hive-web-token")
    base = answer["listening"]
    assert answer["url"] == f"{base}/#token={answer['token']}"
    assert stat.S_IMODE((data_dir / "web_token").stat().st_mode) == 0o600
    auth = {"Authorization": f"Bearer {answer['token']}"}
    status = httpx.get(f"{base}/api/status", headers=auth, timeout=10).json()
    assert status["node_id"] == node.info["id"]
    assert httpx.get(f"{base}/api/status", timeout=10).status_code == 401
    metrics = httpx.get(f"{base}/metrics", headers=auth, timeout=10).text
    assert 'hive_actor_running{actor="web"} 1.0' in metrics
    assert httpx.get(f"{base}/", timeout=10).status_code == 200
