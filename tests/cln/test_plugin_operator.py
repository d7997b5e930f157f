"""What lightningd and its operator see of the plugin (issue 13 items 8-10, 12): error answers
without a traceback field, a disabling option logged where an operator looks, Python levels
mapped to lightningd's, and ``check`` served for our commands. Through the lightningd double;
real clock, every wait under ``trio.fail_after``."""

from __future__ import annotations

import pytest
import trio
from lightningd_double import LightningdDouble, Network, PluginCallError

from cln.conftest import ECHO_PLUGIN, HIVE_PLUGIN
from hive.commands import CommandError

START = 60


async def test_error_answers_carry_code_and_message_only(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            with pytest.raises(PluginCallError) as refused:
                await ld.call_plugin("hive-echo", ["a", "b"])
            with pytest.raises(PluginCallError) as crashed:
                await ld.call_plugin("hive-fail")
    for error in (refused.value.error, crashed.value.error):
        assert set(error) == {"code", "message"}, error


async def test_a_disabling_option_is_logged_at_unusual(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN, {"hive-governance": "bogus"}):
            pass
    # lightningd's own line is debug only; ours is what an operator at log-level info sees.
    assert ld.lightningd_logs == [
        ("debug", f"disabled itself at init: {ld.init_result['disable']}")
    ]
    unusual = [e["message"] for e in ld.plugin_logs if e.get("level") == "unusual"]
    assert any("hive-governance must be advisor|autonomous|oracle" in m for m in unusual), unusual


async def test_python_levels_reach_lightningd_as_its_own(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(ECHO_PLUGIN):
            await ld.call_plugin("hive-warn")
            await trio.sleep(0.2)
    levels = {e["message"].split(": ", 1)[-1]: e.get("level") for e in ld.plugin_logs}
    assert levels["a warning for the operator"] == "unusual"
    assert levels["an error for the operator"] == "broken"
    warned = [e for e in ld.plugin_logs if "a python warning" in str(e.get("message"))]
    assert warned
    assert all(e.get("level") == "unusual" for e in warned)
    allowed = {"io", "debug", "info", "unusual", "broken"}
    assert {e.get("level") for e in ld.plugin_logs} <= allowed


async def test_check_validates_parameters_without_running(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with ld.running(HIVE_PLUGIN):
            assert ld.manifest.get("cancheck") is True
            assert "check" not in ld.plugin_methods
            ok = await ld.check("hive-invite", ["5"])
            named = await ld.check("hive-invite", {"valid_hours": 5, "max_uses": 2})
            errors = {}
            for command, params in (
                ("hive-invite", ["abc"]),
                ("hive-invite", {"bogus": 1}),
                ("hive-invite", ["1", "true", "", "1", "x", "y"]),
                ("hive-join", []),
                ("hive-join", ["t", "02zz@host:99"]),
                ("hive-revoke", ["not-a-node"]),
                ("hive-leave", {"delete_data": "maybe"}),
            ):
                with pytest.raises(PluginCallError) as info:
                    await ld.check(command, params)
                errors[(command, str(params))] = info.value
            # Nothing ran: no hive was created, no ticket issued.
            status = await ld.call_plugin("hive-status")
    assert ok == named == {"command_to_check": "hive-invite"}
    assert all(e.code == CommandError.INVALID_PARAMS for e in errors.values())
    messages = [e.message for e in errors.values()]
    assert "valid_hours must be a whole number" in messages[0]
    assert "unknown parameter(s) bogus" in messages[1]
    assert "at most 5 parameters" in messages[2]
    assert "ticket is needed" in messages[3]
    assert "not a node id" in messages[4]
    assert "not a node id" in messages[5]
    assert "delete_data must be true or false" in messages[6]
    assert status["hive"]["member"] is False
    assert not [line for line in ld.lightningd_logs if "does not support check" in line[1]]
