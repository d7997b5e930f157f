"""Routing and payments on the simulated network."""

from __future__ import annotations

import random

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive.errors import PaymentFailed, RouteNotFound
from hive.node.port import FeePolicy, Forwarded, Route, RouteHop
from hive.node.sim.graph import Graph, generate_graph
from hive.node.sim.network import SimNetwork
from hive.node.sim.testing import SAT, Diamond, Runner, build_diamond, drain, line_graph


def _balances(graph: Graph) -> list[int]:
    return list(graph.node1_msat)


def _holdings(graph: Graph) -> list[int]:
    """Each node's total outbound balance over all its channels."""
    out = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        out[graph.node1[c]] += graph.node1_msat[c]
        out[graph.node2[c]] += graph.capacity_sat[c] * 1000 - graph.node1_msat[c]
    return out


async def test_cheapest_route_and_fees_per_hop(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    # B: 0 + 100_000_000 * 1000 / 1e6 = 100_000; A: 1000 + 100_100_000 * 100 / 1e6 = 11_010.
    assert [h.node_id for h in route.hops] == [
        g.node_ids[n] for n in (diamond.a, diamond.b, diamond.d)
    ]
    assert [h.amount_msat for h in route.hops] == [100_111_010, 100_100_000, 100_000_000]
    assert [h.short_channel_id for h in route.hops] == ["700x1x0", "700x2x0", "700x3x0"]
    assert route.fee_msat == 111_010
    # Delays: final 18, B adds its cltv (34 default), A adds its cltv.
    assert [h.delay for h in route.hops] == [18 + 34 + 34, 18 + 34, 18]


async def test_payment_moves_balances_and_pays_each_hop(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    before = _holdings(g)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    result = await s.pay_route(route)
    after = _holdings(g)
    assert result.amount_msat == 100_000_000
    assert result.fee_msat == 111_010
    assert len(result.payment_hash) == 64
    delta = [x - y for x, y in zip(after, before, strict=True)]
    assert delta[diamond.s] == -100_111_010
    assert delta[diamond.a] == 11_010
    assert delta[diamond.b] == 100_000
    assert delta[diamond.d] == 100_000_000
    assert delta[diamond.c] == 0
    assert g.outbound_msat(diamond.sa, diamond.s) == 500_000 * SAT - 100_111_010
    assert g.outbound_msat(diamond.bd, diamond.d) == 500_000 * SAT + 100_000_000
    assert net.stats.payments_ok == 1
    assert net.stats.payments_failed == 0


async def test_insufficient_balance_names_failing_node_and_moves_nothing(
    diamond: Diamond,
) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    # B's side of B-D drops below what the route needs (another payment drained it).
    g.move(diamond.bd, diamond.b, 450_000 * SAT)
    before = _balances(g)
    with pytest.raises(PaymentFailed) as info:
        await s.pay_route(route)
    assert info.value.failing_node == g.node_ids[diamond.b]
    assert "temporary channel failure on 700x3x0" in str(info.value)
    assert _balances(g) == before
    assert net.stats.payments_failed == 1
    # The omniscient pathfinder now avoids B-D and takes the expensive C path.
    rerouted = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    assert [h.node_id for h in rerouted.hops] == [g.node_ids[diamond.c], g.node_ids[diamond.d]]
    assert rerouted.fee_msat == 5000 + 100_000_000 * 5000 // 1_000_000


async def test_sender_without_balance_is_the_failing_node(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    g.move(diamond.sa, diamond.s, 480_000 * SAT)
    with pytest.raises(PaymentFailed) as info:
        await s.pay_route(route)
    assert info.value.failing_node == s.node_id


async def test_underpaid_fee_fails_at_the_forwarder(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    # Cheat B of one msat.
    hops = list(route.hops)
    hops[0] = RouteHop(hops[0].node_id, hops[0].short_channel_id, hops[0].amount_msat - 1, 0)
    hops[1] = RouteHop(hops[1].node_id, hops[1].short_channel_id, hops[1].amount_msat - 1, 0)
    before = _balances(g)
    with pytest.raises(PaymentFailed) as info:
        await s.pay_route(Route(tuple(hops)))
    assert info.value.failing_node == g.node_ids[diamond.b]
    assert "fee insufficient" in str(info.value)
    assert _balances(g) == before


async def test_route_with_unknown_channel_fails_at_sender(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    bogus = Route((RouteHop(g.node_ids[diamond.d], "1x1x1", 1000, 18),))
    with pytest.raises(PaymentFailed) as info:
        await s.pay_route(bogus)
    assert info.value.failing_node == s.node_id


async def test_fee_policy_change_applies_to_routing_at_once(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    b = net.node(g.node_ids[diamond.b])
    await b.set_fee_policy(g.node_ids[diamond.d], FeePolicy(base_msat=0, ppm=50_000))
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 100_000 * SAT)
    assert route.hops[0].node_id == g.node_ids[diamond.c]
    public = await s.list_public_channels(g.node_ids[diamond.b])
    to_d = [p for p in public if p.destination == g.node_ids[diamond.d]]
    assert [p.fee for p in to_d] == [FeePolicy(base_msat=0, ppm=50_000)]
    channels = await b.list_channels()
    assert [c.our_fee for c in channels if c.peer_id == g.node_ids[diamond.d]] == [
        FeePolicy(base_msat=0, ppm=50_000)
    ]


async def test_exclude_channels(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 1000 * SAT, exclude_channels=["700x2x0/0"])
    assert [h.short_channel_id for h in route.hops] == ["700x4x0", "700x5x0"]
    with pytest.raises(RouteNotFound):
        await s.find_route(
            g.node_ids[diamond.d], 1000 * SAT, exclude_channels=["700x2x0", "700x5x0"]
        )


async def test_circular_rebalance_moves_local_balance_and_costs_fees(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    a_id, c_id = g.node_ids[diamond.a], g.node_ids[diamond.c]
    route = await s.find_circular_route(a_id, c_id, 50_000 * SAT)
    assert route.destination == s.node_id
    assert [h.node_id for h in route.hops] == [
        g.node_ids[n] for n in (diamond.a, diamond.b, diamond.d, diamond.c, diamond.s)
    ]
    # C: 1000 + 0 ppm; D: free; B: 50_001_000 * 1000 / 1e6 = 50_001; A: 1000 + 5005.
    assert route.fee_msat == 1000 + 50_001 + 6005
    local = {c.peer_id: c.local_msat for c in await s.list_channels()}
    result = await s.pay_route(route)
    after = {c.peer_id: c.local_msat for c in await s.list_channels()}
    assert after[a_id] == local[a_id] - 50_000 * SAT - 57_006
    assert after[c_id] == local[c_id] + 50_000 * SAT
    assert result.fee_msat == 57_006
    assert sum(local.values()) - sum(after.values()) == result.fee_msat


async def test_circular_route_needs_the_requested_peers(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    with pytest.raises(RouteNotFound):  # S has no channel with B
        await s.find_circular_route(g.node_ids[diamond.b], g.node_ids[diamond.c], 1000 * SAT)


async def test_route_length_capped_at_20_hops() -> None:
    graph = line_graph(23)
    net = SimNetwork(graph, seed=1)
    start = net.node(graph.node_ids[0])
    route = await start.find_route(graph.node_ids[20], 1000 * SAT)
    assert len(route.hops) == 20
    with pytest.raises(RouteNotFound):
        await start.find_route(graph.node_ids[21], 1000 * SAT)


async def test_offline_nodes_are_avoided_and_fail_payments(diamond: Diamond) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    s = net.node(g.node_ids[diamond.s])
    route = await s.find_route(g.node_ids[diamond.d], 1000 * SAT)
    net.set_offline(g.node_ids[diamond.b])
    with pytest.raises(PaymentFailed) as info:
        await s.pay_route(route)
    assert info.value.failing_node == g.node_ids[diamond.a]
    detour = await s.find_route(g.node_ids[diamond.d], 1000 * SAT)
    assert detour.hops[0].node_id == g.node_ids[diamond.c]


async def test_forwarded_events_reach_intermediate_nodes(
    diamond: Diamond, runner: Runner, autojump_clock: trio.testing.MockClock
) -> None:
    g = diamond.graph
    net = SimNetwork(g, seed=1)
    a_events = await runner.events(net.node(g.node_ids[diamond.a]))
    b_events = await runner.events(net.node(g.node_ids[diamond.b]))
    d_events = await runner.events(net.node(g.node_ids[diamond.d]))
    s = net.node(g.node_ids[diamond.s])
    await s.pay_route(await s.find_route(g.node_ids[diamond.d], 100_000 * SAT))
    await trio.sleep(0.1)
    assert drain(a_events) == [
        Forwarded("700x1x0", "700x2x0", 100_111_010, 100_100_000, True, hold_ms=0)
    ]
    assert drain(b_events) == [
        Forwarded("700x2x0", "700x3x0", 100_100_000, 100_000_000, True, hold_ms=0)
    ]
    assert drain(d_events) == []  # the destination forwards nothing


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_payments=st.integers(1, 30))
def test_random_payments_conserve_funds_and_account_fees(seed: int, n_payments: int) -> None:
    graph = generate_graph(30, seed=seed)
    net = SimNetwork(graph, seed=seed)
    rng = random.Random(seed)
    total = sum(graph.capacity_sat) * 1000
    for _ in range(n_payments):
        src, dst = rng.sample(range(graph.n_nodes), 2)
        amount = rng.randint(1, 2_000_000) * SAT
        before = _holdings(graph)
        try:
            route = net.find_route(src, graph.node_ids[dst], amount)
        except RouteNotFound:
            continue
        net.pay(src, route)
        delta = [x - y for x, y in zip(_holdings(graph), before, strict=True)]
        assert delta[src] == -(amount + route.fee_msat)
        assert delta[dst] == amount
        forwarders = {graph.index[h.node_id] for h in route.hops[:-1]}
        assert sum(delta[n] for n in forwarders) == route.fee_msat
        assert all(delta[n] >= 0 for n in forwarders)
        assert all(
            0 <= graph.node1_msat[c] <= graph.capacity_sat[c] * 1000
            for c in range(graph.n_channels)
        )
    assert sum(_holdings(graph)) == total


def test_build_diamond_is_fresh_each_time() -> None:
    one, two = build_diamond(), build_diamond()
    one.graph.move(one.sa, one.s, 1)
    assert two.graph.node1_msat[two.sa] == 500_000 * SAT
