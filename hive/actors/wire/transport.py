"""The transport actor: the only place where hive messages meet the node.

Inbound, it pumps the node port's events, turns our custom messages into verified
:class:`~hive.protocol.wire.Received` values through the sans-I/O :class:`HiveWire`, and hands
each to the actors that subscribed to its message class. Every other node event goes to the
actors that subscribed to events. Outbound, actors queue :class:`Outgoing` requests; the
transport signs, fragments and sends them.

Policy for untrusted input: nothing a peer sends can stall the node's event stream. A peer
over its rate limit, a frame the wire rejects, or a subscriber whose inbox is full each cost a
counted, logged drop, never a wait and never a crash. Custom messages are best effort anyway;
the protocols above recover from loss (acknowledgements, anti-entropy).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

import attrs
import trio

from hive.errors import PeerUnreachable
from hive.logsummary import LogSummary
from hive.node.port import CustomMessage, NodeEvent, NodeId, NodePort, PeerDisconnected
from hive.protocol.errors import REPLAY, ProtocolError
from hive.protocol.messages import Message
from hive.protocol.wire.facade import Envelope, HiveWire, Received
from hive.ratelimit import KeyedRateLimiter
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class Outgoing:
    """Send ``message`` to a connected peer, or relay an already signed ``frame`` verbatim."""

    peer_id: NodeId
    message: Message | None = None
    frame: bytes | None = None

    def __attrs_post_init__(self) -> None:
        if (self.message is None) == (self.frame is None):
            raise ValueError("Outgoing needs exactly one of message or frame")


@attrs.define
class TransportStats:
    received: int = 0
    sent: int = 0
    fragments_sent: int = 0
    rejected: Counter[str] = attrs.field(factory=Counter)
    dropped: Counter[str] = attrs.field(factory=Counter)


@attrs.frozen
class TransportLimits:
    # Inbound custom messages per peer: sustained rate and burst (fragments count singly).
    peer_rate: float = 50.0
    peer_burst: float = 400.0
    # How often partial fragmented messages are swept.
    expire_interval_s: float = 5.0


def _admit_all(_received: Received) -> None:
    return None


class Transport:
    """Signs, sends, receives and dispatches hive messages for one node."""

    def __init__(
        self,
        node: NodePort,
        wire: HiveWire,
        *,
        now_ms: Callable[[], int],
        rng: random.Random,
        limits: TransportLimits | None = None,
        outbox_size: int = 256,
        events_size: int = 512,
    ) -> None:
        self._node = node
        self._wire = wire
        self._now_ms = now_ms
        self._rng = rng
        self._limits = limits or TransportLimits()
        self.outbox: Inbox[Outgoing] = Inbox(outbox_size)
        self.events: Inbox[NodeEvent] = Inbox(events_size)
        self.stats = TransportStats()
        # One line per peer and reason per minute, not one per refused frame (a flood of 588
        # rate-limited frames used to write 588 lines).
        self._rejections = LogSummary(log, "rejected messages")
        self._rate = KeyedRateLimiter(rate=self._limits.peer_rate, burst=self._limits.peer_burst)
        self._by_class: dict[type[Message], list[Inbox[Received]]] = {}
        self._admission: Callable[[Received], str | None] = _admit_all
        self._event_subscribers: list[Inbox[NodeEvent]] = []

    @property
    def wire(self) -> HiveWire:
        return self._wire

    def subscribe(self, classes: Iterable[type[Message]], inbox: Inbox[Received]) -> None:
        """Deliver received messages of these classes into ``inbox`` (wiring time only)."""
        for cls in classes:
            self._by_class.setdefault(cls, []).append(inbox)

    def set_admission(self, admission: Callable[[Received], str | None]) -> None:
        """Who may talk to us (wiring time only): ``admission`` returns why a verified frame
        must be refused (e.g. "not-member"), or None to deliver it."""
        self._admission = admission

    def set_members(
        self,
        *,
        is_member_key: Callable[[bytes], bool],
        is_member_peer: Callable[[NodeId], bool],
        gate: Callable[[str, Envelope], str | None],
    ) -> None:
        """Who the members are, before any frame is decoded (wiring time only).

        ``is_member_key`` keeps the members' replay state apart from everyone else's and
        ``is_member_peer`` their partial fragmented messages, so no number of outsiders can
        displace or starve them; ``gate`` refuses a verified frame from its claimed sender and
        kind before the replay guard is touched (see :meth:`HiveWire.set_gate`). The admission
        set with :meth:`set_admission` still runs on the decoded message.
        """
        self._wire.replay.set_member_check(is_member_key)
        self._wire.reassembler.set_member_check(is_member_peer)
        self._wire.set_gate(gate)

    def subscribe_events(self, inbox: Inbox[NodeEvent]) -> None:
        """Deliver the node's non-message events (peers, channels, forwards) into ``inbox``."""
        self._event_subscribers.append(inbox)

    async def send(self, peer_id: NodeId, message: Message) -> None:
        """Queue ``message`` for ``peer_id``; waits while the outbox is full."""
        await self.outbox.send(Outgoing(peer_id, message=message))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._node.run_events, self.events.send_channel)
            nursery.start_soon(self._inbound)
            nursery.start_soon(self._outbound)
            nursery.start_soon(self._expire)
            nursery.start_soon(self._summaries)
            task_status.started()

    async def _inbound(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, CustomMessage):
                self._receive(event)
            else:
                if isinstance(event, PeerDisconnected):
                    # Partial fragmented messages from it can never complete now.
                    self._wire.forget_peer(event.peer_id)
                for inbox in self._event_subscribers:
                    self._offer(inbox, event, "event-subscriber-full")

    def _receive(self, event: CustomMessage) -> None:
        now_ms = self._now_ms()
        if not self._rate.allow(event.peer_id, now_ms / 1000):
            self._reject(event.peer_id, "rate-limited", "peer is over its message rate")
            return
        try:
            received = self._wire.unpack(event.peer_id, event.message, now_ms)
        except ProtocolError as exc:
            if exc.reason == REPLAY:
                # A frame we accepted already: usually a copy that a relay delivered first,
                # at worst a replay. Harmless either way, so not counted as a rejection.
                self.stats.dropped["duplicate"] += 1
                log.debug("duplicate frame from %s: %s", event.peer_id, exc)
                return
            self._reject(event.peer_id, exc.reason, str(exc))
            return
        if received is None:  # a fragment of a larger message; more to come
            return
        refusal = self._admission(received)
        if refusal is not None:
            self._reject(event.peer_id, refusal, type(received.message).__name__)
            return
        self.stats.received += 1
        subscribers = self._by_class.get(type(received.message), [])
        if not subscribers:
            self.stats.dropped["no-subscriber"] += 1
            log.debug("no actor handles %s", type(received.message).__name__)
        for inbox in subscribers:
            self._offer(inbox, received, "subscriber-full")

    def _offer(self, inbox: Inbox[T], item: T, reason: str) -> None:
        try:
            inbox.send_nowait(item)
        except trio.WouldBlock:
            self.stats.dropped[reason] += 1
            log.warning("dropped %s: %s", type(item).__name__, reason)

    def _reject(self, peer_id: NodeId, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        self._rejections.note(peer_id, reason, detail)

    async def _outbound(self) -> None:
        async for out in self.outbox.receive:
            msg_id = self._rng.getrandbits(64)
            if out.message is not None:
                parts = self._wire.pack(out.message, self._now_ms(), msg_id=msg_id)
            else:
                assert out.frame is not None
                parts = self._wire.pack_frame(out.frame, msg_id=msg_id)
            try:
                for part in parts:
                    await self._node.send_custommsg(out.peer_id, part)
            except PeerUnreachable as exc:
                self.stats.dropped["peer-unreachable"] += 1
                log.info("could not send to %s: %s", out.peer_id, exc)
                continue
            self.stats.sent += 1
            if len(parts) > 1:
                self.stats.fragments_sent += len(parts)

    async def _summaries(self) -> None:
        while True:
            await trio.sleep(self._rejections.interval_s)
            self._rejections.flush()

    async def _expire(self) -> None:
        while True:
            await trio.sleep(self._limits.expire_interval_s)
            self._wire.expire(self._now_ms())
