"""The sans-I/O facade the transport actor uses (in the style of h11).

The transport hands :meth:`HiveWire.unpack` every custom message a peer delivered and sends
whatever :meth:`HiveWire.pack` returns; the wire does framing, signing, fragmentation,
reassembly, verification, replay protection and decoding, and never touches a socket or a clock.

Order of checks in :meth:`HiveWire.unpack`: BOLT 1 type, prefix (magic, version, frame type),
reassembly of fragments, frame structure and signature (:func:`verify_frame`), our own key as
sender ("own-frame"), the claimed sender against who may talk to us (the gate the transport sets
with :meth:`HiveWire.set_gate`: a non-member's frame of a kind only members may send is refused
before it can touch the replay state), freshness and replay (:class:`ReplayGuard`), then the
kind and the body (:func:`decode_message`). Rejections after the signature verified carry the sender
(``ProtocolError.sender``) so they can be counted against it. A frame whose signature verified
consumes its seq even when its kind or body is refused afterwards: the sender did sign it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import nacl.signing

from hive.protocol.errors import BAD_TYPE, OWN_FRAME, TOO_LARGE, TRUNCATED, ProtocolError
from hive.protocol.messages import Message
from hive.protocol.wire.codec import decode_message, encode_message
from hive.protocol.wire.envelope import (
    BOLT1_MAX_LEN,
    FRAME_FRAGMENT,
    HIVE_MSG_TYPE,
    MAX_CUSTOM_PAYLOAD,
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    TYPE_LEN,
    U64_MAX,
    Envelope,
    check_prefix,
    sign_frame,
    verify_frame,
)
from hive.protocol.wire.fragment import MAX_CHUNK, Reassembler, ReassemblyLimits, split
from hive.protocol.wire.replay import ReplayGuard

_TYPE_PREFIX = HIVE_MSG_TYPE.to_bytes(TYPE_LEN, "big")

__all__ = [
    "HIVE_MSG_TYPE",
    "Envelope",
    "HiveWire",
    "Received",
    "WireLimits",
    "WireStats",
    "verify_frame",
]


def _chunk_size(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 1 <= value <= MAX_CHUNK:
        raise ValueError(f"{attribute.name} must be in 1..{MAX_CHUNK}, got {value!r}")


def _single_frame(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not MIN_FRAME_LEN <= value <= MAX_CUSTOM_PAYLOAD:
        raise ValueError(
            f"{attribute.name} must be in {MIN_FRAME_LEN}..{MAX_CUSTOM_PAYLOAD}, got {value!r}"
        )


@attrs.frozen
class WireLimits:
    """Fragmentation and reassembly bounds of one :class:`HiveWire`."""

    reassembly: ReassemblyLimits = attrs.field(factory=ReassemblyLimits)
    # Frame bytes per fragment when sending (the largest that fits one custom message by
    # default; smaller values are for tests).
    chunk_size: int = attrs.field(default=MAX_CHUNK, validator=_chunk_size)
    # Frames up to this size are sent whole (the most one custom message holds by default;
    # smaller values force fragmentation, for tests).
    max_single_frame: int = attrs.field(default=MAX_CUSTOM_PAYLOAD, validator=_single_frame)

    @property
    def max_frame_len(self) -> int:
        """The largest frame we send or accept (bounded by fragments and by MAX_FRAME_LEN)."""
        return min(
            MAX_FRAME_LEN,
            self.reassembly.max_message_bytes,
            self.reassembly.max_fragments * self.chunk_size,
        )


@attrs.frozen
class Received:
    """A verified, fresh, decoded message."""

    peer_id: str  # the connected peer that delivered it (BOLT 8 authenticated)
    sender: bytes  # origin's 32-byte hive key (may differ from peer for relayed frames)
    seq: int
    timestamp_ms: int
    message: Message  # decoded attrs instance
    frame: bytes  # the whole signed frame, verbatim, so a relay can forward it unchanged


@attrs.define
class WireStats:
    """Counters of one :class:`HiveWire` (reasons are the fixed set of ProtocolError codes)."""

    packed: int = 0  # messages signed by pack()
    sent_messages: int = 0  # BOLT 1 messages returned by pack()/pack_frame()
    sent_fragments: int = 0  # of which fragments
    received_fragments: int = 0  # fragments accepted into reassembly
    unpacked: int = 0  # messages returned by unpack()
    expired_partials: int = 0  # partial messages dropped at their deadline
    rejected: dict[str, int] = attrs.Factory(dict)  # ProtocolError.reason -> count


def accept(
    envelope: Envelope, *, peer_id: str, own_key: bytes, replay: ReplayGuard, now_ms: int
) -> Received:
    """The steps after a frame's signature verified, shared by direct and relayed frames:
    refuse our own frames, pass the replay guard (which also de-duplicates copies that arrive
    by several paths), decode the body. Errors carry the frame's sender."""
    sender = envelope.sender
    try:
        if sender == own_key:
            raise ProtocolError(OWN_FRAME, f"seq {envelope.seq} is a frame we signed")
        replay.check(sender, envelope.seq, envelope.timestamp_ms, now_ms)
        message = decode_message(envelope.kind, envelope.payload)
    except ProtocolError as exc:
        raise exc.with_sender(sender) from exc
    return Received(
        peer_id=peer_id,
        sender=sender,
        seq=envelope.seq,
        timestamp_ms=envelope.timestamp_ms,
        message=message,
        frame=envelope.frame,
    )


