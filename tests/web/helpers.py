"""A small fleet on the simulated network whose first companion serves the web, for tests that
talk to the real server over loopback sockets.

Real sockets need trio's real clock (an autojump clock would jump while a socket waits), so
the simulated network is made fast instead: millisecond latency, half-second confirmations,
short gossip intervals. Every wait in these tests is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import gc
import io
import random
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import nacl.signing
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from hive.config import DecisionConfig, GossipConfig, Governance, HiveConfig, WebConfig
from hive.demo.run import Companion, form_hive, hubs
from hive.demo.screen import Screen
from hive.governance.proposal import Cost, Draft
from hive.node.sim import SimNetwork, SimNode, generate_graph
from hive.runtime import Runtime
from hive.web.access import Bind
from hive.web.server import WebServer

EPOCH_MS = 1_761_350_400_000
TOKEN = "test-token-" + "x" * 32
FAST_GOSSIP = GossipConfig(interval_s=5.0, check_s=0.2, request_gap_s=0.5, graph_refresh_s=5.0)


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class WebFleet:
    network: SimNetwork
    companions: list[Companion]
    hub_ids: list[str]

    @property
    def web(self) -> WebServer:
        web = self.companions[0].runtime.web
        assert web is not None
        return web

    @property
    def url(self) -> str:
        assert self.web.url is not None
        return self.web.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def draft(self, peer_index: int, amount_sat: int = 1_000_000) -> Draft:
        """An open-channel proposal from the first companion, as the planner would submit."""
        peer = self.hub_ids[peer_index]
        return Draft(
            kind="open-channel",
            params={"peer": peer, "amount_sat": amount_sat},
            reason=f"reach {peer[:8]} for the fleet",
            cost=Cost(capital_sat=amount_sat, onchain_fee_sat=2_000),
            proposer="test",
            target=peer,
            evidence={"target_channels": 10 + peer_index},
        )

    async def open(self, index: int, peer: str, amount_sat: int = 1_000_000) -> None:
        node = self.companions[index].node
        await node.connect(peer)
        await node.open_channel(peer, amount_sat)


@asynccontextmanager
async def web_fleet(
    tmp: Path,
    size: int = 3,
    *,
    web: WebConfig | None = None,
    channels: int = 1,
    governance: Governance = Governance.ADVISOR,
    decisions: DecisionConfig | None = None,
) -> AsyncIterator[WebFleet]:
    """``size`` companions in one hive, each with ``channels`` confirmed channels, the first
    serving the web on an ephemeral loopback port with the token :data:`TOKEN`."""
    graph = generate_graph(40, seed=3)
    network = SimNetwork(graph, seed=3, latency=(0.001, 0.003), confirmation_delay_s=0.3)
    rng = random.Random(3)
    web_config = web or WebConfig(bind=Bind("127.0.0.1", 0), refresh_s=0.1)
    companions: list[Companion] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for i in range(size):
            node: SimNode = network.add_node(f"hive-{i + 1}", 20_000_000)
            runtime = Runtime(
                node,
                HiveConfig(
                    data_dir=tmp / node.alias,
                    ping_interval_s=2.0,
                    gossip=FAST_GOSSIP,
                    web=web_config if i == 0 else WebConfig(),
                    governance=governance if i == 0 else Governance.ADVISOR,
                    decisions=decisions or DecisionConfig(),
                ),
                now_ms=sim_ms,
                rng=random.Random(rng.getrandbits(64)),
                signing_key=nacl.signing.SigningKey(rng.randbytes(32)),
                store_inline=True,
            )
            if i == 0:
                runtime.web_token = TOKEN
            companions.append(Companion(node, runtime))
            await nursery.start(runtime.run)
        fleet = WebFleet(network, companions, [graph.node_ids[h] for h in hubs(graph, 12)])
        with trio.fail_after(20):
            await fleet.web.listening.wait()
            await form_hive(companions, Screen(io.StringIO(), trio.current_time))
            for i in range(size):
                for c in range(channels):
                    await fleet.open(i, fleet.hub_ids[(i * channels + c) % len(fleet.hub_ids)])
        yield fleet
        nursery.cancel_scope.cancel()


async def rejected_status(url: str, headers: list[tuple[str, str]] | None = None) -> int:
    """The HTTP status with which the server refuses a trio-websocket handshake.

    trio-websocket raises ConnectionRejected from its reader task without closing the TCP
    stream (trio_websocket/_impl.py, ``_handle_reject_*``), so the client's socket is left to
    the garbage collector; collect it here, where its ResourceWarning is known and harmless,
    rather than let it surface in some later test.
    """
    status = None
    try:
        async with open_websocket_url(url, extra_headers=headers or []):
            pass
    except ConnectionRejected as exc:
        status = int(exc.status_code)
    assert status is not None, f"{url}: the handshake was accepted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return status
