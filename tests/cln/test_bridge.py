"""The bridge's crossings and the command table, in process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio

from hive.cln.bridge import CommandCall, PluginBridge
from hive.cln.plugin import CommandSpec, CommandTable, OptionError, config_from_init
from hive.commands import Command, CommandError, JsonDict
from hive.config import Governance
from hive.errors import NodeUnavailable


async def test_full_event_queue_drops_and_counts() -> None:
    bridge = PluginBridge(plugin=None, event_capacity=2)

    def from_pyln_thread() -> None:
        for i in range(5):
            bridge.from_loop_event("connect", {"connect": {"id": str(i)}})

    with trio.fail_after(10):
        await trio.to_thread.run_sync(from_pyln_thread)
        first = bridge.events.receive_nowait()
    assert first.params == {"connect": {"id": "0"}}
    assert bridge.events_passed == 2
    assert bridge.events_dropped == {"queue_full": 3}


async def test_full_command_queue_answers_busy_at_once() -> None:
    bridge = PluginBridge(plugin=None, command_capacity=1)
    busy: list[str] = []

    def from_pyln_thread() -> None:
        for i in range(3):
            call = CommandCall(name=f"c{i}", args=(), kwargs={}, request=None)
            bridge.from_loop_command(call, lambda c: busy.append(c.name))

    with trio.fail_after(10):
        await trio.to_thread.run_sync(from_pyln_thread)
    assert busy == ["c1", "c2"]
    assert bridge.calls.receive_nowait().name == "c0"


async def test_init_and_shutdown_cross_into_trio() -> None:
    bridge = PluginBridge(plugin=None)

    def from_pyln_thread() -> None:
        bridge.from_loop_init({"hive-governance": "oracle"}, {"lightning-dir": "/x"})
        bridge.from_loop_shutdown()

    with trio.fail_after(10):
        await trio.to_thread.run_sync(from_pyln_thread)
        await bridge.init_received.wait()
        await bridge.shutdown.wait()
    assert bridge.init is not None
    assert bridge.init.options == {"hive-governance": "oracle"}


SPECS = [CommandSpec("hive-x", "peer [amount]", "x")]


async def _echo(params: Mapping[str, Any]) -> JsonDict:
    return dict(params)


async def _unavailable(params: Mapping[str, Any]) -> JsonDict:
    raise NodeUnavailable("lightningd did not answer getinfo within 60s")


async def test_command_before_the_runtime_is_not_ready(autojump_clock: trio.abc.Clock) -> None:
    table = CommandTable(SPECS, ready_timeout_s=5)
    started = trio.current_time()
    with pytest.raises(CommandError) as info:
        await table.execute("hive-x", (), {})
    assert info.value.code == CommandError.NOT_READY
    assert trio.current_time() - started == pytest.approx(5)


async def test_command_waits_for_the_runtime(autojump_clock: trio.abc.Clock) -> None:
    table = CommandTable(SPECS, ready_timeout_s=5)
    async with trio.open_nursery() as nursery:

        async def bind_later() -> None:
            await trio.sleep(2)
            table.bind([Command(CommandSpec("hive-x", "", ""), _echo)])

        nursery.start_soon(bind_later)
        result = await table.execute("hive-x", ("02ab", 5), {})
    assert result == {"peer": "02ab", "amount": 5}


async def test_param_mapping_and_node_errors(autojump_clock: trio.abc.Clock) -> None:
    table = CommandTable([*SPECS, CommandSpec("hive-y", "", "y")])
    table.bind(
        [
            Command(CommandSpec("hive-x", "", ""), _echo),
            Command(CommandSpec("hive-y", "", ""), _unavailable),
        ]
    )
    assert await table.execute("hive-x", (), {"peer": "p"}) == {"peer": "p"}
    with pytest.raises(CommandError, match="at most 2 parameters") as info:
        await table.execute("hive-x", (1, 2, 3), {})
    assert info.value.code == CommandError.INVALID_PARAMS
    with pytest.raises(CommandError, match="hive-y: lightningd did not answer") as info:
        await table.execute("hive-y", (), {})
    assert info.value.code == CommandError.NODE_ERROR


def test_config_from_init() -> None:
    config = config_from_init({}, {"lightning-dir": "/ln/regtest"})
    assert str(config.data_dir) == "/ln/regtest/hive"
    assert config.governance is Governance.ADVISOR
    custom = config_from_init(
        {"hive-data-dir": "/d", "hive-governance": "autonomous", "hive-log-level": "warn"},
        {"lightning-dir": "/ln"},
    )
    assert (str(custom.data_dir), custom.governance, custom.log_level) == (
        "/d",
        Governance.AUTONOMOUS,
        "warn",
    )
    with pytest.raises(OptionError, match="hive-log-level"):
        config_from_init({"hive-log-level": "loud"}, {"lightning-dir": "/ln"})
    with pytest.raises(OptionError, match="lightning-dir"):
        config_from_init({}, {})


@pytest.mark.parametrize(
    ("cap", "release", "expected"),
    [
        (None, None, (0.25, 0.15)),
        ("30%", None, (0.30, 0.15)),
        ("0.5", "0.4", (0.5, 0.4)),
    ],
)
def test_saturation_options(cap: str | None, release: str | None, expected: tuple) -> None:
    options = {"hive-saturation-cap": cap, "hive-saturation-release": release}
    gossip = config_from_init(options, {"lightning-dir": "/ln"}).gossip
    assert (gossip.saturation_cap, gossip.saturation_release) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"hive-saturation-cap": "lots"}, "share such as"),
        ({"hive-saturation-cap": "0"}, "above 0"),
        ({"hive-saturation-cap": "150%"}, "at most 1"),
        ({"hive-saturation-cap": "0.1"}, "below hive-saturation-cap"),
    ],
)
def test_bad_saturation_options_disable_with_a_reason(options: dict, complaint: str) -> None:
    with pytest.raises(OptionError, match=complaint):
        config_from_init(options, {"lightning-dir": "/ln"})


def test_member_fee_options() -> None:
    default = config_from_init({}, {"lightning-dir": "/ln"}).rebalance
    assert (default.member_fee_base_msat, default.member_fee_ppm) == (0, 0)
    options = {"hive-member-fee-ppm": "5", "hive-member-fee-base-msat": " 1000 "}
    custom = config_from_init(options, {"lightning-dir": "/ln"}).rebalance
    assert (custom.member_fee_base_msat, custom.member_fee_ppm) == (1000, 5)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"hive-member-fee-ppm": "-1"}, "hive-member-fee-ppm must be a whole number"),
        ({"hive-member-fee-ppm": "1.5"}, "whole number"),
        ({"hive-member-fee-ppm": "10001"}, "at most 10000"),
        ({"hive-member-fee-base-msat": "1sat"}, "hive-member-fee-base-msat must be"),
        ({"hive-member-fee-base-msat": "100001"}, "at most 100000"),
    ],
)
def test_bad_member_fee_options_disable_with_a_reason(options: dict, complaint: str) -> None:
    with pytest.raises(OptionError, match=complaint):
        config_from_init(options, {"lightning-dir": "/ln"})
