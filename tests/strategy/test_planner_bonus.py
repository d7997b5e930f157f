"""The planner's strategy bonus: a peer of a verified strategy report weighs more as a
destination, so the plan may open to it; with the bonus off (the default) nothing changes."""

from __future__ import annotations

import attrs
from fleet.test_planner import CONFIG, LEAVES, MEMBERS, graph

from hive.fleet.planner import plan


def test_a_verified_peer_is_planned_only_with_the_bonus_on() -> None:
    peer = LEAVES[2]
    base = plan(graph(), MEMBERS, config=CONFIG)
    assert peer not in {o.target for o in base.opens}
    off = plan(graph(), MEMBERS, config=CONFIG, boosted=[peer])
    assert off.to_json() == base.to_json()
    on = plan(graph(), MEMBERS, config=attrs.evolve(CONFIG, strategy_bonus=50.0), boosted=[peer])
    assert peer in {o.target for o in on.opens}
