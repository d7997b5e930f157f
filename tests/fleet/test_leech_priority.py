"""The score's effect (docs/REPUTATION.md, "The score's effect"): a leech member's channels
are used last as rebalancing sources, routes through it only when no other was found, our
needs toward it served after all others, and the planner weighs its channels less. A member
with no history ("new") is never one of them."""

from __future__ import annotations

import attrs

from hive.fleet import rebalance as rules
from hive.fleet.planner import plan
from hive.fleet.reputation import Inputs, ReputationRules, score
from hive.node.port import Route, RouteHop

from .helpers import node
from .test_planner import CONFIG, HUBS, MEMBERS, REMOTE, graph
from .test_rebalance import DRAIN, POLICY, chan, circle, fc, needy

US, M1, M2, LEECH, OUT = node(1), node(2), node(3), node(6), node(5)


def balances(channels: list) -> dict:  # type: ignore[type-arg]
    return {
        c.short_channel_id: rules.balance(
            c, fc(str(c.short_channel_id), local=c.local_msat), POLICY
        )
        for c in channels
    }


def test_a_leech_s_channel_is_the_last_source_even_behind_outsiders() -> None:
    need = needy()
    channels = [
        need.channel,
        chan(LEECH, "6x6x6", 950_000_000),  # the biggest surplus, and free: but a leech
        chan(OUT, "2x2x2", 900_000_000),
        chan(M1, "3x3x3", 860_000_000),
    ]
    members = [M1, LEECH]
    plain = rules.sources(need, channels, balances(channels), members)
    assert [c.short_channel_id for c in plain] == ["6x6x6", "3x3x3", "2x2x2"]
    ranked = rules.sources(need, channels, balances(channels), members, leeches={LEECH})
    assert [c.short_channel_id for c in ranked] == ["3x3x3", "2x2x2", "6x6x6"]


def test_needs_toward_a_leech_are_served_after_all_others() -> None:
    urgent = chan(LEECH, "1x1x1", 150_000_000)
    later = chan(M1, "2x2x2", 250_000_000)
    forecasts = {
        c.short_channel_id: fc(str(c.short_channel_id), out_rate=DRAIN, local=c.local_msat)
        for c in (urgent, later)
    }
    found = rules.needs([urgent, later], forecasts, POLICY)
    assert [n.peer for n in found] == [LEECH, M1]  # the leech's channel runs dry first
    assert [n.peer for n in rules.serve_last(found, {LEECH})] == [M1, LEECH]
    assert [n.peer for n in rules.serve_last(found, set())] == [LEECH, M1]


def test_a_route_through_a_leech_counts_its_hops() -> None:
    route = circle([0, 0, 10])  # US -> M1 -> M2 -> OUT1 -> US
    assert rules.leech_hops(route, {M2}) == 1
    assert rules.leech_hops(route, {US}) == 0  # the payer is not a forwarding hop
    assert rules.leech_hops(route, set()) == 0


def via(middle: str, fee_msat: int) -> Route:
    """US -> MIDDLE -> OUT -> US delivering 1000 msat; MIDDLE charges ``fee_msat``."""
    return Route(
        hops=(
            RouteHop(middle, "1x0x0", 1000 + fee_msat, 20),
            RouteHop(OUT, "2x0x0", 1000, 10),
            RouteHop(US, "3x0x0", 1000, 10),
        )
    )


def test_a_route_around_a_leech_wins_even_when_dearer() -> None:
    cheap, dear = via(LEECH, 0), via(M1, 500)
    assert min([dear, cheap], key=lambda r: rules.route_rank(r, set())) is cheap
    assert min([cheap, dear], key=lambda r: rules.route_rank(r, {LEECH})) is dear
    only = via(LEECH, 900)  # no other route: the leech's is still taken
    assert min([only], key=lambda r: rules.route_rank(r, {LEECH})) is only


def test_the_planner_weighs_a_leech_s_channels_less() -> None:
    """One member already reaches the remote cluster; as a leech, its channels count as less
    coverage (routed demand before is lower, it matters less) and the others serve the
    cluster at least as much. The penalty here is the size of the dear bridge's fee, so the
    effect shows on this small graph; the default is two hops' worth."""
    holder = attrs.evolve(MEMBERS[0], peers=frozenset(HUBS[:1] + REMOTE[:1]), onchain_sat=0)
    others = MEMBERS[1:]
    fair = plan(graph(), [holder, *others], config=CONFIG)
    leech = attrs.evolve(holder, penalty_msat=250_000)
    weighed = plan(graph(), [leech, *others], config=CONFIG)
    assert CONFIG.leech_penalty_msat == 2 * CONFIG.hop_cost_msat
    assert weighed.routed_before_ppm < fair.routed_before_ppm
    served_fair = {o.target for o in fair.opens} & set(REMOTE)
    served_weighed = {o.target for o in weighed.opens} & set(REMOTE)
    assert len(served_weighed) > len(served_fair)  # the others make up for it


def test_no_history_is_never_a_leech() -> None:
    """A member that only consumed, but joined a week ago or moved little, stays "new"."""
    now = 30 * 86_400_000
    rules_ = ReputationRules()
    young = Inputs("02" + "11" * 32, admitted_ms=now - 7 * 86_400_000,
                   claimed_provided_msat=0, claimed_consumed_msat=50_000_000_000)  # fmt: skip
    small = Inputs("02" + "22" * 32, admitted_ms=0,
                   claimed_provided_msat=0, claimed_consumed_msat=4_000_000_000)  # fmt: skip
    taker = Inputs("02" + "33" * 32, admitted_ms=0,
                   claimed_provided_msat=0, claimed_consumed_msat=50_000_000_000)  # fmt: skip
    assert score(young, now, rules_).standing == "new"
    assert score(small, now, rules_).standing == "new"
    assert score(taker, now, rules_).standing == "leech"
