"""Channel opens, identity, signing and the rest of NodePort on SimNode."""

from __future__ import annotations

import inspect

import pytest
import trio
import trio.lowlevel
import trio.testing

from hive.errors import InsufficientFunds, NodeError, PeerUnreachable, RouteNotFound
from hive.node.port import (
    ChannelOpened,
    ChannelState,
    ChannelStateChanged,
    NodePort,
    PeerConnected,
)
from hive.node.sim.features import SPLICE_OPTIONAL, SPLICE_REQUIRED, has_feature, supports
from hive.node.sim.graph import Graph
from hive.node.sim.network import SimNetwork
from hive.node.sim.node import SimNode
from hive.node.sim.testing import SAT, Diamond, Runner, drain
from hive.protocol import lnsig


def test_simnode_has_every_nodeport_method_with_its_parameters() -> None:
    names = [n for n in vars(NodePort) if not n.startswith("_")]
    assert "pay_route" in names
    for name in names:
        port_params = list(inspect.signature(getattr(NodePort, name)).parameters)
        sim_params = list(inspect.signature(getattr(SimNode, name)).parameters)
        assert sim_params == port_params, name
        port_async = inspect.iscoroutinefunction(getattr(NodePort, name))
        assert inspect.iscoroutinefunction(getattr(SimNode, name)) == port_async, name


async def test_open_confirms_after_delay_and_costs_onchain_fee(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=2, confirmation_delay_s=600, open_fee_sat=3_000)
    await runner.start(net)
    alice = net.add_node("alice", onchain_sat=1_000_000)
    bob = net.add_node("bob")
    a_ev, b_ev = await runner.events(alice), await runner.events(bob)
    start = trio.current_time()
    result = await alice.open_channel(bob.node_id, 400_000)
    assert result.peer_id == bob.node_id
    assert result.amount_sat == 400_000
    assert result.onchain_fee_sat == 3_000
    assert len(result.txid) == 64
    assert await alice.onchain_balance_sat() == 1_000_000 - 400_000 - 3_000
    [chan] = await alice.list_channels()
    assert chan.state is ChannelState.OPENING
    assert chan.short_channel_id is None
    assert (chan.local_msat, chan.remote_msat) == (400_000 * SAT, 0)
    with pytest.raises(RouteNotFound):  # not usable before it confirms
        await alice.find_route(bob.node_id, 1000 * SAT)

    # Opening connected them first.
    await trio.lowlevel.checkpoint()
    assert drain(a_ev)[:3] == [
        PeerConnected(bob.node_id, (await bob.list_peers())[0].features),
        ChannelOpened(bob.node_id, 400_000 * SAT, ours=True),
        ChannelStateChanged(bob.node_id, None, None, ChannelState.OPENING),
    ]
    assert [e for e in drain(b_ev) if not isinstance(e, PeerConnected)] == [
        ChannelOpened(alice.node_id, 400_000 * SAT, ours=False),
        ChannelStateChanged(alice.node_id, None, None, ChannelState.OPENING),
    ]

    with trio.fail_after(700):
        event = await a_ev.receive()
    assert trio.current_time() - start == pytest.approx(600)
    assert isinstance(event, ChannelStateChanged)
    assert (event.old_state, event.new_state) == (ChannelState.OPENING, ChannelState.NORMAL)
    assert event.short_channel_id is not None
    [chan] = await alice.list_channels()
    assert chan.state is ChannelState.NORMAL
    assert chan.short_channel_id == event.short_channel_id
    assert event.short_channel_id.startswith(f"{net.start_height + 1}x")
    [bob_chan] = await bob.list_channels()
    assert (bob_chan.local_msat, bob_chan.remote_msat) == (0, 400_000 * SAT)
    route = await alice.find_route(bob.node_id, 1000 * SAT)
    assert route.fee_msat == 0
    public = await bob.list_public_channels(alice.node_id)
    assert [p.short_channel_id for p in public] == [event.short_channel_id]
    assert net.stats.opens == 1


async def test_open_without_funds_moves_nothing() -> None:
    net = SimNetwork(Graph(), seed=2, open_fee_sat=3_000)
    alice = net.add_node("alice", onchain_sat=100_000)
    bob = net.add_node("bob")
    with pytest.raises(InsufficientFunds, match="needs 100001 sat") as info:
        await alice.open_channel(bob.node_id, 97_001)
    assert info.value.code == 301
    assert await alice.onchain_balance_sat() == 100_000
    assert await alice.list_channels() == []
    with pytest.raises(NodeError, match="below the minimum"):
        await alice.open_channel(bob.node_id, 1_000)
    bob.set_offline()
    with pytest.raises(PeerUnreachable):
        await alice.open_channel(bob.node_id, 50_000)


