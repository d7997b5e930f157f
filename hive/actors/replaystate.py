"""The replay guard survives restarts: its state is saved every ``interval_s`` and at shutdown.

Without it, a frame accepted shortly before a restart could be accepted again afterwards while
its timestamp is still inside the freshness window (10 minutes). With it, only frames accepted
after the last save and before a crash (at most ``interval_s``) could be.
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


async def load_replay(store: Store) -> ReplayGuard | None:
    """The saved guard, or None (nothing saved, or a snapshot we cannot read: logged)."""
    raw = await store.get_meta(META_REPLAY_SNAPSHOT)
    if raw is None:
        return None
    try:
        return ReplayGuard.from_snapshot(json.loads(raw))
    except (ValueError, TypeError) as exc:
        log.warning("saved replay state is unreadable (%s); starting with an empty one", exc)
        return None


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
