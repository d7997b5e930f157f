"""The receive fast path (cbor2 + one structuring pass) against the reference decoder.

The fast path may only make valid input cheaper: whatever it accepts, the reference path
(hive.protocol.wire.cbor + the cattrs converter) accepts as the same message, and every refusal
keeps the reference's reason. cbor2's canonical encoder is byte-identical to ours on the subset.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.state import (
    Liquidity,
    MemberState,
    PeerEdge,
    StateRequest,
    StateSnapshot,
)
from hive.protocol.messages import REGISTRY, Message, Ping
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import (
    decode_message,
    encode_message,
    reference_decode_message,
    unstructure,
)
from hive.protocol.wire.fastdecode import fast_decode

from . import strategies

KINDS = [REGISTRY.kind_of(cls) for cls in REGISTRY]

subset_values = st.recursive(
    st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=70)
    | st.text(max_size=30)
    | st.booleans()
    | st.none(),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=60,
)


def _outcome(decode: Any, kind: int, payload: bytes) -> Message | str:
    try:
        message: Message = decode(kind, payload)
    except ProtocolError as exc:
        return exc.reason
    return message


def _agree(kind: int, payload: bytes) -> Message | str:
    """The fast path vouches only for what the reference accepts; both paths agree."""
    cls = REGISTRY.by_kind(kind)
    assert cls is not None
    fast = fast_decode(cls, payload)
    reference = _outcome(reference_decode_message, kind, payload)
    if fast is not None:
        assert reference == fast, f"fast path accepted {payload.hex()}, reference: {reference}"
    outcome = _outcome(decode_message, kind, payload)
    assert outcome == reference
    return outcome


@settings(max_examples=300)
@given(subset_values)
def test_cbor2_canonical_encoding_is_byte_identical_to_ours(value: Any) -> None:
    ours = cbor.encode(value)
    assert cbor2.dumps(value, canonical=True) == ours
    assert cbor2.loads(ours) == value


@settings(max_examples=300)
@given(strategies.any_message())
def test_every_valid_message_takes_the_fast_path(message: Message) -> None:
    kind, payload = encode_message(message)
    assert cbor2.dumps(unstructure(message), canonical=True) == payload
    cls = REGISTRY.by_kind(kind)
    assert cls is not None
    assert fast_decode(cls, payload) == message
    assert decode_message(kind, payload) == message


def _mutate(payload: bytes, data: st.DataObject) -> bytes:
    mutated = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        position = data.draw(st.integers(0, max(0, len(mutated) - 1)), label="position")
        action = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        if action == "flip" and mutated:
            mutated[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif action == "set" and mutated:
            mutated[position] = data.draw(st.integers(0, 255), label="byte")
        elif action == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=9))
        elif action == "delete" and mutated:
            del mutated[position : position + data.draw(st.integers(1, 9))]
        elif action == "cut":
            del mutated[position:]
    return bytes(mutated)


@settings(max_examples=800)
@given(strategies.any_message(), st.data())
def test_mutated_bodies_fast_path_never_accepts_what_the_reference_refuses(
    message: Message, data: st.DataObject
) -> None:
    kind, payload = encode_message(message)
    _agree(kind, _mutate(payload, data))


@settings(max_examples=500)
@given(st.sampled_from(KINDS), st.binary(max_size=300))
def test_random_bodies_agree(kind: int, payload: bytes) -> None:
    _agree(kind, payload)


@settings(max_examples=500)
@given(st.sampled_from(KINDS), subset_values)
def test_well_formed_cbor_of_any_shape_agrees(kind: int, value: Any) -> None:
    _agree(kind, cbor.encode(value))


NONCE = bytes(range(8))
PING_KIND, PING = encode_message(Ping(nonce=NONCE))  # a1 65 "nonce" 48 <8 bytes>
KEY = cbor.encode("nonce")
REQUEST = StateRequest(origin=b"\x07" * 32, have_version=5)
REQUEST_KIND, REQUEST_BODY = encode_message(REQUEST)
ORIGIN = cbor.encode("origin") + cbor.encode(b"\x07" * 32)
HAVE = cbor.encode("have_version")


def _request(version: bytes) -> bytes:
    """A StateRequest body with ``version`` as the encoded have_version value."""
    return b"\xa2" + ORIGIN + HAVE + version


def test_handmade_request_bodies_are_what_we_think() -> None:
    assert _request(b"\x05") == REQUEST_BODY
    assert decode_message(REQUEST_KIND, REQUEST_BODY) == REQUEST


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        # integers and lengths not in their shortest form
        (REQUEST_KIND, _request(b"\x18\x05"), "non-canonical"),
        (REQUEST_KIND, _request(b"\x19\x00\x05"), "non-canonical"),
        (REQUEST_KIND, _request(b"\x1b" + (5).to_bytes(8, "big")), "non-canonical"),
        (PING_KIND, b"\xa1" + KEY + b"\x58\x08" + NONCE, "non-canonical"),
        (PING_KIND, b"\xb8\x01" + KEY + b"\x48" + NONCE, "non-canonical"),
        # keys out of order, and repeated
        (REQUEST_KIND, b"\xa2" + HAVE + b"\x05" + ORIGIN, "non-canonical"),
        (PING_KIND, b"\xa2" + KEY + b"\x48" + NONCE + KEY + b"\x48" + NONCE, "duplicate-key"),
        # indefinite lengths
        (PING_KIND, b"\xbf" + KEY + b"\x48" + NONCE + b"\xff", "bad-cbor"),
        (PING_KIND, b"\xa1" + KEY + b"\x5f\x48" + NONCE + b"\xff", "bad-cbor"),
        (PING_KIND, b"\xa1\x7f" + KEY + b"\xff\x48" + NONCE, "bad-cbor"),
        # floats where an integer is due (cbor2 would give a float)
        (REQUEST_KIND, _request(b"\xf9\x45\x00"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xfa\x40\xa0\x00\x00"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xfb\x40\x14" + bytes(6)), "bad-cbor"),
        # tags, including ones cbor2 interprets itself (bignum, epoch date, self-describe)
        (REQUEST_KIND, _request(b"\xc2\x41\x05"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xc1\x05"), "bad-cbor"),
        (REQUEST_KIND, b"\xd9\xd9\xf7" + REQUEST_BODY, "bad-cbor"),
        (PING_KIND, b"\xa1" + KEY + b"\xd8\x2a\x48" + NONCE, "bad-cbor"),
        # undefined, other simple values, a lone break
        (REQUEST_KIND, _request(b"\xf7"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xe0"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xf8\x20"), "bad-cbor"),
        (REQUEST_KIND, _request(b"\xff"), "bad-cbor"),
        # invalid UTF-8 in a key; trailing bytes; truncation
        (PING_KIND, b"\xa1\x65nonc\xff\x48" + NONCE, "bad-cbor"),
        (PING_KIND, PING + b"\x00", "trailing-bytes"),
        (PING_KIND, PING[:-1], "truncated"),
        # valid CBOR, wrong shape
        (PING_KIND, b"\xa1" + KEY + b"\x08", "bad-field"),
        (PING_KIND, b"\xa2\x61x\x01" + KEY + b"\x48" + NONCE, "unknown-field"),
        (REQUEST_KIND, _request(b"\xf5"), "bad-field"),  # true is not 1
        (REQUEST_KIND, _request(b"\x20"), "bad-field"),  # -1
    ],
)
def test_malformed_bodies_are_refused_as_before(kind: int, payload: bytes, reason: str) -> None:
    cls = REGISTRY.by_kind(kind)
    assert cls is not None
    assert fast_decode(cls, payload) is None
    with pytest.raises(ProtocolError) as info:
        decode_message(kind, payload)
    assert info.value.reason == reason
    with pytest.raises(ProtocolError) as reference:
        reference_decode_message(kind, payload)
    assert reference.value.reason == reason


def _edge(index: int, peer: bytes) -> PeerEdge:
    return PeerEdge(peer=peer, capacity_sat=1_000_000 + index, local_share_ppm=index)


class _Crafter:
    """Encodes like the deterministic encoder, except that it shares ``shared`` (a byte
    string) through tags 28/29 and widens integer heads by ``pad`` bytes in all."""

    def __init__(self, shared: bytes, pad: int) -> None:
        self.shared, self.pad, self.seen = shared, pad, False

    def encode(self, value: Any) -> bytes:
        if type(value) is int and value >= 0:
            shortest = cbor.encode(value)
            for size, ai in ((8, 27), (4, 26), (2, 25), (1, 24)):
                extra = 1 + size - len(shortest)
                if 0 < extra <= self.pad and value < 1 << (8 * size):
                    self.pad -= extra
                    return bytes([ai]) + value.to_bytes(size, "big")
            return shortest
        if type(value) is bytes and value == self.shared:
            if self.seen:
                return b"\xd8\x1d\x00"  # sharedref 0
            self.seen = True
            return b"\xd8\x1c" + cbor.encode(value)  # shareable
        if type(value) is list:
            return (
                cbor.encode([])[:0]
                + bytes([0x80 + len(value)])
                + b"".join(self.encode(item) for item in value)
            )
        if type(value) is dict:
            keys = sorted(value, key=lambda key: cbor.encode(key))
            return bytes([0xA0 + len(keys)]) + b"".join(
                cbor.encode(key) + self.encode(value[key]) for key in keys
            )
        return cbor.encode(value)


def test_shared_references_cannot_pass_for_the_canonical_length() -> None:
    """A shared reference (tags 28/29) shortens an encoding by as much as widened integer
    heads lengthen it: a body of exactly the canonical length that cbor2 decodes to exactly the
    canonical value. Only refusing every tag keeps the fast path exact."""
    peer = b"\x02" + bytes(32)
    state = MemberState(
        version=1,
        topology=(_edge(10, peer), _edge(11, peer), _edge(12, peer)),
        liquidity=Liquidity(outbound_msat=1, inbound_msat=2, onchain_sat=3),
        reputation=(),
        opportunities=(),
    )
    message = StateSnapshot(state=state)
    kind, canonical = encode_message(message)
    raw = unstructure(message)
    unpadded = _Crafter(peer, 0).encode(raw)
    crafter = _Crafter(peer, len(canonical) - len(unpadded))
    crafted = crafter.encode(raw)
    assert crafter.pad == 0
    assert len(crafted) == len(canonical)
    assert crafted != canonical
    assert cbor2.loads(crafted) == cbor2.loads(canonical)  # cbor2 resolves the references
    for payload in (unpadded, crafted):
        assert fast_decode(StateSnapshot, payload) is None
        with pytest.raises(ProtocolError) as info:
            decode_message(kind, payload)
        # The reference names the first fault it meets: a tag, or a widened head before it.
        assert info.value.reason in ("bad-cbor", "non-canonical")
