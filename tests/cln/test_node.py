"""ClnNode against lightningd doubles (RPC socket only, no plugin process). Real clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from lightningd_double import LightningdDouble, Network

from hive.cln.events import HIVE_MESSAGE_TYPE, RawEvent
from hive.cln.gateway import RpcGateway
from hive.cln.node import ClnNode
from hive.errors import InsufficientFunds, NodeError, PaymentFailed, PeerUnreachable, RouteNotFound
from hive.node.port import ChannelState, CustomMessage, FeePolicy, NodeEvent, PeerConnected
from hive.protocol import lnsig

OURS = HIVE_MESSAGE_TYPE.to_bytes(2, "big")


def make_node(ld: LightningdDouble) -> tuple[ClnNode, trio.MemorySendChannel[RawEvent]]:
    send, receive = trio.open_memory_channel[RawEvent](16)
    return ClnNode(RpcGateway(ld.rpc_path, timeout_s=10), receive), send


@pytest.fixture
async def trio_nodes(network: Network) -> AsyncIterator[dict[str, LightningdDouble]]:
    """Alice, Bob, Carol running their RPC sockets: a-b-c-a triangle of channels."""
    names = ("alice", "bob", "carol")
    lds = {n: LightningdDouble(network, n) for n in names}
    a, b, c = (lds[n].node_id for n in names)
    network.connect(a, b)
    network.connect(a, c)
    network.open_channel(a, b, 1_000_000, a_balance_msat=800_000_000)
    network.open_channel(b, c, 1_000_000, a_balance_msat=500_000_000)
    network.open_channel(c, a, 1_000_000, a_balance_msat=700_000_000, fees={c: (0, 100)})
    with trio.fail_after(30):
        async with lds["alice"].running(), lds["bob"].running(), lds["carol"].running():
            yield lds


async def test_identity_peers_channels(trio_nodes: dict[str, LightningdDouble]) -> None:
    alice, bob = trio_nodes["alice"], trio_nodes["bob"]
    node, _ = make_node(alice)
    with trio.fail_after(10):
        info = await node.get_info()
        peers = {p.node_id: p for p in await node.list_peers()}
        channels = {c.peer_id: c for c in await node.list_channels()}
        public = await node.list_public_channels(bob.node_id)
        ann = await node.get_node_announcement(bob.node_id)
        balance = await node.onchain_balance_sat()
    assert info.node_id == alice.node_id
    assert peers[bob.node_id].connected
    assert peers[bob.node_id].features == bytes.fromhex("08a0000a8a5961")
    to_bob = channels[bob.node_id]
    assert to_bob.state is ChannelState.NORMAL
    assert (to_bob.local_msat, to_bob.remote_msat) == (800_000_000, 200_000_000)
    assert {p.source for p in public} == {bob.node_id}
    assert len(public) == 2
    assert ann is not None
    assert ann.alias == "BOB"
    assert balance == 10_000_000


async def test_custommsg_and_peer_errors(network: Network) -> None:
    alice, bob = LightningdDouble(network, "alice"), LightningdDouble(network, "bob")
    node, _ = make_node(alice)
    with trio.fail_after(20):
        async with alice.running(), bob.running():
            with pytest.raises(PeerUnreachable, match="No such peer"):
                await node.send_custommsg(bob.node_id, OURS + b"hi")
            await node.connect(bob.node_id)
            await node.send_custommsg(bob.node_id, OURS + b"hi")
            network.open_channel(alice.node_id, bob.node_id, 100_000)  # stays a peer offline
            network.disconnect(alice.node_id, bob.node_id)
            with pytest.raises(PeerUnreachable, match="not connected"):
                await node.send_custommsg(bob.node_id, OURS + b"hi")
            with pytest.raises(PeerUnreachable, match="cannot connect"):
                await node.connect("02" + "00" * 32)
            network.connect(alice.node_id, bob.node_id)
            with pytest.raises(NodeError, match="managed internally"):
                await node.send_custommsg(bob.node_id, (16).to_bytes(2, "big"))
    assert alice.sent_custommsgs == [(bob.node_id, OURS + b"hi")]
    assert ("sendcustommsg", {"node_id": bob.node_id, "msg": (OURS + b"hi").hex()}) in (
        alice.rpc_calls
    )


async def test_fees_open_and_insufficient_funds(network: Network) -> None:
    alice, bob = LightningdDouble(network, "alice"), LightningdDouble(network, "bob")
    network.connect(alice.node_id, bob.node_id)
    node, _ = make_node(alice)
    with trio.fail_after(20):
        async with alice.running(), bob.running():
            opened = await node.open_channel(bob.node_id, 2_000_000)
            await node.set_fee_policy(bob.node_id, FeePolicy(base_msat=0, ppm=0))
            (channel,) = await node.list_channels()
            with pytest.raises(InsufficientFunds, match="Could not afford"):
                await node.open_channel(bob.node_id, 50_000_000)
    assert opened.onchain_fee_sat == 1530  # the double's fee, read back from the tx
    assert opened.amount_sat == 2_000_000
    assert channel.our_fee == FeePolicy(0, 0)
    assert channel.capacity_msat == 2_000_000_000


async def test_circular_route_and_payment(trio_nodes: dict[str, LightningdDouble]) -> None:
    alice, bob, carol = trio_nodes["alice"], trio_nodes["bob"], trio_nodes["carol"]
    node, _ = make_node(alice)
    with trio.fail_after(20):
        route = await node.find_circular_route(bob.node_id, carol.node_id, 100_000_000)
        result = await node.pay_route(route)
        channels = {c.peer_id: c for c in await node.list_channels()}
    assert [h.node_id for h in route.hops] == [bob.node_id, carol.node_id, alice.node_id]
    # Carol charges 0 + 100 ppm on carol->alice; Bob the double's default 1000 + 10 ppm.
    assert route.hops[1].amount_msat == 100_010_000
    assert route.hops[0].amount_msat == 100_010_000 + 1000 + 100_010_000 * 10 // 1_000_000
    assert result.amount_msat == 100_000_000
    assert result.fee_msat == route.fee_msat
    assert channels[bob.node_id].local_msat == 800_000_000 - route.hops[0].amount_msat
    assert channels[carol.node_id].local_msat == 300_000_000 + 100_000_000


async def test_payment_failure_names_the_failing_node(
    trio_nodes: dict[str, LightningdDouble],
) -> None:
    alice, bob, carol = trio_nodes["alice"], trio_nodes["bob"], trio_nodes["carol"]
    node, _ = make_node(alice)
    with trio.fail_after(20):
        route = await node.find_circular_route(bob.node_id, carol.node_id, 100_000_000)
        # Bob cannot forward more than his 500_000_000 msat to Carol.
        big = await node.find_circular_route(bob.node_id, carol.node_id, 600_000_000)
        with pytest.raises(PaymentFailed) as info:
            await node.pay_route(big)
        with pytest.raises(RouteNotFound):
            await node.find_circular_route(bob.node_id, carol.node_id, 900_000_000)
        with pytest.raises(NodeError, match="circular routes only"):
            await node.pay_route(await node.find_route(carol.node_id, 1000))
    assert info.value.failing_node == bob.node_id
    assert info.value.code == 204
    assert route.destination == alice.node_id


async def test_find_route_excludes_channels(trio_nodes: dict[str, LightningdDouble]) -> None:
    alice, carol = trio_nodes["alice"], trio_nodes["carol"]
    node, _ = make_node(alice)
    with trio.fail_after(20):
        direct = await node.find_route(carol.node_id, 1000)
        around = await node.find_route(
            carol.node_id, 1000, exclude_channels=[direct.hops[0].short_channel_id]
        )
        with pytest.raises(RouteNotFound, match="Could not find a route"):
            await node.find_route("02" + "00" * 32, 1000)
    assert len(direct.hops) == 1
    assert len(around.hops) == 2


async def test_sign_and_check(network: Network) -> None:
    alice = LightningdDouble(network, "alice")
    node, _ = make_node(alice)
    with trio.fail_after(10):
        async with alice.running():
            zbase = await node.sign_message("hive hello")
            ok = await node.check_message("hive hello", zbase, alice.node_id)
            tampered = await node.check_message("hive hellO", zbase, alice.node_id)
    assert lnsig.recover_node_id("hive hello", zbase) == alice.node_id
    assert ok
    assert not tampered


@pytest.mark.parametrize("clboss", [True, False])
async def test_open_ignored_with_and_without_clboss(network: Network, clboss: bool) -> None:
    alice = LightningdDouble(network, "alice", clboss=clboss)
    peer = "02" + "cc" * 32
    node, _ = make_node(alice)
    with trio.fail_after(10):
        async with alice.running():
            await node.set_open_ignored(peer, True, "saturated target")
            ignored = node.open_ignored()
            told = dict(alice.clboss_unmanaged)
            await node.set_open_ignored(peer, False, "no longer saturated")
    assert ignored == {peer: "saturated target"}
    assert node.open_ignored() == {}
    if clboss:
        assert told == {peer: "open"}
        assert alice.clboss_unmanaged == {peer: ""}
    else:
        assert told == {}
        assert not any(m == "clboss-unmanage" for m, _ in alice.rpc_calls)


async def test_run_events_filters_and_counts(network: Network) -> None:
    alice = LightningdDouble(network, "alice")
    node, raw = make_node(alice)
    peer = "03" + "bb" * 32
    out_send, out_receive = trio.open_memory_channel[NodeEvent](16)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run_events, out_send)
            await raw.send(RawEvent("custommsg", {"peer_id": peer, "payload": "0007aa"}))
            await raw.send(RawEvent("custommsg", {"peer_id": peer, "payload": "zz"}))
            await raw.send(RawEvent("custommsg", {"peer_id": peer, "payload": OURS.hex() + "01"}))
            await raw.send(RawEvent("connect", {"connect": {"id": peer, "direction": "in"}}))
            first = await out_receive.receive()
            second = await out_receive.receive()
            nursery.cancel_scope.cancel()
    assert first == CustomMessage(peer, OURS + b"\x01")
    assert second == PeerConnected(peer)
    assert node.events_rejected == {"foreign_type": 1, "malformed_custommsg": 1}
    assert node.statistics()["events"]["delivered"] == 2
