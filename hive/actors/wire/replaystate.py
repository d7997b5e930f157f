"""The replay guard survives restarts: its state is saved every ``interval_s`` and at shutdown,
and a restart refuses every frame timestamped before it.

The saved state alone would leave a window: frames accepted after the last save and before a
crash (up to ``interval_s``) could be accepted again afterwards while their timestamps are
still inside the freshness window (10 minutes). :func:`load_replay` closes it by the
timestamps: the loaded guard refuses every frame timestamped before the restart
(:meth:`ReplayGuard.restarted`), and every frame accepted before the crash was timestamped
before it, unless its sender's clock ran ahead of ours by more than we were down (bounded by the
protocol's ``max_skew``; docs/PROTOCOL.md section 6).
"""

from __future__ import annotations

import json
import logging

import trio

from hive.protocol.wire.facade import HiveWire
from hive.protocol.wire.replay import ReplayGuard
from hive.store import META_REPLAY_SNAPSHOT, Store

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 30.0
SHUTDOWN_SAVE_S = 2.0


async def load_replay(store: Store, *, now_ms: int) -> ReplayGuard:
    """The saved guard (an empty one if nothing was saved or the snapshot is unreadable,
    logged), restarted at ``now_ms``: frames timestamped before it are refused."""
    guard = ReplayGuard()
    raw = await store.get_meta(META_REPLAY_SNAPSHOT)
    if raw is not None:
        try:
            guard = ReplayGuard.from_snapshot(json.loads(raw))
        except (ValueError, TypeError) as exc:
            log.warning("saved replay state is unreadable (%s); starting with an empty one", exc)
    guard.restarted(now_ms)
    return guard


async def keep_replay_saved(
    wire: HiveWire,
    store: Store,
    *,
    interval_s: float = SAVE_INTERVAL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    try:
        while True:
            await trio.sleep(interval_s)
            await _save(wire, store)
    finally:
        # One last save on the way out (shutdown, or a restart of this actor), bounded.
        with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_SAVE_S):
            await _save(wire, store)


async def _save(wire: HiveWire, store: Store) -> None:
    snapshot = json.dumps(wire.replay.snapshot(), separators=(",", ":")).encode()
    await store.set_meta(META_REPLAY_SNAPSHOT, snapshot)
