"""The decision path of `hive sim`: intent locks between members, closes, on-chain money."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from hive.fleet.planner import Plan, PlannedOpen, PlannerConfig
from hive.scenarios.channels import ChannelBook
from hive.scenarios.compare import _usual_fees
from hive.scenarios.deciders import DecisionConfig, Fleet, Solo
from hive.scenarios.events import Clock
from hive.scenarios.flow import Flow
from hive.scenarios.placement import scenario_node_id

CAPITAL = 10_000_000


def _world(members: int) -> tuple[Flow, list[str], list[int], ChannelBook]:
    # Three public nodes in a line, then the scenario's members (no channels yet).
    flow = Flow(
        3,
        node1=[0, 1],
        node2=[1, 2],
        capacity_sat=[10_000_000, 10_000_000],
        bal1_msat=[5_000_000_000, 5_000_000_000],
        base_msat=[1000] * 4,
        ppm=[100] * 4,
        routable=[True] * 4,
    )
    ids = ["02" + f"{i:064x}" for i in range(3)]
    nodes = []
    for k in range(members):
        nodes.append(flow.add_node())
        ids.append(scenario_node_id("test", k))
    book = ChannelBook(flow, dict.fromkeys(nodes, CAPITAL), (1000, 100), 2_500, 2_500)
    return flow, ids, nodes, book


class _SameTarget:
    """A planner that sends every member to public node 2 (as two stale views would)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def plan(self, _flow: Any, _ids: Any, _key: Any, members: Any, _cfg: Any, **_kw: Any) -> Plan:
        opens = tuple(
            PlannedOpen(m.node_id, self.ids[2], 2_000_000, 50.0 + k, 50.0, 0.0, "", (), ())
            for k, m in enumerate(sorted(members, key=lambda m: m.node_id))
        )
        return Plan(opens, 0.0, 0.0, 0.0, 0.0, {}, 1.0, {})


def _decider(kind: type[Fleet] | type[Solo], members: int, **kw: Any) -> Any:
    flow, ids, nodes, book = _world(members)
    clock = Clock()
    decider = kind(
        clock=clock,
        flow=flow,
        book=book,
        ids=ids,
        nodes=nodes,
        planner=_SameTarget(ids),
        planner_cfg=PlannerConfig(min_age_blocks=0),
        config=DecisionConfig(**kw),
        rng=random.Random(5),
        label="test",
    )
    return decider, clock, book, nodes


def _fleet(members: int, **kw: Any) -> tuple[Fleet, Clock, ChannelBook, list[int]]:
    out: tuple[Fleet, Clock, ChannelBook, list[int]] = _decider(Fleet, members, **kw)
    return out


def test_members_planning_one_target_at_once_open_it_once_through_the_lock_book() -> None:
    fleet, clock, book, nodes = _fleet(3)
    for n in nodes:  # every member plans at the same instant and wants the same target
        fleet.decide(n)
    clock.run_until(3 * 3600.0)
    to_target = [c for c in book.chans if c.peer == 2]
    assert len(to_target) == 1
    assert book.duplicates == 0
    assert fleet.stats.intents == 3
    assert fleet.stats.yielded + fleet.stats.lock_refused == 2
    # The strongest intent (the highest planner score) won.
    assert to_target[0].owner == max(nodes, key=lambda n: fleet.ids[n])


def test_a_member_planning_after_the_lock_ended_is_refused_while_the_target_is_taken() -> None:
    fleet, clock, book, nodes = _fleet(3)
    fleet.decide(nodes[0])
    clock.run_until(60.0)  # the first open executed; its outcome marks the target taken
    assert [c.owner for c in book.chans if c.peer == 2] == [nodes[0]]
    fleet.decide(nodes[1])
    clock.run_until(120.0)
    assert len([c for c in book.chans if c.peer == 2]) == 1
    assert fleet.stats.lock_refused == 1


def test_a_stale_member_keeps_its_channels_in_the_others_view_with_no_funds() -> None:
    # The planner actor's rule: the opener's re-check counts a silent member's channels, so the
    # plan must too, or the fleet re-plans its targets and fails the re-check every hour.
    fleet, clock, book, nodes = _fleet(3)
    fleet.decide(nodes[0])
    clock.run_until(6 * 3600.0)  # funded, confirmed and gossiped
    fleet.set_down(nodes[0])
    clock.run_until(6 * 3600.0 + DecisionConfig().stale_after_s + 1)
    view = {m.node_id: m for m in fleet.view(nodes[1])}
    down = view[fleet.ids[nodes[0]]]
    assert down.peers == frozenset({fleet.ids[2]})
    assert down.onchain_sat == 0
    assert view[fleet.ids[nodes[2]]].onchain_sat == book.spare_sat(nodes[2]) > 0


