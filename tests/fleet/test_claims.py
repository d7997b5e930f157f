"""Judging claims against a lagging graph: unconfirmed vs contradicted, liquidity bounds."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from hive.fleet.claims import MAX_ONCHAIN_SAT, LiquidityNote, Unconfirmed
from hive.fleet.clamp import ClampNote, PublicCapacity
from hive.fleet.statemap import StateMap

from .helpers import both_directions, edge, member_state, node

A, X, Y = node(10), node(20), node(21)
T0 = 1_700_000_000_000
GRACE = 3_600_000
U64 = (1 << 64) - 1


def graph(*pairs: tuple[str, int]) -> PublicCapacity:
    channels = []
    for k, (peer, sat) in enumerate(pairs):
        channels.extend(both_directions(f"1x{k}x0", A, peer, sat))
    return PublicCapacity.from_channels(channels)


def fresh_map() -> StateMap:
    states = StateMap(30_000, grace_ms=GRACE)
    states.set_public_graph(graph(), T0)
    return states


def test_a_claim_the_graph_lacks_is_unconfirmed_not_contradicted() -> None:
    states = fresh_map()
    result = states.update(A, member_state(1, edge(X, 2_000_000)), T0)
    assert result.clamps == ()
    entry = states.entry(A)
    assert entry is not None
    assert entry.clamps == ()
    assert entry.unconfirmed == (Unconfirmed(A, X, 2_000_000, 0, T0),)
    assert entry.effective.topology == ()  # figures count what the graph confirms
    assert states.unconfirmed_members() == [A]
    # Refreshed but within the grace: still only unconfirmed.
    assert states.set_public_graph(graph(), T0 + GRACE - 1, frozenset({A})) == []
    # The graph catches up: confirmed, nothing left pending.
    assert states.set_public_graph(graph((X, 2_000_000)), T0 + GRACE + 1, frozenset({A})) == []
    entry = states.entry(A)
    assert entry is not None
    assert (entry.clamps, entry.unconfirmed) == ((), ())
    assert entry.effective == entry.state
    assert states.unconfirmed_members() == []


def test_contradiction_needs_the_grace_over_and_a_refresh_after_the_record() -> None:
    states = fresh_map()
    states.update(A, member_state(1, edge(X, 2_000_000)), T0)
    half = graph((X, 1_000_000))
    # Grace over, but the member's channels were not fetched since the record arrived.
    assert states.set_public_graph(half, T0 + GRACE) == []
    # A new version does not restart the clock, and is not judged before a refresh either.
    assert states.update(A, member_state(2, edge(X, 2_000_000)), T0 + GRACE + 5).clamps == ()
    notes = states.set_public_graph(half, T0 + GRACE + 6, frozenset({A}))
    assert notes == [ClampNote(A, X, 2_000_000, 1_000_000)]
    # Reported once: the standing clamp survives new versions without being reported again.
    assert states.update(A, member_state(3, edge(X, 2_000_000)), T0 + GRACE + 7).clamps == ()
    entry = states.entry(A)
    assert entry is not None
    assert entry.clamps == (ClampNote(A, X, 2_000_000, 1_000_000),)
    # Mended: the clamp is gone.
    states.update(A, member_state(4, edge(X, 1_000_000)), T0 + GRACE + 8)
    entry = states.entry(A)
    assert entry is not None
    assert (entry.clamps, entry.unconfirmed) == ((), ())


def test_liquidity_beyond_the_claimed_channels_is_contradicted_on_arrival() -> None:
    states = fresh_map()
    states.set_public_graph(graph((X, 1_000_000)), T0, frozenset({A}))
    liar = member_state(1, edge(X, 1_000_000), outbound_msat=U64, inbound_msat=0, onchain_sat=U64)
    result = states.update(A, liar, T0 + 1)
    assert result.clamps == (
        LiquidityNote(A, "outbound+inbound_msat", U64, 1_000_000_000),
        LiquidityNote(A, "onchain_sat", U64, MAX_ONCHAIN_SAT),
    )
    assert "claims outbound+inbound_msat" in result.clamps[0].reason
    entry = states.entry(A)
    assert entry is not None
    assert entry.effective.liquidity.outbound_msat == 1_000_000_000
    assert entry.effective.liquidity.onchain_sat == MAX_ONCHAIN_SAT
    view = states.fleet_view(T0 + 2, {X: 1_000_000})
    (summary,) = view.members
    assert (summary.outbound_msat, summary.clamped) == (1_000_000_000, True)
    # The same lie in the next version is not reported again; a different one is.
    assert states.update(A, attrs.evolve(liar, version=2), T0 + 3).clamps == ()
    bigger = member_state(3, edge(X, 1_000_000), outbound_msat=U64 - 1, inbound_msat=0)
    (note,) = states.update(A, bigger, T0 + 4).clamps
    assert note == LiquidityNote(A, "outbound+inbound_msat", U64 - 1, 1_000_000_000)


def test_liquidity_of_unconfirmed_capacity_is_cut_without_blame() -> None:
    states = fresh_map()
    honest = member_state(
        1, edge(X, 1_000_000), outbound_msat=600_000_000, inbound_msat=400_000_000
    )
    assert states.update(A, honest, T0).clamps == ()
    entry = states.entry(A)
    assert entry is not None
    assert entry.clamps == ()
    liquidity = entry.effective.liquidity
    assert (liquidity.outbound_msat, liquidity.inbound_msat) == (0, 0)


@given(
    capacity=st.integers(0, 10**9),
    confirmed=st.integers(0, 10**9),
    outbound=st.integers(0, U64),
    inbound=st.integers(0, U64),
)
def test_effective_liquidity_never_exceeds_the_confirmed_capacity(
    capacity: int, confirmed: int, outbound: int, inbound: int
) -> None:
    states = StateMap(30_000, grace_ms=GRACE)
    states.set_public_graph(graph((X, confirmed)) if confirmed else graph(), T0, frozenset({A}))
    state = member_state(1, edge(X, capacity), outbound_msat=outbound, inbound_msat=inbound)
    states.update(A, state, T0)
    entry = states.entry(A)
    assert entry is not None
    liquidity = entry.effective.liquidity
    allowed = min(capacity, confirmed) * 1000
    assert liquidity.outbound_msat + liquidity.inbound_msat <= allowed
    assert liquidity.outbound_msat <= outbound
    assert liquidity.inbound_msat <= inbound
    if outbound + inbound <= allowed:
        assert (liquidity.outbound_msat, liquidity.inbound_msat) == (outbound, inbound)


def test_a_target_our_graph_lags_on_has_the_fleet_capacity_as_its_floor() -> None:
    states = fresh_map()
    states.set_public_graph(graph((X, 1_000_000)), T0, frozenset({A}))
    states.update(A, member_state(1, edge(X, 1_000_000)), T0)
    view = states.fleet_view(T0, {})  # the target's own channels are not in our graph yet
    x = view.target(X)
    assert x is not None
    assert (x.public_capacity_sat, x.share) == (1_000_000, 1.0)
    x = states.fleet_view(T0, {X: 4_000_000}).target(X)
    assert x is not None
    assert (x.public_capacity_sat, x.share) == (4_000_000, 0.25)


@given(
    capacities=st.lists(st.integers(1, 10**7), min_size=1, max_size=4),
    reveal_after=st.lists(st.integers(0, GRACE - 1), min_size=4, max_size=4),
    refresh_every=st.integers(30_000, 600_000),
    republish_every=st.integers(30_000, 3_600_000),
)
def test_an_honest_member_whose_channels_reach_the_graph_within_the_grace_is_never_blamed(
    capacities: list[int], reveal_after: list[int], refresh_every: int, republish_every: int
) -> None:
    """Whatever the lag (below the grace), refresh and republication cadence: no note."""
    peers = [node(30 + i) for i in range(len(capacities))]
    total_msat = sum(capacities) * 1000  # an honest member's liquidity fits its channels
    states = fresh_map()
    version = 0
    t = 0
    next_publish = 0
    while t <= GRACE * 2:
        if t >= next_publish:
            version += 1
            state = member_state(
                version,
                *(edge(p, c) for p, c in zip(peers, capacities, strict=False)),
                outbound_msat=total_msat // 3,
                inbound_msat=total_msat - total_msat // 3,
            )
            assert states.update(A, state, T0 + t).clamps == ()
            next_publish = t + republish_every
        known = [
            (p, c)
            for p, c, after in zip(peers, capacities, reveal_after, strict=False)
            if t >= after
        ]
        assert states.set_public_graph(graph(*known), T0 + t, frozenset({A})) == []
        entry = states.entry(A)
        assert entry is not None
        assert entry.clamps == ()
        t += refresh_every
    entry = states.entry(A)
    assert entry is not None
    assert entry.unconfirmed == ()
    assert entry.effective == entry.state


@given(extra=st.integers(1, 10**6), refresh_every=st.integers(30_000, 600_000))
def test_a_liar_is_blamed_once_within_a_refresh_after_the_grace(
    extra: int, refresh_every: int
) -> None:
    states = fresh_map()
    states.update(A, member_state(1, edge(X, 1_000_000 + extra)), T0)
    public = graph((X, 1_000_000))
    notes = []
    t = 0
    while t <= GRACE + refresh_every:
        notes.extend(states.set_public_graph(public, T0 + t, frozenset({A})))
        if t < GRACE:
            assert notes == []
        t += refresh_every
    assert notes == [ClampNote(A, X, 1_000_000 + extra, 1_000_000)]
