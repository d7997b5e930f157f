"""Fragmentation and bounded reassembly."""

from __future__ import annotations

import random
import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.wire.fragment import (
    FRAGMENT_HEADER_LEN,
    FRAGMENT_OVERHEAD,
    MAX_CHUNK,
    PARTIAL_OVERHEAD,
    Reassembler,
    ReassemblyLimits,
    parse_fragment,
    split,
)

NOW = 1_700_000_000_000


def _frame(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _fragment(msg_id: int, index: int, count: int, chunk: bytes) -> bytes:
    return struct.pack(">2sBBQHH", b"HV", 1, 1, msg_id, index, count) + chunk


def _reason(reassembler: Reassembler, peer: str, payload: bytes, now: int = NOW) -> str | None:
    try:
        reassembler.feed(peer, payload, now)
    except ProtocolError as exc:
        return exc.reason
    return None


def test_header_layout() -> None:
    parts = split(b"abcdef", 0x0102030405060708, chunk_size=4)
    assert parts == [
        b"HV\x01\x01" + bytes.fromhex("0102030405060708") + b"\x00\x00\x00\x02" + b"abc",
        b"HV\x01\x01" + bytes.fromhex("0102030405060708") + b"\x00\x01\x00\x02" + b"def",
    ]
    assert FRAGMENT_HEADER_LEN == 16
    assert MAX_CHUNK + FRAGMENT_HEADER_LEN == 65533  # + 2-byte type = the BOLT 1 maximum


def test_200_kb_round_trip_in_any_order() -> None:
    frame = _frame(200 * 1024)
    parts = split(frame, 42)
    assert len(parts) == 4
    assert all(len(part) <= 65533 for part in parts)
    random.Random(7).shuffle(parts)
    reassembler = Reassembler()
    results = [reassembler.feed("peer", part, NOW) for part in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == frame
    assert reassembler.pending() == 0
    assert reassembler.buffered_bytes() == 0


@settings(max_examples=100)
@given(
    st.binary(min_size=2, max_size=3000),
    st.integers(1, 400),
    st.randoms(use_true_random=False),
    st.integers(0, (1 << 64) - 1),
)
def test_round_trip_with_duplicates_and_reordering(
    frame: bytes, chunk_size: int, rnd: random.Random, msg_id: int
) -> None:
    parts = split(frame, msg_id, chunk_size=chunk_size)
    if len(parts) > 64:
        return
    deliveries = parts + [rnd.choice(parts) for _ in range(3)]
    rnd.shuffle(deliveries)
    reassembler = Reassembler()
    completed = [out for part in deliveries if (out := reassembler.feed("p", part, NOW))]
    # Once complete, a late duplicate starts a fresh partial that never completes alone.
    assert completed[0] == frame
    assert all(out == frame for out in completed)


def test_partials_are_per_peer() -> None:
    frame = _frame(1000)
    parts = split(frame, 1, chunk_size=400)
    reassembler = Reassembler()
    assert reassembler.feed("alice", parts[0], NOW) is None
    assert reassembler.feed("bob", parts[1], NOW) is None
    assert reassembler.feed("bob", parts[2], NOW) is None
    assert reassembler.pending() == 2
    assert reassembler.feed("alice", parts[1], NOW) is None
    assert reassembler.feed("alice", parts[2], NOW) == frame


def test_duplicate_fragment_is_idempotent() -> None:
    parts = split(_frame(100), 1, chunk_size=50)
    reassembler = Reassembler()
    assert reassembler.feed("p", parts[0], NOW) is None
    before = reassembler.buffered_bytes("p")
    assert reassembler.feed("p", parts[0], NOW) is None
    assert reassembler.buffered_bytes("p") == before
    assert reassembler.feed("p", parts[1], NOW) == _frame(100)


def test_inconsistent_count_is_an_error_and_drops_the_partial() -> None:
    reassembler = Reassembler()
    assert _reason(reassembler, "p", _fragment(9, 0, 3, b"aa")) is None
    assert _reason(reassembler, "p", _fragment(9, 1, 4, b"bb")) == "fragment-mismatch"
    assert reassembler.pending("p") == 0
    assert reassembler.buffered_bytes() == 0


def test_same_index_with_other_bytes_is_an_error() -> None:
    reassembler = Reassembler()
    assert _reason(reassembler, "p", _fragment(9, 0, 3, b"aa")) is None
    assert _reason(reassembler, "p", _fragment(9, 0, 3, b"ab")) == "fragment-mismatch"
    assert reassembler.pending() == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_fragment(1, 2, 2, b"x"), "bad-fragment"),  # index == count
        (_fragment(1, 0, 1, b"x"), "bad-fragment"),  # a single fragment
        (_fragment(1, 0, 0, b"x"), "bad-fragment"),
        (_fragment(1, 0, 2, b""), "bad-fragment"),  # empty chunk
        (_fragment(1, 0, 2, b"x")[:15], "truncated"),
        (b"HV", "truncated"),
        (b"XX\x01\x01" + bytes(13), "bad-magic"),
        (b"HV\x02\x01" + bytes(13), "bad-version"),
        (b"HV\x01\x00" + bytes(13), "bad-frame-type"),
        (_fragment(1, 0, 65, b"x"), "fragment-limit"),  # more than 64 fragments
    ],
)
def test_bad_fragments(payload: bytes, reason: str) -> None:
    reassembler = Reassembler()
    assert _reason(reassembler, "p", payload) == reason
    assert reassembler.pending() == 0


