"""slow-htlc-jamming and force-closes: thresholds decide, a jammer must stand out from our
norm, and a channel closed twice is one close (pure rules, hive/fleet/banrules.py)."""

from __future__ import annotations

import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.config import BanConfig
from hive.fleet.banrules import (
    HOLD_NORM_FLOOR_MS,
    Observations,
    evaluate,
    force_closes,
    hold_threshold_ms,
    slow_htlc_jamming,
)

CONFIG = BanConfig(jam_small_sat=10_000, jam_min_hold_s=30.0, jam_hold_multiple=10.0,
                   jam_min_count=20, force_close_count=2)  # fmt: skip
JAM, GOOD, OTHER = "02" + "aa" * 32, "02" + "bb" * 32, "02" + "cc" * 32
SMALL = 5_000_000  # msat


def held(obs: Observations, peer: str, n: int, hold_ms: int, amount: int = SMALL) -> None:
    for _ in range(n):
        obs.held(peer, None, amount, hold_ms, 0)


def test_small_htlcs_held_far_longer_than_the_norm_trigger() -> None:
    obs = Observations(window_ms=1000)
    held(obs, GOOD, 50, 2_000)
    held(obs, JAM, 25, 600_000)
    (trigger,) = slow_htlc_jamming(obs, CONFIG)
    assert trigger.rule == "slow-htlc-jamming"
    assert trigger.evidence["slow"] == 25
    assert trigger.evidence["from_peer"] == 25
    assert trigger.evidence["through_peer"] == 0
    assert trigger.evidence["norm_ms"] >= 2_000


def test_big_htlcs_quick_htlcs_or_too_few_do_not_trigger() -> None:
    obs = Observations(window_ms=1000)
    held(obs, GOOD, 50, 2_000)
    held(obs, JAM, 19, 600_000)  # one short of the count
    held(obs, JAM, 30, 600_000, amount=50_000_000)  # large: a slow payee, not a jam
    held(obs, JAM, 30, 20_000)  # under the 30 s floor
    assert slow_htlc_jamming(obs, CONFIG) == []
    held(obs, JAM, 1, 600_000)
    assert [t.peer for t in slow_htlc_jamming(obs, CONFIG)] == [JAM]


def test_when_every_peer_is_slow_nobody_stands_out() -> None:
    obs = Observations(window_ms=1000)
    held(obs, GOOD, 50, 120_000)  # our norm is 2 minutes: 20 min is needed to stand out
    held(obs, JAM, 25, 600_000)
    assert slow_htlc_jamming(obs, CONFIG) == []


def test_a_peer_s_own_forwards_are_left_out_of_its_norm() -> None:
    """J jams through G: the norm of each leaves out the forwards it took part in, so the
    jam does not raise its own bar; both ends are named, with the side they were on."""
    obs = Observations(window_ms=1000)
    for _ in range(25):
        obs.held(JAM, GOOD, SMALL, 600_000, 0)
    for _ in range(40):
        obs.held(OTHER, None, SMALL, 1_500, 0)  # the rest of our traffic
    triggers = {t.peer: t.evidence for t in slow_htlc_jamming(obs, CONFIG)}
    assert set(triggers) == {JAM, GOOD}
    assert triggers[JAM]["from_peer"] == 25
    assert triggers[JAM]["through_peer"] == 0
    assert triggers[GOOD]["through_peer"] == 25
    assert triggers[JAM]["norm_ms"] == 1_500
    obs.forget(JAM)
    assert slow_htlc_jamming(obs, CONFIG) == []


def test_repeated_force_closes_trigger_and_a_channel_counts_once() -> None:
    obs = Observations(window_ms=1000, close_window_ms=10_000)
    obs.force_closed(JAM, "103x1x0", 0)
    obs.force_closed(JAM, "103x1x0", 1)  # the same close seen twice
    assert force_closes(obs, CONFIG) == []
    obs.force_closed(JAM, "104x1x0", 2)
    (trigger,) = force_closes(obs, CONFIG)
    assert trigger.rule == "force-closes"
    assert trigger.evidence["channels"] == ["103x1x0", "104x1x0"]
    obs.prune(5_000)  # past the 1 s window of forwards, within the close window
    assert [t.rule for t in evaluate(obs, CONFIG)] == ["force-closes"]
    obs.prune(10_001)
    assert evaluate(obs, CONFIG) == []


@given(
    st.lists(st.tuples(st.integers(1, 20_000_000), st.integers(0, 3_600_000)), max_size=60),
    st.lists(st.tuples(st.integers(1, 20_000_000), st.integers(0, 3_600_000)), max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_a_jamming_trigger_always_meets_every_threshold(
    jam: list[tuple[int, int]], good: list[tuple[int, int]]
) -> None:
    obs = Observations(window_ms=1000)
    for amount, hold in jam:
        obs.held(JAM, None, amount, hold, 0)
    for amount, hold in good:
        obs.held(GOOD, None, amount, hold, 0)
    triggers = {t.peer: t for t in slow_htlc_jamming(obs, CONFIG)}
    for peer, mine, theirs in ((JAM, jam, good), (GOOD, good, jam)):
        norm = max(statistics.median([h for _, h in theirs]) if theirs else 0, HOLD_NORM_FLOOR_MS)
        threshold = hold_threshold_ms(norm, CONFIG)
        slow = [h for a, h in mine if a <= CONFIG.jam_small_sat * 1000 and h >= threshold]
        # Exactly the peers with enough small, slow forwards trigger, and the evidence says so.
        assert (peer in triggers) == (len(slow) >= CONFIG.jam_min_count)
        if peer in triggers:
            ev = triggers[peer].evidence
            assert ev["slow"] == len(slow)
            assert ev["threshold_ms"] == round(threshold)
            assert ev["threshold_ms"] >= CONFIG.jam_min_hold_s * 1000
            assert ev["threshold_ms"] >= CONFIG.jam_hold_multiple * ev["norm_ms"] - 1


@given(st.lists(st.tuples(st.sampled_from([JAM, GOOD]), st.integers(0, 5)), max_size=30))
def test_force_closes_count_distinct_channels(closes: list[tuple[str, int]]) -> None:
    obs = Observations(window_ms=1000)
    for t, (peer, channel) in enumerate(closes):
        obs.force_closed(peer, f"{channel}x1x0", t)
    triggers = {t.peer: t.evidence["count"] for t in force_closes(obs, CONFIG)}
    for peer in (JAM, GOOD):
        distinct = len({c for p, c in closes if p == peer})
        assert triggers.get(peer, 0) == (distinct if distinct >= 2 else 0)
