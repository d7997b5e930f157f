"""Hostile peers flooding one fleet member at the rate limit: do members' frames get through,
and what does the flood cost the member it targets?

Usage: .venv/bin/python bench/bench_flood.py [--peers 10,100] [--seconds 30] [--seed 8]

For each number of hostile peers: a fleet of three companions on the simulated network (pings
every 5 s; a small random graph, since routing plays no part), then that many non-member nodes
connect to the first member and each sends at 50 custom messages a second (the per-peer rate
limit) for ``--seconds`` simulated seconds, in turn:

* a Ping signed by a fresh hive key, dated 599 s ahead (only members may send it);
* a junk join Hello signed by a fresh key, dated 599 s ahead (open to non-members: it reaches
  the replay guard's outsiders' part);
* the first fragment (16 KB) of a 64-fragment message that is never completed (held by
  reassembly until it expires after 30 s: 100 peers would hold 6.6 MB, beyond the 4 MiB that
  non-members' partial messages may take).

Meanwhile the members go on as usual (pings; gossip), and once the flood has filled everything
it can, the second member sends a 72 KB fragmented StateSnapshot to the first.

Reported: the members' frames the target accepted and refused during the flood, whether the
72 KB snapshot was reassembled, the target's replay-guard and reassembly sizes, process CPU
seconds per simulated second (everything in the process: the target's receive path and the
simulator's delivery; the hostile frames are signed before the flood starts), of which inside
the target's unpack (CPU time too), and max RSS growth. Hostile frames are pre-signed, so
signing costs the attacker, not the figure. Runs on trio's MockClock (autojump); asserts
nothing.
"""

from __future__ import annotations

import argparse
import random
import resource
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing
import trio
import trio.testing

from hive.config import HiveConfig
from hive.node.sim import SimNetwork, generate_graph
from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.state import Liquidity, MemberState, PeerEdge, StateSnapshot
from hive.protocol.membership import Hello
from hive.protocol.messages import REGISTRY, Ping
from hive.protocol.wire.codec import encode_message
from hive.protocol.wire.envelope import HIVE_MSG_TYPE, sign_frame
from hive.protocol.wire.facade import HiveWire
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000
AHEAD_MS = 599_000
RATE = 50  # custom messages per second per hostile peer: the transport's limit
TYPE_PREFIX = HIVE_MSG_TYPE.to_bytes(2, "big")


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


FRAGMENT_CHUNK = 16_000  # each hostile partial holds one 16 KB chunk of a 64-fragment message


def hostile_stream(seed: int, count: int, dated_ms: int) -> list[bytes | None]:
    """``count`` custom messages: fresh-key Pings and junk Hellos, pre-signed, and None where
    a fragment goes (made when sent, so a run does not hold them all)."""
    rng = random.Random(seed)
    ping_kind, ping_body = encode_message(Ping(nonce=b"h" * 16))
    hello_kind = REGISTRY.kind_of(Hello)
    out: list[bytes | None] = []
    for index in range(count):
        turn = index % 3
        if turn == 2:
            out.append(None)
            continue
        kind, body = (ping_kind, ping_body) if turn == 0 else (hello_kind, b"")
        key = nacl.signing.SigningKey(rng.randbytes(32))
        frame = sign_frame(key, kind=kind, seq=1, timestamp_ms=dated_ms, payload=body)
        out.append(TYPE_PREFIX + frame)
    return out


def first_fragment(rng: random.Random, chunk: bytes) -> bytes:
    """The first fragment of a 64-fragment message that will never be completed."""
    header = struct.pack(">2sBBQHH", b"HV", 1, 1, rng.getrandbits(64), 0, 64)
    return TYPE_PREFIX + header + chunk


def big_snapshot() -> StateSnapshot:
    """A StateSnapshot of about 72 KB (900 edges), which travels in two fragments."""
    edges = tuple(
        PeerEdge(
            peer=b"\x02" + index.to_bytes(32, "big"),
            capacity_sat=1_000_000 + index,
            local_share_ppm=index,
        )
        for index in range(900)
    )
    liquidity = Liquidity(outbound_msat=1, inbound_msat=1, onchain_sat=1)
    state = MemberState(
        version=1 << 40, topology=edges, liquidity=liquidity, reputation=(), opportunities=()
    )
    return StateSnapshot(state=state)


