"""State gossip on the simulated network under MockClock: publishing, propagation within the
documented bound, loss, partitions, clamping of a liar, staleness, saturation, commands."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hive.actors.gossip.publisher import decode_earnings, encode_earnings
from hive.commands import CommandError
from hive.config import GossipConfig, MembershipConfig
from hive.fleet.clamp import CLAMP_REASON
from hive.fleet.own import Earnings
from hive.node.port import ChannelView
from hive.node.sim import SimNetwork, SimNode, generate_graph
from hive.protocol.gossip.state import ReputationNote
from hive.runtime import Runtime

from .helpers import (
    CONFIRM_S,
    FAST,
    Fleet,
    call,
    converged,
    form,
    held,
    open_channels,
    poll,
    version_of,
    wait_converged,
)

# Direct delivery bound on a connected fleet: the simulator's latency is at most 0.25 s, plus
# the receiver's processing (no simulated time): a change reaches every member within 1 s.
DIRECT_BOUND_S = 1.0


def graph_targets(network: SimNetwork, count: int) -> list[str]:
    return [network.graph.node_ids[i] for i in range(count)]


@contextlib.asynccontextmanager
async def make_fleet(
    tmp_path: Path,
    *,
    loss: float = 0.0,
    gossip: GossipConfig = FAST,
    membership: MembershipConfig | None = None,
) -> AsyncIterator[Fleet]:
    network = SimNetwork(generate_graph(30, seed=11), seed=11, latency=(0.05, 0.25), loss=loss)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        yield Fleet(
            network,
            tmp_path,
            nursery,
            gossip=gossip,
            membership=membership or MembershipConfig(),
        )
        nursery.cancel_scope.cancel()


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    async with make_fleet(tmp_path) as f:
        yield f


async def five_with_channels(fleet: Fleet) -> list[Runtime]:
    runtimes = await form(fleet, 5)
    await open_channels(fleet, runtimes, graph_targets(fleet.network, 6), 2_000_000, 2)
    await trio.sleep(CONFIRM_S + 30)
    return runtimes


async def test_five_members_converge_and_a_change_reaches_all_within_the_bound(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await five_with_channels(fleet)
    await wait_converged(runtimes, within_s=5)
    # Every member's record shows its two confirmed channels and its liquidity.
    for member in runtimes:
        assert member.info is not None
        for observer in runtimes:
            record = await call(observer, "hive-state", member=member.info.node_id)
            assert len(record["state"]["topology"]) == 2
            assert record["state"]["liquidity"]["outbound_msat"] == 4_000_000_000
            assert record["stale"] is False
    view = await call(runtimes[2], "hive-state")
    assert len(view["members"]) == 5
    assert view["coverage"] == 6
    assert view["fleet_capacity_sat"] == 5 * 2 * 2_000_000
    # A change on one member: a new channel, published when it confirms.
    node = fleet.node_of(runtimes[3])
    await node.open_channel(graph_targets(fleet.network, 7)[6], 3_000_000)
    gossip = runtimes[3].gossip
    assert gossip is not None
    await poll(
        lambda: gossip.published is not None and len(gossip.published.topology) == 3,
        within_s=CONFIRM_S + 5,
        step_s=0.01,
    )
    elapsed = await wait_converged(runtimes, within_s=DIRECT_BOUND_S, step_s=0.01)
    assert elapsed <= DIRECT_BOUND_S
    assert gossip.stats.last_reason is not None
    assert "added" in gossip.stats.last_reason
    view = await call(runtimes[0], "hive-state")
    assert view["coverage"] == 7
    stats = runtimes[0].status()["gossip"]
    assert stats["states_received"] >= 5
    assert stats["bytes_sent"] > 0
    assert stats["digests_sent"] > 0
    assert stats["fleet"]["coverage"] == 7


async def test_convergence_under_ten_percent_message_loss(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await five_with_channels(fleet)
    await wait_converged(runtimes, within_s=5)
    fleet.network.loss = 0.1
    lost_before = fleet.network.stats.messages_dropped_loss
    # Three members change at once (on-chain funds up by far more than 10%).
    for runtime in runtimes[:3]:
        fleet.network.fund(fleet.node_of(runtime).node_id, 40_000_000)
    await trio.sleep(FAST.check_s + 1)
    assert not converged(runtimes) or fleet.network.stats.messages_dropped_loss > lost_before
    # Repair: keepalives expose gaps and digests what was lost, within a few intervals.
    await wait_converged(runtimes, within_s=3 * FAST.interval_s)
    assert fleet.network.stats.messages_dropped_loss > lost_before
    for member in runtimes[:3]:
        assert member.info is not None
        for observer in runtimes:
            record = await call(observer, "hive-state", member=member.info.node_id)
            assert record["state"]["liquidity"]["onchain_sat"] > 80_000_000


async def test_a_partition_that_heals_converges(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Members must not reconnect on their own during the partition.
    membership = MembershipConfig(sync_interval_s=100_000.0)
    async with make_fleet(tmp_path, membership=membership) as fleet:
        runtimes = await five_with_channels(fleet)
        await wait_converged(runtimes, within_s=5)
        left, right = runtimes[:2], runtimes[2:]
        for a in left:
            for b in right:
                await fleet.node_of(a).disconnect(fleet.node_of(b).node_id)
        before = version_of(runtimes[0])
        fleet.network.fund(fleet.node_of(runtimes[0]).node_id, 40_000_000)
        fleet.network.fund(fleet.node_of(runtimes[4]).node_id, 40_000_000)
        await trio.sleep(2 * FAST.interval_s)
        assert version_of(runtimes[0]) > before
        # Each side has its own change, not the other side's.
        assert all(held(r, runtimes[0]) == version_of(runtimes[0]) for r in left)
        assert all(held(r, runtimes[0]) == before for r in right)
        assert all(held(r, runtimes[4]) == version_of(runtimes[4]) for r in right)
        assert all(held(r, runtimes[4]) != version_of(runtimes[4]) for r in left)
        for a in left:
            for b in right:
                await fleet.node_of(a).connect(fleet.node_of(b).node_id)
        # Digests on reconnection repair both sides within seconds.
        elapsed = await wait_converged(runtimes, within_s=5)
        assert elapsed < 5


@attrs.define
class LyingNode:
    """A SimNode whose owner claims twice the capacity of each of its channels."""

    inner: SimNode

    async def list_channels(self) -> Sequence[ChannelView]:
        return [
            attrs.evolve(
                c,
                capacity_msat=2 * c.capacity_msat,
                remote_msat=c.remote_msat + c.capacity_msat,
            )
            for c in await self.inner.list_channels()
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_member_lying_about_capacity_is_clamped_and_noted(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await form(fleet, 3)
    liar = await fleet.companion("liar", wrap=LyingNode)  # type: ignore[arg-type]
    invite = await call(runtimes[0], "hive-invite")
    await call(liar, "hive-join", ticket=invite["ticket"])
    everyone = [*runtimes, liar]
    await open_channels(fleet, everyone, graph_targets(fleet.network, 4), 2_000_000, 1)
    # Unconfirmed for the grace, then contradicted: the instant graph holds only half.
    await trio.sleep(CONFIRM_S + FAST.claim_grace_s + FAST.interval_s)
    await wait_converged(everyone, within_s=5)
    assert liar.info is not None
    liar_id = liar.info.node_id
    for observer in runtimes:
        record = await call(observer, "hive-state", member=liar_id)
        # Published as claimed, clamped to what its public channel holds.
        assert record["state"]["topology"][0]["capacity_sat"] == 4_000_000
        (clamp,) = record["clamps"]
        assert clamp["claimed_sat"] == 4_000_000
        assert clamp["allowed_sat"] == 2_000_000
        view = await call(observer, "hive-state")
        (summary,) = [m for m in view["members"] if m["member"] == liar_id]
        assert summary["capacity_sat"] == 2_000_000
        assert summary["clamped"] is True
        assert view["fleet_capacity_sat"] == 4 * 2_000_000
        # The clamp is a reputation note in the observer's own published state.
        assert observer.gossip is not None
        assert observer.gossip.published is not None
        notes = observer.gossip.published.reputation
        assert notes == (ReputationNote(peer=bytes.fromhex(liar_id), reason=CLAMP_REASON, count=1),)
        assert observer.status()["gossip"]["clamps"] == 1
    # Honest members are not clamped.
    for member in runtimes:
        assert member.info is not None
        record = await call(runtimes[0], "hive-state", member=member.info.node_id)
        assert record["clamps"] == []


async def test_a_silent_member_goes_stale_and_comes_back(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await five_with_channels(fleet)
    await wait_converged(runtimes, within_s=5)
    silent = runtimes[4]
    assert silent.info is not None
    silent_id = silent.info.node_id
    old_version = version_of(silent)
    await fleet.stop(silent)
    stale_after = FAST.interval_s * FAST.stale_intervals
    # It was last heard at most one interval (its keepalive period) before it stopped.
    await trio.sleep(stale_after - FAST.interval_s - 5)
    assert (await call(runtimes[0], "hive-state", member=silent_id))["stale"] is False
    await trio.sleep(FAST.interval_s + 10)
    for observer in runtimes[:4]:
        record = await call(observer, "hive-state", member=silent_id)
        assert record["stale"] is True
        assert record["age_ms"] > stale_after * 1000
        view = await call(observer, "hive-state")
        assert view["stale"] == [silent_id]
        assert silent_id not in [m["member"] for m in view["members"]]
        assert observer.status()["gossip"]["fleet"]["stale"] == [silent_id]
    # It comes back (same data directory): a higher version, fresh again everywhere.
    back = await fleet.start(fleet.node_of(silent))
    await poll(
        lambda: back.gossip is not None and back.gossip.published is not None,
        within_s=2 * FAST.check_s,
    )
    assert version_of(back) > old_version
    live = [*runtimes[:4], back]
    await wait_converged(live, within_s=5)
    for observer in runtimes[:4]:
        assert (await call(observer, "hive-state", member=silent_id))["stale"] is False
        assert (await call(observer, "hive-state"))["stale"] == []


def smallest_node(network: SimNetwork) -> int:
    graph = network.graph
    totals = [sum(graph.capacity_sat[c] for c in graph.adjacency[n]) for n in range(30)]
    return min(range(30), key=lambda n: totals[n])


async def test_saturation_ignores_and_releases_a_target_with_reasons(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = attrs.evolve(FAST, saturation_cap=0.3, saturation_release=0.1)
    async with make_fleet(tmp_path, gossip=config) as fleet:
        runtimes = await form(fleet, 5)
        graph = fleet.network.graph
        target_index = smallest_node(fleet.network)
        target = graph.node_ids[target_index]
        public = sum(graph.capacity_sat[c] for c in graph.adjacency[target_index])
        amount = min(public, 15_000_000)
        holders, others = runtimes[:3], runtimes[3:]
        for runtime in holders:
            await fleet.node_of(runtime).open_channel(target, amount)
        await trio.sleep(CONFIRM_S + FAST.interval_s)
        share = 3 * amount / (public + 3 * amount)
        assert share > 0.3
        for runtime in others:
            ignored = fleet.node_of(runtime).open_ignored
            assert list(ignored) == [target]
            assert ignored[target].startswith("fleet share ")
            assert "> cap 30%" in ignored[target]
            assert runtime.fleet is not None
            assert runtime.status()["gossip"]["fleet"]["ignored"] == ignored
            assert runtime.status()["gossip"]["ignored"] == 1
        for runtime in holders:  # members connected to it keep managing their channels
            assert fleet.node_of(runtime).open_ignored == {}
        # A restart neither forgets nor flaps: the ignored set is restored from the store.
        restarted = others[1]
        await fleet.stop(restarted)
        restarted = await fleet.start(fleet.node_of(restarted))
        assert restarted.fleet is not None
        assert list(restarted.fleet.ignore_reasons) == [target]
        await trio.sleep(FAST.check_s * 2)
        assert restarted.status()["gossip"]["released"] == 0
        # The holders fall silent: once stale, their capacity no longer counts and the target
        # is released, with the figures as the reason.
        for runtime in holders:
            await fleet.stop(runtime)
        await trio.sleep(FAST.interval_s * (FAST.stale_intervals + 1))
        for runtime in (others[0], restarted):
            assert fleet.node_of(runtime).open_ignored == {}
            assert runtime.fleet is not None
            (change,) = [c for c in runtime.fleet.changes if c.action.value == "release"]
            assert change.target == target
            assert (
                change.reason
                == "fleet share 0% (no fresh member has a channel to it) < release 10%"
            )


async def test_a_companion_outside_the_hive_publishes_nothing(
    fleet: Fleet, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await form(fleet, 2)
    outsider = await fleet.companion("outsider")
    await fleet.node_of(outsider).connect(fleet.node_of(runtimes[0]).node_id)
    await trio.sleep(2 * FAST.interval_s)
    assert outsider.gossip is not None
    assert outsider.gossip.published is None
    assert outsider.gossip.stats.states_sent == 0
    assert outsider.gossip.stats.digests_sent == 0
    with pytest.raises(CommandError) as info:
        await call(outsider, "hive-state")
    assert info.value.code == CommandError.NOT_FOUND
    # The members know each other but not the outsider.
    assert outsider.info is not None
    with pytest.raises(CommandError) as info:
        await call(runtimes[0], "hive-state", member=outsider.info.node_id)
    assert info.value.code == CommandError.NOT_FOUND
    with pytest.raises(CommandError) as info:
        await call(runtimes[0], "hive-state", member="nonsense")
    assert info.value.code == CommandError.INVALID_PARAMS
    assert converged(runtimes)


def test_earnings_survive_a_save_and_load_and_garbage_is_forgotten() -> None:
    earnings = {"02" + "aa" * 32: Earnings(earned_msat=1234, forwards=3)}
    assert decode_earnings(encode_earnings(earnings)) == earnings
    assert decode_earnings(None) == {}
    assert decode_earnings(b"[1, 2") == {}
    assert decode_earnings(b'{"02aa": "x"}') == {}
