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

Memory is bounded: at most ``max_senders`` senders are tracked; when a new one arrives the least
recently active (least recently accepted) sender is evicted. Evicting is safe because the
timestamp bound still applies: every frame of the evicted sender that we accepted carried a
timestamp at most that sender's highest accepted timestamp, and the guard raises its eviction
floor to that value. When the sender comes back, its frames must be timestamped above the floor
(rule 3, and for as long as it stays tracked), so none of the frames accepted before the
eviction can be accepted again, while the bitmap covers the frames accepted since. Once the
floor is older than ``now - max_age`` (after at most 10 minutes by default) rule 1 alone refuses
those old frames and the floor stops mattering. The cost of an eviction is only that a returning
sender's frames timestamped at or below the floor are refused.

Sender side: a sender's first seq after start is ``max(last persisted seq + 1, now_ms * 1000)``
(:func:`first_seq`), so seqs keep increasing across restarts without writing every seq to disk:
persist the seq occasionally; as long as the sender sends fewer than 1000 frames per millisecond
on average, ``now_ms * 1000`` alone is already above every seq it used before.

The state is a plain dict (:meth:`ReplayGuard.snapshot` / :meth:`ReplayGuard.from_snapshot`),
so it can be persisted to keep refusing replays across restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import attrs

from hive.protocol.errors import FUTURE, REPLAY, SEQ_TOO_OLD, STALE, ProtocolError

SNAPSHOT_FORMAT = 1


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
    max_senders: int = attrs.field(default=10_000, validator=_positive)


@attrs.define
class _Sender:
    top: int  # highest accepted seq
    seen: int  # bit i set: seq top - i was accepted (bit 0 is top itself)
    max_timestamp_ms: int  # highest timestamp accepted from this sender
    floor_ms: int  # eviction floor when it was admitted: its timestamps must be above it


class ReplayGuard:
    """Accepts each (sender, seq) at most once, within a timestamp window; bounded memory."""

    def __init__(self, config: ReplayConfig | None = None) -> None:
        self._config = config if config is not None else ReplayConfig()
        self._mask = (1 << self._config.window) - 1
        self._senders: OrderedDict[bytes, _Sender] = OrderedDict()  # least recently active first
        self._floor_ms = -1  # highest timestamp accepted from any evicted sender
        self.evictions = 0

    @property
    def config(self) -> ReplayConfig:
        return self._config

    @property
    def eviction_floor_ms(self) -> int:
        """Untracked senders' frames must be timestamped above this (-1: nothing evicted)."""
        return self._floor_ms

    def __len__(self) -> int:
        return len(self._senders)

    def __contains__(self, sender: object) -> bool:
        return sender in self._senders

    def highest_seq(self, sender: bytes) -> int | None:
        """The highest seq accepted from ``sender``, or None when it is not tracked."""
        state = self._senders.get(sender)
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

    def check(self, sender: bytes, seq: int, timestamp_ms: int, now_ms: int) -> None:
        """Accept and record the frame, or raise ProtocolError (stale, future, replay,
        seq-too-old) leaving the state unchanged."""
        self.check_time(timestamp_ms, now_ms)
        state = self._senders.get(sender)
        if state is None:
            self._admit(sender, seq, timestamp_ms)
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
        state.max_timestamp_ms = max(state.max_timestamp_ms, timestamp_ms)
        self._senders.move_to_end(sender)

    def _admit(self, sender: bytes, seq: int, timestamp_ms: int) -> None:
        if timestamp_ms <= self._floor_ms:
            raise ProtocolError(
                STALE,
                f"sender {sender.hex()} is not tracked (state evicted) and timestamp "
                f"{timestamp_ms} is not above the eviction floor {self._floor_ms}",
            )
        state = _Sender(top=seq, seen=1, max_timestamp_ms=timestamp_ms, floor_ms=self._floor_ms)
        while len(self._senders) >= self._config.max_senders:
            self._evict_oldest()  # raises the floor, which concerns the evicted, not this one
        self._senders[sender] = state

    def _evict_oldest(self) -> None:
        _sender, state = self._senders.popitem(last=False)
        self._floor_ms = max(self._floor_ms, state.max_timestamp_ms)
        self.evictions += 1

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (least recently active sender first)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "floor_ms": self._floor_ms,
            "senders": [
                {
                    "sender": sender.hex(),
                    "top": state.top,
                    "seen": format(state.seen, "x"),
                    "max_timestamp_ms": state.max_timestamp_ms,
                    "floor_ms": state.floor_ms,
                }
                for sender, state in self._senders.items()
            ],
        }

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, Any], config: ReplayConfig | None = None
    ) -> ReplayGuard:
        """Rebuild a guard from :meth:`snapshot` output (ValueError if it is malformed).

        With a smaller ``window`` or ``max_senders`` than when it was taken, bitmaps are cut and
        the least recently active senders evicted (raising the floor), so nothing accepted
        before can be accepted again.
        """
        guard = cls(config)
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown replay snapshot format {snapshot.get('format')!r}")
        floor = snapshot.get("floor_ms")
        senders = snapshot.get("senders")
        if type(floor) is not int or not isinstance(senders, list):
            raise ValueError("replay snapshot needs an integer floor_ms and a senders list")
        guard._floor_ms = floor
        for entry in senders:
            try:
                sender = bytes.fromhex(entry["sender"])
                top, max_ts = entry["top"], entry["max_timestamp_ms"]
                sender_floor = entry["floor_ms"]
                seen = int(entry["seen"], 16)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"malformed replay snapshot entry {entry!r}") from exc
            numbers = (top, max_ts, sender_floor)
            if any(type(n) is not int for n in numbers) or sender in guard._senders:
                raise ValueError(f"malformed replay snapshot entry {entry!r}")
            while len(guard._senders) >= guard._config.max_senders:
                guard._evict_oldest()
            guard._senders[sender] = _Sender(
                top=top,
                seen=(seen & guard._mask) | 1,
                max_timestamp_ms=max_ts,
                floor_ms=sender_floor,
            )
        return guard
