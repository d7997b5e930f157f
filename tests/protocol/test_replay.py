"""The replay guard: freshness, seq window, bounded senders, snapshots, and a state machine."""

from __future__ import annotations

import json

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


def test_sender_count_bounded_evicting_the_oldest_timestamp() -> None:
    guard = ReplayGuard(ReplayConfig(max_senders=2))
    later = NOW + 10
    assert _reason(guard, A, 1, NOW, now=later) is None
    assert _reason(guard, B, 1, NOW + 1, now=later) is None
    assert _reason(guard, A, 2, NOW + 2, now=later) is None  # A's newest frame is now the later
    assert _reason(guard, C, 1, NOW + 3, now=later) is None  # evicts B
    assert len(guard) == 2
    assert B not in guard
    assert A in guard
    assert guard.evictions == 1
    assert guard.eviction_floor_ms == NOW + 1


def test_evicted_sender_cannot_replay_old_frames() -> None:
    guard = ReplayGuard(ReplayConfig(max_senders=1))
    assert _reason(guard, A, 1, NOW, now=NOW + 10) is None
    assert _reason(guard, A, 2, NOW + 5, now=NOW + 10) is None
    assert _reason(guard, B, 1, NOW + 10, now=NOW + 10) is None  # evicts A, floor = NOW + 5
    assert _reason(guard, A, 1, NOW, now=NOW + 10) == "stale"  # its old frames stay refused
    assert _reason(guard, A, 2, NOW + 5, now=NOW + 10) == "stale"
    assert _reason(guard, A, 3, NOW + 6, now=NOW + 11) is None  # a newer frame is welcome
    # Readmitted, A still refuses its pre-eviction frames although their seqs are in its window.
    assert _reason(guard, A, 2, NOW + 5, now=NOW + 11) == "stale"
    assert _reason(guard, A, 1, NOW, now=NOW + 11) == "stale"
    assert _reason(guard, A, 2, NOW + 7, now=NOW + 11) is None  # a new frame with seq 2: fine


def test_outsiders_dating_frames_ahead_are_never_evicted_past_the_clock() -> None:
    """The attack of issue 8 item 1: fresh keys timestamped ten minutes ahead. The floor must
    stay at or below our clock, so the outsiders are refused as busy instead."""
    guard = ReplayGuard(ReplayConfig(max_senders=3))
    ahead = NOW + 9 * 60_000
    for index in range(3):
        assert _reason(guard, bytes([index]) * 32, 1, ahead + index) is None
    assert _reason(guard, b"\x10" * 32, 1, ahead) == "busy"
    assert guard.eviction_floor_ms == -1
    assert _reason(guard, A, 1, NOW) == "busy"  # an honest newcomer waits too ...
    # ... until the clock reaches the oldest of those timestamps: then it is evicted.
    assert _reason(guard, A, 1, NOW, now=ahead) is None
    assert guard.eviction_floor_ms == ahead
    assert guard.eviction_floor_ms <= ahead  # never past the clock at the time it moved


def test_outsiders_cannot_displace_members() -> None:
    members = {A, B}
    guard = ReplayGuard(ReplayConfig(max_senders=4, max_members=8))
    guard.set_member_check(members.__contains__)
    assert _reason(guard, A, 1, NOW) is None
    assert _reason(guard, B, 1, NOW) is None
    for index in range(1000):  # outsiders, fresh keys, each dated at the clock
        now = NOW + index
        assert _reason(guard, index.to_bytes(32, "big"), 1, now, now=now) is None
    assert A in guard
    assert B in guard
    assert guard.tracked_members() == 2
    assert len(guard) == 2 + 4
    # The members' frames are still accepted, and their replays still refused.
    assert _reason(guard, A, 2, NOW + 1000, now=NOW + 1000) is None
    assert _reason(guard, B, 1, NOW, now=NOW + 1000) == "replay"


def test_an_outsider_that_becomes_a_member_moves_with_its_state() -> None:
    members: set[bytes] = set()
    guard = ReplayGuard(ReplayConfig(max_senders=1))
    guard.set_member_check(members.__contains__)
    assert _reason(guard, A, 1, NOW) is None  # a candidate, as an outsider
    members.add(A)
    assert _reason(guard, A, 2, NOW) is None
    assert guard.tracked_members() == 1
    assert _reason(guard, A, 1, NOW) == "replay"  # its outsider frames stay seen
    assert _reason(guard, B, 1, NOW + 1, now=NOW + 1) is None  # room for one outsider
    assert _reason(guard, C, 1, NOW + 2, now=NOW + 2) is None  # evicts B, not A
    assert A in guard
    assert B not in guard


