"""Contact and state after restarts (issue 13 items 4 and 5): members without a channel
between them find each other again, and the fleet view survives a restart."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import trio
import trio.testing

from hive.node.sim import SimNetwork, generate_graph
from hive.runtime import Runtime

from .helpers import FAST, Fleet, call, poll, wait_converged

SYNC_S = 60.0  # MembershipConfig.sync_interval_s: the connector retries at least this often


@contextlib.asynccontextmanager
async def strict_fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """A network where, as in Lightning, a connect needs an address unless gossip has one."""
    network = SimNetwork(generate_graph(10, seed=31), seed=31, require_address=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        yield Fleet(network, tmp_path, nursery, gossip=FAST)
        nursery.cancel_scope.cancel()


def node_id(runtime: Runtime) -> str:
    assert runtime.info is not None
    return runtime.info.node_id


async def form_strict(fleet: Fleet, count: int) -> list[Runtime]:
    """``count`` companions, joined at the founder's address (the only way in here)."""
    runtimes = [await fleet.companion(f"m{i}") for i in range(count)]
    founder = runtimes[0]
    await call(founder, "hive-genesis", name="contact")
    address = fleet.network.address_of(fleet.node_of(founder).index)
    for runtime in runtimes[1:]:
        invite = await call(founder, "hive-invite")
        member = f"{node_id(founder)}@{address}"
        await call(runtime, "hive-join", ticket=invite["ticket"], member=member)
    return runtimes


async def restart(fleet: Fleet, runtime: Runtime) -> Runtime:
    """Stop a companion and its node (every connection drops, its node forgets the addresses
    it dialled), then start both again."""
    node = fleet.node_of(runtime)
    await fleet.stop(runtime)
    fleet.network.set_offline(node.node_id)
    fleet.network.forget_addresses(node.node_id)
    await trio.sleep(1.0)
    fleet.network.set_offline(node.node_id, False)
    return await fleet.start(node)


async def test_members_without_a_channel_reconnect_after_restarts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with strict_fleet(tmp_path) as fleet:
        a, b = await form_strict(fleet, 2)
        await wait_converged([a, b], within_s=30)
        net, na, nb = fleet.network, fleet.node_of(a), fleet.node_of(b)
        # b restarts: it reaches a again at the address it joined through (kept in its store).
        b = await restart(fleet, b)
        await poll(lambda: net.connected(na.index, nb.index), within_s=SYNC_S + 5)
        # a restarts while b's companion is down: a reaches b by itself, at the address b
        # published in its state record (kept in a's store).
        await fleet.stop(b)
        a = await restart(fleet, a)  # only a can dial now
        await poll(lambda: net.connected(na.index, nb.index), within_s=SYNC_S + 5)
        assert a.membership is not None
        assert a.membership.contact.of(node_id(b)) == [net.address_of(nb.index)]


async def test_an_unreachable_member_stays_in_the_fleet_view_after_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with strict_fleet(tmp_path) as fleet:
        runtimes = await form_strict(fleet, 3)
        await wait_converged(runtimes, within_s=30)
        a, _, c = runtimes
        version = (await call(a, "hive-state", member=node_id(c)))["version"]
        await fleet.stop(c)
        fleet.network.set_offline(node_id(c))
        a = await restart(fleet, a)
        await trio.sleep(FAST.check_s)
        # Restored from the store, as last heard: a member row first, then stale.
        record = await call(a, "hive-state", member=node_id(c))
        assert record["version"] == version
        view = await call(a, "hive-state")
        assert node_id(c) in [m["member"] for m in view["members"]]
        await trio.sleep(FAST.interval_s * (FAST.stale_intervals + 1))
        view = await call(a, "hive-state")
        assert view["stale"] == [node_id(c)]
