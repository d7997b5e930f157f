"""Money flowing over a channel graph: balances, routing by senders, HTLC failures, a ledger.

Arrays, one row per channel (``node1``, ``node2``, capacity, ``bal1`` = what ``node1`` holds)
and one per direction ``2 * c + d`` (d = 0: ``node1`` forwards to ``node2``), as in
:mod:`hive.node.sim.graph`. Nodes keep their public fees; a scenario's nodes set their own.

**Routing.** The sender does not see balances. It picks the path of least cost, where a hop
``u -> v`` costs ``u``'s fee for the amount (nothing on the sender's own channels), plus a
per-hop charge, plus a probability charge ``risk * amount * -log(1 - amount / capacity)`` (the
uniform-balance success prior that Pickhardt payments, CLN's askrene and LND's probability
estimator build on); channels smaller than the amount are left out. A compiled Dijkstra
(:mod:`hive.scenarios.pathfind`) searches from both ends at once, prices each hop as it
reaches it for the exact amount, and stops as soon as the cheapest path is known, once per
attempt (parallel channels are separate edges, so the cheapest of them wins). The arrays it
reads are rebuilt after any change of structure or fees (:meth:`Flow.invalidate`). The HTLC
then walks the path against the **current** balances: the first hop whose sender lacks the
outbound fails the attempt (a failed forward for lack of liquidity); the sender drops that
channel and retries, up to ``attempts`` times. On success every hop moves its amount (the
downstream amount plus its own fee) across its channel.

The ledger records per node: paid, received, fees earned and fees paid, so every figure comes
from the payments that flowed, and :meth:`Flow.holdings` lets a test check conservation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from hive.node.sim.graph import ROUTABLE, Graph
from hive.scenarios.pathfind import Workspace, cheapest_path, sides, workspace

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
MAX_HOPS = 30  # a longer cheapest path counts as no path


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
        self._work: Workspace | None = None
        self._views_stale = False
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
        self._disable(np.concatenate([2 * touching, 2 * touching + 1]))

    def close_channel(self, channel: int) -> None:
        """The channel closes: it forwards no more. What each side held stays in
        :meth:`holdings` (it goes back on chain to its owner), so conservation still holds."""
        self._disable(np.array([2 * channel, 2 * channel + 1], dtype=np.int64))

    def set_fee(self, edge: int, base_msat: int, ppm: int) -> None:
        """The forwarding side of directed ``edge`` announces a new fee (priced from the next
        path on, patched into the routing arrays without rebuilding them)."""
        self.base[edge] = base_msat
        self.ppm[edge] = ppm
        if not self._stale and self._pos[edge] >= 0:
            pos = int(self._pos[edge])
            for side, at in ((self._fwd, pos), (self._bwd, int(self._bwd_at[pos]))):
                side.base[at] = float(self.base[edge])
                side.rate[at] = float(self.ppm[edge]) / 1e6

    def _disable(self, edges: IntArray) -> None:
        """Take directed edges out of routing: patched in place (an infinite 1 / capacity
        leaves them out of every search); the pair views are rebuilt when next read."""
        self.routable[edges] = False
        if self._stale:
            return
        pos = self._pos[edges]
        pos = pos[pos >= 0]
        self._fwd.inv_cap[pos] = np.inf
        self._bwd.inv_cap[self._bwd_at[pos]] = np.inf
        self._pos[edges] = -1
        self._views_stale = True

    def _index(self) -> None:
        """Structure changed: the directed-edge ends now, the routing arrays on next use."""
        c = len(self.node1)
        src = np.empty(2 * c, dtype=np.int64)
        dst = np.empty(2 * c, dtype=np.int64)
        src[0::2], dst[0::2] = self.node1, self.node2
        src[1::2], dst[1::2] = self.node2, self.node1
        self.src, self.dst = src, dst
        self._stale = True

    def invalidate(self) -> None:
        """Rebuild what routing reads from the arrays before the next path is computed.

        :meth:`add_node` and :meth:`add_channel` rebuild (on the next path); :meth:`set_fee`,
        :meth:`set_offline` and :meth:`close_channel` patch the arrays in place. Code that
        writes :attr:`base`, :attr:`ppm`, :attr:`routable` or :attr:`cap_msat` directly must
        call this, or routing keeps pricing the old values."""
        self._index()

    def _routing_arrays(self) -> None:
        if not self._stale:
            return
        src, dst = self.src, self.dst
        edges = np.flatnonzero(self.routable)
        key = src[edges] * self.n + dst[edges]
        order = np.argsort(key, kind="stable")
        # routable directed edges sorted by (src, dst): parallel channels side by side, in id order
        e = self._edges = np.ascontiguousarray(edges[order])
        # the same per (src, dst) pair: the peers each node can forward to
        key = key[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        self._pair_dst = dst[e[first]]
        self._indptr = np.searchsorted(src[e[first]], np.arange(self.n + 1)).astype(np.int32)
        self._e_src = np.ascontiguousarray(src[e])
        self._fwd, self._bwd = sides(
            self.n,
            self._e_src,
            dst[e],
            e,
            self.base[e].astype(np.float64),
            self.ppm[e].astype(np.float64) / 1e6,
            1.0 / self.cap_msat[e // 2].astype(np.float64),
        )
        self._bwd_at = np.empty(len(e), dtype=np.int64)  # forward position -> backward position
        self._bwd_at[self._bwd.pos] = np.arange(len(e))
        self._pos = np.full(len(self.src), -1, dtype=np.int64)  # directed edge -> position
        self._pos[e] = np.arange(len(e))
        self._views_stale = False
        if (
            self._work is None
            or self._work.dist.shape[1] != self.n
            or len(e) + 1 > self._work.heap_d.shape[1]
        ):
            self._work = workspace(self.n, len(e))
        self._stale = False

    def _views(self) -> None:
        """The arrays current, including the views that in-place patches leave stale."""
        if self._views_stale:
            self._stale = True
        self._routing_arrays()

    @property
    def edges(self) -> IntArray:
        """The routable directed edges, sorted by (src, dst)."""
        self._views()
        return self._edges

    @property
    def indptr(self) -> npt.NDArray[np.int32]:
        """CSR row pointers over :attr:`pair_dst`: node ``u``'s peers are
        ``pair_dst[indptr[u]:indptr[u + 1]]`` (each once, however many channels)."""
        self._views()
        return self._indptr

    @property
    def pair_dst(self) -> IntArray:
        self._views()
        return self._pair_dst

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
        self._routing_arrays()
        work = self._work
        assert work is not None  # built with the arrays
        path = cheapest_path(
            self._fwd,
            self._bwd,
            self._e_src,
            sender,
            receiver,
            float(amount_msat),
            float(self.config.hop_cost_msat),
            float(self.config.risk),
            np.asarray(banned, dtype=np.int64),
            avoid,
            MAX_HOPS,
            work,
        )
        if len(path) == 0 and sender != receiver:
            return None
        return tuple(path.tolist())

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
        bal1, cap = self.bal1, self.cap_msat
        for i, e in enumerate(path):  # a few hops: plain indexing beats array calls here
            c = e // 2
            have = bal1[c] if e % 2 == 0 else cap[c] - bal1[c]
            if have < amounts[i]:
                if i > 0:
                    self.no_liquidity[self.src[e]] += 1
                return Attempt(False, tuple(path), 0, e)
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
