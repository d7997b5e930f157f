"""The sender's cheapest path between two nodes, compiled (numba): a Dijkstra from both ends
that stops once the cheapest path is proven, pricing each hop for the exact amount when it
reaches it.

A payment's path is 2 .. 4 hops on the mainnet graph, and the cheapest one is usually proven
after settling a few percent of the nodes; a whole shortest-path tree (scipy's
``csgraph.dijkstra``) settles all of them and needs every edge's weight computed first. This
search grows one front from the sender (along the edges) and one from the receiver (against
them), and stops when the two nearest queued costs add up to at least the best path seen
through an edge joining the fronts: the classic bidirectional rule, so it returns the same
least cost (ties between equal paths may resolve differently). A logarithm-free lower bound
(``-log1p(-x) >= x``) skips pricing hops that cannot improve anything.

The cost of hop ``u -> v`` over channel ``j`` for ``amount`` (msat) is, as
:mod:`hive.scenarios.flow` documents: ``base[j] + amount * rate[j]`` (zero on the sender's own
channels) plus ``hop_cost`` plus ``-risk * amount * log1p(-amount * inv_cap[j])``; channels
with ``amount * inv_cap[j] >= 1`` (smaller than the amount), the ``banned`` edges, and every
edge from or to ``avoid`` are left out. Parallel channels are separate edges, so the cheapest
of them wins. Each hop's weight is computed in the same order of operations as the array
version this replaced.

Inputs are the routable directed edges twice (:class:`Side`, built by :func:`sides`): grouped
by sending node for the front from the sender, and by receiving node for the front from the
receiver, each with the hop's price inputs copied in its own order, so scanning a hub's
hundreds of channels reads memory in order from either end (4x faster than one layout read
through an index from the receiver's end); and :class:`Workspace` scratch arrays.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Workspace(NamedTuple):
    """Scratch arrays for :func:`cheapest_path`, allocated once per graph size and left as
    found by every search (it resets only the nodes it touched): no per-call allocation and no
    pass over every node. Row 0 is the sender's side, row 1 the receiver's."""

    dist: npt.NDArray[np.float64]  # (2, nodes), infinite between searches
    done: npt.NDArray[np.bool_]  # (2, nodes), False between searches
    via: IntArray  # (2, nodes)
    heap_d: FloatArray  # (2, edges + 1)
    heap_v: IntArray  # (2, edges + 1)
    touched: IntArray  # (2 * nodes + 2,)


class Side(NamedTuple):
    """The routable directed edges as one front scans them: grouped by the node it settles
    (the sender for the front from the sender, the receiver for the front from the receiver),
    with what a hop's price needs laid out in the same order, so a scan reads memory in order."""

    ptr: IntArray  # (nodes + 1,): node x's edges are positions ptr[x] .. ptr[x + 1]
    end: IntArray  # the edge's other node (its receiving side forward, its sender backward)
    edge: IntArray  # the directed edge id
    pos: IntArray  # the position of the same edge in the forward side
    base: FloatArray  # base fee, msat
    rate: FloatArray  # ppm / 1e6
    inv_cap: FloatArray  # 1 / capacity msat; infinite: the edge is out


def sides(
    n_nodes: int,
    src: IntArray,
    dst: IntArray,
    edge: IntArray,
    base: FloatArray,
    rate: FloatArray,
    inv_cap: FloatArray,
) -> tuple[Side, Side]:
    """Both sides from forward arrays sorted by ``src`` (one entry per routable directed edge)."""
    nodes = np.arange(n_nodes + 1)
    forward = Side(
        np.searchsorted(src, nodes).astype(np.int64),
        np.ascontiguousarray(dst),
        np.ascontiguousarray(edge),
        np.arange(len(edge), dtype=np.int64),
        np.ascontiguousarray(base),
        np.ascontiguousarray(rate),
        np.ascontiguousarray(inv_cap),
    )
    order = np.argsort(dst, kind="stable").astype(np.int64)
    backward = Side(
        np.searchsorted(dst[order], nodes).astype(np.int64),
        src[order],
        edge[order],
        order,
        base[order],
        rate[order],
        inv_cap[order],
    )
    return forward, backward


