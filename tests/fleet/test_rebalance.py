"""Rebalancing rules: needs, sources, the expected-value gate, shares, backoff."""

from __future__ import annotations

import pytest

from hive.fleet import rebalance as rules
from hive.fleet.forecast import ChannelForecast
from hive.node.port import ChannelState, ChannelView, FeePolicy, Route, RouteHop

from .helpers import node

CAP = 1_000_000_000  # 1M sat in msat
US, M1, M2, OUT1, OUT2 = node(1), node(2), node(3), node(4), node(5)
POLICY = rules.RebalancePolicy()


def chan(peer: str, scid: str, local: int, fee: FeePolicy | None = None) -> ChannelView:
    return ChannelView(
        peer_id=peer,
        short_channel_id=scid,
        state=ChannelState.NORMAL,
        capacity_msat=CAP,
        local_msat=local,
        remote_msat=CAP - local,
        our_fee=fee or FeePolicy(0, 500),
    )


def fc(
    scid: str, *, out_rate: float = 0.0, local: int = 0, conf: float = 1.0, avg: float = 0.0
) -> ChannelForecast:
    floor = POLICY.floor_msat(CAP)
    net = out_rate
    depletion = None if net <= 0 else max(0.0, (local - floor) / net)
    return ChannelForecast(
        short_channel_id=scid,
        out_rate_msat_s=out_rate,
        in_rate_msat_s=0.0,
        local_msat=local,
        floor_msat=floor,
        depletion_s=depletion,
        confidence=conf,
        avg_forward_msat=avg,
    )


DRAIN = 20_000.0  # msat/s: 1.7M sat a day


def needy() -> rules.Need:
    c = chan(OUT1, "1x1x1", 200_000_000)
    (need,) = rules.needs([c], {"1x1x1": fc("1x1x1", out_rate=DRAIN, local=c.local_msat)}, POLICY)
    return need


def test_a_channel_running_dry_within_the_horizon_needs_a_refill_to_the_target() -> None:
    need = needy()
    assert need.amount_msat == CAP // 2 - 200_000_000
    assert need.forecast.depletion_s == pytest.approx(100_000_000 / DRAIN)