def test_a_member_evicted_as_outsider_cannot_replay_its_outsider_frames() -> None:
    members: set[bytes] = set()
    guard = ReplayGuard(ReplayConfig(max_senders=1))
    guard.set_member_check(members.__contains__)
    assert _reason(guard, A, 5, NOW) is None  # a candidate's handshake frame
    assert _reason(guard, B, 1, NOW + 1, now=NOW + 1) is None  # evicts A: floor NOW
    members.add(A)
    assert _reason(guard, A, 4, NOW, now=NOW + 1) == "stale"  # dated at the floor
    assert _reason(guard, A, 6, NOW + 1, now=NOW + 1) is None
    assert _reason(guard, A, 5, NOW, now=NOW + 1) == "stale"


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
        assert _reason(guard, sender, 1, NOW + index, now=NOW + 2) is None
    restored = ReplayGuard.from_snapshot(guard.snapshot(), ReplayConfig(max_senders=1))
    assert len(restored) == 1
    assert C in restored
    assert _reason(restored, A, 1, NOW) == "stale"
    assert _reason(restored, B, 1, NOW + 1) == "stale"


def test_snapshot_keeps_the_partitions() -> None:
    members = {A}
    guard = ReplayGuard(ReplayConfig(max_senders=1))
    guard.set_member_check(members.__contains__)
    assert _reason(guard, A, 1, NOW) is None
    assert _reason(guard, B, 1, NOW) is None
    snapshot = json.loads(json.dumps(guard.snapshot()))
    restored = ReplayGuard.from_snapshot(snapshot, ReplayConfig(max_senders=1))
    assert restored.tracked_members() == 1  # A, although the restored guard has no member check
    assert _reason(restored, C, 1, NOW + 1, now=NOW + 1) is None  # evicts B, never A
    assert A in restored
    assert B not in restored


def test_format_1_snapshot_loads_as_outsiders() -> None:
    entry = {**ENTRY, "sender": A.hex(), "top": 7, "max_timestamp_ms": NOW}
    guard = ReplayGuard.from_snapshot({"format": 1, "floor_ms": -1, "senders": [entry]})
    assert guard.tracked_members() == 0
    assert _reason(guard, A, 7, NOW) == "replay"


ENTRY = {"sender": "aa", "top": 1, "seen": "1", "max_timestamp_ms": 0, "floor_ms": -1}


def test_minimal_snapshot_accepted() -> None:
    guard = ReplayGuard.from_snapshot({"format": 1, "floor_ms": 5, "senders": [ENTRY]})
    assert guard.highest_seq(b"\xaa") == 1
    assert guard.eviction_floor_ms == 5


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"format": 3, "floor_ms": 0, "senders": []},
        {"format": 2, "floor_ms": 0, "member_floor_ms": "0", "senders": []},
        {"format": 2, "floor_ms": 0, "senders": [{**ENTRY, "member": 1}]},
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


