"""State gossip records and messages: canonical form, diff/apply, delta gaps, digests, size."""

from __future__ import annotations

import random

import attrs
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.state import (
    MAX_EDGES,
    MAX_RELAYED_FRAME,
    ChannelBalance,
    DigestEntry,
    Liquidity,
    MemberState,
    Opportunity,
    PeerEdge,
    RebalanceTotals,
    Relayed,
    ReputationNote,
    StateDelta,
    StateDigest,
    StateRequest,
    StateSnapshot,
    apply,
    compare,
    diff,
    digest_versions,
    first_version,
    keepalive,
    make_digest,
)
from hive.protocol.messages import REGISTRY, Message
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import decode_message, encode_message, unstructure
from hive.protocol.wire.envelope import MAX_CUSTOM_PAYLOAD, MAX_FRAME_LEN, MIN_FRAME_LEN
from hive.protocol.wire.facade import HiveWire, WireLimits

from . import strategies

NOW = 1_700_000_000_000
GOSSIP_KINDS: list[type[Message]] = [
    StateSnapshot,
    StateDelta,
    StateRequest,
    StateDigest,
    Relayed,
]

# A small pool of peers, so that generated states share peers and deltas have work to do.
PEERS = [bytes([2 + i % 2]) + bytes([i]) * 32 for i in range(8)]
peers = st.sampled_from(PEERS)
edges = st.builds(
    PeerEdge,
    peer=peers,
    capacity_sat=st.integers(0, 10**9),
    local_share_ppm=st.integers(0, 10**6),
)
liquidity = st.builds(
    Liquidity,
    outbound_msat=st.integers(0, 3),
    inbound_msat=st.integers(0, 3),
    onchain_sat=st.integers(0, 3),
)
notes = st.builds(
    ReputationNote, peer=peers, reason=st.sampled_from(["a", "b"]), count=st.integers(0, 2)
)
opportunities = st.builds(
    Opportunity, peer=peers, earned_msat=st.integers(0, 2), forwards=st.integers(0, 2)
)

# rebalancing (issue 15)
channel_balances = st.builds(
    ChannelBalance,
    peer=peers,
    surplus_out_msat=st.integers(0, 2),
    deficit_out_msat=st.integers(0, 2),
    surplus_in_msat=st.integers(0, 2),
    deficit_in_msat=st.integers(0, 2),
)
rebalance_totals = st.builds(
    RebalanceTotals,
    provided_msat=st.integers(0, 2),
    consumed_msat=st.integers(0, 2),
    fees_paid_msat=st.integers(0, 2),
    rebalances=st.integers(0, 2),
)


SMALL_VERSIONS = st.integers(0, 100)


def states(version: st.SearchStrategy[int] = SMALL_VERSIONS) -> st.SearchStrategy[MemberState]:
    return st.builds(
        MemberState,
        version=version,
        topology=st.lists(edges, max_size=12).map(tuple),
        liquidity=liquidity,
        reputation=st.lists(notes, max_size=4).map(tuple),
        opportunities=st.lists(opportunities, max_size=4).map(tuple),
        balances=st.lists(channel_balances, max_size=4).map(tuple),
        rebalancing=rebalance_totals,
    )


def edge(index: int, capacity: int = 1_000_000, share: int = 500_000) -> PeerEdge:
    return PeerEdge(peer=PEERS[index], capacity_sat=capacity, local_share_ppm=share)


def state(version: int, *topology: PeerEdge, outbound: int = 1) -> MemberState:
    return MemberState(
        version=version,
        topology=topology,
        liquidity=Liquidity(outbound_msat=outbound, inbound_msat=2, onchain_sat=3),
        reputation=(),
        opportunities=(),
    )


def big_state(channels: int, *, version: int = 7) -> MemberState:
    """A realistic large state: ``channels`` edges, full reputation and opportunity lists."""
    return MemberState(
        version=version,
        topology=tuple(
            PeerEdge(
                peer=b"\x02" + i.to_bytes(32, "big"),
                capacity_sat=5_000_000 + i * 1000,
                local_share_ppm=(i * 7919) % 1_000_001,
            )
            for i in range(channels)
        ),
        liquidity=Liquidity(outbound_msat=10**12, inbound_msat=10**12, onchain_sat=10**8),
        reputation=tuple(
            ReputationNote(peer=b"\x03" + i.to_bytes(32, "big"), reason="x" * 32, count=i)
            for i in range(100)
        ),
        opportunities=tuple(
            Opportunity(peer=b"\x03" + i.to_bytes(32, "big"), earned_msat=10**9, forwards=i)
            for i in range(100)
        ),
    )


