"""Issue 12's done-when on the simulated network, through full runtimes (autonomous mode): a
member that only consumes rebalancing becomes a leech and loses priority, a peer that holds
HTLCs is caught jamming and banned fleet-wide, and a peer that force-closes twice is
proposed for a ban; each with its ledger entries.

Members m0, m1 (the leech) and m2; outsiders E, E2 (honest routing nodes), J (jams) and F
(force-closes). Channels, funder first (the funder holds the whole capacity):

    m0 -> m1, m0 -> m2, m1 -> E, m2 -> E, E -> m0 (m0's needy channel)
    m2 -> m1, m1 -> E2, E2 -> m2             (what m1 rebalances with, through m2)
    J -> m0, m0 -> J                         (J's circles through m0)
    F -> m2, m2 -> F                         (the channels F force-closes)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from brain.helpers import CONFIRM_S, Fleet, call, form, poll, sim_ms

from hive.actors.bans import Bans
from hive.config import BanConfig, Governance, RebalanceConfig
from hive.fleet import rebalance as rules
from hive.fleet.reputation import ReputationRules
from hive.governance.proposal import ProposalState
from hive.node.port import FeePolicy, Route, RouteHop
from hive.node.sim import SimNetwork, SimNode
from hive.node.sim.behaviour import PeerBehaviour
from hive.node.sim.graph import Graph
from hive.runtime import Runtime

CAP_SAT = 1_000_000
HOLD_S = 1_200.0  # J holds each HTLC 20 minutes
# Scaled down so that a test's few moves make a standing: 100k sat of smoothing, a member is
# "new" for its first 15 minutes or below 300k sat of volume.
REPUTATION = ReputationRules(
    prior_msat=100_000_000, min_volume_msat=300_000_000, new_days=900 / 86_400
)


@attrs.define
class Scene:
    fleet: Fleet
    m: list[Runtime]
    e: SimNode
    e2: SimNode
    jammer: SimNode
    closer: SimNode

    def node(self, i: int) -> SimNode:
        return self.fleet.node_of(self.m[i])

    def id(self, i: int) -> str:
        return self.node(i).node_id

    def bans(self, i: int) -> Bans:
        bans = self.m[i].bans
        assert bans is not None
        return bans

    async def scids(self, i: int, peer: str) -> list[str]:
        return sorted(
            str(c.short_channel_id)
            for c in await self.node(i).list_channels()
            if c.peer_id == peer and c.short_channel_id
        )


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    network = SimNetwork(Graph(), seed=12, latency=(0.05, 0.2))
    config = {
        "governance": Governance.AUTONOMOUS,
        "bans": BanConfig(sync_interval_s=60.0),
        "rebalance": RebalanceConfig(check_s=86_400.0, fee_check_s=120.0),
        "reputation": REPUTATION,
    }
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery, config=config)
        m = await form(fleet, 3)
        n = [fleet.node_of(r) for r in m]
        e, e2 = network.add_node("E", 50_000_000), network.add_node("E2", 50_000_000)
        jammer, closer = network.add_node("J", 50_000_000), network.add_node("F", 50_000_000)
        for funder, peer in (
            (n[0], n[1]), (n[0], n[2]), (n[1], e), (n[2], e), (e, n[0]),
            (n[2], n[1]), (n[1], e2), (e2, n[2]),
            (jammer, n[0]), (n[0], jammer),
            (closer, n[2]), (n[2], closer),
        ):  # fmt: skip
            await funder.open_channel(peer.node_id, CAP_SAT)
        await trio.sleep(CONFIRM_S + 300)  # confirmed, and member fees set to 0/0
        await n[0].set_fee_policy(e.node_id, FeePolicy(base_msat=1000, ppm=200))
        yield Scene(fleet, m, e, e2, jammer, closer)
        nursery.cancel_scope.cancel()


async def ledger(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    entries = (await call(runtime, "hive-ledger", kind=kind, limit=200))["entries"]
    return [e for e in entries if e["kind"] == kind]


async def standing(observer: Runtime, member: str) -> str:
    (row,) = (await call(observer, "hive-reputation", member=member))["members"]
    return str(row["standing"])


def drain(scene: Scene, peer: str, hours: float = 12.0, per_hour: int = 8) -> None:
    """Feed m0's estimator forwards out through its channel with ``peer`` (as demand would)."""
    rebalancer = scene.m[0].rebalancer
    assert rebalancer is not None
    graph = scene.fleet.network.graph
    i0 = graph.index[scene.id(0)]
    out = next(
        graph.scids[c] for c in graph.adjacency[i0] if graph.node_ids[graph.other(c, i0)] == peer
    )
    start = sim_ms() - int(hours * 3_600_000)
    rebalancer.estimator.observe_channel(out, start)
    for k in range(int(hours * per_hour)):
        at = start + k * 3_600_000 // per_hour
        rebalancer.estimator.forwarded("0x0x0", out, 50_000_500, 50_000_000, at)


