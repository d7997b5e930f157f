"""The node port: one interface for everything the hive asks of a Lightning node.

Two implementations exist: the Core Lightning front (pyln-client) and the simulated network
(:mod:`hive.node.sim`). Nothing above this module knows which one it talks to.

Conventions:

* node ids are 33-byte compressed secp256k1 public keys as 66 lowercase hex characters;
* amounts are integers, ``*_msat`` in millisatoshi and ``*_sat`` in satoshi;
* custom messages are whole BOLT 1 messages: 2-byte big-endian type followed by the payload;
* every failure is one of the exact types in :mod:`hive.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Protocol

import attrs
import trio

NodeId = str


class ChannelState(enum.Enum):
    """Coarse channel life cycle, enough for the hive's decisions."""

    OPENING = "opening"  # funding sent, not yet usable
    NORMAL = "normal"  # usable for payments
    CLOSING = "closing"  # shutdown started, not yet settled on chain
    CLOSED = "closed"


@attrs.frozen
class FeePolicy:
    base_msat: int
    ppm: int

    def fee_msat(self, amount_msat: int) -> int:
        """Fee to forward ``amount_msat``: base + amount * ppm / 1e6, rounded down (BOLT 7)."""
        return self.base_msat + amount_msat * self.ppm // 1_000_000


@attrs.frozen
class NodeInfo:
    node_id: NodeId
    alias: str
    version: str
    network: str
    blockheight: int
    # The feature bits we send in our BOLT 1 init message, big-endian bytes.
    features: bytes = b""
    # Where the node accepts connections ("host:port"): announced addresses, else bindings.
    addresses: tuple[str, ...] = ()


@attrs.frozen
class PeerView:
    node_id: NodeId
    connected: bool
    # The feature bits the peer sent in its BOLT 1 init message, as big-endian bytes.
    features: bytes = b""


@attrs.frozen
class ChannelView:
    peer_id: NodeId
    short_channel_id: str | None
    state: ChannelState
    capacity_msat: int
    # What we could send now (to_us), and what the peer could send to us.
    local_msat: int
    remote_msat: int
    # What we charge to forward out through this channel.
    our_fee: FeePolicy
    # Unannounced: not in the public graph, so it cannot carry others' payments through us.
    private: bool = False


@attrs.frozen
class PublicChannel:
    """One channel as the public gossip graph shows it."""

    short_channel_id: str
    source: NodeId
    destination: NodeId
    capacity_msat: int
    fee: FeePolicy
    active: bool


@attrs.frozen
class NodeAnnouncement:
    node_id: NodeId
    alias: str
    # Feature bits announced in the node_announcement, big-endian bytes.
    features: bytes
    addresses: tuple[str, ...] = ()


@attrs.frozen
class RouteHop:
    """One hop: the channel taken and the node reached through it."""

    node_id: NodeId
    short_channel_id: str
    # Amount this hop's node receives (forwards on, or keeps at the last hop).
    amount_msat: int
    delay: int


@attrs.frozen
class Route:
    hops: tuple[RouteHop, ...]

    @property
    def amount_msat(self) -> int:
        """Amount delivered to the destination."""
        return self.hops[-1].amount_msat

    @property
    def fee_msat(self) -> int:
        """Total fee paid to the forwarding nodes."""
        return self.hops[0].amount_msat - self.hops[-1].amount_msat

    @property
    def destination(self) -> NodeId:
        return self.hops[-1].node_id


@attrs.frozen
class PaymentResult:
    payment_hash: str
    amount_msat: int
    fee_msat: int
    route: Route


class PaymentState(enum.Enum):
    """Where a payment we started stands, as the node tells it (see ``payment_status``)."""

    COMPLETE = "complete"  # settled: do not pay again
    PENDING = "pending"  # HTLCs in flight: wait, do not pay again
    FAILED = "failed"  # every attempt failed: nothing moved
    UNKNOWN = "unknown"  # the node has no payment under that label: it was never sent


@attrs.frozen
class PaymentStatus:
    label: str
    state: PaymentState
    payment_hash: str | None = None
    amount_msat: int | None = None
    fee_msat: int | None = None


@attrs.frozen
class OpenResult:
    peer_id: NodeId
    amount_sat: int
    txid: str
    onchain_fee_sat: int


# ---------------------------------------------------------------------------------------------
# Events the node reports.


@attrs.frozen
class CustomMessage:
    """A custom message from a connected peer; ``peer_id`` is authenticated by BOLT 8."""

    peer_id: NodeId
    message: bytes


@attrs.frozen
class PeerConnected:
    peer_id: NodeId
    features: bytes = b""


@attrs.frozen
class PeerDisconnected:
    peer_id: NodeId


@attrs.frozen
class ChannelOpened:
    peer_id: NodeId
    funding_msat: int
    # True when we funded it.
    ours: bool


class StateCause(enum.Enum):
    """What made a channel change state (CLN's ``channel_state_changed`` ``cause``)."""

    UNKNOWN = "unknown"
    LOCAL = "local"  # our node decided (an internal error, a timeout)
    USER = "user"  # our operator or a plugin asked (fundchannel, close)
    REMOTE = "remote"  # the peer did (its open, its shutdown, an error it sent)
    PROTOCOL = "protocol"  # the protocol did (we failed the channel on a violation)
    ONCHAIN = "onchain"  # the chain did (a funding spend we did not start)


