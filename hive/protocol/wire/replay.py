"""Per-sender replay guard: freshness window on timestamps, sliding bitmap on sequence numbers.

Rules, for a frame from ``sender`` with ``seq`` and ``timestamp_ms`` received at ``now_ms``:

1. ``now_ms - max_age_ms <= timestamp_ms <= now_ms + max_skew_ms``, else "stale" / "future".
2. For a sender we track: with ``top`` its highest accepted seq, a seq above ``top`` is accepted
   (the window slides up); a seq in ``(top - window, top]`` is accepted once ("replay" the second
   time), so frames may arrive out of order inside the window; a seq at or below
   ``top - window`` is refused as "seq-too-old" (we can no longer tell whether it was seen).
3. For a sender we do not track: the frame is accepted (and the sender tracked) if its timestamp
   is above the *eviction floor*, else it is refused as "stale" (see below). The floor at that
   moment stays with the sender: while tracked, its frames must be timestamped above it.

Two partitions. Senders the caller says are members (``member=True``, or the predicate given to
:meth:`ReplayGuard.set_member_check`) are tracked apart from everyone else, each partition with
its own bound (``max_members``, ``max_senders``) and its own floor; an outsider's arrival can
only ever evict another outsider, so no number of outsiders can displace a member's state. A
sender tracked as an outsider moves to the members' partition (state and all) when it becomes a
member; one that stops being a member stays where it is until evicted from there.

Evicting is safe because the timestamp bound still applies: every frame of the evicted sender
that we accepted carried a timestamp at most that sender's highest accepted timestamp, and the
guard raises the partition's floor to that value. An untracked sender's frames must be
timestamped above both floors (it may have been evicted from either), so none of the frames
accepted before its eviction can be accepted again, while the bitmap covers the frames accepted
since. Once a floor is older than ``now - max_age`` rule 1 alone refuses those old frames.

The floor never moves past what honest clocks allow. The victim of an eviction is the sender
with the lowest highest-timestamp (not the least recently active one: a sender may date its
frames ahead of our clock by up to ``max_skew``), and an outsider is evicted only if that
timestamp is not ahead of ``now_ms``: so the outsiders' floor is always at or below the clock of
the receiver at the time it moved. When every tracked outsider dated its frames ahead of our
clock, a new outsider is refused as "busy" (nothing is evicted) until the oldest of those
timestamps is reached. The members' partition is bounded far above any roster
(``max_members``), so its floor moves only if more member keys than that were ever tracked.

Sender side: a sender's first seq after start is ``max(last persisted seq + 1, now_ms * 1000)``
(:func:`first_seq`), so seqs keep increasing across restarts without writing every seq to disk:
persist the seq occasionally; as long as the sender sends fewer than 1000 frames per millisecond
on average, ``now_ms * 1000`` alone is already above every seq it used before.

The state is a plain dict (:meth:`ReplayGuard.snapshot` / :meth:`ReplayGuard.from_snapshot`),
so it can be persisted to keep refusing replays across restarts.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from hive.protocol.errors import BUSY, FUTURE, REPLAY, SEQ_TOO_OLD, STALE, ProtocolError

SNAPSHOT_FORMAT = 2
_READABLE_FORMATS = (1, 2)  # format 1 had one partition: its senders load as outsiders


def first_seq(last_persisted: int | None, now_ms: int) -> int:
    """The first seq a sender uses after start: max(last persisted + 1, now_ms * 1000)."""
    floor = now_ms * 1000
    if last_persisted is None:
        return floor
    return max(last_persisted + 1, floor)


def _positive(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen
class ReplayConfig:
    """Bounds of the replay guard (all times in milliseconds)."""

    max_age_ms: int = attrs.field(default=10 * 60_000, validator=_positive)
    max_skew_ms: int = attrs.field(default=10 * 60_000, validator=_positive)
    window: int = attrs.field(default=1024, validator=_positive)  # seqs remembered below top
    max_senders: int = attrs.field(default=10_000, validator=_positive)  # outsiders tracked
    max_members: int = attrs.field(default=10_000, validator=_positive)  # members tracked


@attrs.define
class _Sender:
    top: int  # highest accepted seq
    seen: int  # bit i set: seq top - i was accepted (bit 0 is top itself)
    max_timestamp_ms: int  # highest timestamp accepted from this sender
    floor_ms: int  # eviction floor when it was admitted: its timestamps must be above it


class _Partition:
    """Tracked senders of one kind, with the floor their evictions raised.

    A heap of (highest timestamp, sender) finds the eviction victim in O(log n); entries made
    stale by a later frame are skipped when popped and purged when they pile up.
    """

    __slots__ = ("evictions", "floor_ms", "heap", "senders")

    def __init__(self) -> None:
        self.senders: dict[bytes, _Sender] = {}
        self.heap: list[tuple[int, bytes]] = []
        self.floor_ms = -1  # highest timestamp accepted from any sender evicted from here
        self.evictions = 0

    def add(self, sender: bytes, state: _Sender) -> None:
        self.senders[sender] = state
        self._push(state.max_timestamp_ms, sender)

    def raised(self, sender: bytes, timestamp_ms: int) -> None:
        """``sender``'s highest timestamp became ``timestamp_ms``."""
        self._push(timestamp_ms, sender)

    def take(self, sender: bytes) -> _Sender:
        return self.senders.pop(sender)  # its heap entries are skipped as stale

    def oldest(self) -> tuple[int, bytes] | None:
        """(highest timestamp, sender) of the sender whose highest timestamp is lowest."""
        heap, senders = self.heap, self.senders
        while heap:
            timestamp_ms, sender = heap[0]
            state = senders.get(sender)
            if state is not None and state.max_timestamp_ms == timestamp_ms:
                return timestamp_ms, sender
            heapq.heappop(heap)
        return None

    def evict(self, sender: bytes) -> None:
        state = self.senders.pop(sender)
        self.floor_ms = max(self.floor_ms, state.max_timestamp_ms)
        self.evictions += 1

    def _push(self, timestamp_ms: int, sender: bytes) -> None:
        heapq.heappush(self.heap, (timestamp_ms, sender))
        if len(self.heap) > 2 * len(self.senders) + 64:
            self.heap = [(s.max_timestamp_ms, key) for key, s in self.senders.items()]
            heapq.heapify(self.heap)