def test_too_many_bytes_per_message() -> None:
    limits = ReassemblyLimits(max_message_bytes=1000)
    reassembler = Reassembler(limits)
    assert _reason(reassembler, "p", _fragment(1, 0, 3, bytes(600))) is None
    assert _reason(reassembler, "p", _fragment(1, 1, 3, bytes(401))) == "fragment-limit"
    assert reassembler.pending() == 0  # the oversized message is freed
    assert reassembler.buffered_bytes() == 0


def test_too_many_partials_per_peer() -> None:
    reassembler = Reassembler(ReassemblyLimits(max_partials_per_peer=2))
    assert _reason(reassembler, "p", _fragment(1, 0, 2, b"a")) is None
    assert _reason(reassembler, "p", _fragment(2, 0, 2, b"a")) is None
    assert _reason(reassembler, "p", _fragment(3, 0, 2, b"a")) == "fragment-limit"
    assert _reason(reassembler, "q", _fragment(3, 0, 2, b"a")) is None  # other peers unaffected
    assert _reason(reassembler, "p", _fragment(1, 1, 2, b"b")) is None  # existing ones go on
    assert _reason(reassembler, "p", _fragment(3, 0, 2, b"a")) is None  # and free a slot
    assert reassembler.pending("p") == 2


# What the first fragment of a message is charged beyond its chunk, and what each later one is.
FIRST = PARTIAL_OVERHEAD + FRAGMENT_OVERHEAD
LATER = FRAGMENT_OVERHEAD


def test_peer_byte_budget() -> None:
    limits = ReassemblyLimits(max_bytes_per_peer=1000 + 2 * FIRST, max_partials_per_peer=10)
    reassembler = Reassembler(limits)
    assert _reason(reassembler, "p", _fragment(1, 0, 2, bytes(600))) is None
    assert _reason(reassembler, "p", _fragment(2, 0, 2, bytes(401))) == "fragment-limit"
    assert _reason(reassembler, "p", _fragment(2, 0, 2, bytes(400))) is None
    assert reassembler.buffered_bytes("p") == 1000 + 2 * FIRST
    assert _reason(reassembler, "q", _fragment(2, 0, 2, bytes(600))) is None


def test_total_byte_budget() -> None:
    limits = ReassemblyLimits(max_total_bytes=1000 + 2 * FIRST)
    reassembler = Reassembler(limits)
    assert _reason(reassembler, "p", _fragment(1, 0, 2, bytes(700))) is None
    assert _reason(reassembler, "q", _fragment(1, 0, 2, bytes(301))) == "fragment-limit"
    assert _reason(reassembler, "q", _fragment(1, 0, 2, bytes(300))) is None
    assert reassembler.buffered_bytes() == 1000 + 2 * FIRST


def test_bookkeeping_is_charged_so_tiny_chunks_cannot_hold_more_than_counted() -> None:
    """Tiny chunks: what is held in memory stays within what the budgets count (2-byte chunks:
    CPython caches 1-byte bytes objects, so those would understate the cost)."""
    limits = ReassemblyLimits(
        max_fragments=64,
        max_partials_per_peer=4,
        max_bytes_per_peer=1 << 30,
        max_total_bytes=1 << 30,
    )
    reassembler = Reassembler(limits)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for peer in range(250):
            for msg_id in range(4):
                for index in range(63):  # never complete
                    payload = _fragment(msg_id, index, 64, bytes([index, 7]))
                    assert reassembler.feed(f"peer{peer}", payload, NOW) is None
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert reassembler.pending() == 1000
    charged = reassembler.buffered_bytes()
    assert charged == 1000 * (PARTIAL_OVERHEAD + 63 * (2 + FRAGMENT_OVERHEAD))
    assert held <= charged, f"{held} bytes held, {charged} charged"


