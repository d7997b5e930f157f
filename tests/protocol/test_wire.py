"""The HiveWire facade: pack/unpack, relay, rejections, stats, fragmentation, hostile input."""

from __future__ import annotations

import random

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.messages import ChannelSummary, Message, Ping, Pong, StateAnnounce
from hive.protocol.wire.codec import encode_message, reference_decode_message
from hive.protocol.wire.envelope import HIVE_MSG_TYPE, SIGN_DOMAIN, parse_frame, sign_frame
from hive.protocol.wire.facade import HiveWire, Received, WireLimits, verify_frame
from hive.protocol.wire.fragment import ReassemblyLimits
from hive.protocol.wire.replay import ReplayConfig, ReplayGuard

from . import strategies

NOW = 1_700_000_000_000
KEY_A = nacl.signing.SigningKey(b"\x0a" * 32)
KEY_B = nacl.signing.SigningKey(b"\x0b" * 32)
KEY_C = nacl.signing.SigningKey(b"\x0c" * 32)
TYPE = HIVE_MSG_TYPE.to_bytes(2, "big")


def _wire(key: nacl.signing.SigningKey, **kwargs: object) -> HiveWire:
    return HiveWire(key, first_seq=1000, **kwargs)  # type: ignore[arg-type]


def _state(channels: int) -> StateAnnounce:
    return StateAnnounce(
        version=3,
        channels=tuple(
            ChannelSummary(
                peer=b"\x03" + i.to_bytes(32, "big"),
                capacity_sat=5_000_000 + i,
                local_share_ppm=(i * 7919) % 1_000_001,
            )
            for i in range(channels)
        ),
        outbound_msat=1 << 40,
        inbound_msat=1 << 39,
        onchain_sat=21_000_000,
    )


def _reject(wire: HiveWire, data: bytes, now: int = NOW, peer: str = "p") -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        wire.unpack(peer, data, now)
    return info.value


def test_pack_unpack_round_trip() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    ping = Ping(nonce=b"12345678")
    (data,) = alice.pack(ping, NOW, msg_id=1)
    assert data[:2] == TYPE
    received = bob.unpack("alice-node", data, NOW + 50)
    assert received == Received(
        peer_id="alice-node",
        sender=alice.hive_key,
        seq=1000,
        timestamp_ms=NOW,
        message=ping,
        frame=data[2:],
    )
    assert alice.next_seq == 1001
    assert alice.stats.packed == 1
    assert bob.stats.unpacked == 1
    assert bob.stats.rejected == {}


@settings(max_examples=100)
@given(st.lists(strategies.any_message(), min_size=1, max_size=5))
def test_every_kind_goes_through_the_wire(messages: list[Message]) -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    for offset, message in enumerate(messages):
        datas = alice.pack(message, NOW + offset, msg_id=offset)
        results = [bob.unpack("a", data, NOW + offset) for data in datas]
        received = results[-1]
        assert received is not None
        assert received.message == message
        assert received.seq == 1000 + offset
        assert verify_frame(received.frame).sender == alice.hive_key


def test_hive_key_is_the_ed25519_public_key() -> None:
    assert _wire(KEY_A).hive_key == bytes(KEY_A.verify_key)
    assert len(_wire(KEY_A).hive_key) == 32


def test_relayed_frame_keeps_its_origin_and_is_deduplicated() -> None:
    alice, bob, carol = _wire(KEY_A), _wire(KEY_B), _wire(KEY_C)
    (data,) = alice.pack(Pong(nonce=bytes(8)), NOW, msg_id=1)
    at_bob = bob.unpack("alice", data, NOW)
    assert at_bob is not None
    (relayed,) = bob.pack_frame(at_bob.frame, msg_id=2)
    at_carol = carol.unpack("bob", relayed, NOW + 10)
    assert at_carol is not None
    assert at_carol.peer_id == "bob"
    assert at_carol.sender == alice.hive_key
    assert at_carol.frame == at_bob.frame
    # The same frame arriving over another path is a replay.
    error = _reject(carol, data, NOW + 20, peer="alice")
    assert error.reason == "replay"
    assert error.sender == alice.hive_key


def test_large_message_is_fragmented_and_reassembled() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    big = _state(1000)
    datas = alice.pack(big, NOW, msg_id=99)
    assert len(datas) >= 2
    assert all(len(data) <= 65535 and data[:2] == TYPE for data in datas)
    random.Random(3).shuffle(datas)
    results = [bob.unpack("a", data, NOW) for data in datas]
    assert results[:-1] == [None] * (len(datas) - 1)
    final = results[-1]
    assert final is not None
    assert final.message == big
    assert alice.stats.sent_fragments == len(datas)
    assert bob.stats.received_fragments == len(datas)