# --- registration and round trips -------------------------------------------------------------


def test_gossip_kinds_are_registered_in_their_range() -> None:
    for cls in GOSSIP_KINDS:
        kind = REGISTRY.kind_of(cls)
        assert 0x0040 <= kind <= 0x004F
        assert REGISTRY.by_kind(kind) is cls
    assert set(GOSSIP_KINDS) <= set(REGISTRY)  # so strategies.any_message() draws them too


@pytest.mark.parametrize("cls", GOSSIP_KINDS, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_gossip_kind_round_trips(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(strategies.for_class(cls))
    kind, payload = encode_message(message)
    decoded = decode_message(kind, payload)
    assert decoded == message
    assert encode_message(decoded) == (kind, payload)


@given(states(), st.randoms(use_true_random=False))
def test_order_of_parts_does_not_change_the_encoding(
    value: MemberState, rnd: random.Random
) -> None:
    def shuffled(items: tuple[object, ...]) -> tuple[object, ...]:
        items_list = list(items)
        rnd.shuffle(items_list)
        return tuple(items_list)

    permuted = MemberState(
        version=value.version,
        topology=shuffled(value.topology),  # type: ignore[arg-type]
        liquidity=value.liquidity,
        reputation=shuffled(value.reputation),  # type: ignore[arg-type]
        opportunities=shuffled(value.opportunities),  # type: ignore[arg-type]
        balances=shuffled(value.balances),  # type: ignore[arg-type]
        rebalancing=value.rebalancing,
    )
    assert permuted == value
    assert encode_message(StateSnapshot(state=permuted)) == encode_message(
        StateSnapshot(state=value)
    )


def test_an_unsorted_body_decodes_to_the_canonical_order() -> None:
    raw = unstructure(StateSnapshot(state=state(1, edge(0), edge(1))))
    raw["state"]["topology"].reverse()
    decoded = decode_message(REGISTRY.kind_of(StateSnapshot), cbor.encode(raw))
    assert isinstance(decoded, StateSnapshot)
    assert [e.peer for e in decoded.state.topology] == [PEERS[0], PEERS[1]]


def test_removed_is_a_sorted_set() -> None:
    delta = attrs.evolve(keepalive(state(1)), removed=(PEERS[3], PEERS[1], PEERS[3]))
    assert delta.removed == (PEERS[1], PEERS[3])


def test_record_bounds() -> None:
    with pytest.raises(ValueError, match="reason: text longer than 32 bytes"):
        ReputationNote(peer=PEERS[0], reason="x" * 33, count=1)
    with pytest.raises(ValueError, match="reason"):
        ReputationNote(peer=PEERS[0], reason="", count=1)
    with pytest.raises(ValueError, match="local_share_ppm"):
        PeerEdge(peer=PEERS[0], capacity_sat=1, local_share_ppm=1_000_001)
    with pytest.raises(ValueError, match="peer: 32 bytes"):
        PeerEdge(peer=bytes(32), capacity_sat=1, local_share_ppm=0)
    with pytest.raises(ValueError, match="topology: 1001 items"):
        state(1, *[edge(0)] * (MAX_EDGES + 1))
    with pytest.raises(ValueError, match="hops_left"):
        Relayed(hops_left=9, frame=bytes(MIN_FRAME_LEN))
    with pytest.raises(ValueError, match="hops_left"):
        Relayed(hops_left=0, frame=bytes(MIN_FRAME_LEN))
    with pytest.raises(TypeError, match="topology"):
        MemberState(
            version=1,
            topology=[edge(0)],  # type: ignore[arg-type]
            liquidity=Liquidity(outbound_msat=0, inbound_msat=0, onchain_sat=0),
            reputation=(),
            opportunities=(),
        )


def test_largest_relayed_frame_fits_the_outer_frame_limit() -> None:
    biggest = Relayed(hops_left=8, frame=bytes(MAX_RELAYED_FRAME))
    _kind, payload = encode_message(biggest)
    assert MIN_FRAME_LEN + len(payload) == MAX_FRAME_LEN
    with pytest.raises(ValueError, match="frame"):
        Relayed(hops_left=8, frame=bytes(MAX_RELAYED_FRAME + 1))


# --- diff / apply -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(states(st.integers(0, 50)), states(st.integers(51, 100)))
def test_apply_of_diff_gives_the_new_state(old: MemberState, new: MemberState) -> None:
    delta = diff(old, new)
    assert delta.base_version == old.version
    assert delta.version == new.version
    assert apply(old, delta) == new
    # The delta survives the wire too.
    kind, payload = encode_message(delta)
    assert apply(old, decode_message(kind, payload)) == new  # type: ignore[arg-type]


@given(states(st.integers(0, 50)), states(st.integers(51, 100)))
def test_diff_names_only_what_changed(old: MemberState, new: MemberState) -> None:
    delta = diff(old, new)
    new_peers = {e.peer for e in new.topology}
    for peer in {e.peer for e in delta.upserts}:
        assert [e for e in old.topology if e.peer == peer] != [
            e for e in new.topology if e.peer == peer
        ]
    assert set(delta.removed) == {e.peer for e in old.topology} - new_peers
    assert (delta.liquidity is None) == (old.liquidity == new.liquidity)
    assert (delta.reputation is None) == (old.reputation == new.reputation)


def test_diff_of_an_unchanged_state_is_empty() -> None:
    old = state(1, edge(0), edge(1))
    delta = diff(old, attrs.evolve(old, version=2))
    assert delta.is_empty
    assert delta.base_version == 1
    assert delta.version == 2


def test_diff_example() -> None:
    old = state(1, edge(0), edge(1), edge(2))
    new = state(2, edge(0), edge(1, capacity=5), edge(1, capacity=6), edge(3), outbound=9)
    delta = diff(old, new)
    assert delta.upserts == (edge(1, capacity=5), edge(1, capacity=6), edge(3))
    assert delta.removed == (PEERS[2],)
    assert delta.liquidity == new.liquidity
    assert delta.reputation is None
    assert delta.opportunities is None
    assert apply(old, delta) == new


def test_diff_refuses_going_backwards() -> None:
    with pytest.raises(ValueError, match="versions must grow"):
        diff(state(5), state(4))
    with pytest.raises(ValueError, match="versions must grow"):
        diff(state(5, edge(0)), state(5))


@given(states(), st.integers(0, 200).filter(lambda v: v != 0))
def test_a_delta_from_another_base_is_a_gap(old: MemberState, shift: int) -> None:
    new = attrs.evolve(old, version=old.version + 300)
    delta = attrs.evolve(diff(old, new), base_version=old.version + shift)
    with pytest.raises(ProtocolError) as info:
        apply(old, delta)
    assert info.value.reason == "delta-gap"
    assert str(old.version) in info.value.detail


def test_keepalive_leaves_the_state_and_shows_a_gap_to_who_is_behind() -> None:
    current = state(9, edge(0))
    assert keepalive(current).is_empty
    assert apply(current, keepalive(current)) is current
    with pytest.raises(ProtocolError) as info:
        apply(state(8), keepalive(current))
    assert info.value.reason == "delta-gap"


def test_malformed_deltas_are_bad_fields() -> None:
    old = state(5)
    backwards = attrs.evolve(keepalive(old), version=4)
    changes_in_keepalive = attrs.evolve(keepalive(old), upserts=(edge(0),))
    for delta in (backwards, changes_in_keepalive):
        with pytest.raises(ProtocolError) as info:
            apply(old, delta)
        assert info.value.reason == "bad-field"


def test_a_delta_may_not_grow_the_topology_past_its_bound() -> None:
    old = state(1, *[edge(0)] * MAX_EDGES)
    delta = attrs.evolve(keepalive(old), version=2, upserts=(edge(1),))
    with pytest.raises(ProtocolError) as info:
        apply(old, delta)
    assert info.value.reason == "bad-field"
    assert "1001 edges" in info.value.detail


def test_first_version_grows_across_restarts() -> None:
    assert first_version(None, NOW) == NOW * 1000
    assert first_version(NOW * 1000 + 5, NOW) == NOW * 1000 + 6
    assert first_version(3, NOW) == NOW * 1000


# --- anti-entropy -----------------------------------------------------------------------------

versions = st.dictionaries(st.sampled_from([bytes([i]) * 32 for i in range(6)]), st.integers(0, 5))


@given(versions, versions)
def test_compare_is_symmetric(a: dict[bytes, int], b: dict[bytes, int]) -> None:
    a_sends, a_requests = compare(a, b)
    b_sends, b_requests = compare(b, a)
    assert a_sends == b_requests
    assert a_requests == b_sends
    assert not set(a_sends) & set(a_requests)


@given(versions, versions)
def test_sending_what_compare_says_converges(a: dict[bytes, int], b: dict[bytes, int]) -> None:
    a_sends, a_requests = compare(a, b)
    merged_b = {**b, **{key: a[key] for key in a_sends}}
    merged_a = {**a, **{key: b[key] for key in a_requests}}
    assert merged_a == merged_b
    assert compare(merged_a, merged_b) == ([], [])


def test_compare_example() -> None:
    x, y, z, w = (bytes([i]) * 32 for i in range(4))
    ours = {x: 5, y: 3, z: 1}
    theirs = {x: 5, y: 4, w: 2}
    assert compare(ours, theirs) == ([z], [y, w])  # sorted: y (0x01..) before w (0x03..)


def test_digest_round_trip_and_duplicates() -> None:
    x, y = bytes([1]) * 32, bytes([2]) * 32
    digest = make_digest({y: 4, x: 9})
    assert digest.entries == (DigestEntry(origin=x, version=9), DigestEntry(origin=y, version=4))
    assert digest_versions(digest) == {x: 9, y: 4}
    repeated = StateDigest(
        entries=(DigestEntry(origin=x, version=3), DigestEntry(origin=x, version=7))
    )
    assert digest_versions(repeated) == {x: 7}


# --- size: a big node's snapshot through the wire ---------------------------------------------


def _through_wire(message: Message, limits: WireLimits) -> tuple[list[bytes], Message]:
    alice = HiveWire(nacl.signing.SigningKey(b"\x0a" * 32), first_seq=1, limits=limits)
    bob = HiveWire(nacl.signing.SigningKey(b"\x0b" * 32), first_seq=1, limits=limits)
    datas = alice.pack(message, NOW, msg_id=42)
    random.Random(1).shuffle(datas)
    results = [bob.unpack("alice", data, NOW) for data in datas]
    assert results[:-1] == [None] * (len(datas) - 1)
    final = results[-1]
    assert final is not None
    return datas, final.message


def test_a_500_channel_snapshot_fragments_and_reassembles() -> None:
    snapshot = StateSnapshot(state=big_state(500))
    # With 16 KB fragments (the default is one whole custom message, about 64 KB).
    limits = WireLimits(chunk_size=16_000, max_single_frame=16_000)
    datas, received = _through_wire(snapshot, limits)
    assert len(datas) >= 4
    assert received == snapshot


def test_a_500_channel_snapshot_with_default_limits() -> None:
    snapshot = StateSnapshot(state=big_state(500))
    body = len(encode_message(snapshot)[1])
    assert 50_000 < body < MAX_CUSTOM_PAYLOAD  # 55994 bytes: one custom message holds it
    datas, received = _through_wire(snapshot, WireLimits())
    assert len(datas) == 1
    assert received == snapshot


def test_the_largest_snapshot_fragments_with_default_limits() -> None:
    snapshot = StateSnapshot(state=big_state(MAX_EDGES))
    datas, received = _through_wire(snapshot, WireLimits())
    assert len(datas) == 2
    assert all(len(data) <= 65535 for data in datas)
    assert received == snapshot


def test_a_record_without_the_rebalancing_fields_is_a_bad_field() -> None:
    """Every field is present on the wire (PROTOCOL.md section 5), the new ones too."""
    new = state(5, edge(1))
    kind, payload = encode_message(StateSnapshot(state=new))
    body = cbor.decode(payload)
    del body["state"]["balances"]
    with pytest.raises(ProtocolError, match="missing field"):
        decode_message(kind, cbor.encode(body))


def test_a_delta_carries_changed_balances_and_totals() -> None:
    old = state(1, edge(1))
    balance = ChannelBalance(
        peer=old.topology[0].peer,
        surplus_out_msat=0,
        deficit_out_msat=5,
        surplus_in_msat=7,
        deficit_in_msat=0,
    )
    totals = RebalanceTotals(provided_msat=1, consumed_msat=2, fees_paid_msat=3, rebalances=1)
    new = attrs.evolve(old, version=2, balances=(balance,), rebalancing=totals)
    delta = diff(old, new)
    assert delta.balances == (balance,)
    assert delta.rebalancing == totals
    assert delta.liquidity is None
    assert apply(old, delta) == new
    assert diff(new, attrs.evolve(new, version=3)).balances is None
