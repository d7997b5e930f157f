"""The flow estimator: rates, depletion time, confidence, decay, persistence."""

from __future__ import annotations

import math

import pytest

from hive.fleet.forecast import FlowEstimator

H = 3_600_000  # ms


def steady(
    est: FlowEstimator, *, hours: int, out_msat: int, every_ms: int = H // 4, scid: str = "out"
) -> int:
    """A forward of ``out_msat`` out through ``scid`` every ``every_ms`` for ``hours``."""
    now = 0
    est.observe_channel(scid, 0)
    while now < hours * H:
        now += every_ms
        est.forwarded("in", scid, out_msat + 10, out_msat, now)
    return now


def test_steady_flow_rate_converges_to_the_true_rate() -> None:
    est = FlowEstimator(tau_s=6 * 3600)
    now = steady(est, hours=48, out_msat=1_000_000)
    fc = est.forecast("out", local_msat=100_000_000, floor_msat=10_000_000, now_ms=now)
    true_rate = 1_000_000 / (H / 4 / 1000)  # msat per second
    assert fc.out_rate_msat_s == pytest.approx(true_rate, rel=0.05)
    assert fc.in_rate_msat_s == 0
    assert fc.depletion_s == pytest.approx(90_000_000 / fc.out_rate_msat_s)
    assert fc.confidence > 0.99
    assert fc.avg_forward_msat == pytest.approx(1_000_000)


def test_no_drain_means_no_depletion() -> None:
    est = FlowEstimator()
    est.observe_channel("x", 0)
    fc = est.forecast("x", 50, 10, 10 * H)
    assert fc.depletion_s is None
    assert not fc.runs_dry_within(1e12)


def test_inflow_balancing_outflow_never_drains() -> None:
    est = FlowEstimator()
    for i in range(20):
        est.forwarded("a", "b", 1000, 1000, i * H)
        est.forwarded("b", "a", 1000, 1000, i * H)
    assert est.forecast("b", 10_000, 0, 20 * H).depletion_s is None


def test_confidence_is_low_with_few_forwards_or_a_short_history() -> None:
    est = FlowEstimator(tau_s=6 * 3600, n_half=5)
    est.observe_channel("c", 0)
    est.forwarded("in", "c", 1000, 1000, H)
    young = est.forecast("c", 10_000, 0, H)
    assert young.confidence < 0.05  # one forward, observed for one hour
    steady(est, hours=24, out_msat=1000, scid="c")
    assert est.forecast("c", 10_000, 0, 24 * H).confidence > 0.9


def test_rates_decay_when_the_flow_stops() -> None:
    est = FlowEstimator(tau_s=3600)
    now = steady(est, hours=12, out_msat=1_000_000)
    before = est.forecast("out", 1, 0, now).out_rate_msat_s
    later = est.forecast("out", 1, 0, now + 3 * H).out_rate_msat_s
    assert later == pytest.approx(before * math.exp(-3), rel=1e-6)


def test_fill_time_for_a_channel_that_fills_up() -> None:
    est = FlowEstimator(tau_s=3600)
    est.observe_channel("f", 0)
    for i in range(1, 40):
        est.forwarded("f", "other", 1_000_000, 999_000, i * H // 4)
    fc = est.forecast("f", 600_000_000, 100_000_000, 10 * H, capacity_msat=1_000_000_000)
    assert fc.depletion_s is None
    assert fc.fill_s == pytest.approx((400_000_000 - 100_000_000) / fc.in_rate_msat_s)


def test_export_restore_round_trip_and_malformed_entries_skipped() -> None:
    est = FlowEstimator()
    steady(est, hours=3, out_msat=5000)
    saved = est.export()
    other = FlowEstimator()
    loaded = other.restore({**saved, "bad": [1, 2], "neg": [-1, 0, 0, 0, None, None], 7: []})
    assert loaded == len(saved)
    assert other.export() == saved


def test_forget_drops_closed_channels() -> None:
    est = FlowEstimator()
    est.observe_channel("a", 0)
    est.observe_channel("b", 0)
    est.forget(["a"])
    assert set(est.flows) == {"a"}


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="tau_s"):
        FlowEstimator(tau_s=0)
