"""The simulated Lightning network: graph, balances, wallets, connections and message delivery.

:class:`SimNetwork` owns all shared state; :class:`~hive.node.sim.node.SimNode` is the per-node
NodePort facade over it. Everything time-related runs on trio's clock, so tests drive it with
``MockClock`` (``autojump_clock``) and never sleep for real.

Model (simplifications are deliberate and listed here):

* **Connections** are separate from channels, as in Lightning: a custom message needs one, a
  channel does not make one. Connecting emits :class:`PeerConnected` to both ends, disconnecting
  (or a node going offline) :class:`PeerDisconnected` to both ends. Each connection has a
  generation number; a message in flight is dropped when its connection closed meanwhile, even if
  the peers reconnected before it arrived.
* **Addresses.** Every node listens on ``127.0.0.1:<port>`` (:meth:`SimNetwork.address_of`).
  By default a connect needs no address. With ``require_address``, as in Lightning, a connect
  without host finds the peer only through gossip (the peer has a public channel) or an
  address remembered from an earlier outgoing connection (lost when the node restarts:
  :meth:`SimNetwork.forget_addresses`); a connect with a host must name the peer's address.
* **Custom messages** are dropped with probability ``loss`` (seeded), otherwise delivered after a
  latency drawn uniformly from ``latency``. Messages on one connection stay in order (it is a TCP
  stream): a message never overtakes an earlier one.
* **Events** reach a node only while something runs its ``run_events``; each node buffers at most
  ``event_buffer`` events for a slow consumer. When the buffer is full, custom messages are dropped
  (counted); other events (connects, channels, forwards) are always queued, so the network never
  blocks on one slow node.
* **Opens** cost ``open_fee_sat`` on chain plus the amount, from the opener's wallet; the channel
  is OPENING, then NORMAL ``confirmation_delay_s`` later, when it gets its short channel id.
  New channels start with all funds on the opener's side and CLN's default fees (1000 msat +
  10 ppm) in both directions.
* **The public graph as each node sees it** lags like real gossip (:class:`GossipLag`): a new
  channel is announced ``announce_s`` after its funding confirms (Lightning announces at 6
  confirmations, usable earlier), and a node other than its two ends hears of the announcement
  ``propagation_s`` later (drawn per node and channel, deterministic from the seed). The filter is
  a "known since" time per (viewer, channel) computed on the fly over the one shared graph, so
  the mainnet graph is never copied. :data:`INSTANT` (the default) is the omniscient view:
  announced at confirmation, known everywhere at once. Channels of the loaded graph are known
  to everyone from the start. Routing stays omniscient (see below).
* **Payments** and **routing**: see :mod:`hive.node.sim.routing` (omniscient pathfinder, atomic
  settlement). Offline nodes are avoided by the pathfinder and fail payments through them.
* **Misbehaving peers** (:mod:`hive.node.sim.behaviour`): a node may hold HTLCs
  (``set_behaviour``; forwarders' events then arrive late, with the hold time) and any node
  may force-close its channels with a peer (``force_close``).
* The block height is ``start_height`` plus elapsed trio time / 600 s, counted from the first
  time the network reads the clock.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from hive.errors import InsufficientFunds, NodeError, PaymentFailed, PeerUnreachable, RouteNotFound
from hive.node.port import (
    ChannelOpened,
    ChannelState,
    ChannelStateChanged,
    CustomMessage,
    FeePolicy,
    Forwarded,
    NodeEvent,
    NodeId,
    OpenResult,
    PaymentResult,
    PaymentState,
    PaymentStatus,
    PeerConnected,
    PeerDisconnected,
    PublicChannel,
    Route,
)
from hive.node.sim import behaviour as behaviours
from hive.node.sim import routing
from hive.node.sim.features import DEFAULT_FEATURE_BITS, SPLICE_OPTIONAL, features_from_bits
from hive.node.sim.graph import (
    DEFAULT_POLICY,
    NORMAL,
    OPENING,
    DirectionPolicy,
    Graph,
    derive_secret,
)
from hive.protocol.lnsig import node_id_from_secret

if TYPE_CHECKING:
    from hive.node.sim.node import SimNode

MAX_MESSAGE_LEN = 65535
MIN_CUSTOM_TYPE = 32768
MIN_CHANNEL_SAT = 20_000  # CLN's default min-capacity-sat is 10k; 20k keeps toy opens sane
INVALID_PARAMS = -32602  # JSON-RPC "invalid params", as CLN answers bad arguments
FUND_CANNOT_AFFORD = 301  # CLN's error code for an open the wallet cannot pay
CHANNEL_REFUSED = -1  # CLN's generic "lightningd error": the peer refused (hook said reject)


@attrs.frozen
class GossipLag:
    """How the public graph each node sees lags behind the channels that exist."""

    announce_s: float = 0.0  # from the funding's confirmation to the channel_announcement
    propagation_s: tuple[float, float] = (0.0, 0.0)  # announcement to a node (uniform draw)

    def __attrs_post_init__(self) -> None:
        low, high = self.propagation_s
        if not (self.announce_s >= 0.0 and 0.0 <= low <= high):
            raise ValueError(f"gossip lag needs announce_s >= 0 and 0 <= min <= max, got {self}")


INSTANT = GossipLag()
"""Every node sees a channel as soon as its funding confirms (the omniscient view)."""

REALISTIC = GossipLag(announce_s=1800.0, propagation_s=(30.0, 300.0))
"""Announced three blocks after the channel is usable, then a minute or a few to reach a node."""

_MASK64 = (1 << 64) - 1


def _unit(seed: int, viewer: int, channel: int) -> float:
    """A deterministic draw in [0, 1) for (seed, viewer, channel): splitmix64, no state kept."""
    x = seed * 0x9E3779B97F4A7C15 + viewer * 0xBF58476D1CE4E5B9 + channel * 0x94D049BB133111EB
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


@attrs.define
class SimStats:
    """Counters the network keeps; read them, do not write them."""

    messages_sent: int = 0
    messages_delivered: int = 0
    messages_dropped_loss: int = 0
    messages_dropped_disconnected: int = 0
    messages_dropped_overflow: int = 0
    messages_dropped_no_consumer: int = 0
    payments_ok: int = 0
    payments_failed: int = 0
    opens: int = 0

    @property
    def messages_dropped(self) -> int:
        return (
            self.messages_dropped_loss
            + self.messages_dropped_disconnected
            + self.messages_dropped_overflow
            + self.messages_dropped_no_consumer
        )


class SimNetwork:
    """Shared state of the simulated network; see the module docstring for the model.

    ``seed`` fixes every random draw (keys of added nodes, loss, latency, payment hashes).
    """

    def __init__(
        self,
        graph: Graph,
        *,
        seed: int = 0,
        latency: tuple[float, float] = (0.05, 0.25),
        loss: float = 0.0,
        confirmation_delay_s: float = 600.0,
        open_fee_sat: int = 2_000,
        event_buffer: int = 1_000,
        start_height: int = 921_000,
        gossip_lag: GossipLag = INSTANT,
        require_address: bool = False,
    ) -> None:
        if not 0.0 <= latency[0] <= latency[1]:
            raise ValueError(f"latency must be (min, max) with 0 <= min <= max, got {latency}")
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be a probability, got {loss}")
        if event_buffer < 1:
            raise ValueError(f"event_buffer must be >= 1, got {event_buffer}")
        self.graph = graph
        self.seed = seed
        self.latency = latency
        self.loss = loss
        self.confirmation_delay_s = confirmation_delay_s
        self.open_fee_sat = open_fee_sat
        self.event_buffer = event_buffer
        self.start_height = start_height
        self.gossip_lag = gossip_lag
        self.require_address = require_address
        self._remembered: dict[int, set[int]] = {}  # node -> peers it knows an address of
        self.stats = SimStats()
        self._rng = random.Random(seed)
        self._nodes: dict[int, SimNode] = {}
        self._wallets: dict[int, int] = {}
        self._connections: dict[int, set[int]] = {}
        self._conn_gen: dict[tuple[int, int], int] = {}
        self._last_arrival: dict[tuple[int, int], float] = {}
        self._offline: set[int] = set()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._wake: trio.Event | None = None
        self._t0: float | None = None
        self._running = False
        # (payer, label) -> outcome, for payment_status after a companion restart.
        self._payments: dict[tuple[int, str], PaymentStatus] = {}
        self._behaviours: dict[int, behaviours.PeerBehaviour] = {}

    # --- nodes ------------------------------------------------------------------------------

    def add_node(
        self,
        alias: str,
        onchain_sat: int = 0,
        *,
        feature_bits: Iterable[int] | None = None,
    ) -> SimNode:
        """Create a new node (no channels) with a secp256k1 key derived from the seed.

        ``feature_bits`` defaults to :data:`DEFAULT_FEATURE_BITS` plus splicing (bit 63,
        optional); pass your own set to leave splicing out or require it (bit 62).
        """
        bits = (
            set(DEFAULT_FEATURE_BITS) | {SPLICE_OPTIONAL}
            if feature_bits is None
            else set(feature_bits)
        )
        label = f"node/{len(self.graph.node_ids)}/{alias}"
        secret = derive_secret(self.seed, label)
        idx = self.graph.add_node(node_id_from_secret(secret), alias, secret=secret)
        self.graph.features[idx] = features_from_bits(bits)
        self._wallets[idx] = onchain_sat
        return self._node(idx)

    def node(self, node_id: NodeId) -> SimNode:
        """The NodePort of any node in the network (added or from the graph).

        Raises KeyError for an unknown id. Graph nodes without a known secret cannot sign.
        """
        idx = self.graph.index.get(node_id)
        if idx is None:
            raise KeyError(f"unknown node {node_id}")
        return self._node(idx)

    def _node(self, idx: int) -> SimNode:
        from hive.node.sim.node import SimNode  # node.py imports this module

        node = self._nodes.get(idx)
        if node is None:
            node = SimNode(self, idx)
            self._nodes[idx] = node
        return node

    def fund(self, node_id: NodeId, amount_sat: int) -> None:
        """Add ``amount_sat`` (may be negative) to a node's confirmed on-chain wallet."""
        idx = self.graph.index[node_id]
        self._wallets[idx] = self._wallets.get(idx, 0) + amount_sat

    def onchain_sat(self, idx: int) -> int:
        return self._wallets.get(idx, 0)

    def set_offline(self, node_id: NodeId, offline: bool = True) -> None:
        """Take a node offline (all its connections drop) or bring it back (no reconnects)."""
        idx = self.graph.index[node_id]
        if offline:
            for peer in sorted(self._connections.get(idx, ())):
                self._disconnect(idx, peer)
            self._offline.add(idx)
        else:
            self._offline.discard(idx)

    def is_offline(self, idx: int) -> bool:
        return idx in self._offline

    def set_behaviour(self, node_id: NodeId, behaviour: behaviours.PeerBehaviour) -> None:
        """Make a node misbehave (see :mod:`hive.node.sim.behaviour`); HONEST undoes it."""
        self._behaviours[self.graph.index[node_id]] = behaviour

    def behaviour(self, idx: int) -> behaviours.PeerBehaviour:
        return self._behaviours.get(idx, behaviours.HONEST)

    def force_close(self, closer_id: NodeId, peer_id: NodeId) -> list[str]:
        """``closer_id`` force-closes its channels with ``peer_id``; returns their scids."""
        return behaviours.force_close(self, self.graph.index[closer_id], self.graph.index[peer_id])

    # --- clock and timers -------------------------------------------------------------------

    def _now(self) -> float:
        now = trio.current_time()
        if self._t0 is None:
            self._t0 = now
        return now

    def blockheight(self) -> int:
        """``start_height`` + elapsed trio seconds / 600."""
        return self.start_height + int((self._now() - (self._t0 or 0.0)) // 600)

    def _schedule_at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, fn))
        if self._wake is not None:
            self._wake.set()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver messages and confirm opens until cancelled. Run exactly one at a time."""
        if self._running:
            raise RuntimeError("SimNetwork.run is already running")
        self._running = True
        try:
            self._now()
            task_status.started()
            while True:
                now = trio.current_time()
                while self._timers and self._timers[0][0] <= now:
                    _, _, fn = heapq.heappop(self._timers)
                    fn()
                deadline = self._timers[0][0] if self._timers else math.inf
                self._wake = trio.Event()
                with trio.move_on_at(deadline):
                    await self._wake.wait()
        finally:
            self._wake = None
            self._running = False

    # --- events -----------------------------------------------------------------------------

    def _emit(self, idx: int, event: NodeEvent) -> None:
        node = self._nodes.get(idx)
        if node is not None:
            node._push(event)

    def _announced(self, idx: int) -> bool:
        graph = self.graph
        return any(
            graph.state[c] == NORMAL and graph.announced[c] <= self._now()
            for c in graph.adjacency[idx]
        )

    # --- the public graph as one node sees it ----------------------------------------------

    def known_since(self, viewer: int, c: int) -> float:
        """Trio time from which ``viewer`` knows channel ``c``'s announcement (inf: never yet)."""
        graph = self.graph
        announced = graph.announced[c]
        if math.isinf(announced) or viewer == graph.node1[c] or viewer == graph.node2[c]:
            return announced
        low, high = self.gossip_lag.propagation_s
        if high == 0.0:
            return announced
        return announced + low + (high - low) * _unit(self.seed, viewer, c)

    def public_channels_seen_by(self, viewer: int, n: int) -> list[PublicChannel]:
        """``n``'s public channels as ``viewer``'s gossip knows them now."""
        now = self._now()

        def known(c: int) -> bool:
            return self.known_since(viewer, c) <= now

        return self.graph.public_channels(n, known)

    # --- connections ------------------------------------------------------------------------

    @staticmethod
    def _pair(a: int, b: int) -> tuple[int, int]:
        return (a, b) if a < b else (b, a)

    def connected(self, a: int, b: int) -> bool:
        return b in self._connections.get(a, ())

    def peers_of(self, idx: int) -> set[int]:
        return set(self._connections.get(idx, ()))

    def address_of(self, idx: int) -> str:
        """Where node ``idx`` listens (``127.0.0.1`` and a port derived from its index)."""
        return f"127.0.0.1:{10_000 + idx % 50_000}"

    def forget_addresses(self, node_id: NodeId) -> None:
        """Forget the addresses a node learned from its outgoing connections (a restart)."""
        self._remembered.pop(self.graph.index[node_id], None)

    def connect(
        self, a: int, peer_id: NodeId, host: str | None = None, port: int | None = None
    ) -> None:
        """Connect node ``a`` to ``peer_id``; raises PeerUnreachable (unknown, offline, self,
        no address known or a wrong one: see the module docstring)."""
        b = self.graph.index.get(peer_id)
        if b is None:
            raise PeerUnreachable(f"cannot connect to {peer_id}: unknown node")
        if b == a:
            raise PeerUnreachable(f"cannot connect to {peer_id}: that is ourselves")
        if a in self._offline:
            raise PeerUnreachable(f"cannot connect to {peer_id}: we are offline")
        if b in self._offline:
            raise PeerUnreachable(f"cannot connect to {peer_id}: peer is offline")
        if self.require_address and not self.connected(a, b):
            if host is not None:
                if f"{host}:{port}" != self.address_of(b):
                    raise PeerUnreachable(f"cannot connect to {peer_id}: nobody there at {host}")
            elif b not in self._remembered.get(a, set()) and not self._announced(b):
                raise PeerUnreachable(f"cannot connect to {peer_id}: no address known for peer")
        self._remembered.setdefault(a, set()).add(b)
        if self.connected(a, b):
            return
        self._connections.setdefault(a, set()).add(b)
        self._connections.setdefault(b, set()).add(a)
        pair = self._pair(a, b)
        self._conn_gen[pair] = self._conn_gen.get(pair, 0) + 1
        features = self.graph.features
        self._emit(a, PeerConnected(peer_id=peer_id, features=features.get(b, b"")))
        self._emit(b, PeerConnected(peer_id=self.graph.node_ids[a], features=features.get(a, b"")))

    def disconnect(self, a: int, peer_id: NodeId) -> None:
        """Close the connection between ``a`` and ``peer_id`` if there is one."""
        b = self.graph.index.get(peer_id)
        if b is not None and self.connected(a, b):
            self._disconnect(a, b)

    def _disconnect(self, a: int, b: int) -> None:
        self._connections[a].discard(b)
        self._connections[b].discard(a)
        self._emit(a, PeerDisconnected(peer_id=self.graph.node_ids[b]))
        self._emit(b, PeerDisconnected(peer_id=self.graph.node_ids[a]))

    # --- custom messages --------------------------------------------------------------------

    def send_custommsg(self, src: int, peer_id: NodeId, message: bytes) -> None:
        """Validate like CLN's ``sendcustommsg``, then queue for best-effort delivery."""
        if len(message) < 2:
            raise NodeError("custom message needs a 2-byte type", code=INVALID_PARAMS)
        if len(message) > MAX_MESSAGE_LEN:
            raise NodeError(
                f"custom message of {len(message)} bytes exceeds {MAX_MESSAGE_LEN}",
                code=INVALID_PARAMS,
            )
        msg_type = int.from_bytes(message[:2], "big")
        if msg_type < MIN_CUSTOM_TYPE or msg_type % 2 == 0:
            raise NodeError(
                f"custom message type {msg_type} must be odd and >= {MIN_CUSTOM_TYPE}",
                code=INVALID_PARAMS,
            )
        dst = self.graph.index.get(peer_id)
        if dst is None or not self.connected(src, dst):
            raise PeerUnreachable(f"not connected to {peer_id}")
        self.stats.messages_sent += 1
        lost = self._rng.random() < self.loss
        latency = self._rng.uniform(*self.latency)
        if lost:
            self.stats.messages_dropped_loss += 1
            return
        pair = self._pair(src, dst)
        generation = self._conn_gen[pair]
        arrival = self._now() + latency
        direction = (src, dst)
        arrival = max(arrival, self._last_arrival.get(direction, arrival))
        self._last_arrival[direction] = arrival

        def deliver() -> None:
            self._deliver(src, dst, generation, message)

        self._schedule_at(arrival, deliver)

    def _deliver(self, src: int, dst: int, generation: int, message: bytes) -> None:
        if not self.connected(src, dst) or self._conn_gen[self._pair(src, dst)] != generation:
            self.stats.messages_dropped_disconnected += 1
            return
        node = self._nodes.get(dst)
        if node is None or not node.has_consumer:
            self.stats.messages_dropped_no_consumer += 1
            return
        if not node._push_custom(CustomMessage(peer_id=self.graph.node_ids[src], message=message)):
            self.stats.messages_dropped_overflow += 1
            return
        self.stats.messages_delivered += 1

    # --- channels ---------------------------------------------------------------------------

    def open_channel(self, opener: int, peer_id: NodeId, amount_sat: int) -> OpenResult:
        """Fund a channel to ``peer_id`` (connecting first if needed).

        Raises NodeError (amount too small), PeerUnreachable, InsufficientFunds.
        """
        if amount_sat < MIN_CHANNEL_SAT:
            raise NodeError(
                f"channel amount {amount_sat} sat below the minimum {MIN_CHANNEL_SAT} sat",
                code=INVALID_PARAMS,
            )
        self.connect(opener, peer_id)
        peer = self.graph.index[peer_id]
        accepter = self._nodes.get(peer)
        gate = None if accepter is None else accepter.open_gate
        refusal = None if gate is None else gate(self.graph.node_ids[opener])
        if refusal is not None:
            raise NodeError(f"{peer_id} refused the channel: {refusal}", code=CHANNEL_REFUSED)
        cost = amount_sat + self.open_fee_sat
        wallet = self._wallets.get(opener, 0)
        if wallet < cost:
            raise InsufficientFunds(
                f"open of {amount_sat} sat + {self.open_fee_sat} sat fee needs {cost} sat, "
                f"wallet has {wallet} sat",
                code=FUND_CANNOT_AFFORD,
            )
        self._wallets[opener] = wallet - cost
        c = self.graph.add_channel(
            opener,
            peer,
            amount_sat,
            scid="",
            a_msat=amount_sat * 1000,
            policy_a=DEFAULT_POLICY,
            policy_b=DEFAULT_POLICY,
            state=ChannelState.OPENING,
            announced=math.inf,
        )
        txid = hashlib.sha256(f"hive-sim/{self.seed}/tx/{self._next_seq()}".encode()).hexdigest()
        opener_id = self.graph.node_ids[opener]
        funding_msat = amount_sat * 1000
        self._emit(opener, ChannelOpened(peer_id=peer_id, funding_msat=funding_msat, ours=True))
        self._emit(peer, ChannelOpened(peer_id=opener_id, funding_msat=funding_msat, ours=False))
        for me, other in ((opener, peer_id), (peer, opener_id)):
            self._emit(me, ChannelStateChanged(other, None, None, ChannelState.OPENING))
        self._schedule_at(self._now() + self.confirmation_delay_s, lambda: self._confirm(c))
        self.stats.opens += 1
        return OpenResult(
            peer_id=peer_id, amount_sat=amount_sat, txid=txid, onchain_fee_sat=self.open_fee_sat
        )

    def _confirm(self, c: int) -> None:
        graph = self.graph
        if graph.state[c] != OPENING:
            return
        scid = f"{self.blockheight()}x{self._next_seq()}x0"
        graph.set_scid(c, scid)
        graph.state[c] = NORMAL
        graph.announced[c] = self._now() + self.gossip_lag.announce_s
        a, b = graph.node1[c], graph.node2[c]
        for me, other in ((a, b), (b, a)):
            self._emit(
                me,
                ChannelStateChanged(
                    graph.node_ids[other], scid, ChannelState.OPENING, ChannelState.NORMAL
                ),
            )

    def set_fee_policy(self, idx: int, peer_id: NodeId, policy: FeePolicy) -> int:
        """Set ``idx``'s outgoing fee on all its channels with ``peer_id``; returns how many.

        Applies to routing at once. Raises NodeError when there is no such channel.
        """
        if policy.base_msat < 0 or policy.ppm < 0:
            raise NodeError(f"fees must be >= 0, got {policy}", code=INVALID_PARAMS)
        peer = self.graph.index.get(peer_id)
        channels = [] if peer is None else self.graph.channels_between(idx, peer)
        if not channels:
            raise NodeError(f"no channel with {peer_id}", code=INVALID_PARAMS)
        for c in channels:
            d = self.graph.direction(c, idx)
            self.graph.set_policy(
                c,
                idx,
                DirectionPolicy(
                    base_msat=policy.base_msat,
                    ppm=policy.ppm,
                    cltv_delta=self.graph.cltv[d] or DEFAULT_POLICY.cltv_delta,
                    flags=self.graph.flags[d] or DEFAULT_POLICY.flags,
                ),
            )
        return len(channels)

    # --- routing and payments ---------------------------------------------------------------

    def _excluded_nodes(self) -> set[int]:
        return self._offline

    def find_route(
        self,
        source: int,
        destination: NodeId,
        amount_msat: int,
        *,
        exclude_channels: Sequence[str] = (),
    ) -> Route:
        """Cheapest route (omniscient; see :mod:`routing`). Raises RouteNotFound."""
        dest = self.graph.index.get(destination)
        if dest is None:
            raise RouteNotFound(
                f"unknown destination {destination}", code=routing.ROUTE_NOT_FOUND_CODE
            )
        if dest == source:
            raise RouteNotFound(
                "destination is ourselves; use find_circular_route",
                code=routing.ROUTE_NOT_FOUND_CODE,
            )
        excluded = self._channel_indices(exclude_channels)
        path = routing.find_path(
            self.graph,
            source,
            dest,
            amount_msat,
            excluded_channels=excluded,
            excluded_nodes=self._excluded_nodes(),
        )
        return routing.to_route(self.graph, path)

    def find_circular_route(
        self, source: int, out_peer: NodeId, in_peer: NodeId, amount_msat: int
    ) -> Route:
        """Route out through our channel with ``out_peer``, back through ``in_peer``."""
        out_idx = self.graph.index.get(out_peer)
        in_idx = self.graph.index.get(in_peer)
        if out_idx is None or in_idx is None:
            raise RouteNotFound(
                f"unknown peer {out_peer if out_idx is None else in_peer}",
                code=routing.ROUTE_NOT_FOUND_CODE,
            )
        path = routing.find_path(
            self.graph,
            source,
            source,
            amount_msat,
            first_peer=out_idx,
            last_peer=in_idx,
            excluded_nodes=self._excluded_nodes(),
        )
        return routing.to_route(self.graph, path)

    def _channel_indices(self, scids: Sequence[str]) -> set[int]:
        out: set[int] = set()
        for scid in scids:
            c = self.graph.scid_index.get(scid.split("/")[0])
            if c is not None:
                out.add(c)
        return out

    def pay(self, source: int, route: Route, *, label: str | None = None) -> PaymentResult:
        """Pay along ``route`` atomically; raises PaymentFailed naming the failing node.

        A ``label`` is recorded with the outcome for :meth:`payment_status`; reusing one raises
        NodeError (as a duplicate invoice label does under CLN)."""
        if label is not None:
            if (source, label) in self._payments:
                raise NodeError(f"payment label {label!r} already used", code=INVALID_PARAMS)
            self._payments[(source, label)] = PaymentStatus(label, PaymentState.PENDING)
        try:
            result = self._pay(source, route)
        except PaymentFailed:
            if label is not None:
                self._payments[(source, label)] = PaymentStatus(label, PaymentState.FAILED)
            raise
        if label is not None:
            self._payments[(source, label)] = PaymentStatus(
                label,
                PaymentState.COMPLETE,
                payment_hash=result.payment_hash,
                amount_msat=result.amount_msat,
                fee_msat=result.fee_msat,
            )
        return result

    def payment_status(self, source: int, label: str) -> PaymentStatus:
        return self._payments.get((source, label), PaymentStatus(label, PaymentState.UNKNOWN))

    def _pay(self, source: int, route: Route) -> PaymentResult:
        graph = self.graph
        try:
            path = routing.resolve_route(graph, source, route)
        except PaymentFailed:
            self.stats.payments_failed += 1
            raise
        if source in self._offline:
            self.stats.payments_failed += 1
            raise PaymentFailed(
                "we are offline", failing_node=graph.node_ids[source], code=routing.PAY_FAILED_CODE
            )
        failure = routing.first_failure(graph, source, path, self._offline)
        if failure is not None:
            failing, reason = failure
            self.stats.payments_failed += 1
            self._emit_forwards(source, path, upto=failing, settled=False)
            raise PaymentFailed(
                f"payment failed at {graph.node_ids[failing]}: {reason}",
                failing_node=graph.node_ids[failing],
                code=routing.PAY_FAILED_CODE,
            )
        routing.settle(graph, source, path)
        self._emit_forwards(source, path, upto=None, settled=True)
        self.stats.payments_ok += 1
        payment_hash = hashlib.sha256(
            f"hive-sim/{self.seed}/payment/{self._next_seq()}".encode()
        ).hexdigest()
        return PaymentResult(
            payment_hash=payment_hash,
            amount_msat=route.amount_msat,
            fee_msat=route.fee_msat,
            route=route,
        )

    def _emit_forwards(
        self, source: int, path: Sequence[routing.PathHop], *, upto: int | None, settled: bool
    ) -> None:
        """Forwarded events for the intermediate nodes (those before ``upto`` when given)."""
        if upto == source:
            return  # failed before leaving us: nobody forwarded anything
        held = behaviours.downstream_holds_s(self, path)
        for i in range(len(path) - 1):
            node = path[i].node
            if node == upto:
                return
            if node not in self._nodes:
                continue
            # The HTLC out of this node resolves once every node after it has let go.
            hold_s = 0.0 if upto is not None else held[i + 1]
            event = Forwarded(
                in_channel=self.graph.scids[path[i].channel],
                out_channel=self.graph.scids[path[i + 1].channel],
                in_msat=path[i].amount_msat,
                out_msat=path[i + 1].amount_msat,
                settled=settled,
                hold_ms=round(hold_s * 1000),
            )
            if hold_s > 0:
                self._schedule_at(self._now() + hold_s, functools.partial(self._emit, node, event))
            else:
                self._emit(node, event)
