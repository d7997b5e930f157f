"""The public graph as the planner needs it: directed fee-weighted CSR arrays and per-node facts.

Pure (no I/O, no clock): built from the node port's :class:`~hive.node.port.PublicChannel`
views (:meth:`PlanGraph.from_channels`) or from column arrays (:meth:`PlanGraph.from_arrays`,
used by the simulator's benchmarks). scipy.sparse holds the graph and
``scipy.sparse.csgraph.dijkstra`` (C) computes every distance; a pure-Python Dijkstra on the
12.8k-node mainnet graph would take about a second per source, the C one a few milliseconds.

Edge weight (msat) of a direction ``u -> v``: what ``u`` charges to forward the reference
amount out to ``v`` plus the per-hop charge ``hop_cost_msat``. The per-hop charge stands for
what pathfinders that weigh hops or success probability (CLN's askrene, LND's) add per hop,
so a path through two members costs one hop more than a path through one. Every weight is an
integer number of msat held in float64, exact up to 2**53, so every member computing from the
same graph gets the same distances bit for bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from hive.node.port import NodeId, PublicChannel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def scid_block(scid: str) -> int:
    """The funding block of a short channel id ``BLOCKxTXxOUT`` (0 when it cannot be read)."""
    head = scid.split("x", 1)[0]
    return int(head) if head.isdigit() and len(head) <= 9 else 0


@attrs.frozen(eq=False)
class PlanGraph:
    """Node ids, the directed fee graph (one direction per channel side with a policy) and
    per-node facts used to judge targets."""

    node_ids: tuple[NodeId, ...]
    index: dict[NodeId, int]
    src: npt.NDArray[np.int32]  # directed edges: u
    dst: npt.NDArray[np.int32]  # v
    fee_msat: IntArray  # u's fee for the reference amount
    enabled: BoolArray  # the direction is announced and not disabled
    edge_capacity_sat: IntArray
    capacity_sat: IntArray  # per node: total capacity of its channels
    channels: IntArray  # per node: number of channels
    disabled_ratio: FloatArray  # per node: its own disabled directions / its channels
    first_block: IntArray  # per node: the funding block of its oldest channel (0: unknown)
    amount_msat: int  # the reference payment amount the fees were computed for

    @property
    def n(self) -> int:
        return len(self.node_ids)

    @classmethod
    def from_arrays(
        cls,
        node_ids: Sequence[NodeId],
        node1: npt.ArrayLike,
        node2: npt.ArrayLike,
        capacity_sat: npt.ArrayLike,
        scid_blocks: npt.ArrayLike,
        base_msat: npt.ArrayLike,
        ppm: npt.ArrayLike,
        has_policy: npt.ArrayLike,
        enabled: npt.ArrayLike,
        *,
        amount_msat: int,
    ) -> PlanGraph:
        """From channel columns (``node1``, ``node2``, capacity, funding block) and direction
        columns of twice the length, indexed ``2 * channel + d`` (d = 0: node1 forwards to
        node2; 1: the reverse), as :mod:`hive.node.sim.graph` keeps them."""
        n1 = np.asarray(node1, dtype=np.int64)
        n2 = np.asarray(node2, dtype=np.int64)
        cap = np.asarray(capacity_sat, dtype=np.int64)
        blocks = np.asarray(scid_blocks, dtype=np.int64)
        base = np.asarray(base_msat, dtype=np.int64)
        rate = np.asarray(ppm, dtype=np.int64)
        policy = np.asarray(has_policy, dtype=bool)
        on = np.asarray(enabled, dtype=bool) & policy
        src = np.empty(2 * len(n1), dtype=np.int64)
        dst = np.empty_like(src)
        src[0::2], dst[0::2] = n1, n2
        src[1::2], dst[1::2] = n2, n1
        keep = policy
        return cls._build(
            tuple(node_ids),
            src[keep],
            dst[keep],
            (base + rate * amount_msat // 1_000_000)[keep],
            on[keep],
            np.repeat(cap, 2)[keep],
            n1,
            n2,
            cap,
            blocks,
            amount_msat=amount_msat,
        )

    @classmethod
    def from_channels(cls, channels: Iterable[PublicChannel], *, amount_msat: int) -> PlanGraph:
        """From the public graph as the node port lists it (one entry per direction)."""
        index: dict[NodeId, int] = {}
        ids: list[NodeId] = []

        def idx(node: NodeId) -> int:
            found = index.get(node)
            if found is None:
                found = index[node] = len(ids)
                ids.append(node)
            return found

        src: list[int] = []
        dst: list[int] = []
        fee: list[int] = []
        on: list[bool] = []
        ecap: list[int] = []
        scids: dict[str, tuple[int, int, int, int]] = {}
        for ch in channels:
            u, v = idx(ch.source), idx(ch.destination)
            src.append(u)
            dst.append(v)
            fee.append(ch.fee.fee_msat(amount_msat))
            on.append(ch.active)
            ecap.append(ch.capacity_msat // 1000)
            scids.setdefault(
                ch.short_channel_id,
                (min(u, v), max(u, v), ch.capacity_msat // 1000, scid_block(ch.short_channel_id)),
            )
        rows = np.array(list(scids.values()), dtype=np.int64).reshape(-1, 4)
        return cls._build(
            tuple(ids),
            np.array(src, dtype=np.int64),
            np.array(dst, dtype=np.int64),
            np.array(fee, dtype=np.int64),
            np.array(on, dtype=bool),
            np.array(ecap, dtype=np.int64),
            rows[:, 0],
            rows[:, 1],
            rows[:, 2],
            rows[:, 3],
            amount_msat=amount_msat,
        )

    @classmethod
    def _build(
        cls,
        node_ids: tuple[NodeId, ...],
        src: IntArray,
        dst: IntArray,
        fee: IntArray,
        on: BoolArray,
        ecap: IntArray,
        n1: IntArray,
        n2: IntArray,
        cap: IntArray,
        blocks: IntArray,
        *,
        amount_msat: int,
    ) -> PlanGraph:
        n = len(node_ids)
        capacity = np.bincount(n1, weights=cap, minlength=n) + np.bincount(
            n2, weights=cap, minlength=n
        )
        channels = np.bincount(n1, minlength=n) + np.bincount(n2, minlength=n)
        disabled = np.bincount(src[~on], minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(channels > 0, disabled / np.maximum(channels, 1), 0.0)
        known = blocks > 0
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, n1[known], blocks[known])
        np.minimum.at(first, n2[known], blocks[known])
        first[first == np.iinfo(np.int64).max] = 0
        return cls(
            node_ids=node_ids,
            index={node: i for i, node in enumerate(node_ids)},
            src=src.astype(np.int32),
            dst=dst.astype(np.int32),
            fee_msat=fee.astype(np.int64),
            enabled=on.astype(bool),
            edge_capacity_sat=ecap.astype(np.int64),
            capacity_sat=capacity.astype(np.int64),
            channels=channels.astype(np.int64),
            disabled_ratio=ratio.astype(np.float64),
            first_block=first,
            amount_msat=amount_msat,
        )

    def matrix(self, *, hop_cost_msat: int, excluded: BoolArray) -> sp.csr_array:
        """The routable directed graph as a CSR matrix of edge weights (msat): enabled
        directions with capacity for the reference amount, none touching an ``excluded`` node,
        the cheapest of parallel channels kept."""
        ok = (
            self.enabled
            & (self.edge_capacity_sat * 1000 >= self.amount_msat)
            & ~excluded[self.src]
            & ~excluded[self.dst]
            & (self.src != self.dst)
        )
        u, v = self.src[ok], self.dst[ok]
        w = self.fee_msat[ok].astype(np.float64) + float(hop_cost_msat)
        order = np.lexsort((w, v, u))
        u, v, w = u[order], v[order], w[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        return sp.csr_array((w[first], (u[first], v[first])), shape=(self.n, self.n))

    def median_fee_msat(self) -> int:
        """The median enabled fee for the reference amount (what an unknown policy is taken as)."""
        fees = self.fee_msat[self.enabled]
        return int(np.median(fees)) if len(fees) else 0

    def usual_fee_msat(self) -> FloatArray:
        """Per node, the median of its own enabled fees for the reference amount: what it is
        likely to charge on a new channel to us (the network median for a node with none)."""
        on = self.enabled
        return node_medians(self.src[on], self.fee_msat[on], self.n, float(self.median_fee_msat()))


def node_medians(nodes: npt.ArrayLike, values: npt.ArrayLike, n: int, default: float) -> FloatArray:
    """Per node ``0..n-1``, the median of the non-negative integer ``values`` whose entry in
    ``nodes`` is that node, floored to an integer (``default`` for a node with none)."""
    src = np.asarray(nodes, dtype=np.int64)
    val = np.asarray(values, dtype=np.int64)
    out = np.full(n, float(default))
    if len(src) == 0:
        return out
    order = np.lexsort((val, src))  # by node, then by value
    src, val = src[order], val[order]
    first, start, count = np.unique(src, return_index=True, return_counts=True)
    low = val[start + (count - 1) // 2]
    high = val[start + count // 2]
    out[first] = ((low + high) // 2).astype(np.float64)
    return out


def hashed_sample(node_ids: Sequence[NodeId], weights: FloatArray, k: int, salt: bytes) -> IntArray:
    """``k`` distinct indices drawn with probability proportional to ``weights`` (zero weight:
    never), deterministically: Efraimidis-Spirakis keys ``-ln(u) / w`` with ``u`` from
    SHA-256 of the salt and the node id, so the sample depends on nothing but the graph and
    does not change with numpy's random generators."""
    positive = np.flatnonzero(weights > 0)
    if len(positive) <= k:
        return positive.astype(np.int64)
    u = np.array(
        [
            (int.from_bytes(hashlib.sha256(salt + node_ids[i].encode()).digest()[:7]) + 1)
            / float(2**56 + 1)
            for i in positive.tolist()
        ]
    )
    keys = -np.log(u) / weights[positive]
    chosen = positive[np.lexsort((positive, keys))[:k]]
    return np.sort(chosen).astype(np.int64)


def distances(
    matrix: sp.csr_array, sources: npt.ArrayLike, *, limit: float = np.inf, min_only: bool = False
) -> FloatArray:
    """Shortest-path weights from each of ``sources`` (rows), or from the nearest of them
    (one row) when ``min_only``; unreachable (or beyond ``limit``) is ``inf``."""
    idx = np.asarray(sources, dtype=np.int64)
    if len(idx) == 0:
        return np.full((0 if not min_only else 1, matrix.shape[0]), np.inf)
    out = dijkstra(matrix, directed=True, indices=idx, limit=limit, min_only=min_only)
    result: FloatArray = np.atleast_2d(np.asarray(out, dtype=np.float64))
    return result


__all__ = ["PlanGraph", "distances", "hashed_sample", "scid_block"]
