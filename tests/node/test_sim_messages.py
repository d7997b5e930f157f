"""Connections and custom messages on the simulated network (all under MockClock)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.lowlevel
import trio.testing

from hive.errors import NodeError, PeerUnreachable
from hive.node.port import CustomMessage, NodeEvent, PeerConnected, PeerDisconnected
from hive.node.sim.features import SPLICE_OPTIONAL, has_feature
from hive.node.sim.graph import Graph
from hive.node.sim.network import SimNetwork
from hive.node.sim.testing import Runner, drain

MSG = (32769).to_bytes(2, "big")  # an odd type >= 32768


def _msg(i: int) -> bytes:
    return MSG + i.to_bytes(4, "big")


async def test_connect_emits_peer_connected_to_both_with_features(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3)
    alice, bob = net.add_node("alice"), net.add_node("bob", feature_bits={1, 9})
    a_ev, b_ev = await runner.events(alice), await runner.events(bob)
    await alice.connect(bob.node_id)
    await alice.connect(bob.node_id)  # already connected: no second event
    await trio.lowlevel.checkpoint()
    [a_got] = drain(a_ev)
    [b_got] = drain(b_ev)
    assert isinstance(a_got, PeerConnected)
    assert a_got.peer_id == bob.node_id
    assert not has_feature(a_got.features, SPLICE_OPTIONAL)
    assert isinstance(b_got, PeerConnected)
    assert b_got.peer_id == alice.node_id
    assert has_feature(b_got.features, SPLICE_OPTIONAL)  # alice has the default features
    peers = await alice.list_peers()
    assert [(p.node_id, p.connected) for p in peers] == [(bob.node_id, True)]
    assert peers[0].features == a_got.features


async def test_connect_unknown_offline_or_self_is_unreachable() -> None:
    net = SimNetwork(Graph(), seed=3)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    with pytest.raises(PeerUnreachable, match="unknown node"):
        await alice.connect("02" + "11" * 32)
    with pytest.raises(PeerUnreachable, match="ourselves"):
        await alice.connect(alice.node_id)
    bob.set_offline()
    with pytest.raises(PeerUnreachable, match="peer is offline"):
        await alice.connect(bob.node_id)
    bob.set_offline(False)
    await alice.connect(bob.node_id)
    assert [p.connected for p in await alice.list_peers()] == [True]


async def test_messages_only_between_connected_peers_after_latency(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3, latency=(1.0, 2.0))
    await runner.start(net)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    inbox = await runner.events(bob)
    with pytest.raises(PeerUnreachable):
        await alice.send_custommsg(bob.node_id, _msg(0))
    await alice.connect(bob.node_id)
    assert isinstance(await inbox.receive(), PeerConnected)
    start = trio.current_time()
    for i in range(50):
        await alice.send_custommsg(bob.node_id, _msg(i))
    arrivals: list[tuple[float, bytes]] = []
    with trio.fail_after(10):
        for _ in range(50):
            event = await inbox.receive()
            assert isinstance(event, CustomMessage)
            assert event.peer_id == alice.node_id
            arrivals.append((trio.current_time() - start, event.message))
    assert all(1.0 <= t <= 2.0 for t, _ in arrivals)
    assert len({t for t, _ in arrivals}) > 1  # latencies vary
    assert [m for _, m in arrivals] == [_msg(i) for i in range(50)]  # in order per connection
    assert net.stats.messages_sent == 50
    assert net.stats.messages_delivered == 50
    assert net.stats.messages_dropped == 0


async def test_loss_rate_is_seeded_and_exact(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    n, loss, seed = 2000, 0.25, 11
    # All n arrive within one 40 ms window: let bob's buffer hold them all.
    net = SimNetwork(Graph(), seed=seed, latency=(0.01, 0.05), loss=loss, event_buffer=n + 10)
    await runner.start(net)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    inbox = await runner.events(bob, capacity=n + 10)
    await alice.connect(bob.node_id)
    for i in range(n):
        await alice.send_custommsg(bob.node_id, _msg(i))
    await trio.sleep(1)
    received = [e for e in drain(inbox) if isinstance(e, CustomMessage)]
    # The network draws loss then latency for each message from Random(seed).
    replica = random.Random(seed)
    kept = []
    for i in range(n):
        lost = replica.random() < loss
        replica.uniform(0.01, 0.05)
        if not lost:
            kept.append(_msg(i))
    assert [e.message for e in received] == kept
    assert 0.22 * n < n - len(kept) < 0.28 * n
    assert net.stats.messages_dropped_loss == n - len(kept)
    assert net.stats.messages_delivered == len(kept)


async def test_no_delivery_after_disconnect_even_if_reconnected(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3, latency=(1.0, 1.0))
    await runner.start(net)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    a_ev, b_ev = await runner.events(alice), await runner.events(bob)
    await alice.connect(bob.node_id)
    for i in range(5):
        await alice.send_custommsg(bob.node_id, _msg(i))
    await trio.sleep(0.5)
    await bob.disconnect(alice.node_id)
    await alice.connect(bob.node_id)
    await trio.sleep(2)
    got = drain(b_ev)
    assert [type(e) for e in got] == [PeerConnected, PeerDisconnected, PeerConnected]
    assert {e.peer_id for e in got if isinstance(e, PeerConnected | PeerDisconnected)} == {
        alice.node_id
    }
    assert [type(e) for e in drain(a_ev)] == [PeerConnected, PeerDisconnected, PeerConnected]
    assert net.stats.messages_dropped_disconnected == 5
    assert net.stats.messages_delivered == 0
    await bob.disconnect(alice.node_id)
    with pytest.raises(PeerUnreachable):
        await bob.send_custommsg(alice.node_id, _msg(9))


async def test_offline_drops_connections_and_messages(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3, latency=(1.0, 1.0))
    await runner.start(net)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    a_ev = await runner.events(alice)
    await alice.connect(bob.node_id)
    await bob.send_custommsg(alice.node_id, _msg(1))
    bob.set_offline()
    await trio.sleep(2)
    assert [type(e) for e in drain(a_ev)] == [PeerConnected, PeerDisconnected]
    assert net.stats.messages_dropped_disconnected == 1
    with pytest.raises(PeerUnreachable):
        await alice.send_custommsg(bob.node_id, _msg(2))
    with pytest.raises(PeerUnreachable, match="we are offline"):
        await bob.connect(alice.node_id)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x80", "2-byte type"),
        ((32768).to_bytes(2, "big") + b"x", "must be odd"),
        ((32767).to_bytes(2, "big") + b"x", "must be odd and >= 32768"),
        ((1).to_bytes(2, "big"), ">= 32768"),
        (MSG + b"\x00" * 65534, "exceeds 65535"),
    ],
)
async def test_send_custommsg_validates_like_cln(message: bytes, reason: str) -> None:
    net = SimNetwork(Graph(), seed=3)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    await alice.connect(bob.node_id)
    with pytest.raises(NodeError, match=reason) as info:
        await alice.send_custommsg(bob.node_id, message)
    assert info.value.code == -32602
    assert net.stats.messages_sent == 0


async def test_largest_message_is_accepted(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3)
    await runner.start(net)
    alice, bob = net.add_node("alice"), net.add_node("bob")
    inbox = await runner.events(bob)
    await alice.connect(bob.node_id)
    await alice.send_custommsg(bob.node_id, MSG + b"\x01" * 65533)
    with trio.fail_after(5):
        assert isinstance(await inbox.receive(), PeerConnected)
        event = await inbox.receive()
    assert isinstance(event, CustomMessage)
    assert len(event.message) == 65535


async def test_slow_consumer_overflows_custom_messages_only(
    runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    net = SimNetwork(Graph(), seed=3, latency=(0.1, 0.1), event_buffer=5)
    await runner.start(net)
    alice, bob, carol = net.add_node("alice"), net.add_node("bob"), net.add_node("carol")
    inbox = await runner.events(bob, capacity=0)  # nobody reads yet: the pump blocks
    await alice.connect(bob.node_id)
    for i in range(20):
        await alice.send_custommsg(bob.node_id, _msg(i))
    await trio.sleep(1)
    await carol.connect(bob.node_id)  # a control event is queued even when full
    received = []
    with trio.fail_after(5):
        for _ in range(6):
            received.append(await inbox.receive())
    assert isinstance(received[0], PeerConnected)
    assert [e.message for e in received[1:5] if isinstance(e, CustomMessage)] == [
        _msg(i) for i in range(4)
    ]
    assert received[5] == PeerConnected(carol.node_id, received[5].features)
    assert net.stats.messages_delivered == 4
    assert net.stats.messages_dropped_overflow == 16
    assert net.stats.messages_sent == 20


async def test_messages_without_consumer_are_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(Graph(), seed=3, latency=(0.1, 0.1))
    alice, bob = net.add_node("alice"), net.add_node("bob")
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await alice.connect(bob.node_id)
        await alice.send_custommsg(bob.node_id, _msg(1))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert net.stats.messages_dropped_no_consumer == 1


async def test_one_event_consumer_per_node(runner: Runner) -> None:
    net = SimNetwork(Graph(), seed=3)
    alice = net.add_node("alice")
    await runner.events(alice)
    send, _receive = trio.open_memory_channel[NodeEvent](1)
    with pytest.raises(RuntimeError, match="already has an event consumer"):
        await alice.run_events(send)
