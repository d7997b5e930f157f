"""The sender's cheapest path between two nodes, compiled (numba): one Dijkstra that stops at
the receiver and prices each hop when it relaxes it, for the exact amount.

A payment's path is 2 .. 4 hops on the mainnet graph, and the cheapest one is usually found
after settling a few percent of the nodes; a whole shortest-path tree (scipy's
``csgraph.dijkstra``) settles all of them and needs every edge's weight computed first. This
search settles nodes in order of cost from the sender until the receiver is settled, so it
returns the same least-cost path (ties aside) while touching a small part of the graph.

The cost of hop ``u -> v`` over channel ``j`` for ``amount`` (msat) is, as
:mod:`hive.scenarios.flow` documents: ``base[j] + amount * rate[j]`` (zero on the sender's own
channels) plus ``hop_cost`` plus ``-risk * amount * log1p(-amount * inv_cap[j])``; channels
with ``amount * inv_cap[j] >= 1`` (smaller than the amount), the ``banned`` edges, and every
edge from or to ``avoid`` are left out. Parallel channels are separate edges, so the cheapest
of them wins. The arithmetic is written in the same order as the array version it replaces,
so every hop's weight is the same float.

Inputs are a CSR over the routable directed edges, sorted by sender: ``ptr`` (nodes + 1),
and per position ``dst``, ``edge`` (the directed edge id), ``base``, ``rate`` (ppm / 1e6) and
``inv_cap`` (1 / capacity msat), all contiguous.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


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
    j: int,
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
    """The cost of the hop at CSR position ``j`` out of ``u``, infinite for a channel smaller
    than the amount; with ``exact`` False a lower bound that spares the logarithm
    (-log1p(-x) >= x)."""
    ratio: float = amount * inv_cap[j]
    if ratio >= 1.0:
        return np.inf
    fee: float = 0.0 if u == sender else base[j] + amount * rate[j]
    if exact:
        return fee + (hop_cost - charge * math.log1p(-ratio))
    return fee + (hop_cost + charge * ratio)


@numba.njit(cache=True, nogil=True)
def cheapest_path(
    ptr: IntArray,
    dst: IntArray,
    src: IntArray,
    rptr: IntArray,
    rpos: IntArray,
    edge: IntArray,
    base: FloatArray,
    rate: FloatArray,
    inv_cap: FloatArray,
    sender: int,
    receiver: int,
    amount: float,
    hop_cost: float,
    risk: float,
    banned: IntArray,
    avoid: int,
    max_hops: int,
) -> IntArray:
    """The directed edges of the least-cost path, sender first; empty when there is none or it
    would be longer than ``max_hops`` (and when sender == receiver)."""
    n = len(ptr) - 1
    empty = np.empty(0, dtype=np.int64)
    if sender == receiver or sender == avoid or receiver == avoid:  # noqa: SIM109 (numba)
        return empty
    charge = risk * amount
    slack = 1.0 + 1e-12  # -log1p(-x) >= x holds for the true values; allow for rounding
    d_f = np.full(n, np.inf)  # cost from the sender
    d_b = np.full(n, np.inf)  # cost to the receiver
    done_f = np.zeros(n, dtype=np.bool_)
    done_b = np.zeros(n, dtype=np.bool_)
    via_f = np.full(n, -1, dtype=np.int64)  # CSR position of the edge into the node
    via_b = np.full(n, -1, dtype=np.int64)  # CSR position of the edge out of the node
    heap_fd = np.empty(len(dst) + 1, dtype=np.float64)
    heap_fv = np.empty(len(dst) + 1, dtype=np.int64)
    heap_bd = np.empty(len(dst) + 1, dtype=np.float64)
    heap_bv = np.empty(len(dst) + 1, dtype=np.int64)
    d_f[sender] = 0.0
    d_b[receiver] = 0.0
    size_f = _push(heap_fd, heap_fv, 0, 0.0, sender)
    size_b = _push(heap_bd, heap_bv, 0, 0.0, receiver)
    best = np.inf  # the cheapest sender-to-receiver cost seen so far
    meet = -1  # its middle edge (CSR position)
    while size_f > 0 and size_b > 0:
        if heap_fd[0] + heap_bd[0] >= best:
            break
        # Settle the nearer of the two fronts: from the sender along edges, or from the receiver
        # against them. ``x`` is the settled node, ``y`` the other end of each edge it has.
        forward = heap_fd[0] <= heap_bd[0]
        if forward:
            heap_d, heap_v, size = heap_fd, heap_fv, size_f
            mine, other, done, via, lo, hi = d_f, d_b, done_f, via_f, ptr, ptr
        else:
            heap_d, heap_v, size = heap_bd, heap_bv, size_b
            mine, other, done, via, lo, hi = d_b, d_f, done_b, via_b, rptr, rptr
        d = heap_d[0]
        x = heap_v[0]
        size = _pop(heap_d, heap_v, size)
        if not (done[x] or d > mine[x]):
            done[x] = True
            for k in range(lo[x], hi[x + 1]):
                j = k if forward else rpos[k]
                y = dst[j] if forward else src[j]
                if done[y] or y == avoid:
                    continue
                u = x if forward else y  # the forwarding side of the hop
                low = d + _hop(j, u, sender, amount, charge, hop_cost, base, rate, inv_cap, False)
                if low >= best * slack or (
                    low >= mine[y] * slack and low + other[y] >= best * slack
                ):
                    continue
                if _banned(edge[j], banned):
                    continue
                nd = d + _hop(j, u, sender, amount, charge, hop_cost, base, rate, inv_cap, True)
                if nd < mine[y] and nd < best:
                    mine[y] = nd
                    via[y] = j
                    size = _push(heap_d, heap_v, size, nd, y)
                if nd + other[y] < best:
                    best = nd + other[y]
                    meet = j
        if forward:
            size_f = size
        else:
            size_b = size
    if meet < 0:
        return empty
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