async def test_get_info_blockheight_follows_trio_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(Graph(), seed=2, start_height=800_000)
    alice = net.add_node("alice")
    info = await alice.get_info()
    assert (info.node_id, info.alias, info.network, info.blockheight) == (
        alice.node_id,
        "alice",
        "sim",
        800_000,
    )
    # New nodes offer splicing (bit 63, optional) in their init features.
    assert int.from_bytes(info.features, "big") >> 63 & 1 == 1
    await trio.sleep(3 * 600 + 1)
    assert (await alice.get_info()).blockheight == 800_003


async def test_added_node_keys_are_deterministic_and_sign() -> None:
    one = SimNetwork(Graph(), seed=5).add_node("alice")
    two = SimNetwork(Graph(), seed=5).add_node("alice")
    other = SimNetwork(Graph(), seed=6).add_node("alice")
    assert one.node_id == two.node_id != other.node_id
    zbase = await one.sign_message("hello hive")
    assert lnsig.check_message("hello hive", zbase, one.node_id)
    assert await two.check_message("hello hive", zbase, one.node_id)
    assert not await two.check_message("hello hive", zbase, other.node_id)
    assert not await two.check_message("hello hive!", zbase, one.node_id)


async def test_graph_node_without_secret_cannot_sign() -> None:
    graph = Graph()
    graph.add_node("02" + "ab" * 32, "stranger")
    net = SimNetwork(graph, seed=1)
    with pytest.raises(NodeError, match="cannot sign"):
        await net.node("02" + "ab" * 32).sign_message("x")
    with pytest.raises(KeyError):
        net.node("03" + "00" * 32)


async def test_generated_graph_node_signs_with_its_graph_key(diamond: Diamond) -> None:
    net = SimNetwork(diamond.graph, seed=1)
    node_id = diamond.graph.node_ids[diamond.a]
    zbase = await net.node(node_id).sign_message("from A")
    assert lnsig.recover_node_id("from A", zbase) == node_id


async def test_splicing_feature_is_configurable() -> None:
    net = SimNetwork(Graph(), seed=1)
    default = net.add_node("default")
    plain = net.add_node("plain", feature_bits={1, 9, 15})
    required = net.add_node("required", feature_bits={SPLICE_REQUIRED})
    features = net.graph.features
    assert has_feature(features[default.index], SPLICE_OPTIONAL)
    assert not supports(features[plain.index], SPLICE_OPTIONAL)
    assert supports(features[required.index], SPLICE_OPTIONAL)
    assert features[required.index] == (1 << 62).to_bytes(8, "big")


async def test_node_announcement_needs_a_public_channel(
    diamond: Diamond, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(diamond.graph, seed=1)
    alice = net.add_node("alice", onchain_sat=1_000_000)
    s_id = diamond.graph.node_ids[diamond.s]
    ann = await alice.get_node_announcement(s_id)
    assert ann is not None
    assert (ann.node_id, ann.alias, ann.features) == (s_id, "S", b"")
    assert await alice.get_node_announcement(alice.node_id) is None  # no channel yet
    assert await alice.get_node_announcement("02" + "00" * 32) is None
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await alice.open_channel(s_id, 100_000)
        await trio.sleep(601)
        nursery.cancel_scope.cancel()
    ann = await alice.get_node_announcement(alice.node_id)
    assert ann is not None
    assert has_feature(ann.features, SPLICE_OPTIONAL)


async def test_list_peers_includes_channel_peers_not_connected(diamond: Diamond) -> None:
    net = SimNetwork(diamond.graph, seed=1)
    g = diamond.graph
    s = net.node(g.node_ids[diamond.s])
    await s.connect(g.node_ids[diamond.b])
    peers = {p.node_id: p.connected for p in await s.list_peers()}
    assert peers == {
        g.node_ids[diamond.a]: False,
        g.node_ids[diamond.c]: False,
        g.node_ids[diamond.b]: True,
    }


async def test_set_fee_policy_without_channel_is_refused(diamond: Diamond) -> None:
    from hive.node.port import FeePolicy

    net = SimNetwork(diamond.graph, seed=1)
    s = net.node(diamond.graph.node_ids[diamond.s])
    with pytest.raises(NodeError, match="no channel"):
        await s.set_fee_policy(diamond.graph.node_ids[diamond.b], FeePolicy(0, 0))


async def test_set_open_ignored_is_recorded() -> None:
    net = SimNetwork(Graph(), seed=1)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    await alice.set_open_ignored(bob.node_id, True, "banned by the hive")
    assert alice.open_ignored == {bob.node_id: "banned by the hive"}
    await alice.set_open_ignored(bob.node_id, False, "ban lifted")
    assert alice.open_ignored == {}
