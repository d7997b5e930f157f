"""The real plugin process, driven by the lightningd double: a peer's force closes and a
peer's held HTLCs, notified the way CLN v25.12.1 notifies them (channel_state_changed with
its cause, forward_event with received_time/resolved_time), make the ban rules propose a
ban-peer with their evidence (advisor mode: the proposal waits for the operator)."""

from __future__ import annotations

import time
from typing import Any

import trio
from lightningd_double import LightningdDouble, Network
from lightningd_double.notifications import forward_event, peer_force_closes

from cln.conftest import HIVE_PLUGIN

START = 60
CLOSER = "02" + "c1" * 32
JAMMER = "02" + "d1" * 32
HONEST = ["02" + f"{k:02x}" * 32 for k in (0xE1, 0xE2, 0xE3)]


async def ban_proposals(ld: LightningdDouble, peer: str) -> list[dict[str, Any]]:
    with trio.fail_after(20):
        while True:
            pending = await ld.call_plugin("hive-pending")
            found = [
                p for p in pending["pending"] if p["kind"] == "ban-peer" and p["target"] == peer
            ]
            if found:
                return found
            await trio.sleep(0.1)


async def test_a_peer_that_force_closes_twice_is_proposed_for_a_ban(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    first = network.open_channel(CLOSER, ld.node_id, 500_000).scid
    second = network.open_channel(CLOSER, ld.node_id, 500_000).scid
    with trio.fail_after(START):
        async with ld.running(HIVE_PLUGIN):
            await ld.call_plugin("hive-genesis", {"name": "closes"})
            peer_force_closes(ld, first)
            await trio.sleep(2)
            assert (await ld.call_plugin("hive-pending"))["pending"] == []  # once is no pattern
            watching = (await ld.call_plugin("hive-bans"))["watching"]
            assert watching["force_closes"] == {CLOSER: [first]}  # its two steps count once
            peer_force_closes(ld, second)
            (proposal,) = await ban_proposals(ld, CLOSER)
            why = await ld.call_plugin("hive-why", {"id": proposal["id"]})
    assert proposal["params"]["rule"] == "force-closes"
    evidence = why["proposal"]["evidence"]
    assert evidence["rule"] == "force-closes"
    assert sorted(evidence["channels"]) == sorted([first, second])


async def test_a_peer_holding_small_htlcs_is_proposed_for_a_ban(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    jam = network.open_channel(JAMMER, ld.node_id, 1_000_000).scid
    honest = [network.open_channel(p, ld.node_id, 1_000_000).scid for p in HONEST]
    now = time.time()
    with trio.fail_after(START):
        async with ld.running(HIVE_PLUGIN):
            await ld.call_plugin("hive-genesis", {"name": "jams"})
            for k in range(60):  # ordinary traffic between honest peers, resolved in ~2 s
                src, dst = honest[k % 3], honest[(k + 1) % 3]
                ld.notify_soon("forward_event", forward_event(
                    in_channel=src, out_channel=dst, in_msat=2_000_000, out_msat=1_999_000,
                    status="settled", received_time=now, resolved_time=now + 2.1,
                ))  # fmt: skip
            for _ in range(25):  # the jammer's own circles through us, held 20 minutes
                ld.notify_soon("forward_event", forward_event(
                    in_channel=jam, out_channel=jam, in_msat=1_000_000, out_msat=1_000_000,
                    status="failed", received_time=now, resolved_time=now + 1_200.5,
                ))  # fmt: skip
            (proposal,) = await ban_proposals(ld, JAMMER)
            why = await ld.call_plugin("hive-why", {"id": proposal["id"]})
            pending = await ld.call_plugin("hive-pending")
    assert proposal["params"]["rule"] == "slow-htlc-jamming"
    evidence = why["proposal"]["evidence"]
    assert evidence["slow"] == 25
    assert evidence["from_peer"] == 25
    assert evidence["norm_ms"] == 2_100
    assert evidence["max_hold_ms"] == 1_200_500
    assert {p["target"] for p in pending["pending"]} == {JAMMER}  # honest peers stay clear
