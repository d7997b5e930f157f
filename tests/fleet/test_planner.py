"""The coverage planner on a small graph whose best plan is known: a cheap core of hubs and a
remote cluster that the network reaches only through one expensive bridge."""

from __future__ import annotations

import attrs
import pytest

from hive.fleet.plangraph import PlanGraph
from hive.fleet.planner import PlanMember, PlannerConfig, plan
from hive.node.port import FeePolicy, PublicChannel


def nid(name: str) -> str:
    return "02" + name.encode().hex().ljust(64, "0")


HUBS = [nid(f"hub{i}") for i in range(4)]
LEAVES = [nid(f"leaf{i}") for i in range(8)]
BRIDGE = nid("bridge")
REMOTE = [nid(f"remote{i}") for i in range(5)]
TINY = nid("tiny")
CHEAP = FeePolicy(0, 10)
DEAR = FeePolicy(5_000, 5_000)


def channels() -> list[PublicChannel]:
    out: list[PublicChannel] = []
    count = 0

    def link(a: str, b: str, fee_ab: FeePolicy, fee_ba: FeePolicy, cap: int) -> None:
        nonlocal count
        count += 1
        scid = f"{700_000 + count}x1x0"
        out.append(PublicChannel(scid, a, b, cap * 1000, fee_ab, True))
        out.append(PublicChannel(scid, b, a, cap * 1000, fee_ba, True))

    for i, a in enumerate(HUBS):
        for b in HUBS[i + 1 :]:
            link(a, b, CHEAP, CHEAP, 50_000_000)
    for i, leaf in enumerate(LEAVES):
        link(leaf, HUBS[i % 4], CHEAP, CHEAP, 10_000_000)
        link(leaf, HUBS[(i + 1) % 4], CHEAP, CHEAP, 10_000_000)
    link(HUBS[0], BRIDGE, CHEAP, CHEAP, 20_000_000)
    for i, r in enumerate(REMOTE):
        link(BRIDGE, r, DEAR, CHEAP, 20_000_000)  # the bridge charges dearly into the cluster
        link(r, REMOTE[(i + 1) % 5], CHEAP, CHEAP, 20_000_000)
        link(r, REMOTE[(i + 2) % 5], CHEAP, CHEAP, 20_000_000)
    link(TINY, HUBS[1], CHEAP, CHEAP, 100_000)
    return out


CONFIG = PlannerConfig(
    sources=8,
    min_target_channels=2,
    min_target_capacity_sat=1_000_000,
    min_age_blocks=0,
    min_score_ppm=1.0,
)


def graph() -> PlanGraph:
    return PlanGraph.from_channels(channels(), amount_msat=CONFIG.amount_msat)


MEMBERS = [PlanMember(nid(f"member{i}"), onchain_sat=5_000_000) for i in range(3)]


def test_the_plan_enters_at_the_core_and_serves_the_remote_cluster() -> None:
    result = plan(graph(), MEMBERS, config=CONFIG)
    targets = [o.target for o in result.opens]
    assert len(targets) == len(set(targets)), "a target is planned twice"
    assert set(targets) & set(REMOTE), "the cluster behind the dear bridge is the value"
    assert result.routed_after_ppm > result.routed_before_ppm == 0
    assert result.reach_after_ppm > 0
    entries = [o for o in result.opens if "way in" in o.why]
    assert len(entries) == len(MEMBERS)  # each member gets its own way in first
    assert not {o.target for o in entries} & set(REMOTE)


def test_robustness_serves_the_remote_cluster_twice() -> None:
    """The cluster is most of the value: with robustness, a second member serves it too, so
    the fleet keeps most of its routed demand when its most important member is down."""
    spread = plan(graph(), MEMBERS, config=CONFIG)
    single = plan(graph(), MEMBERS, config=attrs.evolve(CONFIG, robustness=0.0))
    assert len({o.member for o in spread.opens if o.target in REMOTE}) >= 2
    assert spread.kept_without_top > 0.9
    assert single.kept_without_top < spread.kept_without_top


def test_the_plan_is_deterministic_whatever_the_member_order() -> None:
    a = plan(graph(), MEMBERS, config=CONFIG).to_json()
    b = plan(graph(), list(reversed(MEMBERS)), config=CONFIG).to_json()
    assert a == b


def test_banned_saturated_small_and_locked_targets_are_left_out_with_reasons() -> None:
    locked = {REMOTE[1]: MEMBERS[0].node_id}
    result = plan(
        graph(),
        MEMBERS,
        config=CONFIG,
        banned=[REMOTE[0]],
        saturated=[REMOTE[2]],
        locked=locked,
    )
    planned = {o.target for o in result.opens}
    assert not planned & {REMOTE[0], REMOTE[1], REMOTE[2], TINY}
    left = result.to_json()["left_out"]
    assert left["banned"]["examples"][0]["target"] == REMOTE[0]
    assert left["saturated"]["examples"][0]["target"] == REMOTE[2]
    assert left["locked"]["examples"][0]["target"] == REMOTE[1]
    assert TINY in [e["target"] for e in left["too-small"]["examples"]]


