"""The plugin process, started and driven by the lightningd double over the real protocol.

Real clock (separate processes); every wait is under ``trio.fail_after``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from lightningd_double import LightningdDouble, Network, PluginCallError

from cln.conftest import ECHO_PLUGIN, HIVE_PLUGIN
from hive.cln.events import HIVE_MESSAGE_TYPE
from hive.commands import CATALOGUE, CommandError
from hive.commands.strategy import OPTIONS as STRATEGY_OPTIONS
from hive.governance.options import OPTIONS as DECISION_OPTIONS

OURS = f"{HIVE_MESSAGE_TYPE:04x}"
START = 60  # seconds allowed for a plugin process to start (imports on a loaded machine)


async def test_manifest_and_init(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            manifest = ld.manifest
            stats = await ld.call_plugin("hive-stats")
            assert (ld.lightning_dir / "hive").is_dir()
    assert {o["name"] for o in manifest["options"]} == {
        "hive-data-dir",
        "hive-governance",
        "hive-log-level",
        "hive-saturation-cap",
        "hive-saturation-release",
        "hive-member-fee-ppm",
        "hive-member-fee-base-msat",
        "hive-web-bind",
        *(o.name for o in DECISION_OPTIONS),
        *(o.name for o in STRATEGY_OPTIONS),
    }
    assert [o["name"] for o in manifest["options"] if o.get("multi")] == ["hive-webhook-url"]
    assert all(o["dynamic"] is False for o in manifest["options"])
    assert [h["name"] for h in manifest["hooks"]] == ["custommsg", "openchannel", "openchannel2"]
    assert set(manifest["subscriptions"]) == {
        "connect",
        "disconnect",
        "channel_opened",
        "channel_state_changed",
        "forward_event",
        "shutdown",
    }
    assert manifest["dynamic"] is False
    methods = {m["name"]: m for m in manifest["rpcmethods"]}
    assert methods["hive-send"]["usage"] == "peer_id hex"
    assert methods["hive-echo"]["description"] == "Echo the params back."
    assert ld.init_result is None
    assert stats["data_dir"] == str(ld.lightning_dir / "hive")
    assert stats["governance"] == "advisor"


async def test_options_reach_the_config(network: Network, tmp_path: Path) -> None:
    ld = LightningdDouble(network, "alice")
    options = {
        "hive-governance": "oracle",
        "hive-log-level": "debug",
        "hive-data-dir": str(tmp_path / "data"),
    }
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN, options):
            stats = await ld.call_plugin("hive-stats")
    assert (stats["governance"], stats["log_level"], stats["data_dir"]) == (
        "oracle",
        "debug",
        str(tmp_path / "data"),
    )


async def test_invalid_option_disables_the_plugin(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN, {"hive-governance": "dictator"}):
            result = ld.init_result
    assert "hive-governance must be advisor|autonomous|oracle" in result["disable"]


async def test_commands_round_trip(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            named = await ld.call_plugin("hive-echo", {"text": "hi", "n": 3})
            positional = await ld.call_plugin("hive-echo", ["hello"])
            info = await ld.call_plugin("hive-info")
            with pytest.raises(PluginCallError) as too_many:
                await ld.call_plugin("hive-echo", ["a", "b"])
            with pytest.raises(PluginCallError) as unbound:
                await ld.call_plugin("hive-unbound")
    assert named == {"echo": {"text": "hi", "n": 3}}
    assert positional == {"echo": {"text": "hello"}}
    assert info == {"node_id": ld.node_id, "alias": "ALICE", "network": "regtest"}
    assert too_many.value.code == CommandError.INVALID_PARAMS
    assert "at most 1 parameters" in too_many.value.message
    assert unbound.value.code == CommandError.NOT_FOUND


async def test_rpc_error_from_lightningd_becomes_a_clear_command_error(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            ld.inject_error("getinfo", code=-1, message="database is locked")
            with pytest.raises(PluginCallError) as info:
                await ld.call_plugin("hive-info")
            again = await ld.call_plugin("hive-info")
    assert info.value.code == CommandError.NODE_ERROR
    assert info.value.message == "hive-info: getinfo: database is locked"
    assert again["node_id"] == ld.node_id


async def test_unexpected_exception_is_answered_and_logged(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            with pytest.raises(PluginCallError) as info:
                await ld.call_plugin("hive-fail")
            still = await ld.call_plugin("hive-echo", {})
    assert info.value.code == -32603
    assert info.value.message == "hive-fail failed: RuntimeError: deliberate failure"
    assert "Traceback" in ld.log_text()
    assert "deliberate failure" in ld.log_text()
    assert still == {"echo": {}}


async def test_long_command_does_not_block_others(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    order: list[str] = []

    async def slow() -> None:
        await ld.call_plugin("hive-slow", {"seconds": 1.0})
        order.append("slow")

    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            await ld.call_plugin("hive-echo", {})  # the runtime is up
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow)
                await ld.call_plugin("hive-echo", {"x": 1})
                order.append("echo")
    assert order == ["echo", "slow"]


async def events_of(ld: LightningdDouble, count: int = 0) -> list[dict[str, Any]]:
    """The plugin runtime's events, once it has at least ``count`` (it waits up to 10 s)."""
    result = await ld.call_plugin("hive-events", {"count": count})
    return list(result["events"])