def test_200_kb_frame_through_the_wire() -> None:
    """A 200 KB signed frame crosses as fragments and verifies as a whole on arrival (its kind
    is unknown here, which is refused only after the signature verified)."""
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    frame = sign_frame(KEY_A, kind=0x7FFF, seq=5, timestamp_ms=NOW, payload=bytes(200 * 1024))
    datas = alice.pack_frame(frame, msg_id=7)
    assert len(datas) == 4
    for data in datas[:-1]:
        assert bob.unpack("a", data, NOW) is None
    error = _reject(bob, datas[-1], peer="a")
    assert error.reason == "unknown-kind"
    assert error.sender == alice.hive_key
    assert bob.stats.rejected == {"unknown-kind": 1}


def test_small_chunks_many_fragments() -> None:
    limits = WireLimits(chunk_size=1000, max_single_frame=1000)
    alice, bob = _wire(KEY_A, limits=limits), _wire(KEY_B, limits=limits)
    message = _state(300)
    datas = alice.pack(message, NOW, msg_id=5)
    assert len(datas) > 20
    received = [bob.unpack("a", data, NOW) for data in datas][-1]
    assert received is not None
    assert received.message == message


def test_message_too_large_for_limits_uses_no_seq() -> None:
    limits = WireLimits(reassembly=ReassemblyLimits(max_message_bytes=2000))
    alice = _wire(KEY_A, limits=limits)
    with pytest.raises(ProtocolError) as info:
        alice.pack(_state(100), NOW, msg_id=1)
    assert info.value.reason == "too-large"
    assert alice.next_seq == 1000
    assert alice.stats.packed == 0


def test_more_fragments_than_allowed_refused() -> None:
    small = WireLimits(chunk_size=100, max_single_frame=200)
    alice = _wire(KEY_A, limits=small)  # its own max_frame_len is 64 * 100
    with pytest.raises(ProtocolError) as info:
        alice.pack(_state(100), NOW, msg_id=1)
    assert info.value.reason == "too-large"
    many = ReassemblyLimits(max_fragments=500)
    sender = _wire(KEY_A, limits=WireLimits(chunk_size=100, max_single_frame=200, reassembly=many))
    datas = sender.pack(_state(100), NOW, msg_id=1)
    assert len(datas) > 64
    error = _reject(_wire(KEY_B), datas[0])
    assert error.reason == "fragment-limit"


def test_out_of_order_within_window_accepted() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    datas = [alice.pack(Ping(nonce=bytes([i]) * 8), NOW, msg_id=i)[0] for i in range(6)]
    for index in (3, 0, 5, 1, 4, 2):
        received = bob.unpack("a", datas[index], NOW)
        assert received is not None
        assert received.seq == 1000 + index


def test_replayed_seq_rejected() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (data,) = alice.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    assert bob.unpack("a", data, NOW) is not None
    error = _reject(bob, data, NOW + 1)
    assert error.reason == "replay"
    assert bob.stats.rejected == {"replay": 1}


def test_stale_and_future_timestamps_rejected() -> None:
    alice = _wire(KEY_A)
    bob = _wire(KEY_B, replay=ReplayGuard(ReplayConfig(max_age_ms=60_000, max_skew_ms=5_000)))
    (old,) = alice.pack(Ping(nonce=bytes(8)), NOW - 60_001, msg_id=1)
    (ahead,) = alice.pack(Ping(nonce=bytes(8)), NOW + 5_001, msg_id=2)
    (fine,) = alice.pack(Ping(nonce=bytes(8)), NOW + 5_000, msg_id=3)
    assert _reject(bob, old).reason == "stale"
    assert _reject(bob, ahead).reason == "future"
    assert bob.unpack("a", fine, NOW) is not None
    assert bob.stats.rejected == {"stale": 1, "future": 1}


def test_forged_signature_rejected() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (data,) = alice.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    forged = bytearray(data)
    forged[-10] ^= 0x40
    error = _reject(bob, bytes(forged))
    assert error.reason == "bad-signature"
    assert error.sender is None  # not attributable: the signature did not verify
    # The genuine frame still goes through: the forgery consumed nothing.
    assert bob.unpack("a", data, NOW) is not None


