"""The compiled path search: the least cost a whole-graph Dijkstra finds, over what is current.

The routing arrays are built once and reused until the structure or a fee changes; these tests
route first (so the arrays exist), change the graph, and check the next path sees the change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from hive.node.sim.graph import generate_graph
from hive.scenarios.flow import Flow, RoutingConfig


def _hop_cost(flow: Flow, sender: int, edge: int, amount: int) -> float:
    ratio = amount / float(flow.cap_msat[edge // 2])
    fee = 0.0 if flow.src[edge] == sender else flow.base[edge] + amount * flow.ppm[edge] / 1e6
    cfg = flow.config
    return float(fee + cfg.hop_cost_msat - cfg.risk * amount * np.log1p(-ratio))


def _cost(flow: Flow, sender: int, path: tuple[int, ...], amount: int) -> float:
    return sum(_hop_cost(flow, sender, e, amount) for e in path)


def _reference(
    flow: Flow, sender: int, receiver: int, amount: int, banned: list[int], avoid: int
) -> float | None:
    """The least cost by scipy's whole-tree Dijkstra over the cheapest edge of each pair."""
    best: dict[tuple[int, int], float] = {}
    for e in np.flatnonzero(flow.routable):
        u, v = int(flow.src[e]), int(flow.dst[e])
        if amount >= flow.cap_msat[e // 2] or int(e) in banned or avoid in (u, v):
            continue
        w = _hop_cost(flow, sender, int(e), amount)
        best[(u, v)] = min(best.get((u, v), np.inf), w)
    if not best:
        return None
    rows, cols = zip(*best, strict=True)
    matrix = sp.csr_array((list(best.values()), (rows, cols)), shape=(flow.n, flow.n))
    dist = dijkstra(matrix, indices=sender)
    return None if np.isinf(dist[receiver]) else float(dist[receiver])


@pytest.mark.parametrize("graph_seed", [3, 11])
def test_the_search_finds_the_least_cost_path_a_whole_tree_dijkstra_finds(graph_seed: int) -> None:
    flow = Flow.from_graph(generate_graph(120, seed=graph_seed))
    rng = np.random.default_rng(graph_seed)
    found = 0
    for k in range(150):
        s, r = (int(x) for x in rng.choice(flow.n, size=2, replace=False))
        amount = int(np.exp(rng.uniform(np.log(1e5), np.log(5e9))))
        banned: list[int] = []
        if k % 3 == 0:
            first = flow.route(s, r, amount)
            if first:
                banned = [first[len(first) // 2]]
        avoid = int(rng.integers(flow.n)) if k % 4 == 0 else -1
        if avoid in (s, r):
            avoid = -1
        path = flow.route(s, r, amount, banned, avoid)
        want = _reference(flow, s, r, amount, banned, avoid)
        if want is None:
            assert path is None
            continue
        assert path is not None
        found += 1
        assert flow.src[path[0]] == s
        assert flow.dst[path[-1]] == r
        assert all(flow.dst[a] == flow.src[b] for a, b in itertools.pairwise(path))
        assert all(flow.cap_msat[e // 2] > amount for e in path)
        assert not set(path) & set(banned)
        assert avoid not in {int(flow.src[e]) for e in path} | {int(flow.dst[e]) for e in path}
        assert _cost(flow, s, path, amount) == pytest.approx(want, rel=1e-9)
    assert found > 50  # the comparison covered real paths, not only "no path" answers


@st.composite
def _queries(draw: st.DrawFn) -> tuple[Flow, int, int, int, list[int], int]:
    """A small multigraph (parallel channels, free and dear hops, some directions disabled),
    a routing config that may make hops free of charge, and one query on it."""
    n = draw(st.integers(2, 14))
    c = draw(st.integers(1, 40))
    ends = st.integers(0, n - 1)
    node1, node2 = [], []
    for _ in range(c):
        a = draw(ends)
        node1.append(a)
        node2.append(draw(ends.filter(lambda b, a=a: b != a)))
    capacity = draw(st.lists(st.sampled_from([1, 10, 100, 1000, 5000]), min_size=c, max_size=c))
    base = draw(st.lists(st.sampled_from([0, 1000, 100_000]), min_size=2 * c, max_size=2 * c))
    ppm = draw(st.lists(st.sampled_from([0, 100, 50_000]), min_size=2 * c, max_size=2 * c))
    routable = draw(st.lists(st.booleans(), min_size=2 * c, max_size=2 * c))
    config = RoutingConfig(
        hop_cost_msat=draw(st.sampled_from([0, 1000])), risk=draw(st.sampled_from([0.0, 1e-3]))
    )
    capacity_sat = [k * 1000 for k in capacity]
    bal1 = [cap * 500 for cap in capacity_sat]
    flow = Flow(n, node1, node2, capacity_sat, bal1, base, ppm, routable, config)
    s, r = draw(st.lists(ends, min_size=2, max_size=2, unique=True))
    amount = draw(st.sampled_from([1, 1000, 999_999, 1_000_000, 50_000_000, 2_000_000_000]))
    banned = draw(st.lists(st.integers(0, 2 * c - 1), max_size=3))
    avoid = draw(st.sampled_from([-1, *(v for v in range(n) if v not in (s, r))]))
    return flow, s, r, amount, banned, avoid


@settings(max_examples=300)
@given(_queries())
def test_on_any_small_multigraph_the_search_agrees_with_the_whole_tree(
    query: tuple[Flow, int, int, int, list[int], int],
) -> None:
    flow, s, r, amount, banned, avoid = query
    path = flow.route(s, r, amount, banned, avoid)
    want = _reference(flow, s, r, amount, banned, avoid)
    if want is None:
        assert path is None
        return
    assert path is not None
    assert flow.src[path[0]] == s
    assert flow.dst[path[-1]] == r
    assert all(flow.dst[a] == flow.src[b] for a, b in itertools.pairwise(path))
    assert all(flow.routable[e] and flow.cap_msat[e // 2] > amount for e in path)
    assert not set(path) & set(banned)
    assert _cost(flow, s, path, amount) == pytest.approx(want, rel=1e-9, abs=1e-6)


def _diamond() -> Flow:
    # 0 -> 1 -> 3 (cheap) and 0 -> 2 -> 3 (dear); channel c joins node1[c] -> node2[c].
    return Flow(
        5,
        node1=[0, 1, 0, 2],
        node2=[1, 3, 2, 3],
        capacity_sat=[1_000_000] * 4,
        bal1_msat=[500_000_000] * 4,
        base_msat=[1000] * 8,
        ppm=[10, 10, 10, 10, 900, 900, 900, 900],
        routable=[True] * 8,
        config=RoutingConfig(),
    )


def test_a_channel_added_after_routing_is_used_when_cheapest() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    c = flow.add_channel(0, 3, 1_000_000, 500_000_000, (0, 0), (0, 0))
    assert flow.route(0, 3, 1_000_000) == (2 * c,)


def test_a_node_taken_offline_after_routing_is_never_crossed() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    flow.set_offline(1)
    assert flow.route(0, 3, 1_000_000) == (4, 6)
    flow.set_offline(2)
    assert flow.route(0, 3, 1_000_000) is None


def test_a_channel_closed_after_routing_is_never_used() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    before = flow.holdings()
    flow.close_channel(1)
    assert flow.route(0, 3, 1_000_000) == (4, 6)
    assert np.array_equal(flow.holdings(), before)  # closing moves no money


def test_a_fee_change_after_routing_is_priced() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    flow.set_fee(2, 1000, 5000)  # node 1 now charges 5,000 ppm toward 3
    assert flow.route(0, 3, 1_000_000) == (4, 6)


def test_direct_writes_take_effect_after_invalidate() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    flow.ppm[2] = 5000
    flow.invalidate()
    assert flow.route(0, 3, 1_000_000) == (4, 6)


def test_a_channel_smaller_than_the_amount_is_never_used() -> None:
    flow = _diamond()
    small = flow.add_channel(0, 3, 100_000, 50_000_000, (0, 0), (0, 0))  # 100,000 sat, free
    assert flow.route(0, 3, 10_000_000) == (2 * small,)
    assert flow.route(0, 3, 100_000_000) == (0, 2)  # exactly its capacity: out
    assert flow.route(0, 3, 150_000_000) == (0, 2)
    for amount in (100_000_001, 10**9 - 1):
        path = flow.route(0, 3, amount)
        assert path is not None
        assert all(flow.cap_msat[e // 2] > amount for e in path)
    assert flow.route(0, 3, 10**9) is None  # as large as every channel


def test_a_path_longer_than_the_hop_limit_counts_as_none() -> None:
    n = 40
    flow = Flow(
        n,
        node1=list(range(n - 1)),
        node2=list(range(1, n)),
        capacity_sat=[1_000_000] * (n - 1),
        bal1_msat=[500_000_000] * (n - 1),
        base_msat=[0] * (2 * n - 2),
        ppm=[0] * (2 * n - 2),
        routable=[True] * (2 * n - 2),
    )
    assert flow.route(0, 30, 1000) is not None  # 30 hops
    assert flow.route(0, 31, 1000) is None  # 31 hops


def test_patched_changes_survive_a_rebuild_and_the_views_follow_them() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    flow.set_fee(2, 1000, 5000)  # patched in place
    flow.close_channel(3)  # patched in place: 2 -> 3 is out
    assert flow.route(0, 3, 1_000_000) == (0, 2)  # dearer now, but the only path left
    assert 6 not in flow.edges.tolist()
    assert flow.pair_dst[flow.indptr[2] : flow.indptr[3]].tolist() == [0]  # 2's peers: only 0
    flow.add_channel(2, 4, 1_000_000, 500_000_000, (0, 0), (0, 0))  # a rebuild
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    assert flow.route(2, 3, 1_000_000) == (5, 0, 2)  # 2 -> 0 -> 1 -> 3, 2 -> 3 stays closed
    assert int(flow.ppm[2]) == 5000


def test_a_channel_enabled_again_is_routed_whether_patched_or_rebuilt() -> None:
    flow = _diamond()
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    flow.close_channel(1)
    assert flow.route(0, 3, 1_000_000) == (4, 6)
    flow.enable_channel(1)  # still in the arrays: patched back
    assert flow.route(0, 3, 1_000_000) == (0, 2)
    assert 2 in flow.edges.tolist()
    flow.set_offline(1)
    flow.add_channel(2, 4, 1_000_000, 500_000_000, (0, 0), (0, 0))  # rebuilt without 1's edges
    assert flow.route(0, 3, 1_000_000) == (4, 6)
    flow.enable_channel(0)
    flow.enable_channel(1)  # not in the arrays: a rebuild
    assert flow.route(0, 3, 1_000_000) == (0, 2)


def test_closes_and_enables_patched_in_place_keep_the_least_cost() -> None:
    flow = Flow.from_graph(generate_graph(120, seed=5))
    rng = np.random.default_rng(5)
    queries = [tuple(int(x) for x in rng.choice(flow.n, size=2, replace=False)) for _ in range(60)]
    flow.route(*queries[0], 1_000_000)  # the arrays exist: what follows is patched
    channels = rng.choice(len(flow.node1), size=len(flow.node1) // 3, replace=False).tolist()
    for c in channels:
        flow.close_channel(c)
    for c in channels[: len(channels) // 2]:
        flow.enable_channel(c)
    assert not flow._stale
    for s, r in queries:
        amount = int(rng.choice([10**5, 10**7, 10**9]))
        path = flow.route(s, r, amount)
        want = _reference(flow, s, r, amount, [], -1)
        if want is None:
            assert path is None
        else:
            assert path is not None
            assert all(flow.routable[e] for e in path)
            assert _cost(flow, s, path, amount) == pytest.approx(want, rel=1e-9)
