"""The governance commands as lightningd serves them: the real plugin process, the double."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from lightningd_double import LightningdDouble, Network, PluginCallError

from cln.conftest import HIVE_PLUGIN
from hive.commands import CommandError

GOVERNANCE_PLUGIN = [sys.executable, str(Path(__file__).with_name("governance_plugin.py"))]
START = 60


async def _until_final(ld: LightningdDouble, pid: str) -> dict[str, Any]:
    for _ in range(200):
        why = await ld.call_plugin("hive-why", {"id": pid})
        if why["proposal"]["state"] in ("succeeded", "failed", "rejected", "expired"):
            return why
        await trio.sleep(0.05)
    raise AssertionError(f"{pid} never became final")


async def test_advisor_flow_through_lightningd(network: Network) -> None:
    alice = LightningdDouble(network, "alice")
    bob = LightningdDouble(network, "bob")
    with trio.fail_after(START):
        async with alice.running(GOVERNANCE_PLUGIN):
            proposed = await alice.call_plugin(
                "hive-test-propose", [bob.node_id, 500_000, "127.0.0.1", bob.port, 3_000]
            )
            pid = proposed["id"]
            pending = await alice.call_plugin("hive-pending")
            assert [p["id"] for p in pending["pending"]] == [pid]
            assert pending["pending"][0]["state"] == "pending"
            # Nothing happened on the node yet.
            assert not any(m == "fundchannel" for m, _ in alice.rpc_calls)
            with pytest.raises(PluginCallError) as malformed:
                await alice.call_plugin("hive-approve", ["nonsense"])
            with pytest.raises(PluginCallError) as unknown:
                await alice.call_plugin("hive-approve", ["p-0000000000"])
            approved = await alice.call_plugin("hive-approve", [pid, "ok by me"])
            why = await _until_final(alice, pid)
            with pytest.raises(PluginCallError) as twice:
                await alice.call_plugin("hive-approve", [pid])
            budget = await alice.call_plugin("hive-budget")
            ledger = await alice.call_plugin("hive-ledger", {"kind": "open-channel", "limit": 10})
    assert malformed.value.code == CommandError.INVALID_PARAMS
    assert unknown.value.code == CommandError.NOT_FOUND
    assert twice.value.code == CommandError.REFUSED
    assert approved["approved"] == [pid]
    assert why["proposal"]["state"] == "succeeded"
    assert why["story"][0].startswith("proposed by test-producer")
    assert why["story"][1] == "approved by operator: ok by me"
    [fund] = [params for m, params in alice.rpc_calls if m == "fundchannel"]
    assert fund["feerate"] == "3000perkw"  # the proposal's feerate, bounded by the limit
    assert budget["usage"]["capital_sat"]["spent_24h"] == 500_000
    assert budget["usage"]["onchain_fee_sat"]["spent_24h"] == 1530  # the double's real fee
    # The opener's own steps (intent lock, re-check, funding) sit between reservation and outcome.
    assert [e["entry"] for e in ledger["entries"]] == [
        "outcome",
        "funded",
        "rechecked",
        "locked",
        "reserved",
        "decided",
        "proposed",
    ]


async def test_kill_switch_through_lightningd(network: Network) -> None:
    alice = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with alice.running(HIVE_PLUGIN):
            paused = await alice.call_plugin("hive-pause", ["fee storm"])
            status = await alice.call_plugin("hive-status")
            with pytest.raises(PluginCallError) as why:
                await alice.call_plugin("hive-why", ["p-0123456789"])
            await alice.call_plugin("hive-resume")
            with pytest.raises(PluginCallError) as again:
                await alice.call_plugin("hive-resume")
            ledger = await alice.call_plugin("hive-ledger", ["all", "1h"])
    assert paused["paused"]["reason"] == "fee storm"
    assert next(iter(status)) == "paused"
    assert status["paused"]["reason"] == "fee storm"
    assert why.value.code == CommandError.NOT_FOUND
    assert again.value.code == CommandError.REFUSED
    assert [e["entry"] for e in ledger["entries"]][:2] == ["resumed", "paused"]


async def test_governance_options_are_validated_in_init(network: Network) -> None:
    alice = LightningdDouble(network, "alice")
    with trio.fail_after(START):
        async with alice.running(HIVE_PLUGIN, {"hive-webhook-url": ["not a url"]}):
            bad_url = alice.init_result
    bob = LightningdDouble(network, "bob")
    with trio.fail_after(START):
        async with bob.running(HIVE_PLUGIN, {"hive-limit-daily-capital-sat": "-5"}):
            bad_limit = bob.init_result
    carol = LightningdDouble(network, "carol")
    options = {
        "hive-webhook-url": ["http://127.0.0.1:9/a", "https://example.org/b"],
        "hive-webhook-secret": "0123456789abcdef",
        "hive-proposal-ttl": "2h",
    }
    with trio.fail_after(START):
        async with carol.running(HIVE_PLUGIN, options):
            status = await carol.call_plugin("hive-status")
    assert "hive-webhook-url must not contain spaces" in bad_url["disable"]
    assert "hive-limit-daily-capital-sat must be a whole number" in bad_limit["disable"]
    assert set(status["decisions"]["webhooks"]) == {"http://127.0.0.1:9/a", "https://example.org/b"}
