"""Benchmark the simulated network on the mainnet snapshot: load time, memory, payments/s.

Usage: .venv/bin/python bench/bench_sim.py [--payments 2000] [--seed 1] [--split uniform|even]

Prints figures only; it asserts nothing. Payments use random source/destination pairs from a
fixed seed, amounts uniform in 10k..1M sat, the simulator's omniscient pathfinder, and move
balances as they succeed (so later payments see earlier ones' effects).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from hive.errors import PaymentFailed, RouteNotFound
from hive.node.sim.graph import default_graph_path, even_split, load_mainnet, uniform_split
from hive.node.sim.network import SimNetwork


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=None, help="default: $HIVE_GRAPH or shared")
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split", choices=("uniform", "even"), default="uniform")
    parser.add_argument(
        "--endpoints",
        choices=("uniform", "capacity"),
        default="uniform",
        help="pick payment endpoints uniformly, or weighted by total channel capacity",
    )
    args = parser.parse_args()
    path = args.graph or default_graph_path()
    split = uniform_split() if args.split == "uniform" else even_split
    print(f"graph file: {path}")
    rss_before = _maxrss_mib()

    start = time.perf_counter()
    graph = load_mainnet(path, seed=args.seed, split=split)
    load_s = time.perf_counter() - start
    print(f"nodes: {graph.n_nodes:,}  channels: {graph.n_channels:,}")
    print(f"load time: {load_s:.2f} s")
    print(f"ru_maxrss: {rss_before:.0f} MiB before load, {_maxrss_mib():.0f} MiB after")

    del graph
    gc.collect()
    tracemalloc.start()
    graph = load_mainnet(path, seed=args.seed, split=split)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"tracemalloc: peak {peak / 2**20:.0f} MiB during load, {current / 2**20:.1f} MiB retained"
    )

    net = SimNetwork(graph, seed=args.seed)
    rng = random.Random(args.seed)
    nodes = range(graph.n_nodes)
    weights = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        weights[graph.node1[c]] += graph.capacity_sat[c]
        weights[graph.node2[c]] += graph.capacity_sat[c]

    def endpoints() -> tuple[int, int]:
        while True:
            if args.endpoints == "uniform":
                src, dst = rng.sample(nodes, 2)
            else:
                src, dst = rng.choices(nodes, weights=weights, k=2)
            if src != dst:
                return src, dst

    ok = no_route = failed = 0
    hops: list[int] = []
    fee_ppm: list[float] = []
    route_s = 0.0
    start = time.perf_counter()
    for _ in range(args.payments):
        src, dst = endpoints()
        amount_msat = rng.randint(10_000, 1_000_000) * 1000
        t0 = time.perf_counter()
        try:
            route = net.find_route(src, graph.node_ids[dst], amount_msat)
        except RouteNotFound:
            no_route += 1
            route_s += time.perf_counter() - t0
            continue
        route_s += time.perf_counter() - t0
        try:
            net.pay(src, route)
        except PaymentFailed:
            failed += 1
            continue
        ok += 1
        hops.append(len(route.hops))
        fee_ppm.append(route.fee_msat * 1e6 / amount_msat)
    elapsed = time.perf_counter() - start
    n = args.payments
    print(f"payments: {n} in {elapsed:.2f} s = {n / elapsed:.0f}/s (route search {route_s:.2f} s)")
    print(
        f"success: {ok / n:.1%} ({ok} ok, {no_route} no route, {failed} failed at a hop); "
        f"split={args.split}, endpoints={args.endpoints}"
    )
    if hops:
        print(
            f"successful routes: mean {statistics.mean(hops):.1f} hops, "
            f"median fee {statistics.median(fee_ppm):.0f} ppm"
        )


if __name__ == "__main__":
    main()
