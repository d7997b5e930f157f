"""The HTTP oracle: a :class:`~hive.governance.decider.Decider` that POSTs decision packets.

``hive-oracle-url`` names an endpoint that receives each decision packet
(:mod:`hive.governance.packet`, ``docs/ORACLE.md``) as a JSON POST and answers with a decision
in the body. HTTP is httpx (``AsyncClient``; it runs under trio through anyio). Rules:

* the body is the packet's canonical bytes (:func:`~hive.governance.packet.encode_packet`);
  with ``hive-webhook-secret`` set, ``X-Hive-Signature: sha256=<hex HMAC-SHA256 of the body>``
  lets the oracle check that the packet comes from this node;
* a 5xx answer or a transport failure (refused, reset, timed out) is retried after a backoff,
  at most ``attempts`` times, always within the panel's deadline (``hive-oracle-timeout``),
  which cancels the request: no answer in time is DENY;
* any other status than 200 is refused (``http-<code>``); the body is read up to
  :data:`~hive.governance.packet.MAX_ANSWER_BYTES` and no further (``oversized``), then parsed
  strictly (``malformed``, ``wrong-proposal``, ...). Every refusal is a
  :class:`~hive.governance.decider.DeciderError`: counted by the panel and treated as DENY.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import httpx
import trio

from hive.governance.decider import DeciderError, Verdict
from hive.governance.packet import MAX_ANSWER_BYTES, encode_packet, parse_answer

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
SIGNATURE_HEADER = "X-Hive-Signature"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hive-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """The body, refused (``oversized``) when it is larger than ``limit`` bytes.

    A declared ``Content-Length`` above the limit is refused before reading. Otherwise chunks
    past the limit are discarded, not kept, until the body ends (or the panel's deadline cancels
    the read): iterating to the end, rather than breaking off, lets httpx close its streams.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise DeciderError("oversized", f"answer of {declared} bytes (at most {limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise DeciderError("oversized", f"answer larger than {limit} bytes")
    return b"".join(chunks)


class HttpOracle:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        secret: str | None = None,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.url = url
        self._client = client
        self._secret = secret
        self._attempts = attempts
        self._backoff_s = backoff_s
        self.requests = 0
        self.retries = 0

    @property
    def name(self) -> str:
        return f"oracle:{self.url}"

    async def decide(self, packet: JsonDict) -> Verdict:
        body = encode_packet(packet)
        headers = {"Content-Type": "application/json", "User-Agent": "hive-oracle-client/1"}
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        last = DeciderError("unreachable", "no attempt made")
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                self.retries += 1
                await trio.sleep(self._backoff_s * 2 ** (attempt - 2))
            self.requests += 1
            try:
                async with self._client.stream(
                    "POST", self.url, content=body, headers=headers
                ) as response:
                    if response.status_code >= 500:
                        last = DeciderError(
                            "http-5xx", f"{self.url} answered {response.status_code}"
                        )
                        log.info("oracle %s answered %d; retrying", self.url, response.status_code)
                        continue
                    if response.status_code != 200:
                        raise DeciderError(
                            f"http-{response.status_code}",
                            f"{self.url} answered {response.status_code}",
                        )
                    raw = await read_limited(response, MAX_ANSWER_BYTES)
            except httpx.TransportError as exc:
                last = DeciderError("unreachable", f"{type(exc).__name__}: {exc}")
                log.info("oracle %s unreachable (%s); retrying", self.url, exc)
                continue
            return parse_answer(raw, str(packet["proposal_id"]))
        raise last