def test_a_channel_that_never_forwards_is_closed_after_the_grace_period_and_paid_for() -> None:
    solo, clock, book, nodes = _decider(Solo, 1, grace_s=86400.0, review_every_s=3600.0)
    solo.start()
    clock.run_until(3 * 86400.0)
    assert solo.stats.opened >= 1
    assert solo.stats.closed >= 1
    # Nothing flowed: the wallet lost exactly the on-chain fees of every open and close.
    spent = (solo.stats.opened + solo.stats.closed) * 2_500
    open_now = sum(c.amount_sat for c in book.chans if c.open)
    assert book.spare_sat(nodes[0]) == CAPITAL - spent - open_now
    book.check()


def test_conservation_catches_money_moved_outside_the_ledger() -> None:
    flow, _ids, nodes, book = _world(1)
    chan = book.open(nodes[0], 2, 3_000_000, 0.0)
    book.confirm(chan, 0.0)
    assert flow.pay(0, nodes[0], 1_000_000).ok
    assert flow.pay(nodes[0], 0, 500_000).ok
    book.close(chan, 10.0)
    book.check()
    flow.bal1[0] += 1  # a msat appears from nowhere
    with pytest.raises(RuntimeError, match="without a ledger entry"):
        book.check()
    assert np.all(flow.cap_msat[chan.index] == 0)


def test_the_autopilot_proposes_a_popular_nodes_peer_then_the_most_distant_node() -> None:
    from hive.fleet.plangraph import distances
    from hive.node.sim.graph import generate_graph
    from hive.scenarios.compare import StudyConfig, _Base
    from hive.scenarios.placement import Autopilot, _plan_graph

    base = _Base(generate_graph(120, seed=3), StudyConfig(planner=PlannerConfig(min_age_blocks=0)))
    flow = base.fresh(1)
    cfg = PlannerConfig(min_age_blocks=0)
    pilot = Autopilot(flow, base.node_ids, base.blocks, cfg, base.template.n)
    rng = random.Random(3)
    first = pilot.candidates(flow, set(), rng, set(), {})
    assert set(first) == {"popularity"}  # no peers yet: nothing to be distant from
    patrons = {int(p) for p in pilot.popular}
    peers_of_popular = {
        int(v) for p in patrons for v in flow.pair_dst[flow.indptr[p] : flow.indptr[p + 1]]
    }
    assert first["popularity"] in peers_of_popular
    mine = {first["popularity"]}
    later = pilot.candidates(flow, mine, rng, set(), {first["popularity"]: 5_000})
    assert {"popularity", "distance", "earned-fee"} <= set(later)
    graph = _plan_graph(flow, base.node_ids, base.blocks, cfg.amount_msat)
    matrix = graph.matrix(hop_cost_msat=cfg.hop_cost_msat, excluded=np.zeros(graph.n, bool))
    dist = distances(matrix, sorted(mine), min_only=True)[0]
    ok = pilot.eligible[: graph.n] & np.isfinite(dist)
    ok[list(mine)] = False
    assert dist[later["distance"]] == dist[ok].max()
    assert later["earned-fee"] in set(
        flow.pair_dst[
            flow.indptr[first["popularity"]] : flow.indptr[first["popularity"] + 1]
        ].tolist()
    )


def test_a_public_peer_charges_its_own_usual_fee_on_a_new_channel_and_we_charge_ours() -> None:
    flow, _ids, nodes, _ = _world(1)
    book = ChannelBook(
        flow, {nodes[0]: CAPITAL}, (1000, 100), 2_500, 2_500, peer_fee=lambda n: (0, 4000 + n)
    )
    chan = book.open(nodes[0], 2, 2_000_000, 0.0)
    assert (int(flow.base[2 * chan.index]), int(flow.ppm[2 * chan.index])) == (1000, 100)
    assert (int(flow.base[2 * chan.index + 1]), int(flow.ppm[2 * chan.index + 1])) == (0, 4002)


def test_a_nodes_usual_fee_is_the_median_of_the_directions_it_forwards_on() -> None:
    src = np.array([0, 0, 0, 2, 1])
    base = np.array([1000, 0, 500, 7, 1])
    ppm = np.array([10, 5000, 100, 1, 2])
    fees = _usual_fees(src, base, ppm, 4, (9, 9))
    assert fees == [(500, 100), (1, 2), (7, 1), (9, 9)]
