"""Fifty members, formed through the real genesis/invite/join commands: every member's state
reaches every other member, and a change on one reaches all within the direct bound."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from hive.node.sim import SimNetwork, generate_graph

from .helpers import FAST, Fleet, call, form, open_channels, poll, version_of, wait_converged

DIRECT_BOUND_S = 1.0  # max simulated latency 0.25 s, plus processing


async def test_fifty_members_converge_and_a_change_reaches_all(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Short confirmations keep the simulated (and so the real) time of the test small.
    network = SimNetwork(
        generate_graph(40, seed=5), seed=5, latency=(0.05, 0.25), confirmation_delay_s=20.0
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery)
        runtimes = await form(fleet, 50)
        targets = [network.graph.node_ids[i] for i in range(40)]
        await open_channels(fleet, runtimes, targets, 1_000_000, 2)
        await trio.sleep(20.0 + 2 * FAST.check_s)
        await wait_converged(runtimes, within_s=FAST.interval_s)
        view = await call(runtimes[17], "hive-state")
        assert len(view["members"]) == 50
        assert view["coverage"] == 40
        assert view["fleet_capacity_sat"] == 50 * 2 * 1_000_000
        changer = runtimes[31]
        before = version_of(changer)
        network.fund(fleet.node_of(changer).node_id, 100_000_000)
        await poll(lambda: version_of(changer) != before, within_s=FAST.check_s + 1, step_s=0.01)
        elapsed = await wait_converged(runtimes, within_s=DIRECT_BOUND_S, step_s=0.01)
        assert elapsed <= DIRECT_BOUND_S
        nursery.cancel_scope.cancel()
