"""The simulated Lightning network: a NodePort implementation on a real or generated graph.

Typical use::

    graph = generate_graph(50, seed=1)            # or load_mainnet()
    net = SimNetwork(graph, seed=1, latency=(0.05, 0.2))
    alice = net.add_node("alice", onchain_sat=5_000_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        ...
"""

from hive.node.sim.graph import (
    Graph,
    GraphFileError,
    default_graph_path,
    even_split,
    generate_graph,
    load_mainnet,
    uniform_split,
)
from hive.node.sim.network import INSTANT, REALISTIC, GossipLag, SimNetwork, SimStats
from hive.node.sim.node import SimNode

__all__ = [
    "INSTANT",
    "REALISTIC",
    "GossipLag",
    "Graph",
    "GraphFileError",
    "SimNetwork",
    "SimNode",
    "SimStats",
    "default_graph_path",
    "even_split",
    "generate_graph",
    "load_mainnet",
    "uniform_split",
]
