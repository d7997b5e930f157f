"""Money flowing over a channel graph: balances, routing by senders, HTLC failures, a ledger.

Arrays, one row per channel (``node1``, ``node2``, capacity, ``bal1`` = what ``node1`` holds)
and one per direction ``2 * c + d`` (d = 0: ``node1`` forwards to ``node2``), as in
:mod:`hive.node.sim.graph`. Nodes keep their public fees; a scenario's nodes set their own.

**Routing.** The sender does not see balances. It picks the path of least cost, where a hop
``u -> v`` costs ``u``'s fee for the amount (nothing on the sender's own channels), plus a
per-hop charge, plus a probability charge ``risk * amount * -log(1 - amount / capacity)`` (the
uniform-balance success prior that Pickhardt payments, CLN's askrene and LND's probability
estimator build on). scipy's C Dijkstra runs once per attempt over the cheapest of the parallel
channels between each pair. The HTLC then walks the path against the **current** balances: the
first hop whose sender lacks the outbound fails the attempt (a failed forward for lack of
liquidity); the sender drops that channel and retries, up to ``attempts`` times. On success
every hop moves its amount (the downstream amount plus its own fee) across its channel.

The ledger records per node: paid, received, fees earned and fees paid, so every figure comes
from the payments that flowed, and :meth:`Flow.holdings` lets a test check conservation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from hive.node.sim.graph import ROUTABLE, Graph

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
BIG = 1e18


@attrs.frozen
class RoutingConfig:
    hop_cost_msat: int = 1_000
    risk: float = 1e-3  # the probability charge's weight (msat per msat amount per nat)
    attempts: int = 3


@attrs.frozen
class Attempt:
    ok: bool
    edges: tuple[int, ...]  # directed edges of the path tried last
    fee_msat: int
    failed_at: int | None  # directed edge that lacked liquidity


class Flow:
    """The mutable state of one run: balances, liveness, the ledger."""

    def __init__(
        self,
        n_nodes: int,
        node1: npt.ArrayLike,
        node2: npt.ArrayLike,
        capacity_sat: npt.ArrayLike,
        bal1_msat: npt.ArrayLike,
        base_msat: npt.ArrayLike,
        ppm: npt.ArrayLike,
        routable: npt.ArrayLike,
        config: RoutingConfig | None = None,
    ) -> None:
        self.n = n_nodes
        self.config = config or RoutingConfig()
        self.node1 = np.asarray(node1, dtype=np.int64)
        self.node2 = np.asarray(node2, dtype=np.int64)
        self.cap_msat = np.asarray(capacity_sat, dtype=np.int64) * 1000
        self.bal1 = np.asarray(bal1_msat, dtype=np.int64).copy()
        self.base = np.asarray(base_msat, dtype=np.int64).copy()
        self.ppm = np.asarray(ppm, dtype=np.int64).copy()
        self.routable = np.asarray(routable, dtype=bool).copy()
        self.paid = np.zeros(n_nodes, dtype=np.int64)
        self.received = np.zeros(n_nodes, dtype=np.int64)
        self.earned = np.zeros(n_nodes, dtype=np.int64)
        self.fees_paid = np.zeros(n_nodes, dtype=np.int64)
        self.forwarded = np.zeros(n_nodes, dtype=np.int64)
        self.no_liquidity = np.zeros(n_nodes, dtype=np.int64)  # failed forwards (as forwarder)
        self._index()

    @classmethod
    def from_graph(cls, graph: Graph, config: RoutingConfig | None = None) -> Flow:
        flags = np.frombuffer(bytes(graph.flags), dtype=np.uint8)
        return cls(
            graph.n_nodes,
            np.array(graph.node1, dtype=np.int64),
            np.array(graph.node2, dtype=np.int64),
            np.array(graph.capacity_sat, dtype=np.int64),
            np.array(graph.node1_msat, dtype=np.int64),
            np.array(graph.base_msat, dtype=np.int64),
            np.array(graph.ppm, dtype=np.int64),
            (flags & ROUTABLE) == ROUTABLE,
            config,
        )

    # --- structure ----------------------------------------------------------------------------

    def add_node(self) -> int:
        self.n += 1
        for name in ("paid", "received", "earned", "fees_paid", "forwarded", "no_liquidity"):
            setattr(self, name, np.append(getattr(self, name), 0))
        self._index()
        return self.n - 1

    def add_channel(
        self,
        a: int,
        b: int,
        capacity_sat: int,
        a_msat: int,
        fee_a: tuple[int, int],
        fee_b: tuple[int, int],
    ) -> int:
        """A new channel, ``a`` as node1 holding ``a_msat``; fees are (base_msat, ppm)."""
        self.node1 = np.append(self.node1, a)
        self.node2 = np.append(self.node2, b)
        self.cap_msat = np.append(self.cap_msat, capacity_sat * 1000)
        self.bal1 = np.append(self.bal1, a_msat)
        self.base = np.append(self.base, [fee_a[0], fee_b[0]])
        self.ppm = np.append(self.ppm, [fee_a[1], fee_b[1]])
        self.routable = np.append(self.routable, [True, True])
        self._index()
        return len(self.node1) - 1

    def set_offline(self, node: int) -> None:
        """The node is down: none of its channels forwards in either direction."""
        touching = np.flatnonzero((self.node1 == node) | (self.node2 == node))
        self.routable[2 * touching] = False
        self.routable[2 * touching + 1] = False
        self._index()

    def _index(self) -> None:
        c = len(self.node1)
        src = np.empty(2 * c, dtype=np.int64)
        dst = np.empty(2 * c, dtype=np.int64)
        src[0::2], dst[0::2] = self.node1, self.node2
        src[1::2], dst[1::2] = self.node2, self.node1
        self.src, self.dst = src, dst
        edges = np.flatnonzero(self.routable)
        key = src[edges] * self.n + dst[edges]
        order = np.argsort(key, kind="stable")
        self.edges = edges[order]  # routable directed edges, grouped by (src, dst) pair
        key = key[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        self.group_start = np.flatnonzero(first)
        pair_src = src[self.edges[self.group_start]]
        self.pair_dst = dst[self.edges[self.group_start]]
        self.indptr = np.searchsorted(pair_src, np.arange(self.n + 1)).astype(np.int32)
        e = self.edges
        self._e_base = self.base[e].astype(np.float64)
        self._e_rate = self.ppm[e].astype(np.float64) / 1e6
        self._e_inv_cap = 1.0 / self.cap_msat[e // 2].astype(np.float64)
        self._e_dst = dst[e]
        self._pair_dst32 = self.pair_dst.astype(np.int32)
        self._edge_lo = np.append(self.group_start, len(e))

    def _edge_span(self, node: int) -> tuple[int, int]:
        """The slice of :attr:`edges` leaving ``node``."""
        return int(self._edge_lo[self.indptr[node]]), int(self._edge_lo[self.indptr[node + 1]])

    # --- balances -----------------------------------------------------------------------------

    def outbound(self, edges: IntArray | int) -> IntArray:
        """What the forwarding side of each directed edge can send now (msat)."""
        e = np.asarray(edges)
        c = e // 2
        out: IntArray = np.where(e % 2 == 0, self.bal1[c], self.cap_msat[c] - self.bal1[c])
        return out

    def holdings(self) -> IntArray:
        """Per node: the msat it holds on its side of every channel."""
        out = np.zeros(self.n, dtype=np.int64)
        np.add.at(out, self.node1, self.bal1)
        np.add.at(out, self.node2, self.cap_msat - self.bal1)
        return out

    def local(self, node: int) -> list[tuple[int, int, int, int]]:
        """The node's channels: (channel, peer, local msat, capacity msat)."""
        rows = []
        for c in np.flatnonzero((self.node1 == node) | (self.node2 == node)):
            mine = (
                int(self.bal1[c]) if self.node1[c] == node else int(self.cap_msat[c] - self.bal1[c])
            )
            peer = int(self.node2[c] if self.node1[c] == node else self.node1[c])
            rows.append((int(c), peer, mine, int(self.cap_msat[c])))
        return rows

    def edge_from(self, channel: int, node: int) -> int:
        return 2 * channel + (0 if self.node1[channel] == node else 1)

    # --- routing ------------------------------------------------------------------------------

    def route(
        self,
        sender: int,
        receiver: int,
        amount_msat: int,
        banned: Sequence[int] = (),
        avoid: int = -1,
    ) -> tuple[int, ...] | None:
        """The sender's cheapest path (directed edges), or None. ``avoid``: a node not to cross."""
        e = self.edges
        amount = float(amount_msat)
        w = self._e_base + amount * self._e_rate
        # the sender pays no fee on its own channels (its edges are contiguous: sorted by src)
        lo, hi = self._edge_span(sender)
        w[lo:hi] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = amount * self._e_inv_cap
            w += self.config.hop_cost_msat - self.config.risk * amount * np.log1p(-ratio)
        w[ratio >= 1.0] = BIG
        if banned:
            w[np.isin(e, np.asarray(banned))] = BIG
        if avoid >= 0:
            a_lo, a_hi = self._edge_span(avoid)
            w[a_lo:a_hi] = BIG
            w[self._e_dst == avoid] = BIG
        best = np.minimum.reduceat(w, self.group_start) if len(w) else w
        matrix = sp.csr_array(
            (best, self.pair_dst.astype(np.int32), self.indptr), shape=(self.n, self.n)
        )
        dist, pred = dijkstra(matrix, indices=sender, return_predecessors=True)
        if not dist[receiver] < BIG / 2:
            return None
        hops: list[int] = []
        v = receiver
        while v != sender:
            u = int(pred[v])
            lo = int(self.indptr[u])
            k = lo + int(np.searchsorted(self.pair_dst[lo : self.indptr[u + 1]], v))
            start = self.group_start[k]
            stop = self.group_start[k + 1] if k + 1 < len(self.group_start) else len(e)
            hops.append(int(e[start + int(np.argmin(w[start:stop]))]))
            v = u
            if len(hops) > 30:
                return None
        return tuple(reversed(hops))

    def hop_amounts(self, path: Sequence[int], amount_msat: int) -> list[int]:
        """What each hop carries: the amount plus the fees of the hops after it."""
        amounts = [0] * len(path)
        carry = amount_msat
        for i in range(len(path) - 1, -1, -1):
            amounts[i] = carry
            if i > 0:  # the forwarder of hop i (not the sender) charges for it
                e = path[i]
                carry += int(self.base[e] + carry * self.ppm[e] // 1_000_000)
        return amounts

    def settle(self, path: Sequence[int], amounts: Sequence[int]) -> None:
        for e, amt in zip(path, amounts, strict=True):
            c = e // 2
            self.bal1[c] += -amt if e % 2 == 0 else amt

    def send_along(
        self,
        sender: int,
        receiver: int,
        path: Sequence[int],
        amount_msat: int,
        on_forward: Callable[[int, int, int, int, int], None] | None = None,
    ) -> Attempt:
        """Try one HTLC along ``path``; on success balances move and the ledger records it.

        ``on_forward(node, in_edge, out_edge, in_msat, out_msat)`` is called for each forward."""
        amounts = self.hop_amounts(path, amount_msat)
        short = np.flatnonzero(self.outbound(np.asarray(path)) < np.asarray(amounts))
        if len(short):
            bad = path[int(short[0])]
            if int(short[0]) > 0:
                self.no_liquidity[self.src[bad]] += 1
            return Attempt(False, tuple(path), 0, bad)
        self.settle(path, amounts)
        fee = amounts[0] - amount_msat
        self.paid[sender] += amounts[0]
        self.fees_paid[sender] += fee
        self.received[receiver] += amount_msat
        for i in range(1, len(path)):
            node = int(self.src[path[i]])
            self.earned[node] += amounts[i - 1] - amounts[i]
            self.forwarded[node] += amounts[i]
            if on_forward is not None:
                on_forward(node, path[i - 1], path[i], amounts[i - 1], amounts[i])
        return Attempt(True, tuple(path), fee, None)

    def pay(
        self,
        sender: int,
        receiver: int,
        amount_msat: int,
        on_forward: Callable[[int, int, int, int, int], None] | None = None,
    ) -> Attempt:
        """Route and send one payment, retrying without each channel that lacked liquidity."""
        banned: list[int] = []
        last = Attempt(False, (), 0, None)
        for _ in range(self.config.attempts):
            path = self.route(sender, receiver, amount_msat, banned)
            if path is None:
                return last
            last = self.send_along(sender, receiver, path, amount_msat, on_forward)
            if last.ok or last.failed_at is None:
                return last
            banned.append(last.failed_at)
        return last
