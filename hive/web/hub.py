"""The feed hub: who is subscribed to what, and the bounded queue of each client.

Publishing never waits: each message is encoded once and offered to every subscriber's bounded
queue; a client whose queue is full has fallen behind and is dropped with close code
:data:`CLOSE_SLOW` (it reconnects and gets a fresh snapshot), so one slow client can neither
stall the companion nor make it buffer without limit. The number of clients is bounded too.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import trio

from hive.web import feeds
from hive.web.feeds import Event, State

log = logging.getLogger(__name__)

# Close codes (RFC 6455 private range 4000-4999 for ours, plus the standard ones).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 4008
CLOSE_BAD_MESSAGES = 4002


@attrs.define
class WebStats:
    connections: int = 0  # websocket connections accepted, ever
    peak_clients: int = 0
    refused: collections.Counter[str] = attrs.field(factory=collections.Counter)
    dropped: collections.Counter[str] = attrs.field(factory=collections.Counter)
    messages_queued: int = 0
    client_errors: int = 0  # client messages refused (malformed, unknown type)

    def to_json(self, clients: int) -> dict[str, Any]:
        return {
            "clients": clients,
            "connections": self.connections,
            "peak_clients": self.peak_clients,
            "refused": dict(self.refused),
            "dropped": dict(self.dropped),
            "messages_queued": self.messages_queued,
            "client_errors": self.client_errors,
        }


class FeedClient:
    """One websocket subscriber: a bounded queue of encoded messages and how it ended."""

    def __init__(self, queue_size: int) -> None:
        self._send, self.outgoing = trio.open_memory_channel[str](queue_size)
        self.topics: set[str] = set()
        self.closed: tuple[int, str] | None = None
        # The connection's handler runs inside this scope; kicking the client cancels it.
        self.scope = trio.CancelScope()

    def offer(self, text: str) -> bool:
        if self.closed is not None:
            return False
        try:
            self._send.send_nowait(text)
        except trio.WouldBlock:
            self.kick(CLOSE_SLOW, "client too slow: its queue is full; reconnect for a snapshot")
            return False
        return True

    def kick(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.scope.cancel()


class FeedHub:
    """Topics, their sequence numbers and latest values, and the subscribed clients."""

    def __init__(
        self,
        *,
        max_clients: int = 64,
        queue_size: int = 256,
        max_message_bytes: int = 8 * 1024 * 1024,
        topics: Sequence[str] = ("state", "events"),
    ) -> None:
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.max_message_bytes = max_message_bytes
        self.topics = tuple(topics)
        self.stats = WebStats()
        self._clients: set[FeedClient] = set()
        self._seq: dict[str, int] = dict.fromkeys(feeds.TOPICS, 0)
        self.state: State = feeds.empty_state()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=feeds.RECENT_EVENTS
        )
        self._snapshots: dict[str, Any] = {}  # topic -> its snapshot value (other topics)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def status(self) -> dict[str, Any]:
        return self.stats.to_json(len(self._clients))

    def serve_topic(self, topic: str) -> None:
        """Add a topic (``proposals``, ``ledger``) once its source exists."""
        if topic not in self.topics:
            self.topics = (*self.topics, topic)

    # ------------------------------------------------------------------------------------------
    # Clients

    def connect(self) -> FeedClient | None:
        """A new client, or None when the server already has ``max_clients`` (counted)."""
        if len(self._clients) >= self.max_clients:
            self.stats.refused["too-many-clients"] += 1
            return None
        client = FeedClient(self.queue_size)
        self._clients.add(client)
        self.stats.connections += 1
        self.stats.peak_clients = max(self.stats.peak_clients, len(self._clients))
        return client

    def disconnect(self, client: FeedClient) -> None:
        self._clients.discard(client)
        if client.closed is not None and client.closed[0] == CLOSE_SLOW:
            self.stats.dropped["slow"] += 1
        elif client.closed is not None and client.closed[0] == CLOSE_TOO_BIG:
            self.stats.dropped["too-big"] += 1

    def subscribe(self, client: FeedClient, topics: Iterable[str]) -> None:
        """Queue each topic's snapshot, then deliver its changes (no await in between, so no
        change can fall between the snapshot and the subscription)."""
        for topic in topics:
            if topic in client.topics:
                continue
            client.topics.add(topic)
            self._offer(
                client, feeds.envelope(topic, "snapshot", self._seq[topic], self._value(topic))
            )

    def _value(self, topic: str) -> Any:
        if topic == "state":
            return self.state
        if topic == "events":
            return list(self.recent)
        return self._snapshots.get(topic, [])

    def set_snapshot(self, topic: str, value: Any) -> None:
        """What new subscribers of ``topic`` get, without a message to current ones."""
        self._snapshots[topic] = value

    # ------------------------------------------------------------------------------------------
    # Publishing (never waits)

    def publish_state(self, new: State, now_ms: int) -> None:
        """Replace the state: subscribers get the change, and the events it shows."""
        change = feeds.diff_state(self.state, new)
        if not change:
            return
        events = feeds.events_between(self.state, new, now_ms)
        self.state = new
        self._broadcast("state", "change", change)
        for event in events:
            self.publish_event(event)

    def publish_event(self, event: Event) -> None:
        data = event.to_json()
        self.recent.append(data)
        self._broadcast("events", "event", data)

    def publish(self, topic: str, kind: str, data: Any, *, snapshot: Any = None) -> None:
        """A message on another topic; ``snapshot`` (when given) is what new subscribers get."""
        if snapshot is not None:
            self._snapshots[topic] = snapshot
        self._broadcast(topic, kind, data)

    def _broadcast(self, topic: str, kind: str, data: Any) -> None:
        self._seq[topic] += 1
        message = feeds.envelope(topic, kind, self._seq[topic], data)
        text = feeds.encode(message)
        for client in list(self._clients):
            if topic in client.topics:
                self._offer_text(client, text)

    def _offer(self, client: FeedClient, message: dict[str, Any]) -> None:
        self._offer_text(client, feeds.encode(message))

    def _offer_text(self, client: FeedClient, text: str) -> None:
        if len(text) > self.max_message_bytes:
            # Its view would silently diverge without this message: close, it resubscribes.
            log.warning("web: a %d-byte message exceeds the limit; closing a client", len(text))
            client.kick(CLOSE_TOO_BIG, f"a message exceeds {self.max_message_bytes} bytes")
            return
        if client.offer(text):
            self.stats.messages_queued += 1

    def close_all(self, code: int, reason: str) -> None:
        for client in list(self._clients):
            client.kick(code, reason)


__all__ = ["CLOSE_SLOW", "CLOSE_TOO_BIG", "FeedClient", "FeedHub", "WebStats"]
