"""The cattrs codec: round trips of every kind, strictness, and field-naming errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.messages import REGISTRY, ChannelSummary, Message, Ping, StateAnnounce
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import (
    decode_message,
    encode_message,
    reference_decode_message,
    wire_bounds,
)

from . import strategies

KINDS = sorted(REGISTRY.kinds().items())


def _state(channels: int = 2) -> StateAnnounce:
    return StateAnnounce(
        version=7,
        channels=tuple(
            ChannelSummary(
                peer=bytes([2]) + bytes([i]) * 32, capacity_sat=1_000_000 + i, local_share_ppm=i
            )
            for i in range(channels)
        ),
        outbound_msat=5,
        inbound_msat=6,
        onchain_sat=7,
    )


@pytest.mark.parametrize(("kind", "cls"), KINDS, ids=[cls.__name__ for _, cls in KINDS])
@settings(max_examples=60)
@given(data=st.data())
def test_every_kind_round_trips_canonically(
    kind: int, cls: type[Message], data: st.DataObject
) -> None:
    message = data.draw(strategies.for_class(cls))
    encoded_kind, payload = encode_message(message)
    assert encoded_kind == kind
    decoded = decode_message(kind, payload)
    assert decoded == message
    assert type(decoded) is cls
    assert encode_message(decoded) == (kind, payload)  # same message, same bytes


@given(strategies.any_message())
def test_encoding_is_a_pure_function(message: Message) -> None:
    assert encode_message(message) == encode_message(message)


def _raw(message: Message) -> Any:
    kind, payload = encode_message(message)
    return kind, cbor.decode(payload)


def _decode_raw(kind: int, raw: Any) -> Message:
    return decode_message(kind, cbor.encode(raw))


def test_unknown_field_rejected_with_its_name() -> None:
    kind, raw = _raw(Ping(nonce=bytes(8)))
    raw["zzz_new_field"] = 1
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "unknown-field"
    assert "zzz_new_field" in info.value.detail
    assert "Ping" in info.value.detail


def test_unknown_field_in_nested_record_rejected_with_its_path() -> None:
    kind, raw = _raw(_state(3))
    raw["channels"][2]["fee_ppm"] = 10
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "unknown-field"
    assert "fee_ppm" in info.value.detail
    assert "channels[2]" in info.value.detail


def test_missing_field_rejected_with_its_name() -> None:
    kind, raw = _raw(_state(1))
    del raw["onchain_sat"]
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "bad-field"
    assert "onchain_sat" in info.value.detail


@pytest.mark.parametrize(
    ("path", "bad", "needle"),
    [
        (("version",), True, "version"),  # a bool is not an int
        (("version",), -1, "version"),
        (("version",), "7", "version"),
        (("channels",), b"\x01\x02", "channels"),  # bytes are not an array
        (("channels",), {"a": 1}, "channels"),
        (("channels", 0), [1, 2], "channels[0]"),
        (("channels", 1, "peer"), bytes(32), "peer"),
        (("channels", 1, "peer"), "02" * 33, "peer"),
        (("channels", 0, "local_share_ppm"), 1_000_001, "local_share_ppm"),
        (("channels", 0, "capacity_sat"), None, "capacity_sat"),
    ],
)
def test_bad_values_rejected_naming_the_field(path: tuple[Any, ...], bad: Any, needle: str) -> None:
    kind, raw = _raw(_state(2))
    target = raw
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "bad-field"
    assert needle in info.value.detail
    assert "StateAnnounce" in info.value.detail


def test_too_many_channels_refused_before_structuring_them() -> None:
    kind, raw = _raw(_state(1))
    raw["channels"] = raw["channels"] * 1001
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "bad-field"
    assert "1001 items" in info.value.detail
    assert len(info.value.detail) < 300


def test_detail_is_bounded_when_many_fields_are_wrong() -> None:
    kind, raw = _raw(_state(1))
    for name in ("version", "outbound_msat", "inbound_msat", "onchain_sat"):
        raw[name] = "x"
    raw["channels"] = [{}]
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.detail.count("@") == 4
    assert "and 1 more" in info.value.detail


@pytest.mark.parametrize("raw", [[], None, 5, "text", b"bytes", True])
def test_non_map_body_rejected(raw: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        _decode_raw(1, raw)
    assert info.value.reason == "bad-field"


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_message(0xBEEF, cbor.encode({}))
    assert info.value.reason == "unknown-kind"
    assert "0xbeef" in info.value.detail


def test_non_canonical_payload_of_same_message_rejected() -> None:
    kind, payload = encode_message(Ping(nonce=bytes(8)))
    # a1 65 "nonce" 48 <8 bytes>  ->  same map, byte string length in a 1-byte argument
    widened = payload[:7] + b"\x58\x08" + payload[8:]
    assert cbor.decode(payload) == {"nonce": bytes(8)}
    with pytest.raises(ProtocolError) as info:
        decode_message(kind, widened)
    assert info.value.reason == "non-canonical"


# The reasons decoding a body may give (ProtocolError itself refuses reasons outside REASONS,
# so checking membership in REASONS could never fail; these are the codec's own).
CODEC_REASONS = frozenset(
    {
        "unknown-kind",
        "too-large",
        "truncated",
        "bad-cbor",
        "non-canonical",
        "duplicate-key",
        "too-deep",
        "trailing-bytes",
        "unknown-field",
        "bad-field",
    }
)


def _outcome(decode: Any, kind: int, payload: bytes) -> Message | str:
    try:
        message: Message = decode(kind, payload)
    except ProtocolError as exc:
        return exc.reason
    return message


def _only_protocol_errors(kind: int, payload: bytes) -> None:
    """Decode; an accepted body must be canonical CBOR and its message must survive a round
    trip, and it must be what the reference path (pure-Python decoder and cattrs) gives; a
    refusal must carry one of the codec's reasons and be the reference path's refusal too.

    (Not "re-encodes to exactly the input": the state records sort their tuples on
    construction, so a body listing edges out of order is accepted as the sorted message.)"""
    outcome = _outcome(decode_message, kind, payload)
    assert outcome == _outcome(reference_decode_message, kind, payload)
    if isinstance(outcome, str):
        assert outcome in CODEC_REASONS
    else:
        assert cbor.encode(cbor.decode(payload)) == payload
        assert decode_message(*encode_message(outcome)) == outcome


@settings(max_examples=400)
@given(st.sampled_from([kind for kind, _ in KINDS] + [0, 0xFFFF]), st.binary(max_size=300))
def test_random_payloads_raise_only_protocol_error(kind: int, payload: bytes) -> None:
    _only_protocol_errors(kind, payload)


json_like = st.recursive(
    st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=40)
    | st.text(max_size=10)
    | st.booleans()
    | st.none(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["nonce", "version", "channels", "peer", "capacity_sat", "local_share_ppm", "x"]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(st.sampled_from([kind for kind, _ in KINDS]), json_like)
def test_random_well_formed_cbor_raises_only_protocol_error(kind: int, value: Any) -> None:
    _only_protocol_errors(kind, cbor.encode(value))


@settings(max_examples=200)
@given(strategies.any_message(), st.data())
def test_mutated_payloads_raise_only_protocol_error(message: Message, data: st.DataObject) -> None:
    kind, payload = encode_message(message)
    mutated = bytearray(payload)
    position = data.draw(st.integers(0, len(mutated) - 1))
    mutated[position] ^= 1 << data.draw(st.integers(0, 7))
    _only_protocol_errors(kind, bytes(mutated))
    _only_protocol_errors(kind, payload[: data.draw(st.integers(0, len(payload) - 1))])


def _count_items(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + _count_items(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_items(item) for item in value)
    return 1


def test_largest_valid_state_announce_fits_its_bounds() -> None:
    channel = ChannelSummary(peer=b"\x02" * 33, capacity_sat=(1 << 64) - 1, local_share_ppm=10**6)
    biggest = StateAnnounce(
        version=(1 << 64) - 1,
        channels=(channel,) * 1000,
        outbound_msat=(1 << 64) - 1,
        inbound_msat=(1 << 64) - 1,
        onchain_sat=(1 << 64) - 1,
    )
    kind, payload = encode_message(biggest)
    bounds = wire_bounds(StateAnnounce)
    assert len(payload) <= bounds.max_bytes
    assert _count_items(cbor.decode(payload)) <= bounds.max_items
    assert decode_message(kind, payload) == biggest


@given(strategies.any_message())
def test_every_message_fits_its_kind_bounds(message: Message) -> None:
    _kind, payload = encode_message(message)
    bounds = wire_bounds(type(message))
    assert len(payload) <= bounds.max_bytes
    assert _count_items(cbor.decode(payload)) <= bounds.max_items


def test_oversized_body_refused_before_decoding() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_message(REGISTRY.kind_of(Ping), b"\x00" * 2_000_000)
    assert info.value.reason == "too-large"
    assert "Ping" in info.value.detail


def test_item_flood_refused_while_decoding() -> None:
    bounds = wire_bounds(StateAnnounce)
    flood = cbor.encode({"channels": [0] * 80_000})
    assert len(flood) <= bounds.max_bytes  # small enough in bytes ...
    with pytest.raises(ProtocolError) as info:
        decode_message(REGISTRY.kind_of(StateAnnounce), flood)
    assert info.value.reason == "too-large"  # ... but far too many items
    assert "data items" in info.value.detail


def test_a_few_extra_fields_are_still_reported_as_unknown() -> None:
    kind, raw = _raw(Ping(nonce=bytes(32)))
    raw["added_in_a_later_version"] = b"\x00" * 200
    with pytest.raises(ProtocolError) as info:
        _decode_raw(kind, raw)
    assert info.value.reason == "unknown-field"
