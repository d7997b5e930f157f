"""Coordinated opens on the simulated network under MockClock: the planner proposes, the engine
decides (advisor: the operator approves), the opener takes the intent lock, re-checks, opens
and tracks confirmation; two members racing for one target open exactly one channel."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import trio
import trio.testing

from hive.actors.opens.planner import PlannerSettings
from hive.fleet.plantypes import PlannerConfig
from hive.governance.proposal import Cost, Draft, ProposalState
from hive.node.port import ChannelState
from hive.node.sim import SimNetwork, generate_graph
from hive.runtime import Runtime

from .helpers import CONFIRM_S, Fleet, call, form, poll, wait_converged


@contextlib.asynccontextmanager
async def make_fleet(tmp_path: Path, *, loss: float = 0.0) -> AsyncIterator[Fleet]:
    network = SimNetwork(generate_graph(30, seed=11), seed=11, latency=(0.05, 0.25), loss=loss)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        yield Fleet(network, tmp_path, nursery)
        nursery.cancel_scope.cancel()


SMALL_GRAPH = PlannerConfig(
    min_age_blocks=0, min_target_capacity_sat=100_000, min_target_channels=2, sources=12
)


def draft(target: str, amount: int = 2_000_000, score: int = 0) -> Draft:
    return Draft(
        kind="open-channel",
        params={"peer": target, "amount_sat": amount},
        reason="test: both members want this target",
        cost=Cost(capital_sat=amount, onchain_fee_sat=2_000),
        proposer="test",
        evidence={"score_milli_ppm": score},
        target=target,
    )


async def approve(runtime: Runtime, pid: str) -> None:
    await call(runtime, "hive-approve", id=pid, reason="race test")


async def final(runtime: Runtime, pid: str) -> ProposalState:
    assert runtime.engine is not None
    with trio.fail_after(600):
        status = await runtime.engine.wait_final(pid)
    return status.state


def opens_to(fleet: Fleet, target: str) -> list[str]:
    """Members with a channel to ``target`` (any state but closed)."""
    out = []
    for node in fleet.nodes:
        idx = fleet.network.graph.index[node.node_id]
        for c in fleet.network.graph.adjacency[idx]:
            if fleet.network.graph.node_ids[fleet.network.graph.other(c, idx)] == target:
                out.append(node.node_id)
    return out


async def test_two_members_race_for_one_target_and_only_one_opens(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_fleet(tmp_path, loss=0.1) as fleet:
        runtimes = await form(fleet, 3)
        await wait_converged(runtimes, within_s=120)
        target = fleet.network.graph.node_ids[3]
        engines = [r.engine for r in runtimes[:2]]
        assert engines[0] is not None
        assert engines[1] is not None
        first = await engines[0].submit(draft(target, score=5))
        second = await engines[1].submit(draft(target, score=9))
        # An operator's hive-open on the third member is locked like the planner's opens.
        third = await call(runtimes[2], "hive-open", peer=target, amount_sat=1_500_000)
        await approve(runtimes[2], third["id"])
        # Both approved within the same second.
        await approve(runtimes[0], first.id)
        await approve(runtimes[1], second.id)
        states = [await final(runtimes[0], first.id), await final(runtimes[1], second.id)]
        assert sorted(s.value for s in states) == ["failed", "succeeded"]
        assert await final(runtimes[2], third["id"]) is ProposalState.FAILED
        assert len(opens_to(fleet, target)) == 1
        # The stronger score won the tie-break.
        assert states[1] is ProposalState.SUCCEEDED
        why = await call(runtimes[0], "hive-why", id=first.id)
        story = " | ".join(why["story"])
        assert "intent lock not taken" in story or "re-check failed" in story, story
        winner = await call(runtimes[1], "hive-why", id=second.id)
        told = " | ".join(winner["story"])
        assert "intent lock taken" in told, told
        assert "funding transaction" in told, told
        # CLBOSS was told to leave the target alone while the fleet opened to it ...
        node = fleet.node_of(runtimes[1])
        assert target in node.open_ignored
        # ... and is given it back once the channel confirms.
        await poll(lambda: target not in node.open_ignored, within_s=CONFIRM_S + 120)
        confirmed = await call(runtimes[1], "hive-why", id=second.id)
        assert any("confirmed" in line for line in confirmed["story"])


async def test_the_opener_fails_closed_when_we_already_have_a_channel(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_fleet(tmp_path) as fleet:
        (runtime,) = await form(fleet, 1)
        target = fleet.network.graph.node_ids[4]
        await fleet.nodes[0].open_channel(target, 1_000_000)
        assert runtime.engine is not None
        status = await runtime.engine.submit(draft(target))
        await approve(runtime, status.id)
        assert await final(runtime, status.id) is ProposalState.FAILED
        story = " | ".join((await call(runtime, "hive-why", id=status.id))["story"])
        assert "we already have a channel" in story
        assert len(opens_to(fleet, target)) == 1
        assert target not in fleet.nodes[0].open_ignored


async def test_hive_plan_explains_and_the_planner_proposes_our_opens(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_fleet(tmp_path) as fleet:
        runtimes = await form(fleet, 2)
        await wait_converged(runtimes, within_s=120)
        assert runtimes[0].planner is not None
        # The generated graph is young and small: judge its targets by what it has.
        runtimes[0].planner.settings = PlannerSettings(planner=SMALL_GRAPH)
        result = await call(runtimes[0], "hive-plan")
        plan = result["plan"]
        assert plan["opens"], plan["left_out"]
        for planned in plan["opens"]:
            assert {"routed_gain_ppm", "reach_gain_ppm", "why", "other_members"} <= set(planned)
        assert "left_out" in plan
        assert "locks" in result
        mine = runtimes[0].info
        assert mine is not None
        own = await call(runtimes[0], "hive-plan", member=mine.node_id)
        assert all(o["member"] == mine.node_id for o in own["plan"]["opens"])
        planner = runtimes[0].planner
        assert planner is not None
        ids = await planner.submit(planner.last) if planner.last else []
        assert runtimes[0].engine is not None
        pending = [p.id for p in runtimes[0].engine.pending()]
        assert ids
        assert set(ids) <= set(pending)
        # The evidence says how big the target is, in the graph the plan was made from: what
        # an operator or an oracle (examples/oracle_agent.py) judges an open by.
        graph = await fleet.node_of(runtimes[0]).list_graph()
        for status in runtimes[0].engine.pending():
            target = status.proposal.params["peer"]
            scids = {c.short_channel_id for c in graph if target in (c.source, c.destination)}
            assert status.proposal.evidence["target_channels"] == len(scids) > 0
            assert status.proposal.evidence["target_capacity_sat"] > 0
        again = await planner.submit(planner.last) if planner.last else []
        assert again == []  # in flight already: not proposed twice
        await approve(runtimes[0], ids[0])
        assert await final(runtimes[0], ids[0]) is ProposalState.SUCCEEDED
        node = fleet.node_of(runtimes[0])
        channels = await node.list_channels()
        assert any(c.state in (ChannelState.OPENING, ChannelState.NORMAL) for c in channels)


async def test_a_restart_resolves_an_executing_intent_and_releases_a_holding_one(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Rows left by a crash: EXECUTING with a channel on the node -> opened; EXECUTING without
    -> failed (restart-during-execution); HOLDING -> released (aborted, restarted)."""
    from hive.store import intents as sql

    async with make_fleet(tmp_path) as fleet:
        (runtime,) = await form(fleet, 1)
        node = fleet.nodes[0]
        opened, missing, holding = (fleet.network.graph.node_ids[i] for i in (5, 6, 7))
        await node.open_channel(opened, 1_000_000)
        assert runtime.locks is not None
        store = runtime.locks.store
        rows = [
            sql.IntentRow(
                bytes([n]) * 16, "open-channel", t, 1_000_000, 0, 180_000, state, "", 1, 1
            )
            for n, t, state in (
                (1, opened, "executing"),
                (2, missing, "executing"),
                (3, holding, "holding"),
            )
        ]
        for row in rows:
            await store.run("save", lambda c, r=row: sql.save_intent(c, r))
        await fleet.stop(runtime)
        restarted = await fleet.start(node)
        assert restarted.locks is not None
        history = {h["intent_id"]: h for h in await restarted.locks.history(10)}
        assert history[(bytes([1]) * 16).hex()]["state"] == "opened"
        assert history[(bytes([2]) * 16).hex()]["state"] == "failed"
        assert history[(bytes([2]) * 16).hex()]["reason"] == "restart-during-execution"
        assert history[(bytes([3]) * 16).hex()]["state"] == "aborted"
        assert history[(bytes([3]) * 16).hex()]["reason"] == "restarted"


