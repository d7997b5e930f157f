"""The replay guard: freshness, seq window, bounded senders, snapshots, and a state machine."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from hive.protocol.errors import ProtocolError
from hive.protocol.wire.replay import ReplayConfig, ReplayGuard, first_seq

NOW = 1_700_000_000_000
A = b"\xaa" * 32
B = b"\xbb" * 32
C = b"\xcc" * 32


def _reason(guard: ReplayGuard, sender: bytes, seq: int, ts: int, now: int = NOW) -> str | None:
    try:
        guard.check(sender, seq, ts, now)
    except ProtocolError as exc:
        return exc.reason
    return None


def test_timestamp_window_edges() -> None:
    guard = ReplayGuard(ReplayConfig(max_age_ms=600_000, max_skew_ms=600_000))
    assert _reason(guard, A, 1, NOW - 600_000) is None
    assert _reason(guard, A, 2, NOW - 600_001) == "stale"
    assert _reason(guard, A, 3, NOW + 600_000) is None
    assert _reason(guard, A, 4, NOW + 600_001) == "future"


def test_rejected_timestamp_does_not_consume_the_seq() -> None:
    guard = ReplayGuard()
    assert _reason(guard, A, 1, NOW - 10**9) == "stale"
    assert A not in guard
    assert _reason(guard, A, 1, NOW) is None


def test_each_seq_accepted_once() -> None:
    guard = ReplayGuard()
    assert _reason(guard, A, 10, NOW) is None
    assert _reason(guard, A, 10, NOW) == "replay"
    assert _reason(guard, A, 10, NOW + 1) == "replay"  # a new timestamp does not help
    assert _reason(guard, B, 10, NOW) is None  # senders are independent


def test_out_of_order_inside_window_accepted() -> None:
    guard = ReplayGuard(ReplayConfig(window=8))
    for seq in (100, 95, 99, 93, 101, 94, 96):
        assert _reason(guard, A, seq, NOW) is None, seq
    for seq in (100, 95, 94, 101):
        assert _reason(guard, A, seq, NOW) == "replay"
    assert _reason(guard, A, 93, NOW) == "seq-too-old"  # the window moved up to 94..101
    assert guard.highest_seq(A) == 101


def test_below_window_refused() -> None:
    guard = ReplayGuard(ReplayConfig(window=8))
    assert _reason(guard, A, 100, NOW) is None
    assert _reason(guard, A, 93, NOW) is None  # 100 - 7: the window's lowest slot
    assert _reason(guard, A, 92, NOW) == "seq-too-old"
    assert _reason(guard, A, 0, NOW) == "seq-too-old"


def test_huge_jump_is_cheap_and_forgets_below_window() -> None:
    guard = ReplayGuard(ReplayConfig(window=1024))
    assert _reason(guard, A, 5, NOW) is None
    assert _reason(guard, A, (1 << 64) - 1, NOW) is None
    assert _reason(guard, A, 6, NOW) == "seq-too-old"
    snapshot = guard.snapshot()
    assert len(snapshot["senders"][0]["seen"]) <= 1024 // 4  # the bitmap stays bounded


def test_window_slides_keeping_recent_bits() -> None:
    guard = ReplayGuard(ReplayConfig(window=4))
    for seq in (1, 2, 3, 4):
        assert _reason(guard, A, seq, NOW) is None
    assert _reason(guard, A, 6, NOW) is None  # window now 3..6
    assert _reason(guard, A, 3, NOW) == "replay"
    assert _reason(guard, A, 5, NOW) is None
    assert _reason(guard, A, 2, NOW) == "seq-too-old"


def test_sender_count_bounded_with_lru_eviction() -> None:
    guard = ReplayGuard(ReplayConfig(max_senders=2))
    assert _reason(guard, A, 1, NOW) is None
    assert _reason(guard, B, 1, NOW + 1) is None
    assert _reason(guard, A, 2, NOW + 2) is None  # A is now the most recently active
    assert _reason(guard, C, 1, NOW + 3) is None  # evicts B
    assert len(guard) == 2
    assert B not in guard
    assert A in guard
    assert guard.evictions == 1
    assert guard.eviction_floor_ms == NOW + 1


def test_evicted_sender_cannot_replay_old_frames() -> None:
    guard = ReplayGuard(ReplayConfig(max_senders=1))
    assert _reason(guard, A, 1, NOW) is None
    assert _reason(guard, A, 2, NOW + 5) is None
    assert _reason(guard, B, 1, NOW + 10) is None  # evicts A, floor = NOW + 5
    assert _reason(guard, A, 1, NOW, now=NOW + 10) == "stale"  # its old frames stay refused
    assert _reason(guard, A, 2, NOW + 5, now=NOW + 10) == "stale"
    assert _reason(guard, A, 3, NOW + 6, now=NOW + 10) is None  # a newer frame is welcome
    # Readmitted, A still refuses its pre-eviction frames although their seqs are in its window.
    assert _reason(guard, A, 2, NOW + 5, now=NOW + 10) == "stale"
    assert _reason(guard, A, 1, NOW, now=NOW + 10) == "stale"
    assert _reason(guard, A, 2, NOW + 7, now=NOW + 10) is None  # a new frame with seq 2: fine


def test_snapshot_round_trip_keeps_refusing_replays() -> None:
    config = ReplayConfig(window=16, max_senders=3)
    guard = ReplayGuard(config)
    for sender, seq in ((A, 10), (A, 7), (B, 1), (C, 1000), (C, 990)):
        assert _reason(guard, sender, seq, NOW) is None
    snapshot = json.loads(json.dumps(guard.snapshot()))  # plain JSON-able data
    restored = ReplayGuard.from_snapshot(snapshot, config)
    assert restored.snapshot() == guard.snapshot()
    for sender, seq in ((A, 10), (A, 7), (B, 1), (C, 1000), (C, 990)):
        assert _reason(restored, sender, seq, NOW) == "replay"
    assert _reason(restored, A, 8, NOW) is None


def test_snapshot_into_smaller_config_evicts_safely() -> None:
    guard = ReplayGuard(ReplayConfig(max_senders=3))
    for index, sender in enumerate((A, B, C)):
        assert _reason(guard, sender, 1, NOW + index) is None
    restored = ReplayGuard.from_snapshot(guard.snapshot(), ReplayConfig(max_senders=1))
    assert len(restored) == 1
    assert C in restored
    assert _reason(restored, A, 1, NOW) == "stale"
    assert _reason(restored, B, 1, NOW + 1) == "stale"


ENTRY = {"sender": "aa", "top": 1, "seen": "1", "max_timestamp_ms": 0, "floor_ms": -1}


def test_minimal_snapshot_accepted() -> None:
    guard = ReplayGuard.from_snapshot({"format": 1, "floor_ms": 5, "senders": [ENTRY]})
    assert guard.highest_seq(b"\xaa") == 1
    assert guard.eviction_floor_ms == 5


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"format": 2, "floor_ms": 0, "senders": []},
        {"format": 1, "floor_ms": "0", "senders": []},
        {"format": 1, "floor_ms": 0, "senders": [{**ENTRY, "sender": "zz"}]},
        {"format": 1, "floor_ms": 0, "senders": [{**ENTRY, "top": "1"}]},
        {"format": 1, "floor_ms": 0, "senders": [{**ENTRY, "seen": "xyz"}]},
        {"format": 1, "floor_ms": 0, "senders": [ENTRY, ENTRY]},
        {"format": 1, "floor_ms": 0, "senders": [{"sender": "aa"}]},
        {"format": 1, "floor_ms": 0, "senders": [5]},
    ],
)
def test_malformed_snapshot_refused(snapshot: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        ReplayGuard.from_snapshot(snapshot)


def test_first_seq_is_monotonic_across_restarts() -> None:
    assert first_seq(None, NOW) == NOW * 1000
    assert first_seq(5, NOW) == NOW * 1000
    assert first_seq(NOW * 1000 + 77, NOW) == NOW * 1000 + 78
    assert first_seq(None, NOW + 1) > first_seq(None, NOW)
    assert NOW * 1000 < 1 << 64  # fits a u64 for a few hundred thousand years


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window"):
        ReplayConfig(window=0)


class ReplayMachine(RuleBasedStateMachine):
    """Honest senders number frames uniquely and deliveries are arbitrary (duplicated, reordered,
    delayed). Invariant: a (sender, seq) pair is never accepted twice; a fresh frame from a
    tracked sender within the window and the time bounds is always accepted."""

    SENDERS = (A, B, C, b"\xdd" * 32)
    WINDOW = 16
    MAX_AGE = 60_000

    @initialize()
    def setup(self) -> None:
        self.config = ReplayConfig(
            max_age_ms=self.MAX_AGE, max_skew_ms=5_000, window=self.WINDOW, max_senders=2
        )
        self.guard = ReplayGuard(self.config)
        self.now = NOW
        self.next_seq = dict.fromkeys(self.SENDERS, 1)
        self.sent: list[tuple[bytes, int, int]] = []
        self.accepted: set[tuple[bytes, int]] = set()
        # Model of what the guard tracks, least recently active first:
        # sender -> [highest accepted seq, highest accepted timestamp, floor when admitted].
        self.tracked: OrderedDict[bytes, list[int]] = OrderedDict()
        self.floor = -1  # highest timestamp accepted from any evicted sender

    @rule(sender=st.sampled_from(SENDERS), gap=st.integers(1, 40), skew=st.integers(-2_000, 2_000))
    def send(self, sender: bytes, gap: int, skew: int) -> None:
        seq = self.next_seq[sender] + gap - 1
        self.next_seq[sender] = seq + 1
        self.sent.append((sender, seq, self.now + skew))

    @rule(advance=st.integers(0, 30_000))
    def tick(self, advance: int) -> None:
        self.now += advance

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        sender, seq, ts = data.draw(st.sampled_from(self.sent))
        fresh_time = self.now - self.MAX_AGE <= ts <= self.now + 5_000
        must_accept = (
            fresh_time
            and (sender, seq) not in self.accepted
            and sender in self.tracked
            and seq > self.tracked[sender][0] - self.WINDOW
            and ts > self.tracked[sender][2]
        )
        refusal = None
        try:
            self.guard.check(sender, seq, ts, self.now)
        except ProtocolError as exc:
            refusal = exc
        if refusal is not None:
            assert not must_accept, f"fresh in-window frame refused: {refusal}"
            return
        assert (sender, seq) not in self.accepted, "a (sender, seq) pair was accepted twice"
        assert fresh_time
        self.accepted.add((sender, seq))
        if sender not in self.tracked:
            assert ts > self.floor, "an untracked sender was admitted at or below the floor"
            admitted_at = self.floor
            if len(self.tracked) >= self.config.max_senders:
                _evicted, (_top, max_ts, _floor) = self.tracked.popitem(last=False)
                self.floor = max(self.floor, max_ts)
            self.tracked[sender] = [seq, ts, admitted_at]
        state = self.tracked[sender]
        state[0], state[1] = max(state[0], seq), max(state[1], ts)
        self.tracked.move_to_end(sender)

    @invariant()
    def bounded_and_consistent(self) -> None:
        if not hasattr(self, "guard"):
            return
        assert len(self.guard) <= self.config.max_senders
        assert set(self.tracked) == {s for s in self.SENDERS if s in self.guard}
        for sender, (top, _ts, _floor) in self.tracked.items():
            assert self.guard.highest_seq(sender) == top
        assert self.guard.eviction_floor_ms == self.floor

    @invariant()
    def snapshot_is_faithful(self) -> None:
        if not hasattr(self, "guard"):
            return
        restored = ReplayGuard.from_snapshot(self.guard.snapshot(), self.config)
        assert restored.snapshot() == self.guard.snapshot()


TestReplayMachine = ReplayMachine.TestCase
TestReplayMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