def test_outsiders_cannot_starve_members_reassembly() -> None:
    """Issue 8 item 2: outsiders filled the one budget and a member's snapshot was refused."""
    members = {"member"}
    limits = ReassemblyLimits(max_total_bytes=200_000, max_outsider_bytes=50_000)
    reassembler = Reassembler(limits)
    reassembler.set_member_check(members.__contains__)
    refused = 0
    for peer in range(70):
        for msg_id in range(4):
            reason = _reason(reassembler, f"outsider{peer}", _fragment(msg_id, 0, 2, bytes(4000)))
            refused += reason == "fragment-limit"
    assert refused > 0  # the outsiders' pool is full ...
    assert reassembler.buffered_bytes() <= 50_000
    frame = _frame(72_000)  # ... and a member's 72 KB message still goes through whole
    parts = split(frame, 9, chunk_size=20_000)
    results = [reassembler.feed("member", part, NOW) for part in parts]
    assert results[-1] == frame


def test_expired_partials_are_freed() -> None:
    reassembler = Reassembler(ReassemblyLimits(timeout_ms=30_000))
    assert _reason(reassembler, "p", _fragment(1, 0, 2, bytes(100))) is None
    assert _reason(reassembler, "q", _fragment(1, 0, 2, bytes(100)), NOW + 10_000) is None
    assert reassembler.expire(NOW + 29_999) == 0
    assert reassembler.expire(NOW + 30_000) == 1
    assert reassembler.pending("p") == 0
    assert reassembler.buffered_bytes() == 100 + FIRST
    assert reassembler.expire(NOW + 40_000) == 1
    assert reassembler.pending() == 0
    assert reassembler.buffered_bytes() == 0
    assert reassembler.expired_total == 2


def test_completed_partials_leave_no_deadline_behind() -> None:
    reassembler = Reassembler()
    for msg_id in range(10_000):
        for index in range(2):
            reassembler.feed("p", _fragment(msg_id, index, 2, b"x"), NOW)
    assert reassembler.pending() == 0
    assert len(reassembler._deadlines) <= 64 + 1  # purged as they pile up
    assert reassembler.expire(NOW + 10**9) == 0


def test_expired_partial_does_not_complete_with_late_fragment() -> None:
    frame = _frame(100)
    parts = split(frame, 5, chunk_size=50)
    reassembler = Reassembler(ReassemblyLimits(timeout_ms=1000))
    assert reassembler.feed("p", parts[0], NOW) is None
    # The deadline passed and nobody called expire(): feed drops the peer's stale partials first.
    assert reassembler.feed("p", parts[1], NOW + 1000) is None
    assert reassembler.expired_total == 1
    assert reassembler.pending("p") == 1  # only the late fragment, starting afresh
    assert reassembler.feed("p", parts[0], NOW + 1001) == frame


def test_slots_held_by_expired_partials_are_reclaimed_on_feed() -> None:
    reassembler = Reassembler(ReassemblyLimits(max_partials_per_peer=1, timeout_ms=1000))
    assert _reason(reassembler, "p", _fragment(1, 0, 2, b"a")) is None
    assert _reason(reassembler, "p", _fragment(2, 0, 2, b"a"), NOW + 999) == "fragment-limit"
    assert _reason(reassembler, "p", _fragment(2, 0, 2, b"a"), NOW + 1000) is None


def test_forget_peer() -> None:
    reassembler = Reassembler()
    assert _reason(reassembler, "p", _fragment(1, 0, 2, b"a")) is None
    assert _reason(reassembler, "p", _fragment(2, 0, 2, b"a")) is None
    assert _reason(reassembler, "q", _fragment(2, 0, 2, b"a")) is None
    assert reassembler.forget_peer("p") == 2
    assert reassembler.pending() == 1
    assert reassembler.buffered_bytes("p") == 0


def test_parse_fragment_fields() -> None:
    fragment = parse_fragment(_fragment(77, 3, 9, b"xyz"))
    assert (fragment.msg_id, fragment.index, fragment.count, fragment.chunk) == (77, 3, 9, b"xyz")


def test_split_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="msg_id"):
        split(b"abc", -1)
    with pytest.raises(ValueError, match="chunk size"):
        split(b"abc", 1, chunk_size=MAX_CHUNK + 1)
    with pytest.raises(ValueError, match="cannot split"):
        split(b"a", 1)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=12), st.integers(0, 100_000))
def test_random_fragments_raise_only_protocol_error(payloads: list[bytes], step: int) -> None:
    reassembler = Reassembler(ReassemblyLimits(max_bytes_per_peer=500, max_total_bytes=800))
    for index, raw in enumerate(payloads):
        for candidate in (raw, b"HV\x01\x01" + raw):
            try:
                out = reassembler.feed(f"p{index % 3}", candidate, NOW + index * step)
            except ProtocolError:
                continue
            assert out is None or isinstance(out, bytes)
    assert reassembler.buffered_bytes() <= 800
    for peer in ("p0", "p1", "p2"):
        assert reassembler.buffered_bytes(peer) <= 500
        assert reassembler.pending(peer) <= 4