@attrs.frozen
class ChannelStateChanged:
    peer_id: NodeId
    short_channel_id: str | None
    old_state: ChannelState | None
    new_state: ChannelState
    cause: StateCause = StateCause.UNKNOWN
    # This change starts (or is the first sign of) a unilateral close: a commitment
    # transaction rather than a negotiated close. Set once per close, on its first step.
    unilateral: bool = False

    @property
    def forced_by_peer(self) -> bool:
        """A unilateral close the peer started: it sent an error or broadcast its commitment."""
        return self.unilateral and self.cause in (StateCause.REMOTE, StateCause.ONCHAIN)


@attrs.frozen
class Forwarded:
    in_channel: str
    out_channel: str
    in_msat: int
    out_msat: int
    settled: bool
    # How long the HTLC was held, from its arrival to its resolution (settled or failed
    # downstream); None when the node does not say (a local failure is immediate).
    hold_ms: int | None = None

    @property
    def fee_msat(self) -> int:
        return self.in_msat - self.out_msat


NodeEvent = (
    CustomMessage
    | PeerConnected
    | PeerDisconnected
    | ChannelOpened
    | ChannelStateChanged
    | Forwarded
)


class NodePort(Protocol):
    """What the hive asks of a Lightning node."""

    async def get_info(self) -> NodeInfo: ...

    async def list_peers(self) -> Sequence[PeerView]: ...

    async def list_channels(self) -> Sequence[ChannelView]:
        """Our own channels, with balances."""
        ...

    async def list_public_channels(self, node_id: NodeId) -> Sequence[PublicChannel]:
        """The channels the public graph shows with ``node_id`` as their source."""
        ...

    async def get_node_announcement(self, node_id: NodeId) -> NodeAnnouncement | None: ...

    async def list_graph(self) -> Sequence[PublicChannel]:
        """Every channel direction of the public graph as the node knows it (the planner's
        input; large: about 100k entries on mainnet)."""
        ...

    async def onchain_balance_sat(self) -> int:
        """Confirmed on-chain funds available for opens."""
        ...

    async def connect(
        self, node_id: NodeId, host: str | None = None, port: int | None = None
    ) -> None:
        """Connect to a peer (no channel needed); raises PeerUnreachable when it fails."""
        ...

    async def send_custommsg(self, peer_id: NodeId, message: bytes) -> None:
        """Send one BOLT 1 message; best effort: success does not mean delivered."""
        ...

    async def disconnect(self, peer_id: NodeId) -> None:
        """Close the connection to ``peer_id`` (never forced: CLN refuses with NodeError while
        a channel exists, and callers check for channels first)."""
        ...

    async def run_events(
        self,
        send: trio.MemorySendChannel[NodeEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver the node's events into ``send`` until cancelled."""
        ...

    async def open_channel(
        self,
        peer_id: NodeId,
        amount_sat: int,
        *,
        feerate_perkw: int | None = None,
        max_feerate_perkw: int | None = None,
    ) -> OpenResult:
        """Fund a channel; ``feerate_perkw`` (sat per 1000 weight) fixes the funding feerate,
        None lets the node choose. With ``max_feerate_perkw`` instead, the node's opening
        feerate estimate is used when it is at most that, else the open is refused (NodeError)
        before anything is spent."""
        ...

    async def set_fee_policy(self, peer_id: NodeId, policy: FeePolicy) -> None:
        """Set what we charge to forward out through our channels with ``peer_id``."""
        ...

    async def find_route(
        self,
        destination: NodeId,
        amount_msat: int,
        *,
        exclude_channels: Sequence[str] = (),
    ) -> Route:
        """A route from us to ``destination``; raises RouteNotFound."""
        ...

    async def find_circular_route(
        self,
        out_peer: NodeId,
        in_peer: NodeId,
        amount_msat: int,
        *,
        free_channels: Sequence[str] = (),
        max_fee_msat: int | None = None,
    ) -> Route:
        """A route that leaves through our channel with ``out_peer`` and comes back to us
        through our channel with ``in_peer``; raises RouteNotFound.

        ``free_channels`` (short channel ids) are fleet channels whose members forward at zero
        fee: the pathfinder may count them free even before the public graph shows it.
        ``max_fee_msat`` bounds the route's total fee (RouteNotFound when no route fits)."""
        ...

    async def pay_route(self, route: Route, *, label: str | None = None) -> PaymentResult:
        """Pay along ``route``; a route ending at ourselves is a circular rebalance.
        ``label`` names the payment so that :meth:`payment_status` can find it after a
        restart (a label is used for one payment only). Raises PaymentFailed."""
        ...

    async def payment_status(self, label: str) -> PaymentStatus:
        """What became of the circular payment started under ``label`` (after a restart)."""
        ...

    async def sign_message(self, text: str) -> str:
        """Sign with the node key in Lightning's signmessage format (zbase32)."""
        ...

    async def check_message(self, text: str, zbase: str, node_id: NodeId) -> bool: ...

    def statistics(self) -> dict[str, Any]:
        """Counters of this implementation (RPC calls and errors, events), for `hive-status`."""
        ...

    async def set_open_ignored(
        self, peer_id: NodeId, ignored: bool, reason: str, *, holder: str = ""
    ) -> None:
        """Stop (or resume) considering ``peer_id`` for channel opens, including telling
        other automation such as CLBOSS where it runs. Holds are kept per ``holder`` (bans,
        saturation, an open in progress; :mod:`hive.node.ignores`): the peer stays ignored
        while any holder holds it, and one holder's release never lifts another's hold."""
        ...

    async def set_fee_unmanaged(self, peer_id: NodeId, unmanaged: bool) -> None:
        """Tell other fee automation (CLBOSS: ``lnfee``) to leave (or resume managing) the fees
        of our channels with ``peer_id``; a no-op where none runs."""
        ...