class Meter:
    """Counts what the target's wire makes of each member's messages, and the time inside."""

    def __init__(self, wire: HiveWire, members: set[str]) -> None:
        self.members = members
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.receive_s = 0.0  # process CPU time inside the target's unpack
        self.calls = 0
        self.snapshots: list[int] = []
        inner = wire.unpack

        def unpack(peer_id: str, data: bytes, now_ms: int) -> Any:
            start = time.process_time()
            try:
                received = inner(peer_id, data, now_ms)
            except ProtocolError as exc:
                if peer_id in self.members:
                    self.refused[exc.reason] += 1
                raise
            finally:
                self.receive_s += time.process_time() - start
                self.calls += 1
            if received is not None and peer_id in self.members:
                self.accepted[type(received.message).__name__] += 1
                if isinstance(received.message, StateSnapshot):
                    self.snapshots.append(len(received.frame))
            return received

        wire.unpack = unpack  # type: ignore[method-assign]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def scenario(peers: int, seconds: int, seed: int, report: Callable[[str], None]) -> None:
    network = SimNetwork(generate_graph(20, seed=seed), seed=seed, latency=(0.05, 0.25))
    nodes = [network.add_node(f"m{i}", 5_000_000) for i in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = [
            Runtime(
                node,
                HiveConfig(data_dir=Path(tmp) / node.alias, ping_interval_s=5.0),
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
            for runtime in runtimes[1:]:
                invite = await runtimes[0].command("hive-invite")({})
                await runtime.command("hive-join")({"ticket": invite["ticket"]})
            await trio.sleep(10)
            target = runtimes[0]
            assert target.transport is not None
            member_ids = {node.node_id for node in nodes[1:]}
            meter = Meter(target.transport.wire, member_ids)
            per_peer = RATE * seconds
            streams = [
                hostile_stream(seed * 1000 + i, per_peer, sim_ms() + AHEAD_MS) for i in range(peers)
            ]
            hostiles = [network.add_node(f"hostile{i}", 0) for i in range(peers)]
            for hostile in hostiles:
                await hostile.connect(nodes[0].node_id)
            before_rss, cpu_before = rss_mib(), time.process_time()
            rejected_before = Counter(target.transport.stats.rejected)

            chunk = random.Random(seed).randbytes(FRAGMENT_CHUNK)

            async def flood(index: int) -> None:
                rng = random.Random(index)
                for message in streams[index]:
                    data = first_fragment(rng, chunk) if message is None else message
                    await hostiles[index].send_custommsg(nodes[0].node_id, data)
                    await trio.sleep(1 / RATE)

            async def big_state_midway() -> None:
                await trio.sleep(seconds * 0.6)
                member = runtimes[1]
                assert member.transport is not None
                await member.transport.send(nodes[0].node_id, big_snapshot())

            async with trio.open_nursery() as flooding:
                for index in range(peers):
                    flooding.start_soon(flood, index)
                flooding.start_soon(big_state_midway)
            await trio.sleep(1)
            cpu = time.process_time() - cpu_before
            stats = target.transport.stats
            rejected = Counter(stats.rejected)
            rejected.subtract(rejected_before)
            guard = target.transport.wire.replay
            reassembler = target.transport.wire.reassembler
            report(f"hostile peers {peers}, {seconds} s at {RATE}/s each")
            report(f"  hostile messages sent          {peers * per_peer:,}")
            report(f"  refused by the target          {dict(+rejected)}")
            report(f"  members' messages accepted     {dict(meter.accepted)}")
            report(f"  members' messages refused      {dict(meter.refused) or 0}")
            big = [size for size in meter.snapshots if size > 60_000]
            report(
                f"  72 KB snapshot reassembled     {'yes, ' + str(big[0]) + ' B' if big else 'NO'}"
            )
            report(
                f"  replay guard                   {guard.tracked_members()} members, "
                f"{len(guard) - guard.tracked_members():,} outsiders, "
                f"outsider floor {guard.outsider_floor_ms - sim_ms():+,} ms from now"
            )
            report(
                f"  reassembly                     {reassembler.pending():,} partials, "
                f"{reassembler.buffered_bytes() / 2**20:.1f} MiB charged"
            )
            report(f"  process CPU / simulated s      {cpu / (seconds + 1):.3f}")
            report(f"  of which target's unpack       {meter.receive_s / (seconds + 1):.3f}")
            report(f"  target's unpack per message    {meter.receive_s / meter.calls * 1e6:.1f} us")
            report(f"  max RSS growth                 {rss_mib() - before_rss:+.1f} MiB")
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", default="10,100", help="comma-separated hostile peer counts")
    parser.add_argument("--seconds", type=int, default=30, help="flood duration (simulated)")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    for peers in (int(p) for p in args.peers.split(",")):
        trio.run(
            scenario,
            peers,
            args.seconds,
            args.seed,
            print,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )


if __name__ == "__main__":
    main()
