"""Helpers for tests that use the simulated network (small hand-built graphs, event draining).

Part of the package so that actor tests elsewhere can build the same fixtures.
"""

from __future__ import annotations

import attrs
import trio

from hive.node.port import NodeEvent
from hive.node.sim.graph import DirectionPolicy, Graph, derive_secret
from hive.node.sim.network import SimNetwork
from hive.node.sim.node import SimNode
from hive.protocol.lnsig import node_id_from_secret

SAT = 1000  # msat


@attrs.frozen
class Diamond:
    """S pays D; S has channels with A and C.

    S -- A -- B -- D        A charges 1000 msat + 100 ppm on A->B, B 0 + 1000 ppm on B->D
    S -- C ------- D        C charges 5000 + 5000 ppm on C->D, 1000 + 0 on C->S; D 0 + 0 on D->C
    Every channel has 1,000,000 sat; each side holds 500,000 sat unless noted.
    """

    graph: Graph
    s: int
    a: int
    b: int
    c: int
    d: int
    sa: int
    ab: int
    bd: int
    sc: int
    cd: int


def build_diamond() -> Diamond:
    graph = Graph()
    idx: dict[str, int] = {}
    for name in "SABCD":
        secret = derive_secret(99, name)
        idx[name] = graph.add_node(node_id_from_secret(secret), name, secret=secret)
    cheap = DirectionPolicy(base_msat=0, ppm=0)

    def chan(x: str, y: str, scid: str, px: DirectionPolicy, py: DirectionPolicy) -> int:
        return graph.add_channel(
            idx[x],
            idx[y],
            1_000_000,
            scid=scid,
            a_msat=500_000 * SAT,
            policy_a=px,
            policy_b=py,
        )

    sa = chan("S", "A", "700x1x0", cheap, cheap)
    ab = chan("A", "B", "700x2x0", DirectionPolicy(base_msat=1000, ppm=100), cheap)
    bd = chan("B", "D", "700x3x0", DirectionPolicy(base_msat=0, ppm=1000), cheap)
    sc = chan("S", "C", "700x4x0", cheap, DirectionPolicy(base_msat=1000, ppm=0))
    cd = chan("C", "D", "700x5x0", DirectionPolicy(base_msat=5000, ppm=5000), cheap)
    return Diamond(graph, idx["S"], idx["A"], idx["B"], idx["C"], idx["D"], sa, ab, bd, sc, cd)


def line_graph(n_nodes: int, *, capacity_sat: int = 1_000_000, seed: int = 0) -> Graph:
    """Nodes 0..n-1 in a line, each channel split 50/50, zero fees both ways."""
    graph = Graph()
    for i in range(n_nodes):
        secret = derive_secret(seed, f"line/{i}")
        graph.add_node(node_id_from_secret(secret), f"line-{i}", secret=secret)
    free = DirectionPolicy(base_msat=0, ppm=0)
    for i in range(n_nodes - 1):
        graph.add_channel(
            i,
            i + 1,
            capacity_sat,
            scid=f"800x{i + 1}x0",
            a_msat=capacity_sat * 500,
            policy_a=free,
            policy_b=free,
        )
    return graph


def drain(receive: trio.MemoryReceiveChannel[NodeEvent]) -> list[NodeEvent]:
    """Everything already in ``receive``, without waiting."""
    out: list[NodeEvent] = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except trio.WouldBlock:
            return out


class Runner:
    """Runs networks and node event pumps inside a test's nursery."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    async def start(self, net: SimNetwork) -> None:
        await self._nursery.start(net.run)

    async def events(
        self, node: SimNode, capacity: int = 10_000
    ) -> trio.MemoryReceiveChannel[NodeEvent]:
        """Run ``node.run_events`` into a fresh channel; return its receiving end."""
        send, receive = trio.open_memory_channel[NodeEvent](capacity)
        await self._nursery.start(node.run_events, send)
        return receive
