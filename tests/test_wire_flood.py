"""Outsiders flooding a fleet member at the rate limit cannot silence the fleet (issue 8).

Runtimes on the simulated network under MockClock. The hostile peers are connected nodes that
are not members, sending validly signed frames from a fresh hive key each, dated almost ten
minutes ahead of the clock (the most the freshness window allows).
"""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import nacl.signing
import pytest
import trio
import trio.testing

from hive.config import HiveConfig
from hive.node.sim import SimNetwork, SimNode, generate_graph
from hive.protocol.gossip.state import Liquidity, MemberState, PeerEdge, StateSnapshot
from hive.protocol.membership import Hello
from hive.protocol.messages import REGISTRY, Ping
from hive.protocol.wire.codec import encode_message
from hive.protocol.wire.envelope import HIVE_MSG_TYPE, sign_frame
from hive.protocol.wire.fragment import MAX_CHUNK
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000
AHEAD_MS = 599_000  # just inside the 10-minute skew the replay guard allows
TYPE_PREFIX = HIVE_MSG_TYPE.to_bytes(2, "big")


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


def hostile_frame(rng: random.Random, kind: int, payload: bytes) -> bytes:
    key = nacl.signing.SigningKey(rng.randbytes(32))
    frame = sign_frame(key, kind=kind, seq=1, timestamp_ms=sim_ms() + AHEAD_MS, payload=payload)
    return TYPE_PREFIX + frame


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SimNetwork, list[SimNode], list[Runtime]]]:
    network = SimNetwork(generate_graph(20, seed=8), seed=8, latency=(0.05, 0.25))
    nodes = [network.add_node(f"m{i}", 5_000_000) for i in range(2)]
    runtimes = [
        Runtime(
            node,
            HiveConfig(data_dir=tmp_path / node.alias, ping_interval_s=30.0),
            now_ms=sim_ms,
            rng=random.Random(index),
            signing_key=nacl.signing.SigningKey(random.Random(index).randbytes(32)),
            store_inline=True,
        )
        for index, node in enumerate(nodes)
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for runtime in runtimes:
            await nursery.start(runtime.run)
        await runtimes[0].command("hive-genesis")({"name": "flood"})
        invite = await runtimes[0].command("hive-invite")({})
        await runtimes[1].command("hive-join")({"ticket": invite["ticket"]})
        await trio.sleep(1)
        yield network, nodes, runtimes
        nursery.cancel_scope.cancel()


async def test_outsiders_at_the_rate_limit_cannot_evict_members(
    pair: tuple[SimNetwork, list[SimNode], list[Runtime]],
    autojump_clock: trio.testing.MockClock,
) -> None:
    network, nodes, runtimes = pair
    target, member = runtimes
    hello_kind = REGISTRY.kind_of(Hello)
    ping_kind, ping_body = encode_message(Ping(nonce=b"f" * 16))

    async def flood(index: int) -> None:
        outsider = network.add_node(f"hostile{index}", 0)
        await outsider.connect(nodes[0].node_id)
        rng = random.Random(index)
        for count in range(2_000):  # 50 a second: just under the per-peer rate limit
            # Pings (members only) and junk handshake frames (open to anyone) alternately.
            kind, body = (ping_kind, ping_body) if count % 2 else (hello_kind, b"")
            await outsider.send_custommsg(nodes[0].node_id, hostile_frame(rng, kind, body))
            await trio.sleep(0.02)

    def pongs() -> int:
        assert member.liveness is not None
        return sum(peer.pongs_received for peer in member.liveness.peers.values())

    before = pongs()
    async with trio.open_nursery() as nursery:
        for index in range(10):
            nursery.start_soon(flood, index)
    after_flood = pongs()
    await trio.sleep(120)
    assert target.transport is not None
    stats = target.transport.stats
    guard = target.transport.wire.replay
    # The flood arrived and was refused, without rate limiting doing the work.
    assert stats.rejected["not-member"] >= 10_000
    assert stats.rejected["rate-limited"] == 0
    # The member's frames were never refused and its pings kept being answered.
    assert stats.rejected["stale"] == 0
    assert after_flood > before
    assert pongs() >= after_flood + 3
    assert member.transport is not None
    assert member.transport.wire.hive_key in guard
    assert guard.tracked_members() == 1
    # The junk handshakes filled the outsiders' part; its floor never passed the clock.
    assert guard.outsider_floor_ms <= sim_ms()


def _big_snapshot() -> StateSnapshot:
    """About 72 KB: two fragments."""
    edges = tuple(
        PeerEdge(peer=b"\x02" + i.to_bytes(32, "big"), capacity_sat=10**6 + i, local_share_ppm=i)
        for i in range(900)
    )
    liquidity = Liquidity(outbound_msat=1, inbound_msat=1, onchain_sat=1)
    return StateSnapshot(
        state=MemberState(
            version=1 << 40, topology=edges, liquidity=liquidity, reputation=(), opportunities=()
        )
    )


async def test_outsiders_holding_partials_cannot_starve_a_members_fragmented_state(
    pair: tuple[SimNetwork, list[SimNode], list[Runtime]],
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Issue 8 item 2: 70 outsiders each holding 4 partial messages of ~64 KB (18 MB, more
    than the old 16 MiB budget) made a member's 72 KB snapshot fail with fragment-limit."""
    network, nodes, runtimes = pair
    target, member = runtimes
    assert target.transport is not None
    assert member.transport is not None
    assert target.gossip is not None
    chunk = bytes(MAX_CHUNK)

    async def hold(index: int) -> None:
        outsider = network.add_node(f"holder{index}", 0)
        await outsider.connect(nodes[0].node_id)
        for msg_id in range(4):
            header = struct.pack(">2sBBQHH", b"HV", 1, 1, msg_id, 0, 16)
            await outsider.send_custommsg(nodes[0].node_id, TYPE_PREFIX + header + chunk)

    async with trio.open_nursery() as nursery:
        for index in range(70):
            nursery.start_soon(hold, index)
    await trio.sleep(1)
    reassembler = target.transport.wire.reassembler
    assert target.transport.stats.rejected["fragment-limit"] > 0  # the outsiders' pool is full
    before = target.gossip.stats.snapshots_received
    await member.transport.send(nodes[0].node_id, _big_snapshot())
    await trio.sleep(2)  # well within the outsiders' partials' 30 s
    assert reassembler.pending() > 0
    assert target.gossip.stats.snapshots_received == before + 1
