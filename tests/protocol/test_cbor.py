"""The deterministic CBOR subset: RFC 8949 vectors, canonical form, hostile input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.wire import cbor

from .cbor_oracle import canonical_value

U64_MAX = (1 << 64) - 1

# RFC 8949, Appendix A (the items inside this subset), plus key-order examples.
VECTORS: list[tuple[Any, str]] = [
    (0, "00"),
    (1, "01"),
    (10, "0a"),
    (23, "17"),
    (24, "1818"),
    (25, "1819"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (U64_MAX, "1bffffffffffffffff"),
    (-(1 << 64), "3bffffffffffffffff"),
    (-1, "20"),
    (-10, "29"),
    (-100, "3863"),
    (-1000, "3903e7"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ('"\\', "62225c"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ("\U00010151", "64f0908591"),
    ([], "80"),
    ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (
        {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
        "a56161614161626142616361436164614461656145",
    ),
    # Keys sort by their encoded bytes: a shorter key first, then bytewise.
    ({"aa": 2, "b": 1}, "a261620162616102"),
    ({"b": 1, "a": 0, "": 9}, "a36009616100616201"),
]


@pytest.mark.parametrize(("value", "encoded"), VECTORS)
def test_vectors_encode_and_decode(value: Any, encoded: str) -> None:
    assert cbor.encode(value).hex() == encoded
    assert cbor.decode(bytes.fromhex(encoded)) == value


def test_tuples_and_byte_buffers_encode_like_lists_and_bytes() -> None:
    assert cbor.encode((1, (2, 3))) == cbor.encode([1, [2, 3]])
    assert cbor.encode(bytearray(b"ab")) == cbor.encode(memoryview(b"ab")) == cbor.encode(b"ab")


leaves = (
    st.integers(min_value=-(1 << 64), max_value=U64_MAX)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)


@given(values)
def test_round_trip_and_canonical(value: Any) -> None:
    encoded = cbor.encode(value)
    assert cbor.decode(encoded) == value
    assert cbor.encode(cbor.decode(encoded)) == encoded


@given(st.dictionaries(st.text(max_size=30), st.integers(0, 5), min_size=2, max_size=8))
def test_map_keys_sorted_shorter_first(mapping: dict[str, int]) -> None:
    decoded = cbor.decode(cbor.encode(mapping))
    keys = [key.encode("utf-8") for key in decoded]
    assert keys == sorted(keys, key=lambda raw: (len(raw), raw))


def _head(major: int, arg: int, width: int) -> bytes:
    """A head for ``arg`` forced into ``width`` argument bytes (0 = inline)."""
    if width == 0:
        return bytes((major << 5 | arg,))
    ai = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes((major << 5 | ai,)) + arg.to_bytes(width, "big")


@given(
    st.integers(min_value=0, max_value=U64_MAX),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([0, 1]),
)
def test_every_longer_head_is_rejected(arg: int, width: int, major: int) -> None:
    if arg >= 1 << (8 * width):
        return  # cannot be written in this width at all
    shortest = cbor.encode(arg if major == 0 else -1 - arg)
    forced = _head(major, arg, width)
    if forced == shortest:
        assert cbor.decode(forced) == (arg if major == 0 else -1 - arg)
    else:
        with pytest.raises(ProtocolError) as info:
            cbor.decode(forced)
        assert info.value.reason == "non-canonical"


@pytest.mark.parametrize(
    ("hex_input", "reason"),
    [
        ("1800", "non-canonical"),  # 0 in a one-byte argument
        ("190017", "non-canonical"),
        ("3800", "non-canonical"),
        ("5800", "non-canonical"),  # empty byte string with a one-byte length
        ("780161", "non-canonical"),
        ("980101", "non-canonical"),
        ("b800", "non-canonical"),
        ("a262616102616201", "non-canonical"),  # keys out of order
        ("a2616101616102", "duplicate-key"),
        ("0000", "trailing-bytes"),
        ("80ff", "trailing-bytes"),
        ("9fff", "bad-cbor"),  # indefinite array
        ("5f4101ff", "bad-cbor"),  # indefinite byte string
        ("bf616101ff", "bad-cbor"),  # indefinite map
        ("f93c00", "bad-cbor"),  # half float 1.0
        ("fa47c35000", "bad-cbor"),
        ("fb3ff199999999999a", "bad-cbor"),
        ("c074323031332d30332d32315432303a30343a30305a", "bad-cbor"),  # tag 0
        ("f7", "bad-cbor"),  # undefined
        ("f0", "bad-cbor"),  # simple(16)
        ("f820", "bad-cbor"),  # simple(32)
        ("ff", "bad-cbor"),  # lone break
        ("1c", "bad-cbor"),  # reserved additional information
        ("a10101", "bad-cbor"),  # integer map key
        ("a1410101", "bad-cbor"),  # byte-string map key
        ("62c328", "bad-cbor"),  # invalid UTF-8
        ("63eda080", "bad-cbor"),  # UTF-8-encoded surrogate
        ("", "truncated"),
        ("18", "truncated"),
        ("1b00000000", "truncated"),
        ("44010203", "truncated"),
        ("5affffffff", "truncated"),  # a 4 GiB byte string declared in 5 bytes
        ("9bffffffffffffffff", "truncated"),  # 2**64 - 1 items declared
        ("bbffffffffffffffff", "truncated"),
        ("830102", "truncated"),
        ("a1616101a1", "trailing-bytes"),
    ],
)
def test_rejections(hex_input: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        cbor.decode(bytes.fromhex(hex_input))
    assert info.value.reason == reason


def test_nesting_bound() -> None:
    deep_ok = bytes.fromhex("81" * 15 + "80")  # 16 nested arrays
    assert cbor.decode(deep_ok) == [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]
    with pytest.raises(ProtocolError) as info:
        cbor.decode(bytes.fromhex("81" * 16 + "80"))
    assert info.value.reason == "too-deep"
    # Far deeper than Python's recursion limit: still a ProtocolError, not RecursionError.
    with pytest.raises(ProtocolError) as info:
        cbor.decode(b"\x81" * 100_000 + b"\x80")
    assert info.value.reason == "too-deep"
    with pytest.raises(ProtocolError):
        cbor.decode(b"\xa1\x61a" * 50)


def test_non_canonical_encoding_of_same_value_rejected() -> None:
    value = {"b": 1, "aa": [2, 3]}
    canonical = cbor.encode(value)
    # Same value: key order by plain string comparison ("aa" < "b"), not by encoded bytes.
    swapped = (
        bytes.fromhex("a2") + cbor.encode("aa") + cbor.encode([2, 3]) + cbor.encode("b") + b"\x01"
    )
    assert swapped != canonical
    with pytest.raises(ProtocolError) as info:
        cbor.decode(swapped)
    assert info.value.reason == "non-canonical"
    # Same value with one integer widened.
    widened = canonical.replace(b"\x01", b"\x18\x01")
    with pytest.raises(ProtocolError) as info:
        cbor.decode(widened)
    assert info.value.reason == "non-canonical"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, TypeError),
        ({1: 2}, TypeError),
        ({b"k": 2}, TypeError),
        ({"a"}, TypeError),
        (object(), TypeError),
        (1 << 64, ValueError),
        (-(1 << 64) - 1, ValueError),
        ("\ud800", ValueError),
    ],
)
def test_encoder_refuses_values_outside_the_subset(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        cbor.encode(value)


# The reasons a CBOR decode may give (ProtocolError itself refuses reasons outside REASONS, so
# checking membership in REASONS could never fail; these are the decoder's own).
DECODE_REASONS = frozenset(
    {"truncated", "bad-cbor", "non-canonical", "duplicate-key", "too-deep", "trailing-bytes"}
)


def _decode_only_protocol_errors(data: bytes) -> None:
    """Decode and compare with an independent judge (cbor2, tests/protocol/cbor_oracle.py):
    accepted exactly when the input is the deterministic encoding of a subset value, with that
    value; refused with one of the decoder's reasons otherwise."""
    canonical, expected = canonical_value(data)
    if not canonical:
        with pytest.raises(ProtocolError) as info:
            cbor.decode(data)
        assert info.value.reason in DECODE_REASONS
        return
    assert cbor.decode(data) == expected, f"{data.hex()} decoded to another value"


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    _decode_only_protocol_errors(data)


@settings(max_examples=300)
@given(values, st.data())
def test_mutated_encodings_raise_only_protocol_error(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(cbor.encode(value))
    cut = data.draw(st.integers(0, len(encoded)), label="cut")
    _decode_only_protocol_errors(bytes(encoded[:cut]))
    position = data.draw(st.integers(0, len(encoded) - 1), label="position")
    encoded[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    _decode_only_protocol_errors(bytes(encoded))
    _decode_only_protocol_errors(bytes(encoded) + data.draw(st.binary(max_size=9), label="tail"))


def test_truncation_of_a_valid_item_is_always_rejected() -> None:
    encoded = cbor.encode({"k": [1, b"xyz", "text", None, True, {"n": -300}]})
    for cut in range(len(encoded)):
        with pytest.raises(ProtocolError):
            cbor.decode(encoded[:cut])


def test_item_budget() -> None:
    encoded = cbor.encode({"a": [1, 2, 3]})  # map, key, array, three ints: 6 items
    assert cbor.decode(encoded, max_items=6) == {"a": [1, 2, 3]}
    with pytest.raises(ProtocolError) as info:
        cbor.decode(encoded, max_items=5)
    assert info.value.reason == "too-large"
