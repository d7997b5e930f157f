"""Benchmark each node's lagging view of the public graph on the mainnet snapshot.

Usage: .venv/bin/python bench/bench_graph_view.py [--lookups 20000] [--seed 1]

Prints figures only. Looks up random nodes' public channels as random viewers see them
(``SimNetwork.public_channels_seen_by``, what ``list_public_channels`` runs), with the instant
view and with the realistic lag, and the memory the lag costs (one float per channel).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import trio

from hive.node.sim import INSTANT, REALISTIC, GossipLag, SimNetwork
from hive.node.sim.graph import Graph, default_graph_path, load_mainnet


def lookups(graph: Graph, lag: GossipLag, count: int, seed: int) -> tuple[float, int]:
    net = SimNetwork(graph, seed=seed, gossip_lag=lag)
    rng = random.Random(seed)
    pairs = [(rng.randrange(graph.n_nodes), rng.randrange(graph.n_nodes)) for _ in range(count)]
    seen = 0
    start = time.perf_counter()
    for viewer, node in pairs:
        seen += len(net.public_channels_seen_by(viewer, node))
    return count / (time.perf_counter() - start), seen


async def run(graph: Graph, count: int, seed: int) -> None:
    # Half the channels announced "just now", so the lag filter really draws for each one.
    now = trio.current_time()
    for c in range(0, graph.n_channels, 2):
        graph.announced[c] = now - 60.0
    for name, lag in (("instant", INSTANT), ("realistic", REALISTIC)):
        rate, seen = lookups(graph, lag, count, seed)
        print(f"{name}: {rate:,.0f} lookups/s, {seen:,} channels seen in {count:,} lookups")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=None, help="default: $HIVE_GRAPH or shared")
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    graph = load_mainnet(args.graph or default_graph_path(), seed=args.seed)
    print(f"nodes: {graph.n_nodes:,}  channels: {graph.n_channels:,}")
    print(f"lag column: {graph.announced.itemsize * len(graph.announced) / 2**10:.0f} KiB")
    trio.run(run, graph, args.lookups, args.seed)


if __name__ == "__main__":
    main()
