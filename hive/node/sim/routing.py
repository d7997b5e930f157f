"""Route finding and payment settlement on a :class:`~hive.node.sim.graph.Graph`.

Pure and synchronous (no trio). The simulator is **omniscient**: its pathfinder sees every
channel's real balance and every node's online state, and only uses directions that can carry the
amount. Real nodes do not know remote balances; they guess, try, and retry on failure. Routes found
here therefore succeed far more often than real first attempts; :func:`first_failure` still checks
every hop, so a route found by anyone else, or before balances moved, can fail.

Search: Dijkstra run backwards from the destination (fees depend on the amount each hop forwards,
which is known only from the destination side), minimising the amount the sender must send
(= amount + fees), ties broken by hop count; at most ``max_hops`` (20) channels. The sender pays
no fee on its own first channel. A node is settled once, so a route never visits a node twice;
in a circular route the sender appears only at both ends. The hop cap prunes the search rather
than adding hop count to the state, so in rare cases a cheap long path can hide a dearer path
that would have fitted in 20 hops (accepted: real pathfinders approximate too).

Payment: HTLC semantics simplified to one atomic step. Every hop is checked first (channel usable,
direction enabled, forwarding fee paid, next node online, enough outbound balance); on the first
failing hop nothing moves and the node that would have had to forward is named. Otherwise each
hop's amount moves across its channel at once, leaving each forwarding node its fee.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence

import attrs

from hive.errors import PaymentFailed, RouteNotFound
from hive.node.port import Route, RouteHop
from hive.node.sim.graph import NORMAL, ROUTABLE, Graph

MAX_HOPS = 20
FINAL_CLTV = 18
# CLN's error code for "failed along the route" (WAIT_ROUTE_FAILED / PAY_TRY_OTHER_ROUTE).
PAY_FAILED_CODE = 204
# CLN's error code for "no route" (PAY_ROUTE_NOT_FOUND).
ROUTE_NOT_FOUND_CODE = 205


@attrs.frozen
class PathHop:
    """One hop in graph indices: ``channel`` taken to reach ``node``, which receives ``amount``."""

    channel: int
    node: int
    amount_msat: int
    delay: int


def find_path(
    graph: Graph,
    source: int,
    dest: int,
    amount_msat: int,
    *,
    first_peer: int | None = None,
    last_peer: int | None = None,
    excluded_channels: Collection[int] = (),
    excluded_nodes: Collection[int] = (),
    max_hops: int = MAX_HOPS,
) -> list[PathHop]:
    """Cheapest path from ``source`` to ``dest`` delivering ``amount_msat``.

    ``first_peer`` forces the first hop's node, ``last_peer`` the node before ``dest``;
    ``source == dest`` (with both set) asks for a circular route. ``excluded_nodes`` (e.g.
    offline nodes) are never used. Raises RouteNotFound.
    """
    if amount_msat <= 0:
        raise RouteNotFound(f"amount must be positive, got {amount_msat} msat")
    node1, node2 = graph.node1, graph.node2
    cap, n1msat, state = graph.capacity_sat, graph.node1_msat, graph.state
    base, ppm, flags = graph.base_msat, graph.ppm, graph.flags
    adjacency = graph.adjacency
    # Cheap pre-checks that spare a whole-graph search in the common hopeless cases.
    if not any(
        state[c] == NORMAL
        and graph.outbound_msat(c, source) >= amount_msat
        and (first_peer is None or graph.other(c, source) == first_peer)
        for c in adjacency[source]
    ):
        raise RouteNotFound(
            f"{graph.node_ids[source]} has no channel with {amount_msat} msat outbound",
            code=ROUTE_NOT_FOUND_CODE,
        )
    if not any(
        state[c] == NORMAL
        and graph.outbound_msat(c, graph.other(c, dest)) >= amount_msat
        and (last_peer is None or graph.other(c, dest) == last_peer)
        for c in adjacency[dest]
    ):
        raise RouteNotFound(
            f"{graph.node_ids[dest]} has no channel with {amount_msat} msat inbound",
            code=ROUTE_NOT_FOUND_CODE,
        )

    best: dict[int, tuple[int, int]] = {dest: (amount_msat, 0)}
    nxt: dict[int, int] = {}
    settled: set[int] = set()
    src_best: tuple[int, int, int, int] | None = None  # amount, hops, channel, first node
    heap: list[tuple[int, int, int]] = [(amount_msat, 0, dest)]
    while heap:
        amt, hops, v = heapq.heappop(heap)
        if v in settled:
            continue
        if src_best is not None and (amt, hops) >= (src_best[0], src_best[1]):
            break
        settled.add(v)
        if hops >= max_hops:
            continue
        for c in adjacency[v]:
            if state[c] != NORMAL or c in excluded_channels:
                continue
            if node1[c] == v:
                u = node2[c]
                d = 2 * c + 1
                outbound = cap[c] * 1000 - n1msat[c]
            else:
                u = node1[c]
                d = 2 * c
                outbound = n1msat[c]
            if outbound < amt or u in excluded_nodes:
                continue
            if u == source:
                # The sender's own channel: no fee, its own policy is irrelevant.
                if first_peer is not None and v != first_peer:
                    continue
                if v != dest and nxt.get(v) == c:
                    continue  # circular route through one peer: needs two channels
                if src_best is None or (amt, hops + 1) < (src_best[0], src_best[1]):
                    src_best = (amt, hops + 1, c, v)
                continue
            if u == dest or u in settled or flags[d] != ROUTABLE:
                continue
            if v == dest and last_peer is not None and u != last_peer:
                continue
            need = amt + base[d] + amt * ppm[d] // 1_000_000
            label = (need, hops + 1)
            old = best.get(u)
            if old is None or label < old:
                best[u] = label
                nxt[u] = c
                heapq.heappush(heap, (need, hops + 1, u))
    if src_best is None:
        raise RouteNotFound(
            f"no route from {graph.node_ids[source]} to {graph.node_ids[dest]} "
            f"for {amount_msat} msat within {max_hops} hops",
            code=ROUTE_NOT_FOUND_CODE,
        )
    _, _, c, v = src_best
    steps = [(c, v)]
    while v != dest:
        c = nxt[v]
        v = graph.other(c, v)
        steps.append((c, v))
    # Delays accumulate backwards: each forwarding node adds its cltv delta.
    delays = [FINAL_CLTV] * len(steps)
    for i in range(len(steps) - 2, -1, -1):
        forwarder, out_channel = steps[i][1], steps[i + 1][0]
        delays[i] = delays[i + 1] + graph.cltv[graph.direction(out_channel, forwarder)]
    return [
        PathHop(channel=c, node=v, amount_msat=best[v][0] if v != dest else amount_msat, delay=dl)
        for (c, v), dl in zip(steps, delays, strict=True)
    ]


def to_route(graph: Graph, path: Sequence[PathHop]) -> Route:
    return Route(
        hops=tuple(
            RouteHop(
                node_id=graph.node_ids[h.node],
                short_channel_id=graph.scids[h.channel],
                amount_msat=h.amount_msat,
                delay=h.delay,
            )
            for h in path
        )
    )


def resolve_route(graph: Graph, source: int, route: Route) -> list[PathHop]:
    """Map a :class:`Route` to graph indices. Unknown scids or nodes, and channels that do not
    join consecutive hops, raise PaymentFailed naming the node that would have to forward."""
    if not route.hops:
        raise PaymentFailed("empty route", failing_node=None, code=PAY_FAILED_CODE)
    path: list[PathHop] = []
    prev = source
    for hop in route.hops:
        c = graph.scid_index.get(hop.short_channel_id.split("/")[0])
        n = graph.index.get(hop.node_id)
        if c is None or n is None or {graph.node1[c], graph.node2[c]} != {prev, n}:
            raise PaymentFailed(
                f"unknown next peer: no channel {hop.short_channel_id} from "
                f"{graph.node_ids[prev]} to {hop.node_id}",
                failing_node=graph.node_ids[prev],
                code=PAY_FAILED_CODE,
            )
        if hop.amount_msat <= 0:
            raise PaymentFailed(
                f"hop amount must be positive, got {hop.amount_msat} msat",
                failing_node=graph.node_ids[prev],
                code=PAY_FAILED_CODE,
            )
        path.append(PathHop(channel=c, node=n, amount_msat=hop.amount_msat, delay=hop.delay))
        prev = n
    return path


def first_failure(
    graph: Graph, source: int, path: Sequence[PathHop], offline: Collection[int]
) -> tuple[int, str] | None:
    """The first hop that would fail, as (index of the node that fails it, reason), or None."""
    sender = source
    received = 0
    for i, hop in enumerate(path):
        c = hop.channel
        if graph.state[c] != NORMAL:
            return sender, f"channel {graph.scids[c] or c} is not usable (not NORMAL)"
        if i > 0:
            d = graph.direction(c, sender)
            if graph.flags[d] != ROUTABLE:
                return sender, f"channel {graph.scids[c]} is disabled in that direction"
            fee = graph.base_msat[d] + hop.amount_msat * graph.ppm[d] // 1_000_000
            if received < hop.amount_msat + fee:
                return sender, (
                    f"fee insufficient on {graph.scids[c]}: got {received} msat, "
                    f"needs {hop.amount_msat + fee} msat"
                )
        if hop.node in offline:
            return sender, f"next peer {graph.node_ids[hop.node]} is offline"
        if graph.outbound_msat(c, sender) < hop.amount_msat:
            return sender, (
                f"temporary channel failure on {graph.scids[c]}: "
                f"{graph.outbound_msat(c, sender)} msat available, {hop.amount_msat} msat needed"
            )
        sender = hop.node
        received = hop.amount_msat
    return None


def settle(graph: Graph, source: int, path: Sequence[PathHop]) -> None:
    """Move every hop's amount across its channel (call only after :func:`first_failure`)."""
    sender = source
    for hop in path:
        graph.move(hop.channel, sender, hop.amount_msat)
        sender = hop.node
