"""The member fee policy as lightningd sees it: the real plugin processes, the double's
``setchannel``. A channel with a member forwards at the member fee (0/0); when the member
leaves, the fee the channel had before is put back."""

from __future__ import annotations

import trio
from lightningd_double import LightningdDouble, Network

from cln.conftest import HIVE_PLUGIN

START = 60
BEFORE = (1_000, 100)  # alice's fee towards bob before bob was a member: base msat, ppm


def _alice_fee(network: Network, alice: LightningdDouble, bob: LightningdDouble) -> tuple[int, int]:
    [channel] = [
        c for c in network.channels_of(alice.node_id) if c.other(alice.node_id) == bob.node_id
    ]
    side = channel.sides[alice.node_id]
    return side.fee_base_msat, side.fee_ppm


async def _until_fee(
    network: Network, alice: LightningdDouble, bob: LightningdDouble, fee: tuple[int, int]
) -> None:
    for _ in range(600):  # the caller's fail_after bounds it first
        if _alice_fee(network, alice, bob) == fee:
            return
        await trio.sleep(0.1)
    raise AssertionError(f"alice's fee towards bob never became {fee}")


async def test_member_fee_applies_through_setchannel_and_is_restored_on_leave(
    network: Network,
) -> None:
    alice = LightningdDouble(network, "alice")
    bob = LightningdDouble(network, "bob")
    network.open_channel(alice.node_id, bob.node_id, 2_000_000, fees={alice.node_id: BEFORE})
    with trio.fail_after(3 * START):
        async with alice.running(HIVE_PLUGIN), bob.running(HIVE_PLUGIN):
            await alice.call_plugin("hive-genesis", {"name": "fees"})
            invite = await alice.call_plugin("hive-invite", {"valid_hours": 1})
            await bob.call_plugin(
                "hive-join", [invite["ticket"], f"{alice.node_id}@127.0.0.1:{alice.port}"]
            )
            await _until_fee(network, alice, bob, (0, 0))
            status = await alice.call_plugin("hive-status")
            await bob.call_plugin("hive-leave")
            await _until_fee(network, alice, bob, BEFORE)
    kept = status["member_fees"]["member_channels"][bob.node_id]
    assert kept["previous"] == {"base_msat": BEFORE[0], "ppm": BEFORE[1]}
    assert kept["since_ms"] > 0
    assert any(m == "setchannel" and p.get("feeppm") in (0, "0") for m, p in alice.rpc_calls)