def test_wrong_key_rejected() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (data,) = alice.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    impersonated = data[:8] + bytes(KEY_C.verify_key) + data[40:]
    assert _reject(bob, impersonated).reason == "bad-signature"


def test_tampered_body_rejected() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (data,) = alice.pack(Ping(nonce=b"AAAAAAAA"), NOW, msg_id=1)
    tampered = data.replace(b"AAAAAAAA", b"AAAAAAAB")
    assert _reject(bob, tampered).reason == "bad-signature"


def test_own_frame_coming_back_rejected() -> None:
    alice = _wire(KEY_A)
    (data,) = alice.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    error = _reject(alice, data)
    assert error.reason == "own-frame"


def test_unknown_kind_from_newer_peer_is_attributed_and_consumes_its_seq() -> None:
    bob = _wire(KEY_B)
    frame = sign_frame(KEY_A, kind=0x0FFF, seq=77, timestamp_ms=NOW, payload=b"\xa0")
    error = _reject(bob, TYPE + frame)
    assert error.reason == "unknown-kind"
    assert error.sender == bytes(KEY_A.verify_key)
    assert _reject(bob, TYPE + frame).reason == "replay"
    assert bob.stats.rejected == {"unknown-kind": 1, "replay": 1}


def test_bad_body_is_attributed_to_its_sender() -> None:
    bob = _wire(KEY_B)
    kind, _payload = encode_message(Ping(nonce=bytes(8)))
    frame = sign_frame(KEY_A, kind=kind, seq=1, timestamp_ms=NOW, payload=b"\xa1\x63zzz\x01")
    error = _reject(bob, TYPE + frame)
    assert error.reason == "unknown-field"
    assert "zzz" in error.detail
    assert error.sender == bytes(KEY_A.verify_key)


def test_unknown_version_rejected_as_bad_version() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (data,) = alice.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    newer = data[:4] + b"\x02" + data[5:]
    assert _reject(bob, newer).reason == "bad-version"
    assert bob.stats.rejected == {"bad-version": 1}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xb1", "truncated"),
        (b"\x00\x07" + b"HV\x01\x00", "bad-type"),  # type 7 (gossip query): not ours
        (b"\xb1\xe7" + b"HV\x01\x00", "bad-type"),
        (TYPE, "truncated"),
        (TYPE + b"HV\x01", "truncated"),
        (TYPE + b"XX\x01\x00" + bytes(200), "bad-magic"),
        (TYPE + b"HV\x01\x05" + bytes(200), "bad-frame-type"),
        (TYPE + bytes(65534), "too-large"),
    ],
)
def test_malformed_messages(data: bytes, reason: str) -> None:
    bob = _wire(KEY_B)
    assert _reject(bob, data).reason == reason
    assert bob.stats.rejected == {reason: 1}


def test_expire_frees_partials_and_counts() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    datas = alice.pack(_state(1000), NOW, msg_id=1)
    assert bob.unpack("a", datas[0], NOW) is None
    assert bob.reassembler.pending() == 1
    bob.expire(NOW + 29_999)
    assert bob.reassembler.pending() == 1
    bob.expire(NOW + 30_000)
    assert bob.reassembler.pending() == 0
    assert bob.stats.expired_partials == 1
    # The rest of the message alone can no longer complete it.
    for data in datas[1:]:
        assert bob.unpack("a", data, NOW + 30_001) is None


def test_forget_peer_drops_its_partials() -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    datas = alice.pack(_state(1000), NOW, msg_id=1)
    assert bob.unpack("a", datas[0], NOW) is None
    bob.forget_peer("a")
    assert bob.reassembler.pending() == 0


def test_first_seq_bounds() -> None:
    with pytest.raises(ValueError, match="first_seq"):
        HiveWire(KEY_A, first_seq=-1)
    wire = HiveWire(KEY_A, first_seq=(1 << 64) - 1)
    wire.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    with pytest.raises(OverflowError):
        wire.pack(Ping(nonce=bytes(8)), NOW, msg_id=2)


def _only_protocol_errors(wire: HiveWire, data: bytes) -> Received | None:
    reason = None
    try:
        return wire.unpack("fuzz", data, NOW)
    except ProtocolError as exc:
        reason = exc.reason
    assert reason in wire.stats.rejected  # counted under its reason
    return None


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    bob = _wire(KEY_B)
    for candidate in (data, TYPE + data, TYPE + b"HV\x01\x00" + data, TYPE + b"HV\x01\x01" + data):
        assert _only_protocol_errors(bob, candidate) is None


