"""Webhooks: a signed JSON POST per engine event (new proposal, decision, outcome, ...).

For every ``hive-webhook-url``, each :class:`~hive.governance.events.EngineEvent` is POSTed as
JSON (``{"node_id", "alias", ...EngineEvent.to_json()}``, canonical bytes) with
``X-Hive-Event: <event>`` and ``X-Hive-Signature: sha256=<hex HMAC-SHA256 of the body>``
keyed with ``hive-webhook-secret``. The receiver verifies the HMAC over the exact body bytes;
``at_ms`` and the proposal id in the body let it refuse replays.

A dead webhook never slows the engine: events reach this actor through a bounded hub
subscription (the engine never waits), and each URL has its own bounded queue and delivery
task, so a slow URL only loses (and counts) its own overflow. A delivery is retried with
exponential backoff on a transport error or a 5xx answer, at most ``attempts`` times; any 2xx
is delivered, anything else failed. Every result is counted per URL in ``hive-status``.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Sequence
from typing import Any

import attrs
import httpx
import trio

from hive.actors.governance.hub import EventHub
from hive.actors.governance.oracle import SIGNATURE_HEADER, signature
from hive.governance.events import EngineEvent

log = logging.getLogger(__name__)


@attrs.define
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0
    last_error: str | None = None
    results: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "retries": self.retries,
            "dropped": self.dropped,
            "last_error": self.last_error,
            "results": dict(self.results),
        }


class Webhooks:
    def __init__(
        self,
        hub: EventHub[EngineEvent],
        urls: Sequence[str],
        secret: str,
        client: httpx.AsyncClient,
        *,
        node_id: str,
        alias: str,
        queue: int = 256,
        attempts: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        self._hub = hub
        self.urls = tuple(urls)
        self._secret = secret
        self._client = client
        self._node = {"node_id": node_id, "alias": alias}
        self._queue = queue
        self._attempts = attempts
        self._backoff_s = backoff_s
        self.stats = {url: WebhookStats() for url in self.urls}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self._hub.subscribe(self._queue) as events, trio.open_nursery() as nursery:
            queues: dict[str, trio.MemorySendChannel[bytes]] = {}
            for url in self.urls:
                send, receive = trio.open_memory_channel[bytes](self._queue)
                queues[url] = send
                nursery.start_soon(self._deliver_loop, url, receive)
            task_status.started()
            async for event in events:
                body = self._body(event)
                for url, send in queues.items():
                    try:
                        send.send_nowait(body)
                    except trio.WouldBlock:
                        self.stats[url].dropped += 1

    def _body(self, event: EngineEvent) -> bytes:
        doc = {**self._node, **event.to_json()}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    async def _deliver_loop(self, url: str, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        async for body in receive:
            await self.deliver(url, body)

    async def deliver(self, url: str, body: bytes) -> bool:
        stats = self.stats[url]
        event = json.loads(body).get("event", "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "hive-webhook/1",
            "X-Hive-Event": str(event),
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                stats.retries += 1
                await trio.sleep(self._backoff_s * 2 ** (attempt - 2))
            try:
                # Streamed and never read: a receiver cannot make us hold a large answer.
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    code = response.status_code
            except httpx.TransportError as exc:
                stats.last_error = f"{type(exc).__name__}: {exc}"
                stats.results["unreachable"] += 1
                continue
            stats.results[str(code)] += 1
            if 200 <= code < 300:
                stats.delivered += 1
                return True
            stats.last_error = f"answered {code}"
            if code < 500:
                break
        stats.failed += 1
        log.warning("webhook %s: delivery failed (%s)", url, stats.last_error)
        return False

    def status(self) -> dict[str, Any]:
        return {url: s.to_json() for url, s in self.stats.items()}
