"""Wire constants and the signed frame: layout, signing and verification.

A hive message travels as one odd BOLT 1 custom message type, :data:`HIVE_MSG_TYPE`. Its payload
starts with a 4-byte prefix, magic ``b"HV"``, the version byte and the frame-type byte, then:

* frame type 0, a whole signed frame (all integers big-endian)::

    magic(2) version(1) frame_type(1)=0 | kind u16 | sender (32, Ed25519 public key)
    | seq u64 | timestamp_ms u64 | payload_len u32 | payload (CBOR) | signature (64)

  The signature is Ed25519 over ``SIGN_DOMAIN + every byte of the frame before the signature``.

* frame type 1, a fragment of a larger signed frame (see :mod:`hive.protocol.wire.fragment`).

Order of checks when verifying: structure (length, magic, version, frame type, payload length),
then the signature. What the kind number means is not looked at here: an unknown kind is refused
later, after the signature verified, so it can be attributed to its sender.
"""

from __future__ import annotations

import struct

import attrs
import nacl.bindings
import nacl.exceptions
import nacl.signing

from hive.protocol.errors import (
    BAD_FRAME_TYPE,
    BAD_LENGTH,
    BAD_MAGIC,
    BAD_SIGNATURE,
    BAD_VERSION,
    TOO_LARGE,
    TRUNCATED,
    ProtocolError,
)

HIVE_MSG_TYPE = 45541  # 0xB1E5: odd ("it's ok to be odd"), in the custom range 32768..65535
BOLT1_MAX_LEN = 65535  # a whole BOLT 1 message: 2-byte type + payload
TYPE_LEN = 2
MAX_CUSTOM_PAYLOAD = BOLT1_MAX_LEN - TYPE_LEN  # 65533 bytes after the type

MAGIC = b"HV"
VERSION = 1
FRAME_SIGNED = 0
FRAME_FRAGMENT = 1
PREFIX_LEN = 4  # magic(2) version(1) frame_type(1)

SIGN_DOMAIN = b"hive/v1/frame"
KEY_LEN = 32
SIGNATURE_LEN = 64
_HEADER = struct.Struct(">2sBBH32sQQI")
HEADER_LEN = _HEADER.size  # 58
MIN_FRAME_LEN = HEADER_LEN + SIGNATURE_LEN  # 122: an empty payload
MAX_FRAME_LEN = 1 << 20  # 1 MiB: no signed frame, fragmented or not, may be larger

U16_MAX = (1 << 16) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1


@attrs.frozen
class Envelope:
    """A structurally valid, signature-verified frame, with its fields taken apart."""

    kind: int
    sender: bytes  # 32-byte Ed25519 public key of the origin (its "hive key")
    seq: int
    timestamp_ms: int
    payload: bytes  # the CBOR message body, not yet decoded
    signature: bytes
    frame: bytes  # the whole frame, verbatim


def check_prefix(payload: bytes) -> int:
    """Check magic and version of a custom-message payload; return its frame type.

    Raises ProtocolError: truncated, bad-magic, bad-version, bad-frame-type.
    """
    if len(payload) < PREFIX_LEN:
        raise ProtocolError(TRUNCATED, f"{len(payload)} bytes, the prefix needs {PREFIX_LEN}")
    if payload[:2] != MAGIC:
        raise ProtocolError(BAD_MAGIC, f"magic {payload[:2].hex()} is not {MAGIC.hex()}")
    if payload[2] != VERSION:
        raise ProtocolError(
            BAD_VERSION, f"wire version {payload[2]}; this implementation speaks {VERSION}"
        )
    frame_type = payload[3]
    if frame_type not in (FRAME_SIGNED, FRAME_FRAGMENT):
        raise ProtocolError(BAD_FRAME_TYPE, f"frame type {frame_type}")
    return frame_type


def sign_frame(
    signing_key: nacl.signing.SigningKey,
    *,
    kind: int,
    seq: int,
    timestamp_ms: int,
    payload: bytes,
) -> bytes:
    """Build and sign a frame. ValueError if a number is out of range or it exceeds 1 MiB."""
    if not 0 <= kind <= U16_MAX:
        raise ValueError(f"kind {kind} is not a u16")
    if not 0 <= seq <= U64_MAX:
        raise ValueError(f"seq {seq} is not a u64")
    if not 0 <= timestamp_ms <= U64_MAX:
        raise ValueError(f"timestamp {timestamp_ms} is not a u64")
    if MIN_FRAME_LEN + len(payload) > MAX_FRAME_LEN:
        raise ValueError(f"a {len(payload)}-byte payload makes a frame over {MAX_FRAME_LEN} bytes")
    sender = bytes(signing_key.verify_key)
    head = _HEADER.pack(MAGIC, VERSION, FRAME_SIGNED, kind, sender, seq, timestamp_ms, len(payload))
    unsigned = head + payload
    signature = signing_key.sign(SIGN_DOMAIN + unsigned).signature
    return unsigned + signature


def parse_frame(frame: bytes) -> Envelope:
    """Take a frame apart WITHOUT verifying its signature (use :func:`verify_frame`)."""
    frame = bytes(frame)
    if len(frame) > MAX_FRAME_LEN:
        raise ProtocolError(TOO_LARGE, f"frame of {len(frame)} bytes, at most {MAX_FRAME_LEN}")
    frame_type = check_prefix(frame)
    if frame_type != FRAME_SIGNED:
        raise ProtocolError(BAD_FRAME_TYPE, f"frame type {frame_type} where a signed frame is due")
    if len(frame) < MIN_FRAME_LEN:
        raise ProtocolError(TRUNCATED, f"frame of {len(frame)} bytes, at least {MIN_FRAME_LEN}")
    _magic, _version, _type, kind, sender, seq, timestamp_ms, payload_len = _HEADER.unpack_from(
        frame
    )
    expected = MIN_FRAME_LEN + payload_len
    if expected > len(frame):
        raise ProtocolError(
            TRUNCATED, f"payload_len {payload_len} needs a {expected}-byte frame, got {len(frame)}"
        )
    if expected < len(frame):
        raise ProtocolError(
            BAD_LENGTH, f"payload_len {payload_len} leaves {len(frame) - expected} extra bytes"
        )
    return Envelope(
        kind=kind,
        sender=sender,
        seq=seq,
        timestamp_ms=timestamp_ms,
        payload=frame[HEADER_LEN:-SIGNATURE_LEN],
        signature=frame[-SIGNATURE_LEN:],
        frame=frame,
    )


def verify_frame(frame: bytes) -> Envelope:
    """Parse ``frame`` and verify its signature against the sender key it carries.

    Raises ProtocolError only: too-large, truncated, bad-magic, bad-version, bad-frame-type,
    bad-length, bad-signature. Freshness (replay, timestamps) is not checked here.
    """
    envelope = parse_frame(frame)
    # What VerifyKey(sender).verify(SIGN_DOMAIN + unsigned, signature) does, in one copy: the
    # signature, then the signed bytes (the sender is 32 bytes by the frame's layout).
    signed = b"".join(
        (envelope.signature, SIGN_DOMAIN, memoryview(envelope.frame)[:-SIGNATURE_LEN])
    )
    try:
        nacl.bindings.crypto_sign_open(signed, envelope.sender)
    except nacl.exceptions.CryptoError as exc:
        raise ProtocolError(
            BAD_SIGNATURE, f"signature does not verify for sender {envelope.sender.hex()}"
        ) from exc
    return envelope
