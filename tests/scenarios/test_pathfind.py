"""The compiled path search: the least cost a whole-graph Dijkstra finds, over what is current.

The routing arrays are built once and reused until the structure or a fee changes; these tests
route first (so the arrays exist), change the graph, and check the next path sees the change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
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
