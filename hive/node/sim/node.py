"""One simulated node: the NodePort implementation over :class:`SimNetwork`.

Every NodePort method starts with a trio checkpoint, like a real RPC round trip, so callers see
the same cancellation points as with a real node.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hive.errors import NodeError, RouteNotFound
from hive.node.ignores import OpenIgnores
from hive.node.port import (
    ChannelView,
    CustomMessage,
    FeePolicy,
    NodeAnnouncement,
    NodeEvent,
    NodeId,
    NodeInfo,
    NodePort,
    OpenResult,
    PaymentResult,
    PaymentStatus,
    PeerView,
    PublicChannel,
    Route,
)
from hive.node.sim.graph import NORMAL
from hive.node.sim.routing import ROUTE_NOT_FOUND_CODE
from hive.protocol import lnsig

if TYPE_CHECKING:
    from hive.node.sim.network import SimNetwork

SIM_VERSION = "hive-sim-0.1"
SIM_NETWORK_NAME = "sim"


class SimNode:
    """A node of the simulated network, seen through the NodePort interface.

    Beyond NodePort: :meth:`disconnect`, :meth:`set_offline`, :attr:`open_ignored`,
    :attr:`has_consumer`. Create nodes with :meth:`SimNetwork.add_node` or get graph nodes with
    :meth:`SimNetwork.node`, not directly.
    """

    def __init__(self, network: SimNetwork, idx: int) -> None:
        self._net = network
        self._idx = idx
        self.node_id: NodeId = network.graph.node_ids[idx]
        self._events: deque[NodeEvent] = deque()
        self._wake = trio.Event()
        self._consumer = False
        self._open_ignored = OpenIgnores()
        self.fee_unmanaged: set[NodeId] = set()
        # The simulator's openchannel hook: opener -> refusal reason or None (accept).
        self.open_gate: Callable[[NodeId], str | None] | None = None

    def __repr__(self) -> str:
        return f"SimNode({self.alias!r}, {self.node_id[:16]}...)"

    @property
    def alias(self) -> str:
        return self._net.graph.aliases[self._idx]

    @property
    def index(self) -> int:
        """This node's index in the network's graph."""
        return self._idx

    @property
    def has_consumer(self) -> bool:
        """True while ``run_events`` runs for this node."""
        return self._consumer

    @property
    def open_ignored(self) -> dict[NodeId, str]:
        """Peers excluded from opens by :meth:`set_open_ignored`, with the reason (a copy)."""
        return self._open_ignored.reasons()

    # --- event queue (called by the network, synchronously) ----------------------------------

    def _push(self, event: NodeEvent) -> None:
        """Queue a control event (never dropped while a consumer runs)."""
        if self._consumer:
            self._events.append(event)
            self._wake.set()

    def _push_custom(self, event: CustomMessage) -> bool:
        """Queue a custom message; False when it was dropped (no consumer or buffer full)."""
        if not self._consumer or len(self._events) >= self._net.event_buffer:
            return False
        self._events.append(event)
        self._wake.set()
        return True

    # --- NodePort ---------------------------------------------------------------------------

    async def get_info(self) -> NodeInfo:
        await trio.lowlevel.checkpoint()
        return NodeInfo(
            node_id=self.node_id,
            alias=self.alias,
            version=SIM_VERSION,
            network=SIM_NETWORK_NAME,
            blockheight=self._net.blockheight(),
            features=self._net.graph.features.get(self._idx, b""),
            addresses=(self._net.address_of(self._idx),),
        )

    async def list_peers(self) -> Sequence[PeerView]:
        """Connected peers and peers we have a channel with (as CLN's listpeers)."""
        await trio.lowlevel.checkpoint()
        graph = self._net.graph
        connected = self._net.peers_of(self._idx)
        with_channel = {graph.other(c, self._idx) for c in graph.adjacency[self._idx]}
        return [
            PeerView(
                node_id=graph.node_ids[p],
                connected=p in connected,
                features=graph.features.get(p, b"") if p in connected else b"",
            )
            for p in sorted(connected | with_channel)
        ]

    async def list_channels(self) -> Sequence[ChannelView]:
        await trio.lowlevel.checkpoint()
        graph = self._net.graph
        out: list[ChannelView] = []
        for c in graph.adjacency[self._idx]:
            local = graph.outbound_msat(c, self._idx)
            capacity = graph.capacity_sat[c] * 1000
            out.append(
                ChannelView(
                    peer_id=graph.node_ids[graph.other(c, self._idx)],
                    short_channel_id=graph.scids[c] or None,
                    state=graph.channel_state(c),
                    capacity_msat=capacity,
                    local_msat=local,
                    remote_msat=capacity - local,
                    our_fee=graph.fee_policy(c, self._idx),
                )
            )
        return out

    async def list_public_channels(self, node_id: NodeId) -> Sequence[PublicChannel]:
        await trio.lowlevel.checkpoint()
        idx = self._net.graph.index.get(node_id)
        return [] if idx is None else self._net.public_channels_seen_by(self._idx, idx)

    async def list_graph(self) -> Sequence[PublicChannel]:
        await trio.lowlevel.checkpoint()
        graph = self._net.graph
        return [ch for idx in range(graph.n_nodes) for ch in graph.public_channels(idx)]

    async def get_node_announcement(self, node_id: NodeId) -> NodeAnnouncement | None:
        """None unless the node has a confirmed channel: Lightning only relays a
        node_announcement for nodes with a public channel. Mainnet nodes announce no
        features in the snapshot, so theirs are b""."""
        await trio.lowlevel.checkpoint()
        graph = self._net.graph
        idx = graph.index.get(node_id)
        if idx is None or not any(graph.state[c] == NORMAL for c in graph.adjacency[idx]):
            return None
        return NodeAnnouncement(
            node_id=node_id, alias=graph.aliases[idx], features=graph.features.get(idx, b"")
        )

    async def onchain_balance_sat(self) -> int:
        await trio.lowlevel.checkpoint()
        return self._net.onchain_sat(self._idx)

    async def connect(
        self, node_id: NodeId, host: str | None = None, port: int | None = None
    ) -> None:
        """Connect; PeerUnreachable if unknown or offline, or (with the network's
        ``require_address``) when no address is given for a peer never connected before and
        without a public channel, or the address given is not the peer's."""
        await trio.lowlevel.checkpoint()
        self._net.connect(self._idx, node_id, host, port)

    async def send_custommsg(self, peer_id: NodeId, message: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self._net.send_custommsg(self._idx, peer_id, message)

    async def run_events(
        self,
        send: trio.MemorySendChannel[NodeEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver this node's events into ``send`` until cancelled.

        Events are queued only while this runs; one consumer at a time (RuntimeError
        otherwise). Events still queued when it stops are discarded.
        """
        if self._consumer:
            raise RuntimeError(f"{self!r} already has an event consumer")
        self._consumer = True
        try:
            task_status.started()
            while True:
                while self._events:
                    await send.send(self._events[0])
                    self._events.popleft()
                self._wake = trio.Event()
                await self._wake.wait()
        finally:
            self._consumer = False
            self._events.clear()

    async def open_channel(
        self,
        peer_id: NodeId,
        amount_sat: int,
        *,
        feerate_perkw: int | None = None,
        max_feerate_perkw: int | None = None,
    ) -> OpenResult:
        """The simulator charges its fixed ``open_fee_sat`` whatever the feerate arguments say
        (it has no fee market)."""
        await trio.lowlevel.checkpoint()
        return self._net.open_channel(self._idx, peer_id, amount_sat)

    async def set_fee_policy(self, peer_id: NodeId, policy: FeePolicy) -> None:
        await trio.lowlevel.checkpoint()
        self._net.set_fee_policy(self._idx, peer_id, policy)

    async def find_route(
        self,
        destination: NodeId,
        amount_msat: int,
        *,
        exclude_channels: Sequence[str] = (),
    ) -> Route:
        await trio.lowlevel.checkpoint()
        return self._net.find_route(
            self._idx, destination, amount_msat, exclude_channels=exclude_channels
        )

    async def find_circular_route(
        self,
        out_peer: NodeId,
        in_peer: NodeId,
        amount_msat: int,
        *,
        free_channels: Sequence[str] = (),
        max_fee_msat: int | None = None,
    ) -> Route:
        """``free_channels`` needs no layer here: a fee set in the simulator is in its graph
        at once, so fleet channels at zero fee already route free."""
        await trio.lowlevel.checkpoint()
        del free_channels
        route = self._net.find_circular_route(self._idx, out_peer, in_peer, amount_msat)
        if max_fee_msat is not None and route.fee_msat > max_fee_msat:
            raise RouteNotFound(
                f"cheapest circular route costs {route.fee_msat} msat, above {max_fee_msat}",
                code=ROUTE_NOT_FOUND_CODE,
            )
        return route

    async def pay_route(self, route: Route, *, label: str | None = None) -> PaymentResult:
        await trio.lowlevel.checkpoint()
        return self._net.pay(self._idx, route, label=label)

    async def payment_status(self, label: str) -> PaymentStatus:
        await trio.lowlevel.checkpoint()
        return self._net.payment_status(self._idx, label)

    async def sign_message(self, text: str) -> str:
        """Raises NodeError for a graph node whose secret the simulator does not know."""
        await trio.lowlevel.checkpoint()
        secret = self._net.graph.secrets.get(self._idx)
        if secret is None:
            raise NodeError(f"no secret key for {self.node_id}: a mainnet graph node cannot sign")
        return lnsig.sign_message(secret, text)

    async def check_message(self, text: str, zbase: str, node_id: NodeId) -> bool:
        await trio.lowlevel.checkpoint()
        return lnsig.check_message(text, zbase, node_id)

    def statistics(self) -> dict[str, Any]:
        """The network's counters (shared by every simulated node) and this node's ignores."""
        return {"network": attrs.asdict(self._net.stats), "open_ignored": self.open_ignored}

    async def set_open_ignored(
        self, peer_id: NodeId, ignored: bool, reason: str, *, holder: str = ""
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._open_ignored.set(peer_id, ignored, reason, holder)

    async def set_fee_unmanaged(self, peer_id: NodeId, unmanaged: bool) -> None:
        """No other fee automation runs in the simulator; kept for ``hive-status``."""
        await trio.lowlevel.checkpoint()
        if unmanaged:
            self.fee_unmanaged.add(peer_id)
        else:
            self.fee_unmanaged.discard(peer_id)

    # --- simulator controls -----------------------------------------------------------------

    async def disconnect(self, peer_id: NodeId) -> None:
        """Close our connection to ``peer_id`` (no-op when not connected)."""
        await trio.lowlevel.checkpoint()
        self._net.disconnect(self._idx, peer_id)

    def set_open_gate(self, gate: Callable[[NodeId], str | None] | None) -> None:
        """Consult ``gate(opener)`` before accepting a channel: a reason refuses it (the
        simulator's counterpart of CLN's ``openchannel`` hook)."""
        self.open_gate = gate

    def set_offline(self, offline: bool = True) -> None:
        """Take this node offline (drops all its connections) or back online."""
        self._net.set_offline(self.node_id, offline)


def _conforms(node: SimNode) -> NodePort:
    """Never called: makes mypy check that SimNode implements NodePort structurally."""
    return node
