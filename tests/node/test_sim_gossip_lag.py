"""Each simulated node's view of the public graph lags like real gossip (GossipLag)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hive.node.sim import INSTANT, GossipLag, SimNetwork, generate_graph
from hive.node.sim.graph import Graph
from hive.node.sim.testing import Runner

LAG = GossipLag(announce_s=1800.0, propagation_s=(30.0, 300.0))


async def test_a_new_channel_reaches_each_node_after_announcement_and_propagation(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3, confirmation_delay_s=600, gossip_lag=LAG)
    await runner.start(net)
    alice = net.add_node("alice", onchain_sat=5_000_000)
    bob = net.add_node("bob")
    watchers = [net.add_node(f"w{i}") for i in range(8)]
    await alice.open_channel(bob.node_id, 1_000_000)
    await trio.sleep(600 + 1)  # confirmed and usable, not announced yet
    assert len(await alice.list_channels()) == 1
    for node in (alice, bob, *watchers):
        assert await node.list_public_channels(alice.node_id) == []
    await trio.sleep(1800)  # announced: the two ends know it at once, the others not yet
    assert [c.destination for c in await alice.list_public_channels(alice.node_id)] == [bob.node_id]
    assert len(await bob.list_public_channels(alice.node_id)) == 1
    for node in watchers:
        assert await node.list_public_channels(alice.node_id) == []
    # Each watcher learns it somewhere in the propagation window, not all at the same time.
    learned: dict[str, float] = {}
    start = trio.current_time()
    while len(learned) < len(watchers):
        await trio.sleep(1)
        for node in watchers:
            if node.node_id not in learned and await node.list_public_channels(bob.node_id):
                learned[node.node_id] = trio.current_time() - start
    assert all(29 <= t <= 301 for t in learned.values())
    assert len({round(t) for t in learned.values()}) > 1


async def test_instant_view_is_the_default_and_graph_channels_are_known_from_the_start(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    graph = generate_graph(10, seed=4)
    net = SimNetwork(graph, seed=4, confirmation_delay_s=600)
    assert net.gossip_lag == INSTANT
    await runner.start(net)
    alice = net.add_node("alice", onchain_sat=5_000_000)
    target = graph.node_ids[0]
    assert len(await alice.list_public_channels(target)) == len(graph.public_channels(0))
    await alice.open_channel(target, 1_000_000)
    await trio.sleep(600 + 0.001)
    seen = await net.node(graph.node_ids[5]).list_public_channels(alice.node_id)
    assert [c.destination for c in seen] == [target]


def test_lag_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="gossip lag"):
        GossipLag(announce_s=-1.0)
    with pytest.raises(ValueError, match="gossip lag"):
        GossipLag(propagation_s=(10.0, 5.0))
