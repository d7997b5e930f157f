"""The planner's strategy bonus: a peer of a verified strategy report weighs more as a
destination, so the plan may open to it; with the bonus off (the default) nothing changes."""

from __future__ import annotations

import attrs
from fleet.test_planner import CHEAP, CONFIG, DEAR, HUBS, MEMBERS, channels, nid

from hive.fleet.plangraph import PlanGraph
from hive.fleet.planner import plan
from hive.node.port import FeePolicy, PublicChannel

NICHE = nid("niche")  # small, behind dear edges: worth an open only when it weighs more
NICHE_PEER = nid("niche-peer")


def graph() -> PlanGraph:
    out = channels()

    def link(scid: str, a: str, b: str, fee_ab: FeePolicy, fee_ba: FeePolicy) -> None:
        out.append(PublicChannel(scid, a, b, 2_000_000_000, fee_ab, True))
        out.append(PublicChannel(scid, b, a, 2_000_000_000, fee_ba, True))

    link("800001x1x0", HUBS[3], NICHE, DEAR, CHEAP)
    link("800002x1x0", NICHE_PEER, NICHE, DEAR, CHEAP)
    link("800003x1x0", HUBS[2], NICHE_PEER, DEAR, CHEAP)
    return PlanGraph.from_channels(out, amount_msat=CONFIG.amount_msat)


def test_a_verified_peer_is_planned_only_with_the_bonus_on() -> None:
    # Unboosted, the niche scores about 7,600 ppm; fifty-one times its weight, far more.
    config = attrs.evolve(CONFIG, min_score_ppm=10_000.0)
    base = plan(graph(), MEMBERS, config=config)
    assert NICHE not in {o.target for o in base.opens}
    off = plan(graph(), MEMBERS, config=config, boosted=[NICHE])
    assert off.to_json() == base.to_json()
    on = plan(graph(), MEMBERS, config=attrs.evolve(config, strategy_bonus=50.0), boosted=[NICHE])
    assert NICHE in {o.target for o in on.opens}