def test_a_member_without_spare_funds_opens_nothing() -> None:
    poor = attrs.evolve(MEMBERS[0], onchain_sat=CONFIG.reserve_sat + 10)
    result = plan(graph(), [poor, *MEMBERS[1:]], config=CONFIG)
    assert poor.node_id not in {o.member for o in result.opens}


def test_existing_channels_count_as_reached() -> None:
    member = attrs.evolve(MEMBERS[0], peers=frozenset(HUBS[:1] + REMOTE[:1]))
    result = plan(graph(), [member], config=CONFIG)
    assert not {o.target for o in result.opens} & {HUBS[0], REMOTE[0]}
    assert result.routed_before_ppm > 0


def test_each_open_explains_itself() -> None:
    result = plan(graph(), MEMBERS, config=CONFIG)
    for planned in result.opens:
        as_json = planned.to_json()
        assert as_json["why"]
        assert planned.amount_sat >= CONFIG.min_channel_sat
    assert any(o.other_members for o in result.opens)
    assert 0.0 <= result.kept_without_top <= 1.0


@pytest.mark.parametrize("robustness", [0.0, 2.0])
def test_robustness_spreads_importance(robustness: float) -> None:
    cfg = attrs.evolve(CONFIG, robustness=robustness)
    result = plan(graph(), MEMBERS, config=cfg)
    assert result.importance_ppm.keys() == {m.node_id for m in MEMBERS}


def test_a_graph_with_no_payers_outside_the_fleet_plans_nothing() -> None:
    """Only members hold capacity: there is no payer to sample, and the plan is empty rather
    than a failed median over no rows (which brought the planner actor down)."""
    a, b = MEMBERS[0].node_id, MEMBERS[1].node_id
    graph = PlanGraph.from_channels(
        [
            PublicChannel("800000x1x0", a, b, 5_000_000_000, CHEAP, True),
            PublicChannel("800000x1x0", b, a, 5_000_000_000, CHEAP, True),
        ],
        amount_msat=CONFIG.amount_msat,
    )
    result = plan(graph, MEMBERS[:2], config=CONFIG)
    assert result.opens == ()
    assert result.routed_after_ppm == 0


def test_a_plan_with_no_opens_says_why() -> None:
    """Nothing worth opening is said, per candidate and in one line, instead of a silent 0
    (candidates used to read "scored below the chosen opens" when none was chosen)."""
    # Members with a way in each (else each opens its entry first, whatever it scores).
    entered = [attrs.evolve(m, peers=frozenset({HUBS[i]})) for i, m in enumerate(MEMBERS)]
    result = plan(graph(), entered, config=attrs.evolve(CONFIG, min_score_ppm=1e9))
    assert result.opens == ()
    left = result.to_json()["left_out"]
    assert "lower-gain" not in left
    assert left["no-gain"]["count"] > 0
    assert all("under min_score_ppm 1e+09" in e["detail"] for e in left["no-gain"]["examples"])
    why = result.why_nothing()
    assert why is not None
    assert why.startswith("no open would make the fleet's route")
    assert "no-gain" in why
    assert result.to_json()["why_nothing"] == why
    assert plan(graph(), entered, config=CONFIG).why_nothing() is None


def test_a_fleet_without_funds_plans_nothing_and_says_so() -> None:
    poor = [attrs.evolve(m, onchain_sat=CONFIG.reserve_sat + 10) for m in MEMBERS]
    result = plan(graph(), poor, config=CONFIG)
    assert result.opens == ()
    assert "no-funds" in result.left_out
    assert "on-chain funds" in (result.why_nothing() or "")


def test_a_way_in_is_priced_at_the_peers_own_usual_fee() -> None:
    # The bridge charges 5,000 + 5,000 ppm on five of its six directions: that is what it would
    # ask of a member too, so it is no cheap way in (priced at the network median, it was one).
    g = graph()
    usual = g.usual_fee_msat()
    assert usual[g.index[BRIDGE]] == 5_000 + CONFIG.amount_msat * 5_000 // 1_000_000
    assert usual[g.index[HUBS[0]]] == CONFIG.amount_msat * 10 // 1_000_000 == g.median_fee_msat()
    result = plan(g, MEMBERS, config=CONFIG)
    entries = {o.target for o in result.opens if "way in" in o.why}
    assert len(entries) == len(MEMBERS)
    assert BRIDGE not in entries
