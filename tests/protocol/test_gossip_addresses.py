"""Member addresses in the state record: a set on the wire, bounded, carried by deltas."""

from __future__ import annotations

import attrs
import pytest

from hive.protocol.gossip.state import (
    MAX_ADDRESSES,
    Liquidity,
    MemberState,
    StateSnapshot,
    apply,
    diff,
    keepalive,
)
from hive.protocol.wire.codec import decode_message, encode_message

BASE = MemberState(
    version=1,
    topology=(),
    liquidity=Liquidity(outbound_msat=0, inbound_msat=0, onchain_sat=0),
    reputation=(),
    opportunities=(),
)


def test_addresses_are_a_sorted_set_and_survive_encoding() -> None:
    state = attrs.evolve(BASE, addresses=("b:2", "a:1", "b:2"))
    assert state.addresses == ("a:1", "b:2")
    kind, payload = encode_message(StateSnapshot(state=state))
    decoded = decode_message(kind, payload)
    assert isinstance(decoded, StateSnapshot)
    assert decoded.state == state


def test_deltas_carry_a_change_of_addresses_and_nothing_else() -> None:
    moved = attrs.evolve(BASE, version=2, addresses=("10.0.0.1:9735",))
    delta = diff(BASE, moved)
    assert delta.addresses == ("10.0.0.1:9735",)
    assert not delta.is_empty
    assert apply(BASE, delta) == moved
    same = attrs.evolve(moved, version=3)
    assert diff(moved, same).addresses is None
    assert keepalive(moved).addresses is None


def test_addresses_are_bounded_on_the_wire() -> None:
    with pytest.raises(ValueError):
        attrs.evolve(BASE, addresses=tuple(f"h:{i}" for i in range(MAX_ADDRESSES + 1)))
    with pytest.raises(ValueError):
        attrs.evolve(BASE, addresses=("x" * 101,))
    with pytest.raises(ValueError):
        attrs.evolve(BASE, addresses=("",))