async def jam(scene: Scene, count: int, amount_msat: int = 5_000_000) -> None:
    """J pays itself in circles through m0 (in by J's channel, out by m0's) and holds them."""
    scene.fleet.network.set_behaviour(scene.jammer.node_id, PeerBehaviour(hold_s=HOLD_S))
    channels = {c.short_channel_id: c for c in await scene.node(0).list_channels()}
    into_m0 = next(
        s for s, c in channels.items() if c.peer_id == scene.jammer.node_id and c.remote_msat
    )
    out_of_m0 = next(
        s for s, c in channels.items() if c.peer_id == scene.jammer.node_id and c.local_msat
    )
    fee = channels[out_of_m0].our_fee.fee_msat(amount_msat)
    route = Route(
        hops=(
            RouteHop(scene.id(0), str(into_m0), amount_msat + fee, 40),
            RouteHop(scene.jammer.node_id, str(out_of_m0), amount_msat, 6),
        )
    )
    for _ in range(count):
        await scene.jammer.pay_route(route)


async def test_a_leech_loses_priority_and_a_jammer_is_banned_fleet_wide(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    leech = scene.id(1)
    # --- no history is not a leech --------------------------------------------------------------
    assert {await standing(scene.m[0], scene.id(i)) for i in range(3)} == {"new"}
    rebalancer0 = scene.m[0].rebalancer
    assert rebalancer0 is not None
    assert rebalancer0.standings.leeches() == frozenset()

    # --- the jammer: 25 small circles through m0, each held 20 minutes ---------------------------
    await jam(scene, 25)
    await trio.sleep(HOLD_S - 60)
    assert not scene.bans(0).is_banned(scene.jammer.node_id)  # nothing resolved yet: not judged
    await poll(
        lambda: all(scene.bans(i).is_banned(scene.jammer.node_id) for i in range(3)), within_s=600
    )
    bans = await ledger(scene.m[0], "ban-peer")
    assert {e["entry"] for e in bans} >= {"proposed", "outcome"}
    why = await call(scene.m[0], "hive-why", id=bans[-1]["proposal_id"])
    evidence = why["proposal"]["evidence"]
    assert evidence["rule"] == "slow-htlc-jamming"
    assert evidence["slow"] == 25
    assert evidence["from_peer"] == 25
    assert evidence["max_hold_ms"] == HOLD_S * 1000
    listing = await call(scene.m[2], "hive-bans", peer=scene.jammer.node_id)
    (row,) = listing["bans"]
    assert row["rule"] == "slow-htlc-jamming"
    for i in (1, 2):
        assert "banned by the fleet" in scene.node(i).open_ignored[scene.jammer.node_id]

    # --- the leech: m1 refills its channel from m2 three times, and forwards nothing for others -
    for _ in range(3):
        moved = await call(
            scene.m[1], "hive-rebalance", out_peer=scene.e2.node_id, in_peer=scene.id(2),
            amount_sat=150_000,
        )  # fmt: skip
        engine1 = scene.m[1].engine
        assert engine1 is not None
        final = await engine1.wait_final(moved["proposal"])
        assert final.state is ProposalState.SUCCEEDED, final
    assert [e["entry"] for e in await ledger(scene.m[1], "rebalance")].count("outcome") == 3

    for _ in range(120):  # m1's state record carries its totals to m0 with the next change
        if await standing(scene.m[0], leech) == "leech":
            break
        await trio.sleep(10)
    else:
        raise AssertionError("m1 never became a leech at m0")
    assert await standing(scene.m[0], scene.id(2)) != "leech"  # it provided: not penalised
    assert rebalancer0.standings.leeches() == {leech}

    # Its priority drops: by channel id m1's channel is m0's first source, and the circles
    # through m1 and through m2 cost the same (both forward free), yet m0 now goes through m2.
    drain(scene, scene.e.node_id)
    (outcome,) = await rebalancer0.step()
    assert outcome["decision"] == "proposed", outcome
    assert outcome["plan"]["route"] == [scene.id(2), scene.e.node_id, scene.id(0)]
    channels = await scene.node(0).list_channels()
    (need,) = rules.needs(channels, rebalancer0.forecasts, rebalancer0.policy)
    members = [scene.id(1), scene.id(2)]
    as_if_new = rules.sources(need, channels, rebalancer0._balances, members)
    assert [c.peer_id for c in as_if_new][:2] == members
    as_leech = rules.sources(need, channels, rebalancer0._balances, members, leeches={leech})
    assert as_leech[-1].peer_id == leech
    engine0 = scene.m[0].engine
    assert engine0 is not None
    final = await engine0.wait_final(outcome["proposal"])
    assert final.state is ProposalState.SUCCEEDED, final
    (proposed,) = [e for e in await ledger(scene.m[0], "rebalance") if e["entry"] == "proposed"]
    why = await call(scene.m[0], "hive-why", id=proposed["proposal_id"])
    assert why["proposal"]["params"]["out_peer"] == scene.id(2)
    # and the planner weighs its channels less
    planner = scene.m[0].planner
    assert planner is not None
    penalties = {pm.node_id: pm.penalty_msat for pm in await planner._members()}
    assert penalties[leech] == planner.settings.planner.leech_penalty_msat
    assert penalties[scene.id(2)] == 0


async def test_a_peer_that_force_closes_twice_is_proposed_and_banned(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    assert scene.fleet.network.force_close(scene.closer.node_id, scene.id(2)) != []
    await poll(lambda: all(scene.bans(i).is_banned(scene.closer.node_id) for i in range(3)),
               within_s=600)  # fmt: skip
    bans = await ledger(scene.m[2], "ban-peer")
    why = await call(scene.m[2], "hive-why", id=bans[-1]["proposal_id"])
    assert why["proposal"]["evidence"]["rule"] == "force-closes"
    assert why["proposal"]["evidence"]["count"] == 2