async def test_a_planned_open_that_ended_undecided_is_proposed_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A planner proposal that expires undecided or is rejected no longer holds its slot:
    the next plan may propose the target again (it used to stay in flight until a restart,
    so an advisor who let two proposals expire never heard from the planner again)."""
    async with make_fleet(tmp_path) as fleet:
        runtimes = await form(fleet, 2)
        await wait_converged(runtimes, within_s=120)
        planner, engine = runtimes[0].planner, runtimes[0].engine
        assert planner is not None
        assert engine is not None
        planner.settings = PlannerSettings(planner=SMALL_GRAPH, ttl_s=600.0)
        first = await planner.submit(await planner.compute())
        assert first
        await call(runtimes[0], "hive-reject", id=first[0], reason="not this one")
        await trio.sleep(700)  # the others expire undecided
        ended = [await engine.lookup(pid) for pid in first]
        assert all(status is not None and status.state.final for status in ended)
        await planner.submit(await planner.compute())
        pending = engine.pending()
        assert pending
        assert not {s.id for s in pending} & set(first)
        targets = {status.proposal.target for status in ended if status is not None}
        assert {s.proposal.target for s in pending} & targets


async def test_a_stale_member_keeps_its_channels_in_the_plan_without_funds(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A silent member's channels stay in the planner's input (with no funds to open more), as
    the opener's re-check counts them: leaving them out made the fleet plan the targets it
    serves and fail the same re-check every interval while it was down (docs/VALUE.md)."""
    async with make_fleet(tmp_path) as fleet:
        runtimes = await form(fleet, 2)
        await wait_converged(runtimes, within_s=120)
        other = fleet.node_of(runtimes[1])
        await fleet.node_of(runtimes[1]).open_channel(fleet.network.graph.node_ids[5], 1_000_000)
        await trio.sleep(CONFIRM_S + 600)
        planner = runtimes[0].planner
        assert planner is not None
        fresh = {m.node_id: m for m in await planner._members()}
        assert fresh[other.node_id].onchain_sat > 0
        statemap = planner.fleet.statemap
        statemap.stale = lambda now_ms: {other.node_id}  # type: ignore[method-assign]
        stale = {m.node_id: m for m in await planner._members()}
        assert other.node_id in stale
        assert stale[other.node_id].peers == fresh[other.node_id].peers != frozenset()
        assert stale[other.node_id].onchain_sat == 0
