"""Rebalancing under CLN: the real v25.12.1 captures parsed by hive.cln.views, and ClnNode's
circles (askrene getroutes), labelled payments, payment status and CLBOSS tags through the
lightningd double."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from lightningd_double import LightningdDouble, Network

from hive.cln import views
from hive.cln.events import RawEvent
from hive.cln.gateway import RpcGateway
from hive.cln.node import ClnNode
from hive.errors import NodeError, RouteNotFound
from hive.node.port import FeePolicy, PaymentState, Route, RouteHop

CAPTURES = Path("/work/shared/cln-v25.12.1")
L1 = "02313e69e944acdb21d4bfd509d5392268fcb3a9463052073b1139335dd4a3eeeb"

needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="CLN captures not present")


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"rpc.{name}.json").read_text())


# ---------------------------------------------------------------------------------------------
# views against the real answers


@needs_captures
def test_getroutes_path_shifts_one_hop_into_the_real_sendpay_route() -> None:
    """getroutes(l1 -> l3) + the closing l3 -> l1 hop == the route l1 really paid."""
    leg = views.parse_getroutes(capture("getroutes.auto-localchans-again")["response"])
    sent = capture("sendpay.circular-ok")["request"]["params"]
    last = sent["route"][-1]
    route = Route(
        hops=(
            *leg.hops,
            RouteHop(L1, last["channel"], sent["amount_msat"], last["delay"]),
        )
    )
    want = [{k: h[k] for k in ("id", "channel", "amount_msat", "delay")} for h in sent["route"]]
    # the getroutes leg ends at l3 with the amount and CLTV the last hop needs
    assert views.sendpay_route(route)[:-1] == want[:-1]
    assert leg.start_amount_msat == 10000202  # what l1 "receives": includes its own first fee
    assert route.fee_msat == 202


@needs_captures
def test_getroutes_with_a_layer_and_errors() -> None:
    leg = views.parse_getroutes(capture("getroutes.with-fixture-layer")["response"])
    assert [h.short_channel_id for h in leg.hops] == ["103x4x0", "103x5x0"]
    assert [h.amount_msat for h in leg.hops] == [10000101, 10000101]  # l2 -> l3 free in the layer
    empty = capture("getroutes.source-equals-destination-repeat")["response"]
    with pytest.raises(NodeError, match="path is empty"):
        views.parse_getroutes(empty)
    with pytest.raises(NodeError, match="no route"):
        views.parse_getroutes({"probability_ppm": 0, "routes": []})
    bad = json.loads(json.dumps(capture("getroutes.no-layers")["response"]))
    bad["routes"][0]["path"][0]["short_channel_id_dir"] = "103x3x0"
    with pytest.raises(NodeError, match="short_channel_id_dir"):
        views.parse_getroutes(bad)


@needs_captures
def test_payment_status_from_the_real_history() -> None:
    paid = capture("listinvoices.paid")["response"]
    sendpays = capture("listsendpays.circular")["response"]
    status = views.parse_payment_status("fixture-circular", paid, sendpays)
    assert status.state is PaymentState.COMPLETE
    assert status.fee_msat == 202
    assert status.amount_msat == 10_000_000
    every = capture("listinvoices.all")["response"]
    unpaid = views.parse_payment_status("fixture-any", every, {"payments": []})
    assert unpaid.state is PaymentState.UNKNOWN  # an invoice, but nothing was ever sent
    assert views.parse_payment_status("nope", every).state is PaymentState.UNKNOWN
    failed = capture("listsendpays.all")["response"]
    hash_failed = failed["payments"][1]["payment_hash"]
    invoice = {"invoices": [{"label": "x", "payment_hash": hash_failed, "status": "unpaid"}]}
    assert views.parse_payment_status("x", invoice, failed).state is PaymentState.FAILED
    pending = {"payments": [{**failed["payments"][1], "status": "pending"}]}
    assert views.parse_payment_status("x", invoice, pending).state is PaymentState.PENDING


@needs_captures
def test_setchannel_answer() -> None:
    answer = capture("setchannel.peer-id")["response"]
    assert views.parse_setchannel(answer) == {"103x4x0": FeePolicy(0, 0)}
    every = views.parse_setchannel(capture("setchannel.all")["response"])
    assert len(every) >= 2


# ---------------------------------------------------------------------------------------------
# ClnNode through the double


def make_node(ld: LightningdDouble) -> ClnNode:
    _, receive = trio.open_memory_channel[RawEvent](16)
    return ClnNode(RpcGateway(ld.rpc_path, timeout_s=10), receive)


@pytest.fixture
async def square() -> AsyncIterator[dict[str, LightningdDouble]]:
    """alice - bob - carol - dave - alice; alice's channel with dave is empty on her side.
    bob and carol are members: alice routes alice -> bob -> carol -> dave -> alice."""
    network = Network()
    names = ("alice", "bob", "carol", "dave")
    lds = {n: LightningdDouble(network, n) for n in names}
    a, b, c, d = (lds[n].node_id for n in names)
    network.open_channel(a, b, 1_000_000, a_balance_msat=900_000_000)
    network.open_channel(b, c, 1_000_000, a_balance_msat=900_000_000, fees={b: (0, 500)})
    network.open_channel(c, d, 1_000_000, a_balance_msat=900_000_000)
    network.open_channel(d, a, 1_000_000, a_balance_msat=1_000_000_000, fees={d: (0, 100)})
    with trio.fail_after(30):
        async with lds["alice"].running():
            yield lds


def scid(ld_a: LightningdDouble, ld_b: LightningdDouble) -> str:
    (ch,) = [
        c for c in ld_a.network.channels_of(ld_a.node_id) if c.other(ld_a.node_id) == ld_b.node_id
    ]
    return ch.scid


async def test_circle_by_getroutes_with_fleet_channels_free(
    square: dict[str, LightningdDouble],
) -> None:
    alice, bob, carol, dave = (square[n] for n in ("alice", "bob", "carol", "dave"))
    node = make_node(alice)
    amount = 200_000_000
    priced = await node.find_circular_route(bob.node_id, dave.node_id, amount)
    free = [scid(alice, bob), scid(bob, carol)]
    route = await node.find_circular_route(bob.node_id, dave.node_id, amount, free_channels=free)
    assert [h.node_id for h in route.hops] == [
        bob.node_id,
        carol.node_id,
        dave.node_id,
        alice.node_id,
    ]
    dave_fee = amount * 100 // 1_000_000
    carol_fee = 1000 + (amount + dave_fee) * 10 // 1_000_000
    assert route.fee_msat == dave_fee + carol_fee  # bob's 500 ppm is waived by the fleet layer
    assert priced.fee_msat > route.fee_msat
    # never from a node to itself, never through us; our layer holds the fleet channels
    assert all(src != dst for src, dst in alice.getroutes_calls)
    assert alice.getroutes_calls[-1] == (bob.node_id, dave.node_id)
    assert not alice.askrene_crashed
    layer = alice.askrene.layers["hive-fleet"]
    assert layer.disabled_nodes == [alice.node_id]
    assert sorted(layer.channel_updates) == sorted(f"{s}/{d}" for s in free for d in (0, 1))
    creates = sum(m == "askrene-create-layer" for m, _ in alice.rpc_calls)
    await node.find_circular_route(bob.node_id, dave.node_id, amount, free_channels=free)
    assert sum(m == "askrene-create-layer" for m, _ in alice.rpc_calls) == creates  # reused
    # a channel leaving the fleet: the layer is rebuilt without it
    await node.find_circular_route(bob.node_id, dave.node_id, amount, free_channels=free[:1])
    layer = alice.askrene.layers["hive-fleet"]
    assert sorted(layer.channel_updates) == [f"{free[0]}/0", f"{free[0]}/1"]
    # askrene restarted and forgot it: built again, the call still answers
    del alice.askrene.layers["hive-fleet"]
    again = await node.find_circular_route(bob.node_id, dave.node_id, amount, free_channels=free)
    assert again.fee_msat == route.fee_msat
    with pytest.raises(RouteNotFound, match="excessive cost"):
        await node.find_circular_route(
            bob.node_id, dave.node_id, amount, free_channels=free, max_fee_msat=route.fee_msat - 1
        )
    with pytest.raises(RouteNotFound, match="not us"):
        await node.find_circular_route(alice.node_id, dave.node_id, amount)


async def test_labelled_payment_and_its_status_after_the_fact(
    square: dict[str, LightningdDouble],
) -> None:
    alice, bob, dave = square["alice"], square["bob"], square["dave"]
    node = make_node(alice)
    route = await node.find_circular_route(bob.node_id, dave.node_id, 100_000_000)
    assert (await node.payment_status("hive-rb-1")).state is PaymentState.UNKNOWN
    result = await node.pay_route(route, label="hive-rb-1")
    status = await node.payment_status("hive-rb-1")
    assert status.state is PaymentState.COMPLETE
    assert status.payment_hash == result.payment_hash
    assert status.fee_msat == route.fee_msat
    assert status.amount_msat == 100_000_000
    with pytest.raises(NodeError):
        await node.pay_route(route, label="hive-rb-1")  # a label pays once: duplicate invoice


async def test_the_double_crashes_like_askrene_on_a_circle_to_itself(
    square: dict[str, LightningdDouble],
) -> None:
    alice = square["alice"]
    answer = alice.handle_rpc(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getroutes",
            "params": {
                "source": alice.node_id,
                "destination": alice.node_id,
                "amount_msat": 10000101,
                "layers": [],
                "maxfee_msat": 100000,
                "final_cltv": 16,
            },
        }
    )
    assert answer["error"] == {
        "code": -4,
        "message": "Plugin terminated before replying to RPC call.",
    }
    assert alice.askrene_crashed


@pytest.mark.parametrize("clboss", [True, False])
async def test_fee_and_open_tags_go_to_clboss_together(clboss: bool) -> None:
    network = Network()
    alice = LightningdDouble(network, "alice", clboss=clboss)
    peer = "02" + "cd" * 32
    with trio.fail_after(20):
        async with alice.running():
            node = make_node(alice)
            await node.set_fee_unmanaged(peer, True)
            first = dict(alice.clboss_unmanaged)
            await node.set_open_ignored(peer, True, "saturated")
            both = dict(alice.clboss_unmanaged)
            await node.set_fee_unmanaged(peer, False)
            after_fee = dict(alice.clboss_unmanaged)
            await node.set_open_ignored(peer, False, "released")
    if clboss:
        assert first == {peer: "lnfee"}
        assert both == {peer: "lnfee,open"}
        assert after_fee == {peer: "open"}
        assert alice.clboss_unmanaged == {peer: ""}
    else:
        assert not any(m == "clboss-unmanage" for m, _ in alice.rpc_calls)
    assert node.statistics()["clboss_unmanaged"] == {}
