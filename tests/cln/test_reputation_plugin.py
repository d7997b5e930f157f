"""Contribution reputation between two real plugin processes driven by lightningd doubles:
once bob has joined, alice's hive-reputation scores both members, bob from the totals of his
signed state record (the claim is present, not "no record held"), and both start `new` (no
history is not a leech); a member that is not in the hive is refused with its reason."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from lightningd_double import LightningdDouble, Network, PluginCallError

from cln.conftest import HIVE_PLUGIN

START = 60
STRANGER = "02" + "e5" * 32


async def test_hive_reputation_scores_each_member_from_its_signed_state(
    network: Network,
) -> None:
    alice = LightningdDouble(network, "alice")
    bob = LightningdDouble(network, "bob")
    network.open_channel(alice.node_id, bob.node_id, 2_000_000)
    with trio.fail_after(START):
        async with alice.running(HIVE_PLUGIN), bob.running(HIVE_PLUGIN):
            await alice.call_plugin("hive-genesis", {"name": "reputation"})
            invite = await alice.call_plugin("hive-invite", {"valid_hours": 1})
            await bob.call_plugin(
                "hive-join", [invite["ticket"], f"{alice.node_id}@127.0.0.1:{alice.port}"]
            )

            async def bob_scored() -> dict[str, Any] | None:
                rows = (await alice.call_plugin("hive-reputation"))["members"]
                mine = [r for r in rows if r["member"] == bob.node_id]
                if mine and mine[0]["inputs"]["claimed_consumed_msat"] is not None:
                    return mine[0]
                return None

            while True:
                row = await bob_scored()
                if row is not None:
                    break
                await trio.sleep(0.2)
            everyone = (await alice.call_plugin("hive-reputation"))["members"]
            one = await alice.call_plugin("hive-reputation", {"member": bob.node_id})
            with pytest.raises(PluginCallError) as stranger:
                await alice.call_plugin("hive-reputation", {"member": STRANGER})
    assert {r["member"] for r in everyone} == {alice.node_id, bob.node_id}
    assert {r["standing"] for r in everyone} == {"new"}
    assert row["inputs"]["claimed_provided_msat"] == 0
    assert row["provided_msat"] == row["consumed_msat"] == 0
    assert [r["member"] for r in one["members"]] == [bob.node_id]
    assert "is not a member" in stranger.value.error["message"]
