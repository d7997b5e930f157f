"""Misbehaving simulated peers: HTLCs held (the forwarders' events come late, with the hold)
and force closes (each end told who closed, the funds back on chain later)."""

from __future__ import annotations

import trio
import trio.testing

from hive.node.port import ChannelState, ChannelStateChanged, Forwarded, StateCause
from hive.node.sim import SimNetwork
from hive.node.sim.behaviour import PeerBehaviour
from hive.node.sim.testing import SAT, Diamond, Runner, drain


async def test_a_holding_payee_delays_and_stamps_every_forward(
    diamond: Diamond, runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    await runner.start(net)
    net.set_behaviour(g.node_ids[diamond.d], PeerBehaviour(hold_s=600.0))
    net.set_behaviour(g.node_ids[diamond.b], PeerBehaviour(hold_s=5.0))
    a_events = await runner.events(net.node(g.node_ids[diamond.a]))
    b_events = await runner.events(net.node(g.node_ids[diamond.b]))
    s = net.node(g.node_ids[diamond.s])
    await s.pay_route(await s.find_route(g.node_ids[diamond.d], 1_000 * SAT))
    await trio.sleep(599)
    assert drain(a_events) == drain(b_events) == []  # still held downstream
    await trio.sleep(2)
    (at_b,) = drain(b_events)
    assert isinstance(at_b, Forwarded)
    assert at_b.hold_ms == 600_000  # the payee's hold only
    await trio.sleep(5)
    (at_a,) = drain(a_events)
    assert isinstance(at_a, Forwarded)
    assert at_a.hold_ms == 605_000  # B's own hold on top
    assert at_a.settled


async def test_a_force_close_tells_each_end_who_closed(
    diamond: Diamond, runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1, confirmation_delay_s=600.0)
    await runner.start(net)
    a_id, b_id = g.node_ids[diamond.a], g.node_ids[diamond.b]
    a_events = await runner.events(net.node(a_id))
    b_events = await runner.events(net.node(b_id))
    wallet_a = net.onchain_sat(diamond.a)
    assert net.force_close(b_id, a_id) == ["700x2x0"]
    await trio.sleep(0.1)
    (seen_by_a,) = drain(a_events)
    (seen_by_b,) = drain(b_events)
    assert seen_by_a == ChannelStateChanged(
        b_id, "700x2x0", ChannelState.NORMAL, ChannelState.CLOSING,
        cause=StateCause.ONCHAIN, unilateral=True,
    )  # fmt: skip
    assert seen_by_a.forced_by_peer
    assert seen_by_b.cause is StateCause.USER
    assert not seen_by_b.forced_by_peer
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 1_000 * SAT)
    assert "700x2x0" not in {h.short_channel_id for h in route.hops}  # no longer usable
    await trio.sleep(600)
    (closed,) = drain(a_events)
    assert isinstance(closed, ChannelStateChanged)
    assert closed.new_state is ChannelState.CLOSED
    assert not closed.unilateral
    assert net.onchain_sat(diamond.a) == wallet_a + 500_000
    assert net.force_close(b_id, a_id) == []  # nothing left to close