@settings(max_examples=300)
@given(strategies.any_message(), st.data())
def test_any_bit_flip_of_a_whole_message_is_rejected(message: Message, data: st.DataObject) -> None:
    alice, bob = _wire(KEY_A), _wire(KEY_B)
    (packed, *rest) = alice.pack(message, NOW, msg_id=1)
    if rest:
        return  # fragmented: covered below
    flipped = bytearray(packed)
    position = data.draw(st.integers(0, len(flipped) - 1), label="position")
    flipped[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(ProtocolError):
        bob.unpack("a", bytes(flipped), NOW)
    cut = data.draw(st.integers(0, len(packed) - 1), label="cut")
    with pytest.raises(ProtocolError):
        bob.unpack("a", packed[:cut], NOW)


# Offsets in a signed frame (after the BOLT 1 type): prefix 0..4, kind 4..6, sender 6..38,
# seq 38..46, timestamp 46..54, payload_len 54..58, payload, signature (last 64).
_SENDER = range(6, 38)


def _expected(frame: bytes, now: int) -> Message | str:
    """What a fresh receiver must make of a correctly signed ``frame``, by independent steps:
    structure, freshness, then the reference decoder."""
    try:
        envelope = parse_frame(frame)
        ReplayGuard().check(envelope.sender, envelope.seq, envelope.timestamp_ms, now)
        return reference_decode_message(envelope.kind, envelope.payload)
    except ProtocolError as exc:
        return exc.reason


@settings(max_examples=400)
@given(strategies.any_message(), st.data())
def test_any_bit_flip_re_signed_is_judged_by_the_checks_after_the_signature(
    message: Message, data: st.DataObject
) -> None:
    """The flip above stops at the signature. Here the flipped frame is signed again by its
    sender, so the flip reaches the header fields and the body: the receiver must refuse it
    for what the flip broke (or accept the message it now says), never for its signature."""
    (packed, *rest) = _wire(KEY_A).pack(message, NOW, msg_id=1)
    if rest:
        return  # fragmented: the reassembled frame is judged the same way
    unsigned = bytearray(packed[2:-64])
    positions = [i for i in range(4, len(unsigned)) if i not in _SENDER]
    position = data.draw(st.sampled_from(positions), label="position")
    unsigned[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    frame = bytes(unsigned) + KEY_A.sign(SIGN_DOMAIN + bytes(unsigned)).signature
    try:
        outcome: Message | str = _wire(KEY_B).unpack("a", TYPE + frame, NOW).message
    except ProtocolError as exc:
        outcome = exc.reason
    assert outcome != "bad-signature"
    assert outcome == _expected(frame, NOW)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_bit_flips_in_fragments_never_yield_a_message(data: st.DataObject) -> None:
    alice = _wire(KEY_A, limits=WireLimits(chunk_size=4000, max_single_frame=4000))
    bob = _wire(KEY_B)
    datas = alice.pack(_state(200), NOW, msg_id=1)
    victim = data.draw(st.integers(0, len(datas) - 1), label="fragment")
    flipped = bytearray(datas[victim])
    position = data.draw(st.integers(0, len(flipped) - 1), label="position")
    flipped[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    datas[victim] = bytes(flipped)
    for packed in datas:
        assert _only_protocol_errors(bob, packed) is None


def test_oversized_input_rejected_quickly() -> None:
    bob = _wire(KEY_B)
    assert _reject(bob, TYPE + b"HV\x01\x00" + bytes(10_000_000)).reason == "too-large"


def test_one_signed_frame_sent_to_many_is_accepted_once_per_receiver() -> None:
    sender = HiveWire(KEY_A, first_seq=7)
    frame = sender.sign(Ping(nonce=b"n" * 8), NOW)
    assert sender.next_seq == 8
    assert verify_frame(frame).seq == 7
    receivers = [_wire(KEY_B), _wire(KEY_C)]
    for receiver in receivers:
        (whole,) = sender.pack_frame(frame, msg_id=1)
        got = receiver.unpack("02" + "aa" * 32, whole, NOW)
        assert got is not None
        assert got.message == Ping(nonce=b"n" * 8)
        # The same frame arriving again (say, by a relay) is a replay for that receiver.
        with pytest.raises(ProtocolError) as info:
            receiver.unpack("03" + "bb" * 32, whole, NOW)
        assert info.value.reason == "replay"
