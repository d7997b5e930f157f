"""The engine's HTTP side as one actor: the HTTP oracle's attachment and the webhooks.

Runs only when ``hive-oracle-url`` or a ``hive-webhook-url`` is set. It owns the httpx clients
(one for the oracle, timed out by ``hive-oracle-timeout``; one for webhooks, 10 s), attaches the
:class:`~hive.actors.governance.oracle.HttpOracle` to the engine's decider panel for as long as it
runs,
and runs :class:`~hive.actors.governance.webhooks.Webhooks`. httpx is created with
``trust_env=False``:
proxies and certificates from the environment do not silently redirect decisions.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
import trio

from hive.actors.governance.engine import Engine
from hive.actors.governance.oracle import HttpOracle
from hive.actors.governance.webhooks import Webhooks
from hive.config import DecisionConfig

WEBHOOK_TIMEOUT_S = 10.0


def wanted(config: DecisionConfig) -> bool:
    return bool(config.oracle_url or config.webhook_urls)


class DecisionHttp:
    def __init__(self, engine: Engine, config: DecisionConfig) -> None:
        self.engine = engine
        self.config = config
        self.oracle: HttpOracle | None = None
        self.webhooks: Webhooks | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        async with AsyncExitStack() as stack:
            if config.oracle_url:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(trust_env=False, timeout=config.oracle_timeout_s)
                )
                self.oracle = HttpOracle(config.oracle_url, client, secret=config.webhook_secret)
                await stack.enter_async_context(self.engine.deciders.attached(self.oracle))
            if config.webhook_urls:
                assert config.webhook_secret, "validated at init"
                client = await stack.enter_async_context(
                    httpx.AsyncClient(trust_env=False, timeout=WEBHOOK_TIMEOUT_S)
                )
                self.webhooks = Webhooks(
                    self.engine.hub,
                    config.webhook_urls,
                    config.webhook_secret,
                    client,
                    node_id=self.engine.node_id,
                    alias=self.engine.alias,
                )
                await self.webhooks.run(task_status=task_status)
            else:
                task_status.started()
                await trio.sleep_forever()

    def status(self) -> dict[str, object]:
        return {
            "oracle": None
            if self.oracle is None
            else {
                "url": self.oracle.url,
                "requests": self.oracle.requests,
                "retries": self.oracle.retries,
            },
            "webhooks": {} if self.webhooks is None else self.webhooks.status(),
        }
