"""Fleets of companions on the simulated network for the gossip tests (MockClock, inline
SQLite, injected keys: deterministic under the autojump clock)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import nacl.signing
import trio
import trio.lowlevel

from hive.config import GossipConfig, HiveConfig, MembershipConfig
from hive.node.port import NodePort
from hive.node.sim import SimNetwork, SimNode
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000
CONFIRM_S = 600.0  # the simulator's confirmation delay

FAST = GossipConfig(
    interval_s=60.0, check_s=10.0, request_gap_s=5.0, graph_refresh_s=300.0, claim_grace_s=120.0
)


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class Fleet:
    network: SimNetwork
    tmp: Path
    nursery: trio.Nursery
    gossip: GossipConfig = FAST
    membership: MembershipConfig = attrs.Factory(MembershipConfig)
    nodes: list[SimNode] = attrs.Factory(list)
    runtimes: list[Runtime] = attrs.Factory(list)
    scopes: list[trio.CancelScope] = attrs.Factory(list)
    node_by_runtime: dict[int, SimNode] = attrs.Factory(dict)
    # Further HiveConfig fields for every companion (e.g. governance, rebalance).
    config: dict[str, Any] = attrs.Factory(dict)

    async def companion(
        self, alias: str, *, wrap: Callable[[SimNode], NodePort] | None = None
    ) -> Runtime:
        node = self.network.add_node(alias, 50_000_000)
        self.nodes.append(node)
        return await self.start(node, wrap=wrap)

    async def start(
        self, node: SimNode, *, wrap: Callable[[SimNode], NodePort] | None = None
    ) -> Runtime:
        seed = int(node.node_id[2:10], 16)
        runtime = Runtime(
            wrap(node) if wrap else node,
            HiveConfig(
                data_dir=self.tmp / node.alias,
                ping_interval_s=60.0,
                membership=self.membership,
                gossip=self.gossip,
                **self.config,
            ),
            now_ms=sim_ms,
            rng=random.Random(seed),
            signing_key=nacl.signing.SigningKey(random.Random(seed).randbytes(32)),
            store_inline=True,
        )
        scope = trio.CancelScope()

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await runtime.run(task_status=task_status)

        await self.nursery.start(run)
        self.runtimes.append(runtime)
        self.scopes.append(scope)
        self.node_by_runtime[id(runtime)] = node
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        index = self.runtimes.index(runtime)
        self.scopes[index].cancel()
        await trio.lowlevel.checkpoint()

    def node_of(self, runtime: Runtime) -> SimNode:
        return self.node_by_runtime[id(runtime)]


async def call(runtime: Runtime, command: str, **params: Any) -> dict[str, Any]:
    return await runtime.command(command)(params)


async def form(fleet: Fleet, count: int, *, prefix: str = "m") -> list[Runtime]:
    """``count`` companions; the first founds the hive, the others join with real tickets."""
    runtimes = [await fleet.companion(f"{prefix}{i}") for i in range(count)]
    await call(runtimes[0], "hive-genesis", name="gossip")
    for runtime in runtimes[1:]:
        invite = await call(runtimes[0], "hive-invite")
        await call(runtime, "hive-join", ticket=invite["ticket"])
    return runtimes


async def open_channels(
    fleet: Fleet, runtimes: list[Runtime], targets: list[str], amount_sat: int, per_node: int
) -> None:
    """Each companion opens ``per_node`` channels to targets, round robin."""
    k = 0
    for runtime in runtimes:
        node = fleet.node_of(runtime)
        for _ in range(per_node):
            await node.open_channel(targets[k % len(targets)], amount_sat)
            k += 1


def version_of(runtime: Runtime) -> int:
    assert runtime.gossip is not None
    assert runtime.gossip.published is not None
    return runtime.gossip.published.version


def held(observer: Runtime, member: Runtime) -> int | None:
    assert observer.fleet is not None
    assert member.info is not None
    return observer.fleet.statemap.version_of(member.info.node_id)


def converged(runtimes: list[Runtime]) -> bool:
    """Every companion holds every companion's latest published version."""
    for member in runtimes:
        if member.gossip is None or member.gossip.published is None:
            return False
        latest = version_of(member)
        if any(held(observer, member) != latest for observer in runtimes):
            return False
    return True


async def wait_converged(
    runtimes: list[Runtime], *, within_s: float, step_s: float = 0.05
) -> float:
    """Simulated seconds until :func:`converged` (fails after ``within_s``)."""
    return await poll(lambda: converged(runtimes), within_s=within_s, step_s=step_s)


async def poll(condition: Callable[[], bool], *, within_s: float, step_s: float = 0.05) -> float:
    """Simulated seconds until ``condition()`` holds, checked every ``step_s`` (fails with
    TooSlowError after ``within_s``)."""
    start = trio.current_time()
    with trio.fail_after(within_s):
        while True:
            if condition():
                return trio.current_time() - start
            await trio.sleep(step_s)
