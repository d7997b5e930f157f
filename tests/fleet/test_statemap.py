"""The state map: versions, deltas and gaps, staleness, digests, clamping, the fleet view."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.fleet.clamp import ClampNote, PublicCapacity
from hive.fleet.statemap import Outcome, StateMap
from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.state import (
    DigestEntry,
    compare,
    diff,
    digest_versions,
    keepalive,
    make_digest,
)

from .helpers import both_directions, edge, member_state, node

A, B, C = node(10), node(11), node(12)  # members
X, Y, Z, W = node(20), node(21), node(22), node(23)  # external targets
STALE_AFTER = 30_000
T0 = 1_700_000_000_000
GRACE = 3_600_000


def test_stale_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stale_after_ms"):
        StateMap(0)


def test_snapshots_keep_the_newest_version() -> None:
    states = StateMap(STALE_AFTER)
    assert states.update(A, member_state(5, edge(X, 1)), T0).outcome is Outcome.APPLIED
    assert states.update(A, member_state(4, edge(X, 2)), T0 + 1).outcome is Outcome.OLDER
    assert states.update(A, member_state(5, edge(X, 3)), T0 + 2).outcome is Outcome.CURRENT
    assert states.version_of(A) == 5
    entry = states.entry(A)
    assert entry is not None
    assert entry.state == member_state(5, edge(X, 1))
    assert (entry.updated_ms, entry.heard_ms) == (T0, T0 + 2)
    assert states.update(A, member_state(6), T0 + 3).applied
    assert states.version_of(A) == 6
    assert states.version_of(B) is None


def test_deltas_apply_and_gaps_raise() -> None:
    states = StateMap(STALE_AFTER)
    v1 = member_state(1, edge(X, 100))
    v2 = member_state(2, edge(X, 100), edge(Y, 50))
    v3 = member_state(3, edge(Y, 60))
    with pytest.raises(ProtocolError) as info:
        states.apply_delta(A, diff(v1, v2), T0)
    assert info.value.reason == "delta-gap"
    assert "no state" in info.value.detail
    states.update(A, v1, T0)
    with pytest.raises(ProtocolError) as info:
        states.apply_delta(A, diff(v2, v3), T0)  # we missed v2
    assert info.value.reason == "delta-gap"
    assert states.version_of(A) == 1
    assert states.apply_delta(A, diff(v1, v2), T0 + 1).outcome is Outcome.APPLIED
    assert states.apply_delta(A, diff(v1, v2), T0 + 2).outcome is Outcome.CURRENT  # duplicate
    assert states.apply_delta(A, diff(v2, v3), T0 + 3).applied
    entry = states.entry(A)
    assert entry is not None
    assert entry.state == v3
    assert states.apply_delta(A, diff(v1, v2), T0 + 4).outcome is Outcome.OLDER
    assert states.apply_delta(A, keepalive(v3), T0 + 5).outcome is Outcome.CURRENT
    entry = states.entry(A)
    assert entry is not None
    assert (entry.heard_ms, entry.updated_ms) == (T0 + 5, T0 + 3)


def test_a_keepalive_from_ahead_reveals_the_gap() -> None:
    states = StateMap(STALE_AFTER)
    states.update(A, member_state(1), T0)
    with pytest.raises(ProtocolError) as info:
        states.apply_delta(A, keepalive(member_state(4)), T0)
    assert info.value.reason == "delta-gap"


def test_a_silent_member_goes_stale_and_comes_back() -> None:
    states = StateMap(STALE_AFTER)
    states.update(A, member_state(1, edge(X, 100)), T0)
    states.update(B, member_state(1, edge(X, 200)), T0)
    assert states.stale(T0 + STALE_AFTER) == set()
    states.apply_delta(A, keepalive(member_state(1)), T0 + 20_000)
    assert states.stale(T0 + STALE_AFTER + 1) == {B}
    view = states.fleet_view(T0 + STALE_AFTER + 1, {X: 1000})
    assert view.stale == (B,)
    assert [m.member for m in view.members] == [A]
    target = view.target(X)
    assert target is not None
    assert (target.fleet_capacity_sat, target.members) == (100, (A,))
    # B speaks again (any accepted frame of its counts): fresh, and back in the figures.
    states.touch(B, T0 + 40_000)
    assert states.stale(T0 + 40_001) == set()
    target = states.fleet_view(T0 + 40_001, {X: 1000}).target(X)
    assert target is not None
    assert target.fleet_capacity_sat == 300
    assert states.stale(T0 + 40_000 + STALE_AFTER + 1) == {A, B}


@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=10))
def test_stale_means_silent_for_longer_than_the_bound(heard: list[int]) -> None:
    states = StateMap(STALE_AFTER)
    states.update(A, member_state(1), T0)
    for offset in heard:
        states.touch(A, T0 + offset)
    last = max([0, *heard])
    assert not states.is_stale(A, T0 + last + STALE_AFTER)
    assert states.is_stale(A, T0 + last + STALE_AFTER + 1)


def test_digest_entries_and_repair_by_compare() -> None:
    ours, theirs = StateMap(STALE_AFTER), StateMap(STALE_AFTER)
    keys = {A: b"\x0a" * 32, B: b"\x0b" * 32, C: b"\x0c" * 32}
    ours.update(A, member_state(3), T0)
    ours.update(B, member_state(1), T0)
    theirs.update(B, member_state(2), T0)
    theirs.update(C, member_state(7), T0)
    assert ours.digest_entries(keys) == (
        DigestEntry(origin=keys[A], version=3),
        DigestEntry(origin=keys[B], version=1),
    )
    assert ours.digest_entries({B: keys[B]}) == (DigestEntry(origin=keys[B], version=1),)
    mine = digest_versions(make_digest({e.origin: e.version for e in ours.digest_entries(keys)}))
    yours = {e.origin: e.version for e in theirs.digest_entries(keys)}
    assert compare(mine, yours) == ([keys[A]], [keys[B], keys[C]])


def test_fleet_view_figures_on_a_hand_built_fleet() -> None:
    states = StateMap(STALE_AFTER)
    states.update(A, member_state(1, edge(X, 1_000_000), edge(Y, 500_000), edge(B, 200_000)), T0)
    states.update(
        B,
        member_state(1, edge(X, 3_000_000), edge(W, 10), outbound_msat=7, onchain_sat=9),
        T0 + 5_000,
    )
    states.update(C, member_state(1, edge(Z, 100)), T0 - STALE_AFTER)
    public = {X: 10_000_000, Y: 1_000_000, Z: 1_000, A: 1, B: 1}
    view = states.fleet_view(T0 + 10_000, public)
    assert [t.target for t in view.targets] == sorted([X, Y, W])  # no member, no stale member's
    x, y, w = view.target(X), view.target(Y), view.target(W)
    assert x is not None
    assert y is not None
    assert w is not None
    assert (x.fleet_capacity_sat, x.members, x.member_count, x.share) == (4_000_000, (A, B), 2, 0.4)
    assert (y.fleet_capacity_sat, y.members, y.share) == (500_000, (A,), 0.5)
    assert (w.public_capacity_sat, w.share) == (None, None)
    assert view.target(Z) is None
    assert view.coverage == 3
    assert view.fleet_capacity_sat == 4_500_010
    assert view.stale == (C,)
    a, b = view.members
    assert (a.member, a.channels, a.capacity_sat, a.age_ms) == (A, 3, 1_700_000, 10_000)
    assert (b.member, b.outbound_msat, b.onchain_sat, b.age_ms) == (B, 7, 9, 5_000)
    encoded = json.loads(json.dumps(view.to_json()))
    assert encoded["coverage"] == 3
    assert encoded["targets"][0]["target"] == view.targets[0].target
    assert encoded["members"][1]["outbound_msat"] == 7


def test_clamping_in_the_map_keeps_the_signed_record() -> None:
    states = StateMap(STALE_AFTER, grace_ms=GRACE)
    liar = member_state(1, edge(X, 9_000_000))
    honest = member_state(1, edge(X, 1_000_000))
    assert states.update(A, liar, T0).clamps == ()  # no graph known yet: taken as claimed
    graph = PublicCapacity.from_channels(
        [*both_directions("1x1x1", A, X, 2_000_000), *both_directions("1x1x2", B, X, 1_000_000)]
    )
    # Judged at once only when the grace is over and the liar's channels were just fetched.
    assert states.set_public_graph(graph, T0) == []
    new_clamps = states.set_public_graph(graph, T0 + GRACE, frozenset({A}))
    assert new_clamps == [ClampNote(A, X, 9_000_000, 2_000_000)]
    assert states.update(B, honest, T0).clamps == ()
    entry = states.entry(A)
    assert entry is not None
    assert entry.state == liar  # deltas and digests work on what A signed
    assert entry.effective.capacity_by_peer() == {bytes.fromhex(X): 2_000_000}
    view = states.fleet_view(T0, graph.totals)
    x = view.target(X)
    assert x is not None
    assert x.fleet_capacity_sat == 3_000_000
    assert x.share == 1.0
    assert [m.clamped for m in view.members] == [True, False]
    # A later version with the same lie stays clamped on arrival, and the standing clamp is
    # not reported again, on arrival or on refresh.
    result = states.apply_delta(A, diff(liar, attrs.evolve(liar, version=2)), T0 + GRACE + 1)
    assert result.clamps == ()
    entry = states.entry(A)
    assert entry is not None
    assert entry.clamps == (ClampNote(A, X, 9_000_000, 2_000_000),)
    assert states.set_public_graph(graph, T0 + GRACE + 2, frozenset({A})) == []
    assert states.set_public_graph(None, T0 + GRACE + 3) == []
    entry = states.entry(A)
    assert entry is not None
    assert entry.effective == entry.state


def test_describe_and_remove() -> None:
    states = StateMap(STALE_AFTER)
    states.update(A, member_state(4, edge(X, 5)), T0)
    described = states.describe(A, T0 + 7)
    assert described is not None
    assert json.loads(json.dumps(described)) == described
    assert (described["version"], described["age_ms"], described["stale"]) == (4, 7, False)
    assert described["state"]["topology"] == [
        {"peer": X, "capacity_sat": 5, "local_share_ppm": 500_000}
    ]
    assert states.describe(B, T0) is None
    assert states.members() == [A]
    assert states.remove(A)
    assert not states.remove(A)
    assert A not in states
    assert len(states) == 0
