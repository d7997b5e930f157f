"""Strategy gossip between two real plugin processes driven by lightningd doubles: alice's
forwards out to carol (forward_event notifications, the v25.12.1 capture's shape) make her
commit to a report on carol, reveal it after hive-strategy-delay, and bob, who holds the
commitment, receives the reveal, checks it against his own listchannels and lists it in
hive-strategies as consistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
from lightningd_double import LightningdDouble, Network

from cln.conftest import HIVE_PLUGIN

START = 60
CAPTURE = Path("/work/shared/cln-v25.12.1/notification.forward_event.settled.json")
CAROL = "02" + "c4" * 32
DAVE = "03" + "d4" * 32
OPTIONS = {"hive-strategy-delay": "10", "hive-strategy-check": "10"}


def forward(in_channel: str, out_channel: str, in_msat: int, out_msat: int) -> dict[str, Any]:
    """The notification's payload (the double wraps it under the topic's name)."""
    if CAPTURE.exists():
        event = dict(json.loads(CAPTURE.read_text())["received"]["params"]["forward_event"])
    else:  # the capture's shape, for machines without /work/shared
        event = {"payment_hash": "87" * 32, "in_htlc_id": 0, "status": "settled", "style": "tlv"}
    event.update(
        in_channel=in_channel,
        out_channel=out_channel,
        in_msat=in_msat,
        out_msat=out_msat,
        fee_msat=in_msat - out_msat,
        status="settled",
    )
    return event


async def test_a_report_published_on_alice_is_verified_and_listed_on_bob(
    network: Network,
) -> None:
    alice = LightningdDouble(network, "alice")
    bob = LightningdDouble(network, "bob")
    network.open_channel(alice.node_id, bob.node_id, 2_000_000)
    to_carol = network.open_channel(
        alice.node_id, CAROL, 3_000_000, fees={alice.node_id: (1_000, 200)}
    )
    from_dave = network.open_channel(DAVE, alice.node_id, 1_000_000)
    with trio.fail_after(START):
        async with alice.running(HIVE_PLUGIN, OPTIONS), bob.running(HIVE_PLUGIN, OPTIONS):
            await alice.call_plugin("hive-genesis", {"name": "strategies"})
            invite = await alice.call_plugin("hive-invite", {"valid_hours": 1})
            await bob.call_plugin(
                "hive-join", [invite["ticket"], f"{alice.node_id}@127.0.0.1:{alice.port}"]
            )
            for _ in range(6):
                await alice.notify(
                    "forward_event", forward(from_dave.scid, to_carol.scid, 20_100_000, 20_000_000)
                )
            while True:
                ours = (await alice.call_plugin("hive-strategies"))["ours"]
                if ours:
                    break
                await trio.sleep(0.2)
            pending = await bob.call_plugin("hive-strategies")
            while True:
                listed = await bob.call_plugin("hive-strategies", {"peer": CAROL})
                if listed["received"] and listed["received"][0]["verdict"] != "pending":
                    break
                await trio.sleep(0.2)
            mine = await alice.call_plugin("hive-strategies")
    (commitment,) = ours
    assert commitment["peer"] == CAROL
    assert commitment["state"] == "pending"
    assert pending["received"] == []  # the report stays secret until the delay is over
    assert mine["ours"][0]["state"] == "revealed"
    (report,) = listed["received"]
    assert report["issuer"] == alice.node_id
    assert report["verdict"] == "consistent"
    assert report["channels"] == [
        {"short_channel_id": to_carol.scid, "capacity_sat": 3_000_000, "base_msat": 1_000,
         "ppm": 200}
    ]  # fmt: skip
    assert report["forwards"] == 6
    assert report["earned_msat"] == 600_000
    assert report["yield_ppm"] == 200  # 600 sat earned on 3 000 000 sat
    assert report["checks"] == [
        {"check": f"graph:{to_carol.scid}", "result": "ok", "detail": "as announced"}
    ]
