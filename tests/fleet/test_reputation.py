"""Score arithmetic of the contribution ratio (Hypothesis) and its standings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.fleet.reputation import DAY_MS, Inputs, ReputationRules, score

RULES = ReputationRules()
SAT = 1000
NOW = 100 * DAY_MS
OLD = 0


def test_no_history_is_new_not_a_leech() -> None:
    s = score(Inputs("m", NOW - DAY_MS, 0, 0), NOW)
    assert s.standing == "new"
    assert s.ratio == 1.0
    young_taker = score(Inputs("m", NOW - DAY_MS, 0, 50_000_000 * SAT), NOW)
    assert young_taker.standing == "new"


def test_standings_after_the_grace() -> None:
    assert score(Inputs("m", OLD, 0, 20_000_000 * SAT), NOW).standing == "leech"
    assert score(Inputs("m", OLD, 20_000_000 * SAT, 0), NOW).standing == "contributor"
    assert score(Inputs("m", OLD, 10_000_000 * SAT, 9_000_000 * SAT), NOW).standing == "balanced"


def test_a_claim_below_what_we_saw_is_a_note_and_does_not_count() -> None:
    s = score(Inputs("m", OLD, 1_000 * SAT, 0, observed_provided_msat=8_000_000 * SAT), NOW)
    assert s.provided_msat == 8_000_000 * SAT
    assert any("we saw" in n for n in s.notes)
    fine = score(Inputs("m", OLD, 8_000_000 * SAT, 0, observed_provided_msat=7_900_000 * SAT), NOW)
    assert fine.notes == ()


amounts = st.integers(0, 10**15)


@given(amounts, amounts, amounts, amounts)
@settings(max_examples=300)
def test_score_arithmetic(p: int, c: int, seen: int, more: int) -> None:
    s = score(Inputs("m", OLD, p, c, seen), NOW)
    assert s.provided_msat == max(p, seen) >= seen
    assert s.ratio > 0
    # Providing more never lowers the ratio; consuming more never raises it.
    assert score(Inputs("m", OLD, p + more, c, seen), NOW).ratio >= s.ratio
    assert score(Inputs("m", OLD, p, c + more, seen), NOW).ratio <= s.ratio
    if s.standing == "leech":
        assert s.provided_msat + s.consumed_msat >= RULES.min_volume_msat
        assert s.ratio < RULES.leech_below
