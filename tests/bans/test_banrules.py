"""The detection rules are pure: thresholds decide, and a peer must stand out from the norm."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.config import BanConfig
from hive.fleet.banrules import Observations, dust_opens, evaluate, htlc_failure_rate

CONFIG = BanConfig(failure_min_attempts=20, failure_min_rate=0.5, failure_multiple=5.0)
BAD, GOOD = "02" + "aa" * 32, "02" + "bb" * 32


def feed(obs: Observations, peer: str, attempts: int, failed: int, at: int = 0) -> None:
    for k in range(attempts):
        obs.forward(peer, k < failed, at)


def test_a_peer_failing_far_above_the_norm_triggers() -> None:
    obs = Observations(window_ms=1000)
    feed(obs, BAD, 40, 30)
    feed(obs, GOOD, 40, 2)
    (trigger,) = htlc_failure_rate(obs, CONFIG)
    assert trigger.peer == BAD
    assert trigger.evidence["failed"] == 30


def test_when_everyone_fails_nobody_stands_out() -> None:
    obs = Observations(window_ms=1000)
    feed(obs, BAD, 40, 30)
    feed(obs, GOOD, 40, 25)
    assert htlc_failure_rate(obs, CONFIG) == []


def test_too_few_attempts_and_the_window_keep_quiet() -> None:
    obs = Observations(window_ms=1000)
    feed(obs, BAD, 19, 19)
    assert htlc_failure_rate(obs, CONFIG) == []
    feed(obs, BAD, 1, 1)
    assert len(htlc_failure_rate(obs, CONFIG)) == 1
    obs.prune(1000)
    assert evaluate(obs, CONFIG) == []


def test_repeated_dust_opens_trigger() -> None:
    obs = Observations(window_ms=1000)
    for sat in (20_000, 30_000, 1_000_000):
        obs.opened(BAD, sat, 0)
    assert dust_opens(obs, CONFIG) == []
    obs.opened(BAD, 10_000, 1)
    (trigger,) = dust_opens(obs, CONFIG)
    assert trigger.rule == "dust-opens"
    assert trigger.evidence["count"] == 3


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
@settings(max_examples=200, deadline=None)
def test_a_trigger_always_meets_every_threshold(a: int, f: int, b: int, g: int) -> None:
    obs = Observations(window_ms=1000)
    feed(obs, BAD, a, min(f, a))
    feed(obs, GOOD, b, min(g, b))
    for trigger in htlc_failure_rate(obs, CONFIG):
        ev = trigger.evidence
        assert isinstance(ev["attempts"], int)
        assert ev["attempts"] >= CONFIG.failure_min_attempts
        assert ev["rate"] >= CONFIG.failure_min_rate - 1e-4
        assert ev["rate"] >= CONFIG.failure_multiple * ev["norm"] - 1e-3