class HiveWire:
    """Framing, signing, fragmentation, verification, replay protection and decoding."""

    def __init__(
        self,
        signing_key: nacl.signing.SigningKey,
        *,
        first_seq: int,
        limits: WireLimits = WireLimits(),  # frozen, so one shared default is safe
        replay: ReplayGuard | None = None,
    ) -> None:
        if not 0 <= first_seq <= U64_MAX:
            raise ValueError(f"first_seq {first_seq} is not a u64")
        self._signing_key = signing_key
        self._hive_key = bytes(signing_key.verify_key)
        self._next_seq = first_seq
        self._limits = limits
        self._replay = replay if replay is not None else ReplayGuard()
        self._reassembler = Reassembler(limits.reassembly)
        self._gate: Callable[[str, Envelope], str | None] | None = None
        self.stats = WireStats()

    def set_gate(self, gate: Callable[[str, Envelope], str | None]) -> None:
        """Who may talk to us, decided from a verified frame's claimed sender and kind before
        the replay guard sees it: ``gate(peer_id, envelope)`` returns the reason to refuse it
        (a ProtocolError reason, e.g. "not-member"), or None to let it through."""
        self._gate = gate

    @property
    def hive_key(self) -> bytes:
        """Our 32-byte Ed25519 public key."""
        return self._hive_key

    @property
    def next_seq(self) -> int:
        """The seq the next packed message will carry (persist it now and then)."""
        return self._next_seq

    @property
    def replay(self) -> ReplayGuard:
        """The replay guard (for snapshots)."""
        return self._replay

    @property
    def reassembler(self) -> Reassembler:
        """The fragment reassembler (for its pending/buffered figures)."""
        return self._reassembler

    def pack(self, message: Message, now_ms: int, *, msg_id: int) -> list[bytes]:
        """Sign and frame ``message``; return whole BOLT 1 messages (type prefix included):
        one if the frame fits, else fragments with message id ``msg_id``.

        Raises ProtocolError("too-large") if the frame exceeds the limits (no seq is used then),
        ValueError on a number out of range, OverflowError when the seq space is exhausted.
        """
        return self.pack_frame(self.sign(message, now_ms), msg_id=msg_id)

    def sign(self, message: Message, now_ms: int) -> bytes:
        """``message`` as one signed frame with the next sequence number, not yet wrapped: for
        a message that goes to many peers as the same frame (see :meth:`pack_frame`), so that
        copies arriving over several paths are recognised as one by the replay guard.

        Raises as :meth:`pack` does."""
        kind, payload = encode_message(message)
        frame_len = MIN_FRAME_LEN + len(payload)
        if frame_len > self._limits.max_frame_len:
            raise ProtocolError(
                TOO_LARGE,
                f"{type(message).__name__} makes a {frame_len}-byte frame, "
                f"at most {self._limits.max_frame_len}",
            )
        if self._next_seq > U64_MAX:
            raise OverflowError("the u64 sequence space of this hive key is exhausted")
        frame = sign_frame(
            self._signing_key,
            kind=kind,
            seq=self._next_seq,
            timestamp_ms=now_ms,
            payload=payload,
        )
        self._next_seq += 1
        self.stats.packed += 1
        return frame

    def pack_frame(self, frame: bytes, *, msg_id: int) -> list[bytes]:
        """Wrap an already signed frame (ours, or one we relay unchanged) into BOLT 1 messages."""
        if len(frame) > self._limits.max_frame_len:
            raise ProtocolError(
                TOO_LARGE, f"frame of {len(frame)} bytes, at most {self._limits.max_frame_len}"
            )
        if len(frame) <= self._limits.max_single_frame:
            messages = [_TYPE_PREFIX + frame]
        else:
            messages = [
                _TYPE_PREFIX + fragment
                for fragment in split(frame, msg_id, chunk_size=self._limits.chunk_size)
            ]
            self.stats.sent_fragments += len(messages)
        self.stats.sent_messages += len(messages)
        return messages

    def unpack(self, peer_id: str, data: bytes, now_ms: int) -> Received | None:
        """Take one whole BOLT 1 message (type prefix included) from ``peer_id``.

        Returns None while a fragmented message is incomplete, the :class:`Received` message
        once it is whole, verified, fresh and decoded. Raises ProtocolError (and nothing else)
        for anything wrong; its ``reason`` is also counted in ``stats.rejected``.
        """
        try:
            received = self._unpack(peer_id, bytes(data), now_ms)
        except ProtocolError as exc:
            self.stats.rejected[exc.reason] = self.stats.rejected.get(exc.reason, 0) + 1
            raise
        if received is not None:
            self.stats.unpacked += 1
        return received

    def _unpack(self, peer_id: str, data: bytes, now_ms: int) -> Received | None:
        if len(data) < TYPE_LEN:
            raise ProtocolError(TRUNCATED, f"{len(data)}-byte message has no BOLT 1 type")
        if len(data) > BOLT1_MAX_LEN:
            raise ProtocolError(TOO_LARGE, f"{len(data)}-byte message, BOLT 1 allows 65535")
        msg_type = int.from_bytes(data[:TYPE_LEN], "big")
        if msg_type != HIVE_MSG_TYPE:
            raise ProtocolError(BAD_TYPE, f"message type {msg_type}, ours is {HIVE_MSG_TYPE}")
        frame = data[TYPE_LEN:]
        if check_prefix(frame) == FRAME_FRAGMENT:
            expired_before = self._reassembler.expired_total
            try:
                whole = self._reassembler.feed(peer_id, frame, now_ms)
            finally:
                self.stats.expired_partials += self._reassembler.expired_total - expired_before
            self.stats.received_fragments += 1
            if whole is None:
                return None
            if len(whole) > self._limits.max_frame_len:
                raise ProtocolError(TOO_LARGE, f"reassembled frame of {len(whole)} bytes")
            frame = whole
        envelope = verify_frame(frame)
        if self._gate is not None and envelope.sender != self._hive_key:
            refusal = self._gate(peer_id, envelope)
            if refusal is not None:
                raise ProtocolError(
                    refusal, f"kind {envelope.kind:#06x} from {envelope.sender.hex()}"
                ).with_sender(envelope.sender)
        return accept(
            envelope,
            peer_id=peer_id,
            own_key=self._hive_key,
            replay=self._replay,
            now_ms=now_ms,
        )

    def expire(self, now_ms: int) -> None:
        """Drop partial messages past their reassembly deadline."""
        self.stats.expired_partials += self._reassembler.expire(now_ms)

    def forget_peer(self, peer_id: str) -> None:
        """Drop a disconnected peer's partial messages."""
        self._reassembler.forget_peer(peer_id)