def test_no_need_when_not_draining_too_unsure_or_too_small() -> None:
    c = chan(OUT1, "1x1x1", 200_000_000)
    slow = {"1x1x1": fc("1x1x1", out_rate=1.0, local=c.local_msat)}  # dry in ~3 years
    unsure = {"1x1x1": fc("1x1x1", out_rate=DRAIN, local=c.local_msat, conf=0.1)}
    assert rules.needs([c], slow, POLICY) == []
    assert rules.needs([c], unsure, POLICY) == []
    almost = chan(OUT1, "1x1x1", CAP // 2 - 1_000)
    tiny = {"1x1x1": fc("1x1x1", out_rate=DRAIN * 100, local=almost.local_msat)}
    assert rules.needs([almost], tiny, POLICY) == []


def test_sources_prefer_members_then_published_surplus_then_size() -> None:
    need = needy()
    channels = [
        need.channel,
        chan(OUT2, "2x2x2", 900_000_000),  # outsider, biggest surplus
        chan(M1, "3x3x3", 900_000_000),  # member, no published surplus
        chan(M2, "4x4x4", 860_000_000),  # member with published surplus
        chan(M2, "5x5x5", 400_000_000),  # member, but cannot spare the amount
    ]
    balances = {
        c.short_channel_id: rules.balance(
            c, fc(str(c.short_channel_id), local=c.local_msat), POLICY
        )
        for c in channels
    }
    ranked = rules.sources(need, channels, balances, [M1, M2], {M2: need.amount_msat})
    assert [c.short_channel_id for c in ranked] == ["4x4x4", "3x3x3", "2x2x2"]


def test_balance_per_direction() -> None:
    c = chan(OUT1, "1x1x1", 200_000_000)
    dry = rules.balance(c, fc("1x1x1", out_rate=DRAIN, local=c.local_msat), POLICY)
    assert dry.deficit_out_msat == 300_000_000
    assert dry.surplus_out_msat == 0
    assert dry.surplus_in_msat == CAP - 200_000_000 - CAP // 2
    idle = rules.balance(c, fc("1x1x1", local=c.local_msat), POLICY)
    assert idle.deficit_out_msat == 0


def test_the_gate_weighs_income_against_cost_with_a_margin() -> None:
    need = needy()
    fee = need.channel.our_fee  # 500 ppm
    income = rules.expected_income_msat(need, fee, POLICY)
    # unmet outflow over 24 h far exceeds the amount: the whole amount earns 500 ppm
    assert income == need.amount_msat * 500 // 1_000_000
    ok = rules.justify(need, fee, cost_msat=income // 2, policy=POLICY)
    assert ok.ok
    assert ok.expected_income_msat == income
    assert ok.cost_msat == income // 2
    too_dear = rules.justify(need, fee, cost_msat=income, policy=POLICY)
    assert not too_dear.ok
    assert "does not cover" in too_dear.reason
    cap = rules.justify(need, fee, cost_msat=income // 2, policy=POLICY, max_fee_ppm=10)
    assert not cap.ok
    assert "above the cap" in cap.reason
    broke = rules.justify(need, fee, income // 2, POLICY, spent_in_window_msat=POLICY.budget_msat)
    assert not broke.ok
    assert "budget" in broke.reason
    assert rules.max_fee_msat(need, fee, POLICY) < income / POLICY.margin


def test_income_is_weighted_by_confidence_and_counts_base_fees() -> None:
    need = needy()
    half = attrs_evolve(need, confidence=0.5, avg=1_000_000.0)
    fee = FeePolicy(base_msat=1000, ppm=0)
    forwards = need.amount_msat / 1_000_000
    assert rules.expected_income_msat(half, fee, POLICY) == int(forwards * 1000 * 0.5)


def attrs_evolve(need: rules.Need, *, confidence: float, avg: float) -> rules.Need:
    import attrs

    return attrs.evolve(
        need, forecast=attrs.evolve(need.forecast, confidence=confidence, avg_forward_msat=avg)
    )


def circle(fees: list[int]) -> Route:
    """US -> M1 -> M2 -> OUT1 -> US delivering 1000 msat; ``fees`` charged by M1, M2, OUT1."""
    amounts = [1000]
    for f in reversed(fees):
        amounts.insert(0, amounts[0] + f)
    nodes = [M1, M2, OUT1, US]
    return Route(
        hops=tuple(
            RouteHop(node_id=n, short_channel_id=f"{i}x0x0", amount_msat=a, delay=10)
            for i, (n, a) in enumerate(zip(nodes, amounts, strict=True))
        )
    )


def test_shares_name_member_providers_and_the_consumer() -> None:
    route = circle([0, 0, 7])
    shares = rules.shares(route, US, [M1, M2])
    assert [(s.member, s.role, s.amount_msat, s.fee_msat) for s in shares] == [
        (M1, "provided", 1007, 0),
        (M2, "provided", 1007, 0),
        (US, "consumed", 1000, 7),
    ]
    assert rules.free_share(route, [M1, M2], US) == pytest.approx(2 / 3)
    assert rules.free_share(circle([1, 0, 7]), [M1, M2], US) == pytest.approx(1 / 3)


def test_backoff_doubles_and_resets() -> None:
    b = rules.Backoff()
    assert b.failed("x", 0, POLICY) == POLICY.backoff_s
    assert not b.ready("x", 1)
    assert b.failed("x", 0, POLICY) == 2 * POLICY.backoff_s
    for _ in range(30):
        b.failed("x", 0, POLICY)
    assert b.failed("x", 0, POLICY) == POLICY.backoff_cap_s
    b.succeeded("x")
    assert b.ready("x", 0)


@pytest.mark.parametrize(
    "changes",
    [
        {"floor_fraction": 0.6},
        {"min_amount_msat": 0},
        {"margin": 0.5},
        {"horizon_s": 0},
        {"min_confidence": 2},
    ],
)
def test_bad_policies_are_refused(changes: dict) -> None:
    with pytest.raises(ValueError, match=r"need|must"):
        rules.RebalancePolicy(**changes)