def _nobody(_sender: bytes) -> bool:
    return False


class ReplayGuard:
    """Accepts each (sender, seq) at most once, within a timestamp window; bounded memory."""

    def __init__(self, config: ReplayConfig | None = None) -> None:
        self._config = config if config is not None else ReplayConfig()
        self._mask = (1 << self._config.window) - 1
        self._members = _Partition()
        self._others = _Partition()
        self._is_member: Callable[[bytes], bool] = _nobody

    @property
    def config(self) -> ReplayConfig:
        return self._config

    @property
    def eviction_floor_ms(self) -> int:
        """Untracked senders' frames must be timestamped above this (-1: nothing evicted)."""
        return max(self._members.floor_ms, self._others.floor_ms)

    @property
    def outsider_floor_ms(self) -> int:
        """The floor raised by evicting outsiders (never above the clock at that moment)."""
        return self._others.floor_ms

    @property
    def evictions(self) -> int:
        return self._members.evictions + self._others.evictions

    def set_member_check(self, is_member: Callable[[bytes], bool]) -> None:
        """Tell the guard who the members are (a predicate on hive keys): their state is kept
        apart from everyone else's, which cannot displace it."""
        self._is_member = is_member

    def __len__(self) -> int:
        return len(self._members.senders) + len(self._others.senders)

    def __contains__(self, sender: object) -> bool:
        return sender in self._members.senders or sender in self._others.senders

    def tracked_members(self) -> int:
        """Senders tracked in the members' partition."""
        return len(self._members.senders)

    def highest_seq(self, sender: bytes) -> int | None:
        """The highest seq accepted from ``sender``, or None when it is not tracked."""
        state = self._members.senders.get(sender) or self._others.senders.get(sender)
        return None if state is None else state.top

    def check_time(self, timestamp_ms: int, now_ms: int) -> None:
        """Rule 1 alone (no state change): raise "stale"/"future" outside the window."""
        if timestamp_ms < now_ms - self._config.max_age_ms:
            raise ProtocolError(
                STALE,
                f"timestamp {timestamp_ms} is {now_ms - timestamp_ms} ms old, "
                f"at most {self._config.max_age_ms} accepted",
            )
        if timestamp_ms > now_ms + self._config.max_skew_ms:
            raise ProtocolError(
                FUTURE,
                f"timestamp {timestamp_ms} is {timestamp_ms - now_ms} ms ahead, "
                f"at most {self._config.max_skew_ms} accepted",
            )

    def check(
        self,
        sender: bytes,
        seq: int,
        timestamp_ms: int,
        now_ms: int,
        *,
        member: bool | None = None,
    ) -> None:
        """Accept and record the frame, or raise ProtocolError (stale, future, replay,
        seq-too-old, busy) leaving the state unchanged.

        ``member`` says whether ``sender`` is a member (None: ask the member check)."""
        self.check_time(timestamp_ms, now_ms)
        if member is None:
            member = self._is_member(sender)
        partition = self._members
        state = partition.senders.get(sender)
        if state is None:
            partition = self._others
            state = partition.senders.get(sender)
        if state is None:
            self._admit(sender, seq, timestamp_ms, now_ms, member=member)
            return
        if timestamp_ms <= state.floor_ms:
            raise ProtocolError(
                STALE,
                f"sender {sender.hex()} was evicted before; timestamp {timestamp_ms} is not "
                f"above the eviction floor {state.floor_ms} it was readmitted at",
            )
        if seq > state.top:
            shift = seq - state.top
            state.seen = (
                ((state.seen << shift) | 1) & self._mask if shift < self._config.window else 1
            )
            state.top = seq
        else:
            offset = state.top - seq
            if offset >= self._config.window:
                raise ProtocolError(
                    SEQ_TOO_OLD,
                    f"seq {seq} is {offset} below the highest seq {state.top}; "
                    f"window is {self._config.window}",
                )
            bit = 1 << offset
            if state.seen & bit:
                raise ProtocolError(REPLAY, f"seq {seq} from {sender.hex()} was already accepted")
            state.seen |= bit
        if member and partition is self._others:
            # Became a member: from now on outsiders cannot displace it.
            self._others.take(sender)
            self._make_room(self._members, now_ms, member=True)
            self._members.add(sender, state)
        if timestamp_ms > state.max_timestamp_ms:
            state.max_timestamp_ms = timestamp_ms
            (self._members if member or partition is self._members else self._others).raised(
                sender, timestamp_ms
            )

    def _admit(
        self, sender: bytes, seq: int, timestamp_ms: int, now_ms: int, *, member: bool
    ) -> None:
        floor = self.eviction_floor_ms
        if timestamp_ms <= floor:
            raise ProtocolError(
                STALE,
                f"sender {sender.hex()} is not tracked (state evicted) and timestamp "
                f"{timestamp_ms} is not above the eviction floor {floor}",
            )
        partition = self._members if member else self._others
        self._make_room(partition, now_ms, member=member)
        partition.add(
            sender, _Sender(top=seq, seen=1, max_timestamp_ms=timestamp_ms, floor_ms=floor)
        )

    def _make_room(self, partition: _Partition, now_ms: int, *, member: bool) -> None:
        limit = self._config.max_members if member else self._config.max_senders
        while len(partition.senders) >= limit:
            oldest = partition.oldest()
            assert oldest is not None  # a full partition has a valid heap entry
            timestamp_ms, victim = oldest
            if not member and timestamp_ms > now_ms:
                raise ProtocolError(
                    BUSY,
                    f"{len(partition.senders)} outsiders tracked, all with frames dated ahead "
                    f"of our clock (the oldest by {timestamp_ms - now_ms} ms): none can be "
                    "evicted without moving the floor past the clock",
                )
            partition.evict(victim)

    def restarted(self, now_ms: int) -> None:
        """The receiver (re)starts at ``now_ms`` with this state, which may be older than its
        last accepted frames (saved only now and then): from now on every frame timestamped
        before ``now_ms`` is refused as "stale", from tracked and untracked senders alike.

        A frame accepted before a crash was timestamped at most its acceptance time plus how
        far its sender dated it ahead of our clock, so it can be accepted again only if dated
        further ahead than we were down (never more than ``max_skew_ms``): a sender whose clock
        is not ahead of ours by more than our downtime cannot have its frames replayed at all.
        Frames a sender dates before our restart (its clock behind ours, or sent while we were
        down) are refused until its clock passes that moment."""
        floor = now_ms - 1
        for partition in (self._members, self._others):
            partition.floor_ms = max(partition.floor_ms, floor)
            for state in partition.senders.values():
                state.floor_ms = max(state.floor_ms, floor)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (members first, each in arrival order)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "floor_ms": self._others.floor_ms,
            "member_floor_ms": self._members.floor_ms,
            "senders": [
                {
                    "sender": sender.hex(),
                    "top": state.top,
                    "seen": format(state.seen, "x"),
                    "max_timestamp_ms": state.max_timestamp_ms,
                    "floor_ms": state.floor_ms,
                    "member": partition is self._members,
                }
                for partition in (self._members, self._others)
                for sender, state in partition.senders.items()
            ],
        }

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, Any], config: ReplayConfig | None = None
    ) -> ReplayGuard:
        """Rebuild a guard from :meth:`snapshot` output (ValueError if it is malformed).

        With a smaller ``window``, ``max_senders`` or ``max_members`` than when it was taken,
        bitmaps are cut and senders evicted (raising the floor), so nothing accepted before can
        be accepted again.
        """
        guard = cls(config)
        snapshot_format = snapshot.get("format")
        if snapshot_format not in _READABLE_FORMATS:
            raise ValueError(f"unknown replay snapshot format {snapshot_format!r}")
        floor = snapshot.get("floor_ms")
        member_floor = snapshot.get("member_floor_ms", -1)
        senders = snapshot.get("senders")
        if type(floor) is not int or type(member_floor) is not int or not isinstance(senders, list):
            raise ValueError("replay snapshot needs integer floors and a senders list")
        guard._others.floor_ms = floor
        guard._members.floor_ms = member_floor
        for entry in senders:
            try:
                sender = bytes.fromhex(entry["sender"])
                top, max_ts = entry["top"], entry["max_timestamp_ms"]
                sender_floor = entry["floor_ms"]
                seen = int(entry["seen"], 16)
                member = entry.get("member", False)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"malformed replay snapshot entry {entry!r}") from exc
            numbers = (top, max_ts, sender_floor)
            if (
                any(type(n) is not int for n in numbers)
                or type(member) is not bool
                or sender in guard
            ):
                raise ValueError(f"malformed replay snapshot entry {entry!r}")
            partition = guard._members if member else guard._others
            limit = guard._config.max_members if member else guard._config.max_senders
            while len(partition.senders) >= limit:
                oldest = partition.oldest()
                assert oldest is not None
                partition.evict(oldest[1])
            partition.add(
                sender,
                _Sender(
                    top=top,
                    seen=(seen & guard._mask) | 1,
                    max_timestamp_ms=max_ts,
                    floor_ms=sender_floor,
                ),
            )
        return guard
