"""The fleet state when each member's view of the public graph lags like real gossip
(issue 13 items 1-3): honest members are never accused, a liar is, every clamp is logged and
counted, notes are withdrawn, and saturation is never blind to a target."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hive.config import GossipConfig
from hive.fleet.clamp import CLAMP_REASON
from hive.node.port import ChannelView
from hive.node.sim import GossipLag, SimNetwork, SimNode, generate_graph
from hive.runtime import Runtime

from .helpers import CONFIRM_S, FAST, Fleet, call, form, poll, wait_converged

# Announced 30 minutes after the funding confirms, then 30 s to 5 min to reach each node.
LAG = GossipLag(announce_s=1800.0, propagation_s=(30.0, 300.0))
# The grace outlasts the lag (1800 s + at most 300 s) with some margin.
CONFIG = attrs.evolve(FAST, graph_refresh_s=600.0, claim_grace_s=2400.0)


@contextlib.asynccontextmanager
async def lagging_fleet(tmp_path: Path, gossip: GossipConfig = CONFIG) -> AsyncIterator[Fleet]:
    network = SimNetwork(generate_graph(30, seed=21), seed=21, latency=(0.05, 0.25), gossip_lag=LAG)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        yield Fleet(network, tmp_path, nursery, gossip=gossip)
        nursery.cancel_scope.cancel()


def notes_of(runtime: Runtime) -> list[Any]:
    assert runtime.gossip is not None
    published = runtime.gossip.published
    return [] if published is None else list(published.reputation)


async def summaries(observer: Runtime) -> dict[str, dict[str, Any]]:
    view = await call(observer, "hive-state")
    return {m["member"]: m for m in view["members"]}


def node_id(runtime: Runtime) -> str:
    assert runtime.info is not None
    return runtime.info.node_id


async def test_honest_members_are_never_clamped_while_graphs_lag(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with lagging_fleet(tmp_path) as fleet:
        runtimes = await form(fleet, 4)
        targets = [fleet.network.graph.node_ids[i] for i in range(4)]
        for runtime, target in zip(runtimes, targets, strict=True):
            await fleet.node_of(runtime).open_channel(target, 2_000_000)
        # From the confirmation until well after every member's graph has caught up, nobody
        # is accused: no clamp, no note, no "clamped: true" anywhere, at any moment.
        end = trio.current_time() + CONFIRM_S + LAG.announce_s + 300 + 2 * CONFIG.interval_s
        while trio.current_time() < end:
            for observer in runtimes:
                assert notes_of(observer) == []
                assert observer.status()["gossip"]["clamps"] == 0
                for summary in (await summaries(observer)).values():
                    assert summary["clamped"] is False, summary
            await trio.sleep(5.0)
        assert "clamped a claim" not in caplog.text
        # Caught up: every claim is confirmed and counts in full everywhere.
        await wait_converged(runtimes, within_s=5)
        for observer in runtimes:
            members = await summaries(observer)
            assert {m: s["capacity_sat"] for m, s in members.items()} == {
                node_id(r): 2_000_000 for r in runtimes
            }
            for runtime in runtimes:
                record = await call(observer, "hive-state", member=node_id(runtime))
                assert record["clamps"] == []
                assert record["unconfirmed"] == []


async def test_a_claim_is_unconfirmed_until_the_observer_graph_has_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with lagging_fleet(tmp_path) as fleet:
        a, b = await form(fleet, 2)
        target = fleet.network.graph.node_ids[3]
        await fleet.node_of(a).open_channel(target, 2_000_000)
        await trio.sleep(CONFIRM_S + CONFIG.check_s * 2)  # published, not announced yet
        record = await call(b, "hive-state", member=node_id(a))
        assert record["state"]["topology"][0]["capacity_sat"] == 2_000_000
        assert record["clamps"] == []
        (pending,) = record["unconfirmed"]
        assert pending["peer"] == target
        assert (pending["claimed_sat"], pending["confirmed_sat"]) == (2_000_000, 0)
        (summary,) = [s for m, s in (await summaries(b)).items() if m == node_id(a)]
        assert summary["clamped"] is False
        assert summary["unconfirmed"] is True
        assert summary["capacity_sat"] == 0  # figures count what the graph confirms
        # Once b's graph has the channel (announcement + propagation), b sees it within a
        # check interval, without waiting for the slow graph refresh.
        c = fleet.network.graph.channels_between(
            fleet.node_of(a).index, fleet.network.graph.index[target]
        )[0]
        known = fleet.network.known_since(fleet.node_of(b).index, c)
        await trio.sleep(known - trio.current_time())
        elapsed = await poll(
            lambda: (
                b.fleet is not None
                and b.fleet.view().members[0].capacity_sat + b.fleet.view().members[1].capacity_sat
                == 2_000_000
            ),
            within_s=3 * CONFIG.check_s,
        )
        assert elapsed <= 2 * CONFIG.check_s
        record = await call(b, "hive-state", member=node_id(a))
        assert record["unconfirmed"] == []
        assert notes_of(b) == []


async def join_wrapped(fleet: Fleet, admin: Runtime, node: SimNode, port: Any) -> Runtime:
    """Start a companion on ``port`` (a wrapper of ``node``) and join it through ``admin``."""
    fleet.nodes.append(node)
    runtime = await fleet.start(node, wrap=lambda _node: port)
    invite = await call(admin, "hive-invite")
    await call(runtime, "hive-join", ticket=invite["ticket"])
    return runtime


@attrs.define
class LyingNode:
    """A SimNode whose owner claims ``factor`` times the capacity of each of its channels."""

    inner: SimNode
    factor: int = 2

    async def list_channels(self) -> Sequence[ChannelView]:
        extra = self.factor - 1
        return [
            attrs.evolve(
                c,
                capacity_msat=self.factor * c.capacity_msat,
                remote_msat=c.remote_msat + extra * c.capacity_msat,
            )
            for c in await self.inner.list_channels()
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_liar_is_clamped_every_clamp_counted_and_the_note_withdrawn(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with lagging_fleet(tmp_path) as fleet:
        honest = await form(fleet, 2)
        lying = LyingNode(fleet.network.add_node("liar", 50_000_000))
        liar = await join_wrapped(fleet, honest[0], lying.inner, lying)
        target = fleet.network.graph.node_ids[5]
        await lying.inner.open_channel(target, 2_000_000)
        # Before the public graph could have confirmed it, the lie is only unconfirmed.
        await trio.sleep(CONFIRM_S + 60)
        observer = honest[0]
        assert observer.status()["gossip"]["clamps"] == 0
        assert notes_of(observer) == []
        # The channel is public everywhere long before the grace is over: still no blame.
        await trio.sleep(LAG.announce_s + 300)
        assert observer.status()["gossip"]["clamps"] == 0
        assert (await summaries(observer))[node_id(liar)]["clamped"] is False
        # Once the grace is over (and the liar's channels fetched again), the claim is
        # contradicted: 4M claimed, 2M public. Logged, counted, published.
        await trio.sleep(CONFIG.claim_grace_s - LAG.announce_s - 300 - 60 + 2 * CONFIG.check_s)
        record = await call(observer, "hive-state", member=node_id(liar))
        (clamp,) = record["clamps"]
        assert (clamp["claimed_sat"], clamp["allowed_sat"]) == (4_000_000, 2_000_000)
        assert (await summaries(observer))[node_id(liar)]["clamped"] is True
        assert observer.status()["gossip"]["clamps"] == 1
        assert "clamped a claim" in caplog.text
        await trio.sleep(CONFIG.interval_s)
        (note,) = notes_of(observer)
        assert (note.peer.hex(), note.reason, note.count) == (node_id(liar), CLAMP_REASON, 1)
        # A bigger lie arrives as a new record: clamped on arrival, logged and counted.
        lying.factor = 3
        await trio.sleep(CONFIG.check_s + 5)
        record = await call(observer, "hive-state", member=node_id(liar))
        (clamp,) = record["clamps"]
        assert (clamp["claimed_sat"], clamp["allowed_sat"]) == (6_000_000, 2_000_000)
        assert observer.status()["gossip"]["clamps"] == 2
        assert caplog.text.count("clamped a claim") >= 2
        # The liar mends its ways: the clamp clears and the note is withdrawn.
        lying.factor = 1
        await trio.sleep(CONFIG.interval_s + CONFIG.check_s)
        record = await call(observer, "hive-state", member=node_id(liar))
        assert record["clamps"] == []
        assert (await summaries(observer))[node_id(liar)]["clamped"] is False
        await trio.sleep(CONFIG.interval_s)
        assert notes_of(observer) == []


async def test_saturation_is_never_blind_to_a_target_whose_channels_lag(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with lagging_fleet(tmp_path) as fleet:
        runtimes = await form(fleet, 3)
        # A brand-new target: every channel of it is new, so every graph learns it late.
        target = fleet.network.add_node("target", 10_000_000)
        await target.open_channel(fleet.network.graph.node_ids[0], 1_000_000)
        for runtime in runtimes:
            await fleet.node_of(runtime).open_channel(target.node_id, 1_000_000)
        end = trio.current_time() + CONFIRM_S + LAG.announce_s + 300 + 2 * CONFIG.interval_s
        while trio.current_time() < end:
            for observer in runtimes:
                assert observer.fleet is not None
                for view in observer.fleet.view().targets:
                    # The fleet's capacity to a target is public capacity of the target.
                    assert view.public_capacity_sat is not None
                    assert view.public_capacity_sat >= view.fleet_capacity_sat, view
            await trio.sleep(5.0)
        for observer in runtimes:
            assert observer.fleet is not None
            (view,) = [t for t in observer.fleet.view().targets if t.target == target.node_id]
            assert view.public_capacity_sat is not None
            assert view.public_capacity_sat >= 3_000_000
        # The slow refresh learns the rest of the target's public capacity.
        await trio.sleep(CONFIG.graph_refresh_s)
        for observer in runtimes:
            assert observer.fleet is not None
            (view,) = [t for t in observer.fleet.view().targets if t.target == target.node_id]
            assert view.public_capacity_sat == 4_000_000
            assert view.share == pytest.approx(0.75)


@attrs.define
class InflatingNode:
    """A SimNode whose owner claims u64-max liquidity: outbound and on-chain."""

    inner: SimNode

    async def list_channels(self) -> Sequence[ChannelView]:
        return [attrs.evolve(c, local_msat=(1 << 64) - 1) for c in await self.inner.list_channels()]

    async def onchain_balance_sat(self) -> int:
        return (1 << 64) - 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_impossible_liquidity_is_clamped_logged_counted_and_noted_on_arrival(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with lagging_fleet(tmp_path) as fleet:
        (observer,) = await form(fleet, 1)
        inflating = InflatingNode(fleet.network.add_node("inflating", 50_000_000))
        member = await join_wrapped(fleet, observer, inflating.inner, inflating)
        await inflating.inner.open_channel(fleet.network.graph.node_ids[2], 1_000_000)
        await trio.sleep(CONFIRM_S + CONFIG.check_s)
        # No graph lag can excuse it: outbound above its own channels, on-chain above all
        # bitcoin. Clamped on arrival of the record, logged and counted at once.
        record = await call(observer, "hive-state", member=node_id(member))
        fields = sorted(c["field"] for c in record["clamps"])
        assert fields == ["onchain_sat", "outbound+inbound_msat"]
        assert observer.status()["gossip"]["clamps"] == 2
        assert caplog.text.count("clamped a claim") == 2
        summary = (await summaries(observer))[node_id(member)]
        assert summary["clamped"] is True
        assert summary["outbound_msat"] == 0  # the channel is not public yet: nothing confirmed
        assert summary["onchain_sat"] == 21_000_000 * 100_000_000
        await trio.sleep(CONFIG.interval_s)
        (note,) = notes_of(observer)
        assert (note.peer.hex(), note.reason, note.count) == (
            node_id(member),
            "liquidity-clamped",
            2,
        )
