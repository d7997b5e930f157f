"""Sequence numbers that stay monotonic across restarts, even when the wall clock goes back.

A sender's frames carry increasing sequence numbers, and receivers refuse a (sender, seq) they
have seen. Starting from ``now_ms * 1000`` keeps them increasing across restarts as long as the
clock does; to survive a clock set back, we also persist a *reservation*: a number above every
seq this run may use before the next check. A restart starts above the reservation, so no seq
is ever reused, and the store is written once per ``RESERVE / 2`` messages rather than per
message.
"""

from __future__ import annotations

import logging

import trio

from hive.protocol.wire.facade import HiveWire
from hive.protocol.wire.replay import first_seq
from hive.store import META_LAST_SEQ, Store

log = logging.getLogger(__name__)

RESERVE = 1_000_000
CHECK_S = 10.0


async def starting_seq(store: Store, now_ms: int, *, reserve: int = RESERVE) -> int:
    """The first seq of this run: above the last reservation and the clock, reserved."""
    raw = await store.get_meta(META_LAST_SEQ)
    last = int.from_bytes(raw, "big") if raw else None
    seq = first_seq(last, now_ms)
    await _reserve(store, seq + reserve)
    if last is not None and last + 1 > now_ms * 1000:
        log.warning("the clock is behind our last sequence reservation; continuing above it")
    return seq


async def keep_reserved(
    wire: HiveWire,
    store: Store,
    *,
    reserve: int = RESERVE,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Move the reservation ahead whenever the wire has used half of it."""
    raw = await store.get_meta(META_LAST_SEQ)
    reserved = int.from_bytes(raw, "big") if raw else wire.next_seq
    task_status.started()
    while True:
        await trio.sleep(CHECK_S)
        if wire.next_seq > reserved - reserve // 2:
            reserved = wire.next_seq + reserve
            await _reserve(store, reserved)


async def _reserve(store: Store, value: int) -> None:
    await store.set_meta(META_LAST_SEQ, value.to_bytes(8, "big"))