def workspace(n_nodes: int, n_edges: int) -> Workspace:
    return Workspace(
        np.full((2, n_nodes), np.inf),
        np.zeros((2, n_nodes), dtype=np.bool_),
        np.full((2, n_nodes), -1, dtype=np.int64),
        np.empty((2, n_edges + 1), dtype=np.float64),
        np.empty((2, n_edges + 1), dtype=np.int64),
        np.empty(2 * n_nodes + 2, dtype=np.int64),
    )


@numba.njit(cache=True, nogil=True)
def _push(heap_d: FloatArray, heap_v: IntArray, size: int, d: float, v: int) -> int:
    i = size
    heap_d[i] = d
    heap_v[i] = v
    while i > 0:
        parent = (i - 1) >> 1
        if heap_d[parent] <= heap_d[i]:
            break
        heap_d[i], heap_d[parent] = heap_d[parent], heap_d[i]
        heap_v[i], heap_v[parent] = heap_v[parent], heap_v[i]
        i = parent
    return size + 1


@numba.njit(cache=True, nogil=True)
def _pop(heap_d: FloatArray, heap_v: IntArray, size: int) -> int:
    """Remove the root (the caller read it first); returns the new size."""
    size -= 1
    heap_d[0] = heap_d[size]
    heap_v[0] = heap_v[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and heap_d[left + 1] < heap_d[left]:
            child = left + 1
        if heap_d[i] <= heap_d[child]:
            break
        heap_d[i], heap_d[child] = heap_d[child], heap_d[i]
        heap_v[i], heap_v[child] = heap_v[child], heap_v[i]
        i = child
    return size


@numba.njit(cache=True, nogil=True, inline="always")
def _hop(
    k: int,
    u: int,
    sender: int,
    amount: float,
    charge: float,
    hop_cost: float,
    base: FloatArray,
    rate: FloatArray,
    inv_cap: FloatArray,
    exact: bool,
) -> float:
    """The cost of the hop at position ``k`` of a side, out of ``u``, infinite for a channel smaller
    than the amount (or disabled: ``inv_cap`` infinite); with ``exact`` False a lower bound
    that spares the logarithm (-log1p(-x) >= x)."""
    ratio: float = amount * inv_cap[k]
    if not ratio < 1.0:  # also NaN (0 x an infinite 1 / capacity: a disabled edge)
        return np.inf
    fee: float = 0.0 if u == sender else base[k] + amount * rate[k]
    if exact:
        return fee + (hop_cost - charge * math.log1p(-ratio))
    return fee + (hop_cost + charge * ratio)


@numba.njit(cache=True, nogil=True)
def cheapest_path(
    fwd: Side,
    bwd: Side,
    src: IntArray,
    sender: int,
    receiver: int,
    amount: float,
    hop_cost: float,
    risk: float,
    banned: IntArray,
    avoid: int,
    max_hops: int,
    work: Workspace,
) -> IntArray:
    """The directed edges of the least-cost path, sender first; empty when there is none or it
    would be longer than ``max_hops`` (and when sender == receiver)."""
    empty = np.empty(0, dtype=np.int64)
    if sender == receiver or sender == avoid or receiver == avoid:  # noqa: SIM109 (numba)
        return empty
    charge = risk * amount
    slack = 1.0 + 1e-12  # -log1p(-x) >= x holds for the true values; allow for rounding
    d_f, d_b = work.dist[0], work.dist[1]  # cost from the sender, cost to the receiver
    done_f, done_b = work.done[0], work.done[1]
    via_f = work.via[0]  # CSR position of the edge into the node
    via_b = work.via[1]  # CSR position of the edge out of the node
    heap_fd, heap_bd = work.heap_d[0], work.heap_d[1]
    heap_fv, heap_bv = work.heap_v[0], work.heap_v[1]
    touched = work.touched  # every node whose cost this search set, to reset them after
    n_touched = 2
    touched[0] = sender
    touched[1] = receiver
    d_f[sender] = 0.0
    d_b[receiver] = 0.0
    size_f = _push(heap_fd, heap_fv, 0, 0.0, sender)
    size_b = _push(heap_bd, heap_bv, 0, 0.0, receiver)
    best = np.inf  # the cheapest sender-to-receiver cost seen so far
    meet = -1  # its middle edge (CSR position)
    while size_f > 0 and size_b > 0:
        if heap_fd[0] + heap_bd[0] >= best:
            break
        # Grow the front with fewer queued nodes (3.5x faster on mainnet than the nearer one: a
        # hub's hundreds of channels are scanned once, from whichever end reaches it), from the
        # sender along edges or from the receiver against them. ``x`` is the settled node, ``y``
        # the other end of each edge it has.
        forward = size_f <= size_b
        if forward:
            heap_d, heap_v, size = heap_fd, heap_fv, size_f
            mine, other, done, via, side = d_f, d_b, done_f, via_f, fwd
        else:
            heap_d, heap_v, size = heap_bd, heap_bv, size_b
            mine, other, done, via, side = d_b, d_f, done_b, via_b, bwd
        d = heap_d[0]
        x = heap_v[0]
        size = _pop(heap_d, heap_v, size)
        if not (done[x] or d > mine[x]):
            done[x] = True
            base, rate, inv_cap = side.base, side.rate, side.inv_cap
            for k in range(side.ptr[x], side.ptr[x + 1]):
                y = side.end[k]
                if done[y] or y == avoid:
                    continue
                u = x if forward else y  # the forwarding side of the hop
                low = d + _hop(k, u, sender, amount, charge, hop_cost, base, rate, inv_cap, False)
                if low >= best * slack or (
                    low >= mine[y] * slack and low + other[y] >= best * slack
                ):
                    continue
                if _banned(side.edge[k], banned):
                    continue
                nd = d + _hop(k, u, sender, amount, charge, hop_cost, base, rate, inv_cap, True)
                if nd < mine[y] and nd < best:
                    if mine[y] == np.inf:
                        touched[n_touched] = y
                        n_touched += 1
                    mine[y] = nd
                    via[y] = side.pos[k]
                    size = _push(heap_d, heap_v, size, nd, y)
                if nd + other[y] < best:
                    best = nd + other[y]
                    meet = side.pos[k]
        if forward:
            size_f = size
        else:
            size_b = size
    for i in range(n_touched):
        x = touched[i]
        d_f[x] = d_b[x] = np.inf
        done_f[x] = done_b[x] = False
    if meet < 0:
        return empty
    dst, edge = fwd.end, fwd.edge
    before = 0  # hops from the sender to the middle edge
    x = src[meet]
    while x != sender:
        x = src[via_f[x]]
        before += 1
    after = 0  # hops from the middle edge to the receiver
    x = dst[meet]
    while x != receiver:
        x = dst[via_b[x]]
        after += 1
    hops = before + 1 + after
    if hops > max_hops:
        return empty
    path = np.empty(hops, dtype=np.int64)
    path[before] = edge[meet]
    x = src[meet]
    for i in range(before - 1, -1, -1):
        path[i] = edge[via_f[x]]
        x = src[via_f[x]]
    x = dst[meet]
    for i in range(before + 1, hops):
        path[i] = edge[via_b[x]]
        x = dst[via_b[x]]
    return path


@numba.njit(cache=True, nogil=True)
def _banned(e: int, banned: IntArray) -> bool:
    for b in banned:  # noqa: SIM110 (numba compiles loops, not generators)
        if e == b:
            return True
    return False