async def test_foreign_and_malformed_custommsgs_are_ignored(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    peer = "03" + "bb" * 32
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            await ld.call_plugin("hive-echo", {})
            answers = [
                await ld.hook("custommsg", {"peer_id": peer, "payload": "0007deadbeef"}),
                await ld.hook("custommsg", {"peer_id": peer, "payload": "not hex at all"}),
                await ld.hook("custommsg", {"peer_id": peer}),
                await ld.hook("custommsg", {"peer_id": peer, "payload": OURS + "c0ffee"}),
            ]
            events = await events_of(ld, 1)
            stats = await ld.call_plugin("hive-stats")
    assert answers == [{"result": "continue"}] * 4
    assert events == [{"type": "CustomMessage", "peer_id": peer, "message": OURS + "c0ffee"}]
    assert stats["node"]["events"]["rejected"] == {"foreign_type": 1, "malformed_custommsg": 2}


async def test_custommsg_relayed_between_two_plugins(network: Network) -> None:
    alice, bob = LightningdDouble(network, "alice"), LightningdDouble(network, "bob")
    network.connect(alice.node_id, bob.node_id)
    with trio.fail_after(START):
        async with alice.running(ECHO_PLUGIN), bob.running(ECHO_PLUGIN):
            sent = await alice.call_plugin("hive-send", [bob.node_id, OURS + "0102"])
            events = await events_of(bob, 1)
            with pytest.raises(PluginCallError) as unreachable:
                await alice.call_plugin("hive-send", ["02" + "00" * 32, OURS])
    assert sent == {"sent": 4}
    assert events == [{"type": "CustomMessage", "peer_id": alice.node_id, "message": OURS + "0102"}]
    assert bob.hook_answers == [{"result": "continue"}]
    assert unreachable.value.code == CommandError.NODE_ERROR
    assert "No such peer" in unreachable.value.message


async def test_notifications_become_events(network: Network) -> None:
    alice, bob = LightningdDouble(network, "alice"), LightningdDouble(network, "bob")
    with trio.fail_after(START):
        async with alice.running(ECHO_PLUGIN), bob.running():
            await alice.call_plugin("hive-echo", {})
            await alice.notify("connect", {"id": bob.node_id, "direction": "in", "address": {}})
            await alice.notify(
                "forward_event",
                {"in_channel": "1x1x1", "out_channel": "2x2x2", "in_msat": 11, "out_msat": 10,
                 "status": "settled"},
            )  # fmt: skip
            await alice.notify("disconnect", {"id": bob.node_id})
            events = await events_of(alice, 3)
    assert [e["type"] for e in events] == ["PeerConnected", "Forwarded", "PeerDisconnected"]
    assert bob.node_id in events[0]["repr"]


async def _measure_exit(ld: LightningdDouble) -> tuple[int, float]:
    started = trio.current_time()
    with trio.fail_after(1.0):
        code = await ld.wait_exit()
    return code, trio.current_time() - started


async def test_shutdown_notification_exits_within_a_second(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            await ld.call_plugin("hive-echo", {})
            await ld.shutdown()
            code, elapsed = await _measure_exit(ld)
    assert code == 0
    assert elapsed < 1.0


async def test_stdin_eof_exits_within_a_second(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            await ld.call_plugin("hive-echo", {})
            await ld.close_stdin()
            code, elapsed = await _measure_exit(ld)
    assert code == 0
    assert elapsed < 1.0


async def test_stdin_eof_before_init_exits(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN, init=False):
            await ld.close_stdin()
            code, _ = await _measure_exit(ld)
    assert code == 0


async def test_production_entry_point_serves_hive_status(network: Network) -> None:
    """``python -m hive.cln`` with the real runtime: manifest accepted, hive-status answers."""
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(HIVE_PLUGIN):
            status = await ld.call_plugin("hive-status")
    assert [m["name"] for m in ld.manifest["rpcmethods"]] == [c.name for c in CATALOGUE]
    assert status["node_id"] == ld.node_id
    # The RPC gateway's counters reach the operator.
    assert status["node"]["rpc"]["getinfo"]["calls"] >= 1
    assert status["node"]["rpc"]["getinfo"]["errors"] == 0


async def test_three_plugins_form_a_hive_through_lightning_cli_calls(network: Network) -> None:
    """genesis on alice, then bob and carol join with tickets alice issued; every node then
    lists the same three members. Calls are shaped as lightning-cli sends them."""
    names = ("alice", "bob", "carol", "dave")
    alice, bob, carol, dave = (LightningdDouble(network, name) for name in names)
    with trio.fail_after(4 * START):
        async with (
            alice.running(HIVE_PLUGIN),
            bob.running(HIVE_PLUGIN),
            carol.running(HIVE_PLUGIN),
            dave.running(HIVE_PLUGIN),
        ):
            created = await alice.call_plugin("hive-genesis", {"name": "trio"})
            for joiner in (bob, carol):
                # lightning-cli -k hive-invite valid_hours=2 max_uses=1
                invite = await alice.call_plugin("hive-invite", {"valid_hours": 2, "max_uses": 1})
                # lightning-cli hive-join <ticket> <alice>@127.0.0.1:<port>  (positional)
                joined = await joiner.call_plugin(
                    "hive-join", [invite["ticket"], f"{alice.node_id}@127.0.0.1:{alice.port}"]
                )
                assert joined["hive_id"] == created["hive_id"]
            # The announcement of carol reaches bob through alice (flooding), so poll briefly.
            listings: dict[str, set[str]] = {}
            while len(listings) < 3 or any(len(v) < 3 for v in listings.values()):
                for ld in (alice, bob, carol):
                    members = await ld.call_plugin("hive-members")
                    listings[ld.node_id] = {m["node_id"] for m in members["members"]}
                await trio.sleep(0.1)
            # carol's single-use ticket is spent: dave is refused by the issuer's count.
            refused = await _join_error(dave, invite["ticket"])
            dave_status = await dave.call_plugin("hive-status")
    everyone = {alice.node_id, bob.node_id, carol.node_id}
    assert all(listing == everyone for listing in listings.values())
    assert "ticket-exhausted" in refused
    assert dave_status["hive"]["member"] is False


async def _join_error(ld: LightningdDouble, ticket: str) -> str:
    with pytest.raises(PluginCallError) as info:
        await ld.call_plugin("hive-join", {"ticket": ticket})
    return str(info.value)


async def test_invalid_web_bind_disables_the_plugin(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN, {"hive-web-bind": "example.org:80"}):
            result = ld.init_result
    assert "hive-web-bind: 'example.org' is not an IP address" in result["disable"]
