"""The member fee policy and the rebalancer on the simulated network, through full runtimes.

Three members in a line, m0 - m1 - m2, and an outside node E with channels m2 - E and E - m0:
m0's channel with E is drained (E funded it), so m0 refills it with a circular payment
m0 -> m1 -> m2 -> E -> m0 in which m1 and m2 forward at the member fee (0) and only E charges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from brain.helpers import CONFIRM_S, Fleet, call, poll, sim_ms

from hive.commands import CommandError
from hive.config import Governance, RebalanceConfig
from hive.governance.proposal import ProposalState
from hive.node.port import ChannelView, FeePolicy, PaymentState
from hive.node.sim import SimNetwork, SimNode
from hive.node.sim.graph import Graph
from hive.runtime import Runtime
from hive.store import governance as gov_sql
from hive.store import open_store
from hive.store import rebalance as rb

SAT = 1000
CAP_SAT = 1_000_000
H = 3600.0
PPM_ON_E = 200  # what m0 charges to forward out to E: worth refilling


@attrs.define
class Line:
    fleet: Fleet
    m: list[Runtime]
    e: SimNode

    def node(self, i: int) -> SimNode:
        return self.fleet.node_of(self.m[i])

    def id(self, i: int) -> str:
        return self.node(i).node_id

    async def channel(self, i: int, peer: str) -> ChannelView:
        (c,) = [c for c in await self.node(i).list_channels() if c.peer_id == peer]
        return c


async def make_line(fleet: Fleet) -> Line:
    m = [await fleet.companion(f"m{i}") for i in range(3)]
    await call(m[0], "hive-genesis", name="line")
    for runtime in m[1:]:
        invite = await call(m[0], "hive-invite")
        await call(runtime, "hive-join", ticket=invite["ticket"])
    e = fleet.network.add_node("E", 50_000_000)
    nodes = [fleet.node_of(r) for r in m]
    await nodes[0].open_channel(nodes[1].node_id, CAP_SAT)
    await nodes[1].open_channel(nodes[2].node_id, CAP_SAT)
    await nodes[2].open_channel(e.node_id, CAP_SAT)
    await e.open_channel(nodes[0].node_id, CAP_SAT)  # m0's side is empty: the needy channel
    await trio.sleep(CONFIRM_S + 60)
    await nodes[0].set_fee_policy(e.node_id, FeePolicy(base_msat=1000, ppm=PPM_ON_E))
    return Line(fleet, m, e)


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    network = SimNetwork(Graph(), seed=5, latency=(0.05, 0.2))
    config = {
        "governance": Governance.AUTONOMOUS,
        "rebalance": RebalanceConfig(check_s=600.0, fee_check_s=120.0),
    }
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery, config=config)
        yield await make_line(fleet)
        nursery.cancel_scope.cancel()


def drain_e(line: Line, hours: float, *, per_hour: int = 8, amount_msat: int = 50_000_000) -> None:
    """Feed m0's estimator forwards out through its channel with E (as demand would)."""
    rebalancer = line.m[0].rebalancer
    assert rebalancer is not None
    scid_in = scid_e = None
    graph = line.fleet.network.graph
    i0 = graph.index[line.id(0)]
    for c in graph.adjacency[i0]:
        peer = graph.node_ids[graph.other(c, i0)]
        if peer == line.e.node_id:
            scid_e = graph.scids[c]
        else:
            scid_in = graph.scids[c]
    assert scid_in
    assert scid_e
    start = sim_ms() - int(hours * 3_600_000)
    rebalancer.estimator.observe_channel(scid_e, start)
    for k in range(int(hours * per_hour)):
        at = start + k * 3_600_000 // per_hour
        rebalancer.estimator.forwarded(scid_in, scid_e, amount_msat + 500, amount_msat, at)


# ---------------------------------------------------------------------------------------------
# Member fee policy


