"""The liveness actor: pings fellow companions, answers their pings, measures round trips.

It is how a companion knows which of its fleet peers are reachable right now: custom
messages only reach connected peers and "sent" does not mean "delivered", so only an answer
proves the path works.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable

import attrs
import trio

from hive.actors.wire.transport import Transport
from hive.node.port import NodeId
from hive.protocol.messages import Ping, Pong
from hive.protocol.wire.facade import Received
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

NONCE_BYTES = 16


@attrs.define
class PeerLiveness:
    node_id: NodeId
    hive_key: bytes | None = None
    last_seen_ms: int | None = None
    rtt_ms: int | None = None
    pings_sent: int = 0
    pongs_received: int = 0
    # The nonce of the ping still waiting for its pong, and when it left.
    outstanding: tuple[bytes, int] | None = None


class Liveness:
    def __init__(
        self,
        transport: Transport,
        roster: Callable[[], Iterable[NodeId]],
        *,
        interval_s: float,
        now_ms: Callable[[], int],
        rng: random.Random,
        inbox_size: int = 128,
    ) -> None:
        self._transport = transport
        self._roster = roster
        self._interval_s = interval_s
        self._now_ms = now_ms
        self._rng = rng
        self.inbox: Inbox[Received] = Inbox(inbox_size)
        self._peers: dict[NodeId, PeerLiveness] = {}
        transport.subscribe([Ping, Pong], self.inbox)

    @property
    def peers(self) -> dict[NodeId, PeerLiveness]:
        """What we know of each current fleet peer; peers that left the roster (they left,
        were revoked, or we left) are forgotten here."""
        members = set(self._roster())
        for gone in [node for node in self._peers if node not in members]:
            del self._peers[gone]
        return self._peers

    def alive(self, within_ms: int) -> list[NodeId]:
        """Peers that answered within the last ``within_ms``."""
        now = self._now_ms()
        return [
            p.node_id
            for p in self.peers.values()
            if p.last_seen_ms is not None and now - p.last_seen_ms <= within_ms
        ]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._answer)
            nursery.start_soon(self._ping_loop)
            task_status.started()

    async def _ping_loop(self) -> None:
        while True:
            for node_id in list(self._roster()):
                peer = self.peers.setdefault(node_id, PeerLiveness(node_id))
                nonce = self._rng.randbytes(NONCE_BYTES)
                peer.outstanding = (nonce, self._now_ms())
                peer.pings_sent += 1
                await self._transport.send(node_id, Ping(nonce=nonce))
            await trio.sleep(self._interval_s)

    async def _answer(self) -> None:
        async for received in self.inbox.receive:
            message = received.message
            if isinstance(message, Ping):
                await self._transport.send(received.peer_id, Pong(nonce=message.nonce))
            elif isinstance(message, Pong):
                self._on_pong(received, message)

    def _on_pong(self, received: Received, pong: Pong) -> None:
        peer = self.peers.get(received.peer_id)
        if peer is None or peer.outstanding is None or peer.outstanding[0] != pong.nonce:
            log.info("unsolicited pong from %s ignored", received.peer_id)
            return
        now = self._now_ms()
        peer.rtt_ms = now - peer.outstanding[1]
        peer.outstanding = None
        peer.last_seen_ms = now
        peer.hive_key = received.sender
        peer.pongs_received += 1
