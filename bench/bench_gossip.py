"""Benchmark state gossip on the mainnet graph: convergence time and bytes per member.

Usage: .venv/bin/python bench/bench_gossip.py [--sizes 5,50,200] [--channels 3] [--seed 1]

For each fleet size: companions are added to the simulated network built from the real mainnet
snapshot, each opens ``--channels`` channels of 1M sat to real nodes (drawn from the nodes
ranked 200..1200 by public capacity), the first founds the hive and every other joins through
the real hive-invite / hive-join commands. Once the channels confirmed and the fleet converged,
it measures

* convergence: simulated seconds from one member publishing a material change (its on-chain
  funds doubled) until every member holds that version;
* bytes per member per interval: custom-message bytes of gossip kinds (0x0040..0x0044: state,
  requests, digests, relays) sent during one keepalive interval of steady state (300 s),
  averaged over members, counted by a wrapper around each node's ``send_custommsg``;
* wall-clock seconds for the whole size.

Simulated time runs on trio's MockClock (autojump) and SQLite on the trio thread, and every
random draw is seeded, but runs with the same seed are not identical: trio does not promise an
order for tasks that become runnable at the same instant (it varies that order on purpose), so
which of two simultaneous deliveries is handled first differs between runs. Bytes per member
come out the same; convergence varies by a few tens of simulated milliseconds (docs/BENCHMARKS.md
gives the spread). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import nacl.signing
import trio
import trio.testing

from hive.config import GossipConfig, HiveConfig
from hive.node.sim import Graph, SimNetwork, SimNode, load_mainnet
from hive.protocol.wire.envelope import TYPE_LEN
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000
GOSSIP_KINDS = range(0x0040, 0x0045)
KIND_OFFSET = TYPE_LEN + 4  # BOLT 1 type, then magic(2) version(1) frame type(1), kind u16


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class CountingNode:
    """A SimNode that counts the custom-message bytes of gossip kinds it sends."""

    inner: SimNode
    gossip_bytes: int = 0
    gossip_messages: int = 0

    async def send_custommsg(self, peer_id: str, message: bytes) -> None:
        await self.inner.send_custommsg(peer_id, message)
        kind = int.from_bytes(message[KIND_OFFSET : KIND_OFFSET + 2], "big")
        if kind in GOSSIP_KINDS:
            self.gossip_bytes += len(message)
            self.gossip_messages += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def ranked_nodes(graph: Graph) -> list[int]:
    totals = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        totals[graph.node1[c]] += graph.capacity_sat[c]
        totals[graph.node2[c]] += graph.capacity_sat[c]
    return sorted(range(graph.n_nodes), key=lambda n: -totals[n])


async def poll(condition: Callable[[], bool], within_s: float, step_s: float) -> float:
    """Simulated seconds until ``condition()`` holds (TooSlowError after ``within_s``)."""
    start = trio.current_time()
    with trio.fail_after(within_s):
        while True:
            if condition():
                return trio.current_time() - start
            await trio.sleep(step_s)


def converged(runtimes: Sequence[Runtime]) -> bool:
    for member in runtimes:
        assert member.gossip is not None
        assert member.info is not None
        if member.gossip.published is None:
            return False
        latest = member.gossip.published.version
        for observer in runtimes:
            assert observer.fleet is not None
            if observer.fleet.statemap.version_of(member.info.node_id) != latest:
                return False
    return True


async def run_size(graph: Graph, size: int, channels: int, seed: int) -> dict[str, float]:
    began = time.perf_counter()
    config = GossipConfig()
    network = SimNetwork(graph, seed=seed, latency=(0.05, 0.3))
    rng = random.Random(seed)
    pool = ranked_nodes(graph)[200:1200]
    counters: list[CountingNode] = []
    runtimes: list[Runtime] = []
    with tempfile.TemporaryDirectory(prefix="bench-gossip-") as tmp:
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            for i in range(size):
                node = network.add_node(f"bench-{i}", 20_000_000)
                counting = CountingNode(node)
                counters.append(counting)
                runtime = Runtime(
                    counting,  # type: ignore[arg-type]
                    HiveConfig(data_dir=Path(tmp) / node.alias, gossip=config),
                    now_ms=sim_ms,
                    rng=random.Random(rng.getrandbits(64)),
                    signing_key=nacl.signing.SigningKey(rng.randbytes(32)),
                    store_inline=True,
                )
                await nursery.start(runtime.run)
                runtimes.append(runtime)
                for peer in rng.sample(pool, channels):
                    await node.open_channel(graph.node_ids[peer], 1_000_000)
            await runtimes[0].command("hive-genesis")({"name": "bench"})
            for runtime in runtimes[1:]:
                invite = await runtimes[0].command("hive-invite")({})
                await runtime.command("hive-join")({"ticket": invite["ticket"]})
            formed = time.perf_counter() - began
            await trio.sleep(network.confirmation_delay_s + config.interval_s)
            await poll(lambda: converged(runtimes), 3 * config.interval_s, 1.0)
            # Steady state: bytes over one interval.
            before = [c.gossip_bytes for c in counters]
            await trio.sleep(config.interval_s)
            sent = [c.gossip_bytes - b for c, b in zip(counters, before, strict=True)]
            # One member's material change: time until everyone holds it.
            changer = runtimes[size // 2]
            assert changer.gossip is not None
            assert changer.gossip.published is not None
            version = changer.gossip.published.version
            network.fund(counters[size // 2].inner.node_id, 20_000_000)
            gossip = changer.gossip
            await poll(
                lambda: gossip.published is not None and gossip.published.version != version,
                config.check_s + 1,
                0.01,
            )
            convergence = await poll(lambda: converged(runtimes), 3 * config.interval_s, 0.01)
            nursery.cancel_scope.cancel()
    return {
        "members": size,
        "convergence_s": convergence,
        "bytes_per_member_interval": sum(sent) / size,
        "max_bytes_member_interval": max(sent),
        "formed_wall_s": formed,
        "wall_s": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,50,200")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t = time.perf_counter()
    graph = load_mainnet(seed=args.seed)
    print(
        f"graph: {graph.n_nodes:,} nodes, {graph.n_channels:,} channels, "
        f"loaded in {time.perf_counter() - t:.1f} s",
        flush=True,
    )
    print(
        "| members | convergence (simulated s) | gossip bytes / member / interval (mean) "
        "| max member | join phase wall s | total wall s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        row = trio.run(
            run_size,
            graph,
            size,
            args.channels,
            args.seed,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
        print(
            f"| {size} | {row['convergence_s']:.3f} | {row['bytes_per_member_interval']:,.0f} "
            f"| {row['max_bytes_member_interval']:,} | {row['formed_wall_s']:.1f} "
            f"| {row['wall_s']:.1f} |",
            flush=True,
        )
        graph = load_mainnet(seed=args.seed)  # fresh graph: the run added nodes and channels


if __name__ == "__main__":
    main()
