"""Our own state record from the node's channels, and what counts as a material change."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from hive.fleet.own import Earnings, MaterialPolicy, build_state, material_change, same_content
from hive.node.port import ChannelState, ChannelView, FeePolicy

from .helpers import node

FEE = FeePolicy(base_msat=1000, ppm=10)


def channel(peer: int, capacity_sat: int, local_sat: int, state: ChannelState) -> ChannelView:
    return ChannelView(
        peer_id=node(peer),
        short_channel_id=f"1x{peer}x0",
        state=state,
        capacity_msat=capacity_sat * 1000,
        local_msat=local_sat * 1000,
        remote_msat=(capacity_sat - local_sat) * 1000,
        our_fee=FEE,
    )


def test_private_channels_count_neither_in_liquidity_nor_in_the_topology() -> None:
    # Members cut liquidity to the public capacity they can check: private channels in the
    # liquidity would get an honest member clamped.
    public = channel(1, 1_000_000, 250_000, ChannelState.NORMAL)
    private = attrs.evolve(channel(2, 2_000_000, 500_000, ChannelState.NORMAL), private=True)
    state = build_state(1, [public, private], 0)
    assert [edge.peer for edge in state.topology] == [bytes.fromhex(node(1))]
    assert state.liquidity.outbound_msat == 250_000 * 1000
    assert state.liquidity.inbound_msat == 750_000 * 1000


def test_build_state_counts_normal_channels_only() -> None:
    channels = [
        channel(1, 1_000_000, 250_000, ChannelState.NORMAL),
        channel(2, 2_000_000, 2_000_000, ChannelState.OPENING),
        channel(3, 4_000_000, 1_000_000, ChannelState.NORMAL),
    ]
    earnings = {node(3): Earnings(earned_msat=500, forwards=2), node(1): Earnings(0, 0)}
    state = build_state(7, channels, 123, earnings=earnings)
    assert state.version == 7
    assert [(e.peer.hex(), e.capacity_sat, e.local_share_ppm) for e in state.topology] == [
        (node(1), 1_000_000, 250_000),
        (node(3), 4_000_000, 250_000),
    ]
    assert state.liquidity.outbound_msat == 1_250_000_000
    assert state.liquidity.inbound_msat == 3_750_000_000
    assert state.liquidity.onchain_sat == 123
    assert [(o.peer.hex(), o.earned_msat, o.forwards) for o in state.opportunities] == [
        (node(3), 500, 2)
    ]


POLICY = MaterialPolicy(share_change_ppm=50_000, liquidity_fraction=0.10)


def test_material_changes_and_their_reasons() -> None:
    base = build_state(1, [channel(1, 1_000_000, 500_000, ChannelState.NORMAL)], 1000)
    same = build_state(2, [channel(1, 1_000_000, 520_000, ChannelState.NORMAL)], 1000)
    assert material_change(base, same, POLICY) is None  # 2 points of share, 4% of outbound
    assert not same_content(base, same)
    moved = build_state(2, [channel(1, 1_000_000, 600_000, ChannelState.NORMAL)], 1000)
    assert material_change(base, moved, POLICY) == (
        f"local share with {node(1)} moved from 50.0% to 60.0%"
    )
    added = build_state(
        2,
        [
            channel(1, 1_000_000, 500_000, ChannelState.NORMAL),
            channel(2, 1_000_000, 0, ChannelState.NORMAL),
        ],
        1000,
    )
    assert material_change(base, added, POLICY) == f"channel to {node(2)} added"
    assert material_change(added, base, POLICY) == f"channel to {node(2)} removed"
    richer = build_state(2, [channel(1, 1_000_000, 500_000, ChannelState.NORMAL)], 1101)
    assert material_change(base, richer, POLICY) == "onchain_sat moved from 1000 to 1101"
    assert same_content(base, attrs.evolve(base, version=9))


@given(
    share=st.integers(min_value=1_000, max_value=999_000),
    delta=st.integers(min_value=-1_000_000, max_value=1_000_000),
)
def test_share_moves_are_material_exactly_beyond_the_threshold(share: int, delta: int) -> None:
    # Neither side reaches zero: a move from or to zero liquidity is material by itself.
    new_share = min(999_000, max(1_000, share + delta))
    capacity = 1_000_000
    old = build_state(1, [channel(1, capacity, share, ChannelState.NORMAL)], 0)
    new = build_state(2, [channel(1, capacity, new_share, ChannelState.NORMAL)], 0)
    old_ppm = old.topology[0].local_share_ppm
    new_ppm = new.topology[0].local_share_ppm
    reason = material_change(
        old, new, MaterialPolicy(share_change_ppm=50_000, liquidity_fraction=1e9)
    )
    assert (reason is not None) == (abs(new_ppm - old_ppm) > 50_000)
