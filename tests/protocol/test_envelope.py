"""The signed frame: layout, signature coverage, structural rejections."""

from __future__ import annotations

import struct

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.wire import envelope
from hive.protocol.wire.envelope import (
    HEADER_LEN,
    HIVE_MSG_TYPE,
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    SIGN_DOMAIN,
    parse_frame,
    sign_frame,
    verify_frame,
)

KEY_A = nacl.signing.SigningKey(bytes(range(32)))
KEY_B = nacl.signing.SigningKey(bytes(range(1, 33)))


def _frame(
    payload: bytes = b"\xa0", *, key: nacl.signing.SigningKey = KEY_A, seq: int = 5
) -> bytes:
    return sign_frame(key, kind=0x0010, seq=seq, timestamp_ms=1_700_000_000_123, payload=payload)


def test_message_type_is_odd_and_custom() -> None:
    assert HIVE_MSG_TYPE == 0xB1E5
    assert HIVE_MSG_TYPE % 2 == 1
    assert 32768 <= HIVE_MSG_TYPE <= 65535


def test_layout() -> None:
    payload = b"\xa1\x61a\x01"
    frame = _frame(payload)
    assert HEADER_LEN == 58
    assert len(frame) == HEADER_LEN + len(payload) + 64
    assert frame[:4] == b"HV\x01\x00"
    assert struct.unpack(">H", frame[4:6]) == (0x0010,)
    assert frame[6:38] == bytes(KEY_A.verify_key)
    assert struct.unpack(">QQI", frame[38:58]) == (5, 1_700_000_000_123, len(payload))
    assert frame[58:62] == payload
    # The signature covers the domain tag and every byte before it.
    KEY_A.verify_key.verify(SIGN_DOMAIN + frame[:-64], frame[-64:])


def test_verify_returns_the_fields() -> None:
    frame = _frame(b"\x80")
    env = verify_frame(frame)
    assert (env.kind, env.sender, env.seq, env.timestamp_ms, env.payload) == (
        0x0010,
        bytes(KEY_A.verify_key),
        5,
        1_700_000_000_123,
        b"\x80",
    )
    assert env.frame == frame
    assert env.signature == frame[-64:]


def test_forged_signature_rejected() -> None:
    frame = bytearray(_frame())
    frame[-1] ^= 0x01
    with pytest.raises(ProtocolError) as info:
        verify_frame(bytes(frame))
    assert info.value.reason == "bad-signature"


def test_wrong_key_rejected() -> None:
    """A frame signed by A but claiming B as sender does not verify."""
    frame = bytearray(_frame(key=KEY_A))
    frame[6:38] = bytes(KEY_B.verify_key)
    with pytest.raises(ProtocolError) as info:
        verify_frame(bytes(frame))
    assert info.value.reason == "bad-signature"


def test_signature_without_domain_tag_rejected() -> None:
    frame = _frame()
    bare = frame[:-64] + KEY_A.sign(frame[:-64]).signature
    with pytest.raises(ProtocolError) as info:
        verify_frame(bare)
    assert info.value.reason == "bad-signature"


def test_small_order_sender_key_rejected() -> None:
    frame = bytearray(_frame())
    frame[6:38] = bytes(32)  # the all-zero point encoding is of small order
    with pytest.raises(ProtocolError) as info:
        verify_frame(bytes(frame))
    assert info.value.reason == "bad-signature"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: b"HW" + f[2:], "bad-magic"),
        (lambda f: f[:2] + b"\x02" + f[3:], "bad-version"),
        (lambda f: f[:2] + b"\x00" + f[3:], "bad-version"),
        (lambda f: f[:3] + b"\x01" + f[4:], "bad-frame-type"),
        (lambda f: f[:3] + b"\x07" + f[4:], "bad-frame-type"),
        (lambda f: f[:3], "truncated"),
        (lambda f: f[: MIN_FRAME_LEN - 1], "truncated"),
        (lambda f: f[:-1], "truncated"),
        (lambda f: f + b"\x00", "bad-length"),
        (lambda f: f[:54] + (2**32 - 1).to_bytes(4, "big") + f[58:], "truncated"),
        (lambda f: f + bytes(MAX_FRAME_LEN), "too-large"),
    ],
)
def test_structural_rejections(mutate: object, reason: str) -> None:
    frame = _frame()
    with pytest.raises(ProtocolError) as info:
        verify_frame(mutate(frame))  # type: ignore[operator]
    assert info.value.reason == reason


def test_parse_does_not_verify_but_verify_does() -> None:
    frame = bytearray(_frame())
    frame[-5] ^= 0x80
    assert parse_frame(bytes(frame)).seq == 5
    with pytest.raises(ProtocolError):
        verify_frame(bytes(frame))


@settings(max_examples=300)
@given(st.binary(max_size=64), st.data())
def test_any_single_bit_flip_is_rejected(payload: bytes, data: st.DataObject) -> None:
    frame = bytearray(_frame(payload))
    position = data.draw(st.integers(0, len(frame) - 1), label="position")
    frame[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(ProtocolError):
        verify_frame(bytes(frame))


@given(st.binary(max_size=64), st.data())
def test_any_truncation_is_rejected(payload: bytes, data: st.DataObject) -> None:
    frame = _frame(payload)
    with pytest.raises(ProtocolError):
        verify_frame(frame[: data.draw(st.integers(0, len(frame) - 1))])


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    for candidate in (data, b"HV\x01\x00" + data):
        with pytest.raises(ProtocolError):
            verify_frame(candidate)


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", 1 << 16), ("kind", -1), ("seq", 1 << 64), ("timestamp_ms", -1)],
)
def test_sign_frame_refuses_out_of_range_numbers(field: str, value: int) -> None:
    args = {"kind": 1, "seq": 1, "timestamp_ms": 1, "payload": b""}
    args[field] = value
    with pytest.raises(ValueError, match=field if field != "timestamp_ms" else "timestamp"):
        sign_frame(KEY_A, **args)  # type: ignore[arg-type]


def test_sign_frame_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError, match="over"):
        sign_frame(KEY_A, kind=1, seq=1, timestamp_ms=1, payload=bytes(envelope.MAX_FRAME_LEN))
