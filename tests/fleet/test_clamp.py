"""Clamping capacity claims to the public graph."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hive.fleet.clamp import CLAMP_REASON, ClampNote, PublicCapacity, clamp

from .helpers import both_directions, channel, edge, member_state, node

M, P, Q, R = node(1), node(2), node(3), node(4)


def test_public_capacity_counts_each_channel_once() -> None:
    graph = PublicCapacity.from_channels(
        [
            *both_directions("1x1x1", M, P, 400),
            channel("1x1x2", P, M, 100),
            channel("2x2x2", P, Q, 7),
        ]
    )
    assert graph.between(M, P) == graph.between(P, M) == 500
    assert graph.between(M, Q) == 0
    assert graph.total(P) == 507
    assert graph.total(M) == 500
    assert graph.total(R) == 0


def test_truthful_member_is_untouched() -> None:
    state = member_state(3, edge(P, 300), edge(P, 200), edge(Q, 50))
    channels = [*both_directions("1x1x1", M, P, 500), channel("1x1x3", Q, M, 60)]
    clamped, notes = clamp(M, state, channels)
    assert clamped is state
    assert notes == ()


def test_lying_member_is_clamped_with_figures() -> None:
    state = member_state(3, edge(P, 5_000_000), edge(Q, 50), edge(R, 70))
    channels = [*both_directions("1x1x1", M, P, 1_000_000), channel("1x1x3", Q, M, 60)]
    clamped, notes = clamp(M, state, channels)
    assert clamped.capacity_by_peer() == {bytes.fromhex(P): 1_000_000, bytes.fromhex(Q): 50}
    assert clamped.version == state.version
    assert clamped.liquidity == state.liquidity
    assert notes == (ClampNote(M, P, 5_000_000, 1_000_000), ClampNote(M, R, 70, 0))
    assert "claims 5000000 sat" in notes[0].reason
    assert "hold 1000000 sat" in notes[0].reason
    assert "cut 4000000 sat" in notes[0].reason
    reputation = notes[1].as_reputation(count=2)
    assert (reputation.peer, reputation.reason, reputation.count) == (
        bytes.fromhex(M),
        CLAMP_REASON,
        2,
    )


def test_several_edges_to_one_peer_share_the_allowance() -> None:
    state = member_state(1, edge(P, 600), edge(P, 300), edge(P, 100))
    clamped, notes = clamp(M, state, PublicCapacity.from_channels([channel("9x9x9", M, P, 700)]))
    # Canonical order (by capacity within a peer) decides who keeps what: 100, 300, then 300.
    assert [e.capacity_sat for e in clamped.topology] == [100, 300, 300]
    assert notes == (ClampNote(M, P, 1000, 700),)


claims = st.lists(st.tuples(st.sampled_from([P, Q, R]), st.integers(0, 1000)), max_size=8)
publics = st.dictionaries(st.sampled_from([P, Q, R]), st.integers(0, 1500))


@given(claims, publics)
def test_clamped_claims_are_the_minimum_of_claim_and_public(
    claimed: list[tuple[str, int]], public: dict[str, int]
) -> None:
    state = member_state(1, *(edge(peer, sat) for peer, sat in claimed))
    channels = [channel(f"1x{i}x0", M, peer, sat) for i, (peer, sat) in enumerate(public.items())]
    clamped, notes = clamp(M, state, channels)
    before = {peer.hex(): sat for peer, sat in state.capacity_by_peer().items()}
    after = {peer.hex(): sat for peer, sat in clamped.capacity_by_peer().items()}
    for peer, sat in before.items():
        assert after.get(peer, 0) == min(sat, public.get(peer, 0))
    assert {note.peer for note in notes} == {
        peer for peer, sat in before.items() if sat > public.get(peer, 0)
    }
    assert all(e.capacity_sat > 0 for e in clamped.topology if e not in state.topology)