def test_a_restart_refuses_every_frame_timestamped_before_it() -> None:
    guard = ReplayGuard(ReplayConfig(window=64))
    assert _reason(guard, A, 10, NOW - 5) is None  # saved in a snapshot
    restored = ReplayGuard.from_snapshot(guard.snapshot())
    # Frames accepted after that snapshot, before a crash: the restored state never saw them.
    restored.restarted(NOW + 1_000)
    assert _reason(restored, A, 11, NOW, now=NOW + 1_000) == "stale"  # tracked sender
    assert _reason(restored, B, 1, NOW, now=NOW + 1_000) == "stale"  # untracked sender
    assert _reason(restored, A, 11, NOW + 999, now=NOW + 1_000) == "stale"
    assert _reason(restored, A, 11, NOW + 1_000, now=NOW + 1_000) is None  # from the restart on
    assert _reason(restored, B, 1, NOW + 1_000, now=NOW + 1_000) is None
    assert restored.outsider_floor_ms < NOW + 1_000  # still not past the clock


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
    delayed), with skewed clocks; some senders are members, one joins on the way. Invariants: a
    (sender, seq) pair is never accepted twice; a fresh frame from a tracked sender within the
    window and the time bounds is always accepted; outsiders never evict a member; the
    outsiders' floor never passes the clock."""

    MEMBERS = (A, B)
    JOINER = C
    OUTSIDERS = (C, b"\xdd" * 32, b"\xee" * 32)
    SENDERS = (*MEMBERS, *OUTSIDERS)
    WINDOW = 16
    MAX_AGE = 60_000

    @initialize()
    def setup(self) -> None:
        self.config = ReplayConfig(
            max_age_ms=self.MAX_AGE,
            max_skew_ms=5_000,
            window=self.WINDOW,
            max_senders=2,
            max_members=2,
        )
        self.members = set(self.MEMBERS)
        self.guard = ReplayGuard(self.config)
        self.guard.set_member_check(self.members.__contains__)
        self.now = NOW
        self.next_seq = dict.fromkeys(self.SENDERS, 1)
        self.sent: list[tuple[bytes, int, int]] = []
        self.accepted: set[tuple[bytes, int]] = set()
        # Model of what the guard tracks: sender -> [highest accepted seq, highest accepted
        # timestamp, floor when admitted], per partition.
        self.tracked: dict[bool, dict[bytes, list[int]]] = {True: {}, False: {}}
        self.floor = {True: -1, False: -1}  # highest timestamp of a sender evicted from there

    @rule(sender=st.sampled_from(SENDERS), gap=st.integers(1, 40), skew=st.integers(-2_000, 4_000))
    def send(self, sender: bytes, gap: int, skew: int) -> None:
        seq = self.next_seq[sender] + gap - 1
        self.next_seq[sender] = seq + 1
        self.sent.append((sender, seq, self.now + skew))

    @rule(advance=st.integers(0, 30_000))
    def tick(self, advance: int) -> None:
        self.now += advance

    @rule()
    def join(self) -> None:
        self.members.add(self.JOINER)

    def _where(self, sender: bytes) -> bool | None:
        for partition in (True, False):
            if sender in self.tracked[partition]:
                return partition
        return None

    def _make_room(self, partition: bool) -> bool:
        """Evict as the guard must; False when it must refuse instead (busy)."""
        tracked = self.tracked[partition]
        limit = self.config.max_members if partition else self.config.max_senders
        if len(tracked) < limit:
            return True
        victim = min(tracked, key=lambda key: (tracked[key][1], key))
        if not partition and tracked[victim][1] > self.now:
            return False
        self.floor[partition] = max(self.floor[partition], tracked.pop(victim)[1])
        return True

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        sender, seq, ts = data.draw(st.sampled_from(self.sent))
        fresh_time = self.now - self.MAX_AGE <= ts <= self.now + 5_000
        where = self._where(sender)
        state = None if where is None else self.tracked[where][sender]
        must_accept = (
            fresh_time
            and (sender, seq) not in self.accepted
            and state is not None
            and seq > state[0] - self.WINDOW
            and ts > state[2]
        )
        refusal = None
        try:
            self.guard.check(sender, seq, ts, self.now)
        except ProtocolError as exc:
            refusal = exc
        if refusal is not None:
            assert not must_accept, f"fresh in-window frame refused: {refusal}"
            if refusal.reason == "busy":
                assert state is None
                assert not self._make_room(False)
            return
        assert (sender, seq) not in self.accepted, "a (sender, seq) pair was accepted twice"
        assert fresh_time
        self.accepted.add((sender, seq))
        member = sender in self.members
        if state is None:
            floor = max(self.floor.values())
            assert ts > floor, "an untracked sender was admitted at or below a floor"
            assert self._make_room(member), "admitted although every outsider was ahead"
            state = self.tracked[member][sender] = [seq, ts, floor]
        elif member and where is False:
            del self.tracked[False][sender]
            assert self._make_room(True)
            self.tracked[True][sender] = state
        state[0], state[1] = max(state[0], seq), max(state[1], ts)

    @invariant()
    def bounded_and_consistent(self) -> None:
        if not hasattr(self, "guard"):
            return
        assert self.guard.tracked_members() <= self.config.max_members
        assert len(self.guard) - self.guard.tracked_members() <= self.config.max_senders
        tracked = {**self.tracked[True], **self.tracked[False]}
        assert set(tracked) == {s for s in self.SENDERS if s in self.guard}
        assert self.guard.tracked_members() == len(self.tracked[True])
        for sender, (top, _ts, _floor) in tracked.items():
            assert self.guard.highest_seq(sender) == top
        assert self.guard.outsider_floor_ms == self.floor[False]
        assert self.guard.eviction_floor_ms == max(self.floor.values())
        assert self.guard.outsider_floor_ms <= self.now, "the outsiders' floor passed the clock"

    @invariant()
    def members_never_evicted_by_outsiders(self) -> None:
        if not hasattr(self, "guard"):
            return
        # Only three keys ever are members and the partition holds two: a member can only have
        # been evicted by another member.
        assert self.floor[True] == -1 or len(self.members) == 3

    @invariant()
    def snapshot_is_faithful(self) -> None:
        if not hasattr(self, "guard"):
            return
        restored = ReplayGuard.from_snapshot(self.guard.snapshot(), self.config)
        assert restored.snapshot() == self.guard.snapshot()


TestReplayMachine = ReplayMachine.TestCase
TestReplayMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