async def test_member_channels_get_the_member_fee_and_keep_the_old_one(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    m1_to_m0 = await line.channel(1, line.id(0))
    m1_to_m2 = await line.channel(1, line.id(2))
    assert m1_to_m0.our_fee == FeePolicy(0, 0)
    assert m1_to_m2.our_fee == FeePolicy(0, 0)
    m2_to_e = await line.channel(2, line.e.node_id)
    assert m2_to_e.our_fee != FeePolicy(0, 0)  # not a member: untouched
    feepolicy = line.m[1].feepolicy
    assert feepolicy is not None
    assert set(feepolicy.kept) == {line.id(0), line.id(2)}
    assert feepolicy.kept[line.id(2)].previous == FeePolicy(1000, 10)  # the simulator's default
    assert line.node(1).fee_unmanaged == {line.id(0), line.id(2)}
    status = await call(line.m[1], "hive-status")
    assert set(status["member_fees"]["member_channels"]) == {line.id(0), line.id(2)}


async def test_leaving_restores_the_previous_fee_on_both_sides(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    await line.node(2).set_fee_policy(line.id(1), FeePolicy(0, 0))  # already 0: still restored
    await call(line.m[2], "hive-leave")
    await poll(
        lambda: line.id(2) not in (line.m[1].feepolicy.kept if line.m[1].feepolicy else {}),
        within_s=600,
    )
    assert (await line.channel(1, line.id(2))).our_fee == FeePolicy(1000, 10)
    assert line.id(2) not in line.node(1).fee_unmanaged
    assert (await line.channel(1, line.id(0))).our_fee == FeePolicy(0, 0)  # m0 still a member
    await poll(lambda: not (line.m[2].feepolicy and line.m[2].feepolicy.kept), within_s=600)
    assert (await line.channel(2, line.id(1))).our_fee == FeePolicy(1000, 10)
    async with open_store(line.fleet.tmp / "m1", run_inline=True) as store:
        kept = await store.run("fees", rb.member_fees)
    assert [f.peer_id for f in kept] == [line.id(0)]


async def test_a_restart_reasserts_the_member_fee(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    await line.fleet.stop(line.m[1])
    await line.node(1).set_fee_policy(line.id(0), FeePolicy(1, 1))  # changed while we were down
    restarted = await line.fleet.start(line.node(1))
    await poll(
        lambda: restarted.feepolicy is not None and restarted.feepolicy.counts["reasserted"] > 0,
        within_s=300,
    )
    assert (await line.channel(1, line.id(0))).our_fee == FeePolicy(0, 0)
    assert restarted.feepolicy is not None
    # the fee kept is still the one from before the hive, not the one we found
    assert restarted.feepolicy.kept[line.id(0)].previous == FeePolicy(1000, 10)


async def test_a_member_charging_us_is_noticed_and_noted(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    await line.fleet.stop(line.m[2])  # so that nothing re-asserts m2's member fee
    await line.node(2).set_fee_policy(line.id(1), FeePolicy(5, 500))
    feepolicy = line.m[1].feepolicy
    assert feepolicy is not None
    assert feepolicy.reputation() == ()
    await trio.sleep(2 * H)
    (note,) = feepolicy.reputation()
    assert note.peer.hex() == line.id(2)
    assert note.reason == "fee-not-member"
    gossip = line.m[1].gossip
    assert gossip is not None
    await gossip.publish()
    assert gossip.published is not None
    assert any(n.reason == "fee-not-member" for n in gossip.published.reputation)


# ---------------------------------------------------------------------------------------------
# Rebalancing


async def test_a_draining_channel_is_refilled_through_the_fleet_at_zero_fee(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    before = {i: await line.channel(i, p) for i, p in ((0, line.e.node_id), (1, line.id(2)))}
    drain_e(line, hours=12)
    rebalancer = line.m[0].rebalancer
    assert rebalancer is not None
    (outcome,) = await rebalancer.step()
    assert outcome["decision"] == "proposed", outcome  # autonomous: the engine executes it
    engine = line.m[0].engine
    assert engine is not None
    final = await engine.wait_final(outcome["proposal"])
    assert final.state is ProposalState.SUCCEEDED, final
    assert final.outcome is not None
    outcome = dict(outcome, fee_msat=final.outcome.detail["fee_msat"])
    plan = outcome["plan"]
    assert plan["route"] == [line.id(1), line.id(2), line.e.node_id, line.id(0)]
    assert plan["expected_income_msat"] > plan["cost_msat"] * 1.5
    amount = plan["amount_msat"]
    hop_fee = 1000 + (amount * 10) // 1_000_000  # the default fee, charged by m2 (to E) and E
    assert outcome["fee_msat"] == 2 * hop_fee  # m1 -> m2 is free
    after_e = await line.channel(0, line.e.node_id)
    assert after_e.local_msat == before[0].local_msat + amount
    after_m1 = await line.channel(1, line.id(2))
    assert after_m1.local_msat == before[1].local_msat - amount - 2 * hop_fee  # m1 provided it
    async with with_store(line, 0) as store:
        totals = {t.member: t for t in await store.run("t", rb.liquidity_totals)}
        (row,) = await store.run("r", rb.rebalances)
    assert row.status == "succeeded"
    assert totals[line.id(1)].provided_msat == amount + 2 * hop_fee
    assert totals[line.id(1)].fees_msat == 0
    assert totals[line.id(2)].provided_msat == amount + hop_fee
    assert totals[line.id(2)].fees_msat == hop_fee  # towards E, an outsider: market fee
    assert totals[line.id(0)].consumed_msat == amount
    assert totals[line.id(0)].fees_msat == 2 * hop_fee
    assert rebalancer.totals.rebalances == 1
    # the next pass finds nothing to do: the channel is at its target
    assert await rebalancer.step() == []


async def test_a_move_that_does_not_pay_is_not_made(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    await line.node(0).set_fee_policy(line.e.node_id, FeePolicy(0, 1))  # we earn ~nothing there
    drain_e(line, hours=12)
    rebalancer = line.m[0].rebalancer
    assert rebalancer is not None
    (outcome,) = await rebalancer.step()
    assert outcome["decision"] in ("rejected", "no-route")
    assert (await line.channel(0, line.e.node_id)).local_msat == 0


async def test_state_record_carries_deficit_and_totals(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    drain_e(line, hours=12)
    rebalancer = line.m[0].rebalancer
    gossip = line.m[0].gossip
    assert rebalancer is not None
    assert gossip is not None
    rebalancer._refresh(await line.node(0).list_channels(), sim_ms())
    await gossip.publish()
    assert gossip.published is not None
    short = {b.peer.hex(): b for b in gossip.published.balances}
    assert short[line.e.node_id].deficit_out_msat == CAP_SAT * SAT // 2
    await poll(lambda: _held_deficit(line), within_s=120)


def _held_deficit(line: Line) -> bool:
    fleet = line.m[1].fleet
    entry = fleet.statemap.entry(line.id(0)) if fleet else None
    return entry is not None and any(b.deficit_out_msat for b in entry.state.balances)


async def test_an_interrupted_rebalance_is_resolved_from_the_node_never_paid_twice(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    drain_e(line, hours=12)
    m0 = line.m[0]
    node = line.node(0)
    route = await node.find_circular_route(line.id(1), line.e.node_id, 100_000_000)
    async with with_store(line, 0) as store:

        async def started(label: str) -> int:
            return await store.run(
                "s",
                lambda c: rb.start_rebalance(
                    c,
                    label=label,
                    now_ms=sim_ms(),
                    need_scid="x",
                    in_peer=line.e.node_id,
                    out_peer=line.id(1),
                    amount_msat=100_000_000,
                    expected_income_msat=1,
                    route=route,
                ),
            )

        paid = await started("hive-rb-paid")
        lost = await started("hive-rb-never")
    await line.fleet.stop(m0)
    await node.pay_route(route, label="hive-rb-paid")  # the payment went out, then we "crashed"
    local = (await line.channel(0, line.e.node_id)).local_msat
    restarted = await line.fleet.start(node)
    assert restarted.rebalancer is not None
    assert restarted.rebalancer._pending == {}
    async with with_store(line, 0) as store:
        rows = {r.id: r for r in await store.run("r", rb.rebalances)}
        totals = {t.member: t for t in await store.run("t", rb.liquidity_totals)}
    assert rows[paid].status == "succeeded"
    assert rows[paid].fee_paid_msat == route.fee_msat
    assert rows[lost].status == "failed"
    assert "never" in (rows[lost].reason or "") or "unknown" in (rows[lost].reason or "")
    assert totals[line.id(1)].provided_msat == route.hops[1].amount_msat
    assert (await line.channel(0, line.e.node_id)).local_msat == local  # nothing paid again
    assert (await node.payment_status("hive-rb-never")).state is PaymentState.UNKNOWN


# ---------------------------------------------------------------------------------------------
# Through the decision engine


async def test_rebalances_go_through_the_decision_engine_and_its_ledger(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    node = line.node(0)
    rebalancer, engine = line.m[0].rebalancer, line.m[0].engine
    assert rebalancer is not None
    assert engine is not None
    drain_e(line, hours=12)
    (outcome,) = await rebalancer.step()
    assert outcome["decision"] == "proposed", outcome
    assert await rebalancer.step() == []  # not proposed twice while the first is open
    final = await engine.wait_final(outcome["proposal"])
    assert final.state is ProposalState.SUCCEEDED, final
    proposal = final.proposal
    assert proposal.kind == "rebalance"
    assert proposal.evidence["expected_income_msat"] > proposal.evidence["cost_msat"]
    assert proposal.evidence["fleet_hops"] == [line.id(1), line.id(2)]
    async with with_store(line, 0) as store:
        ledger = await store.run("l", lambda c: gov_sql.ledger_for(c, final.id))
    assert [e.entry for e in ledger] == ["proposed", "decided", "reserved", "outcome"]
    why = await call(line.m[0], "hive-why", id=final.id)
    assert why
    assert (await line.channel(0, line.e.node_id)).local_msat == proposal.params["amount_sat"] * SAT
    status = await node.payment_status(f"hive-rb-{final.id}")
    assert status.state is PaymentState.COMPLETE


async def test_advisor_mode_waits_for_the_operator(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    network = SimNetwork(Graph(), seed=5, latency=(0.05, 0.2))
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery, config={"governance": Governance.ADVISOR})
        line = await make_line(fleet)
        drain_e(line, hours=12)
        rebalancer, engine = line.m[0].rebalancer, line.m[0].engine
        assert rebalancer is not None
        assert engine is not None
        (outcome,) = await rebalancer.step()
        assert outcome["decision"] == "proposed"
        await trio.sleep(600)
        assert (await line.channel(0, line.e.node_id)).local_msat == 0  # nothing without approval
        await call(line.m[0], "hive-approve", id=outcome["proposal"])
        final = await engine.wait_final(outcome["proposal"])
        assert final.state is ProposalState.SUCCEEDED
        assert (await line.channel(0, line.e.node_id)).local_msat > 0
        nursery.cancel_scope.cancel()


def with_store(line: Line, i: int):  # type: ignore[no-untyped-def]
    """The companion's own store file (a second connection; WAL allows it)."""
    return open_store(line.fleet.tmp / f"m{i}", run_inline=True)


async def test_the_operator_can_propose_a_move_and_read_the_figures(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    engine = line.m[0].engine
    assert engine is not None
    answer = await call(
        line.m[0],
        "hive-rebalance",
        out_peer=line.id(1),
        in_peer=line.e.node_id,
        amount_sat="100000",
    )
    assert answer["decision"] == "proposed"
    final = await engine.wait_final(answer["proposal"])
    assert final.state is ProposalState.SUCCEEDED
    assert (await line.channel(0, line.e.node_id)).local_msat == 100_000 * SAT
    report = await call(line.m[0], "hive-rebalance", since_hours=1)
    by_member = {t["member"]: t for t in report["liquidity_by_member"]}
    assert by_member[line.id(1)]["provided_msat"] > 100_000 * SAT
    assert report["rebalances"][0]["status"] == "succeeded"
    assert report["member_fees"]["policy"] == {"base_msat": 0, "ppm": 0}
    for bad in (
        {"out_peer": line.id(1), "in_peer": line.id(1), "amount_sat": 100_000},
        {"out_peer": line.id(1), "in_peer": line.e.node_id, "amount_sat": 10},
        {"out_peer": "nope", "in_peer": line.e.node_id, "amount_sat": 100_000},
        {"since_hours": 0},
        {"bogus": 1},
    ):
        with pytest.raises(CommandError):
            await call(line.m[0], "hive-rebalance", **bad)


async def test_routes_failing_at_a_member_lower_trust_in_its_surplus_claims(
    line: Line, autojump_clock: trio.testing.MockClock
) -> None:
    from hive.actors.rebalancing.rebalancer import Plan
    from hive.fleet.rebalance import Justification

    rebalancer = line.m[0].rebalancer
    assert rebalancer is not None
    node = line.node(0)
    graph = line.fleet.network.graph
    for attempt in range(2):
        route = await node.find_circular_route(line.id(1), line.e.node_id, 100_000_000)
        # m1's side towards m2 is spent before our payment arrives: the route fails at m1
        i1, i2 = graph.index[line.id(1)], graph.index[line.id(2)]
        (c,) = graph.channels_between(i1, i2)
        graph.move(c, i1, graph.outbound_msat(c, i1))
        plan = Plan(
            need_scid="x",
            in_peer=line.e.node_id,
            out_peer=line.id(1),
            amount_msat=100_000_000,
            route=route,
            justification=Justification(100_000_000, 1, 0, 1.0, 1.0, True, "test"),
        )
        outcome = await rebalancer.execute(plan, label=f"hive-rb-fail-{attempt}")
        assert outcome["decision"] == "failed"
        assert outcome["failing_node"] == line.id(1)
        graph.move(c, i2, graph.outbound_msat(c, i2) // 2)  # give m1 its side back
    (note,) = [n for n in rebalancer.reputation() if n.reason == "surplus-contradicted"]
    assert note.peer.hex() == line.id(1)
    assert line.id(1) not in rebalancer.member_surplus()  # its claims are no longer believed
    async with with_store(line, 0) as store:
        rows = await store.run("r", rb.rebalances)
    assert [r.status for r in rows] == ["failed", "failed"]
    assert all(r.failing_node == line.id(1) for r in rows)
