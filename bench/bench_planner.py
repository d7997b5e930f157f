"""The coverage planner on the whole mainnet graph (docs/BENCHMARKS.md records the figures).

    .venv/bin/python bench/bench_planner.py            # time and tracemalloc peak, 5/20/50 members

Time is the process's CPU time (the planner is single-threaded: numpy element-wise work and
scipy's C Dijkstra), printed beside wall time, because the machines it is measured on are
shared: CPU time is what the plan costs; wall time is what it took there.
    .venv/bin/python bench/bench_planner.py --reach    # Hive plan vs 5 uncoordinated autopilots

``--reach`` compares, for five new members with the same funds: the Hive plan; each member
choosing alone like an autopilot (CLBOSS-like: a popular node, then a node far from what it
has, no coordination); and everyone opening to the biggest hubs. For each: unique reach (two
hops, capacity-weighted, counted once), overlap (targets served by more than one member),
capital spent, the planner's routed-demand proxy, and the share of sampled payments that
cheapest-cost routing (fee + per-hop charge) actually sends through the fleet, with the share
kept when its most important member is down. Payments: capacity-weighted sources and
destinations, drawn with a different hash salt from the planner's payer sample.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from hive.fleet.plangraph import PlanGraph, hashed_sample, scid_block
from hive.fleet.planner import PlanMember, PlannerConfig, plan
from hive.node.sim.graph import ENABLED, HAS_POLICY, load_mainnet

CONFIG = PlannerConfig()
FUNDS_SAT = 12_000_000


def mainnet() -> PlanGraph:
    g = load_mainnet()
    flags = np.frombuffer(bytes(g.flags), dtype=np.uint8)
    return PlanGraph.from_arrays(
        g.node_ids,
        g.node1,
        g.node2,
        g.capacity_sat,
        [scid_block(s) for s in g.scids],
        g.base_msat,
        g.ppm,
        (flags & HAS_POLICY) > 0,
        (flags & ENABLED) > 0,
        amount_msat=CONFIG.amount_msat,
    )


def members(count: int) -> list[PlanMember]:
    return [PlanMember("02" + f"{0xF1EE7 + k:064x}", onchain_sat=FUNDS_SAT) for k in range(count)]


def bench_speed(graph: PlanGraph) -> None:
    print(f"graph: {graph.n} nodes, {len(graph.src)} directed edges")
    for count in (5, 20, 50):
        fleet = members(count)
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        result = plan(graph, fleet, config=CONFIG)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        gc.collect()
        tracemalloc.start()
        plan(graph, fleet, config=CONFIG)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{count:>3} members: plan {cpu:.2f} s CPU ({elapsed:.2f} s wall), "
            f"tracemalloc peak {peak / 1e6:.0f} MB, "
            f"{len(result.opens)} opens, routed {result.routed_after_ppm:.0f} ppm, "
            f"reach {result.reach_after_ppm:.0f} ppm, kept without the most important "
            f"{result.kept_without_top:.2f}"
        )


# --- the reach comparison ---------------------------------------------------------------------


def autopilot(graph: PlanGraph, seed: int, opens: int) -> list[int]:
    """One member choosing alone, CLBOSS-like: a popular node (random among the 30 biggest by
    capacity), then nodes far from what it already reaches (random among reliable nodes more
    than two hops from its channels), no knowledge of the other members."""
    rng = random.Random(seed)
    ok = (graph.channels >= CONFIG.min_target_channels) & (
        graph.capacity_sat >= CONFIG.min_target_capacity_sat
    )
    popular = [int(i) for i in np.argsort(-graph.capacity_sat, kind="stable")[:30]]
    chosen = [rng.choice(popular)]
    adj = sp.csr_array((np.ones(len(graph.src)), (graph.src, graph.dst)), shape=(graph.n, graph.n))
    while len(chosen) < opens:
        near = np.zeros(graph.n, dtype=bool)
        for c in chosen:
            near[c] = True
            hop1 = adj.indices[adj.indptr[c] : adj.indptr[c + 1]]
            near[hop1] = True
            for h in hop1:
                near[adj.indices[adj.indptr[h] : adj.indptr[h + 1]]] = True
        far = np.flatnonzero(ok & ~near)
        chosen.append(int(rng.choice(far)))
    return chosen


def routed_share(
    graph: PlanGraph, fleet: dict[int, list[int]], *, payments: int, drop: int | None = None
) -> float:
    """Share of sampled payments whose cheapest path (fee + per-hop charge) crosses the fleet.
    ``fleet``: member index (a new node) -> its targets. Members are meshed with zero-fee
    channels; they charge the graph's median fee to leave and pay it to enter."""
    n = graph.n
    ids = list(range(n, n + len(fleet)))
    base = graph.matrix(hop_cost_msat=CONFIG.hop_cost_msat, excluded=np.zeros(n, dtype=bool))
    coo = base.tocoo()
    rows, cols, vals = list(coo.row), list(coo.col), list(coo.data)
    fee = float(graph.median_fee_msat()) + CONFIG.hop_cost_msat
    members = [m for m in fleet if m != drop]
    for m in members:
        for t in fleet[m]:
            rows += [ids[m], t]
            cols += [t, ids[m]]
            vals += [fee, fee]
        for o in members:
            if o != m:
                rows.append(ids[m])
                cols.append(ids[o])
                vals.append(float(CONFIG.hop_cost_msat))
    total = n + len(fleet)
    matrix = sp.csr_array((vals, (rows, cols)), shape=(total, total))
    weight = graph.capacity_sat.astype(np.float64)
    sources = hashed_sample(graph.node_ids, weight, payments // 10, b"bench/payers")
    dests = hashed_sample(graph.node_ids, weight, 400, b"bench/payees")
    rng = random.Random(7)
    through = counted = 0
    dist, pred = dijkstra(matrix, indices=sources, return_predecessors=True)
    member_set = set(ids)
    for row, s in enumerate(sources):
        for d in rng.sample(list(dests), 10):
            if d == s or not np.isfinite(dist[row, d]):
                continue
            counted += 1
            v = d
            while v != s and v >= 0:
                if v in member_set:
                    through += 1
                    break
                v = pred[row, v]
    return through / counted if counted else 0.0


def figures(
    graph: PlanGraph, name: str, fleet: dict[int, list[int]], amounts: Sequence[int]
) -> None:
    ids = [members(5)[m].node_id for m in fleet]
    peers = {ids[m]: frozenset(graph.node_ids[t] for t in targets) for m, targets in fleet.items()}
    evaluated = plan(
        graph,
        [PlanMember(ids[m], peers[ids[m]], onchain_sat=0) for m in fleet],
        config=CONFIG,
    )
    served: dict[int, int] = {}
    for targets in fleet.values():
        for t in targets:
            served[t] = served.get(t, 0) + 1
    overlap = sum(1 for c in served.values() if c > 1)
    share = routed_share(graph, fleet, payments=4000)
    top = max(evaluated.importance_ppm, key=lambda m: evaluated.importance_ppm[m], default=None)
    kept = (
        routed_share(graph, fleet, payments=4000, drop=ids.index(top)) / share
        if top is not None and share
        else 1.0
    )
    print(
        f"{name:<24} opens {sum(len(t) for t in fleet.values()):>2}, unique targets "
        f"{len(served):>2}, overlap {overlap}, capital {sum(amounts):,} sat, "
        f"reach {evaluated.reach_before_ppm / 1e4:.1f} %, proxy {evaluated.routed_before_ppm:.0f}"
        f" ppm, routed share {share:.4f}, kept without the most important {kept:.2f}"
    )


def bench_reach(graph: PlanGraph) -> None:
    fleet5 = members(5)
    hive = plan(graph, fleet5, config=CONFIG)
    by_member = {
        k: [graph.index[o.target] for o in hive.for_member(m.node_id)] for k, m in enumerate(fleet5)
    }
    figures(graph, "Hive plan", by_member, [o.amount_sat + CONFIG.open_fee_sat for o in hive.opens])
    per = max(1, len(hive.opens) // 5)
    amount = hive.opens[0].amount_sat if hive.opens else 5_000_000
    alone = {k: autopilot(graph, 1000 + k, per) for k in range(5)}
    count = sum(len(v) for v in alone.values())
    figures(graph, "5 autopilots (alone)", alone, [amount + CONFIG.open_fee_sat] * count)
    hubs = [int(i) for i in np.argsort(-graph.capacity_sat, kind="stable")[: 5 * per]]
    hub_fleet = {k: hubs[k * per : (k + 1) * per] for k in range(5)}
    figures(graph, "hubs first", hub_fleet, [amount + CONFIG.open_fee_sat] * (5 * per))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reach", action="store_true", help="the reach comparison")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    graph = mainnet()
    print(f"loaded the mainnet graph in {time.perf_counter() - start:.1f} s (not counted)")
    if args.reach:
        bench_reach(graph)
    else:
        bench_speed(graph)


if __name__ == "__main__":
    main()
