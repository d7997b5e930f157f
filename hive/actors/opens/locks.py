"""The locks actor: carries out the intent-lock state machine (:mod:`hive.protocol.intents`).

It owns one :class:`~hive.protocol.intents.locks.LockBook`, feeds it the lock messages the
transport admits (members only), fires its timers, sends what it asks (each broadcast signed
once and sent to every connected member) and keeps our own intents in SQLite (table
``intents``): each is written before it is announced and at every state change, so a restart
resumes or releases it (see docs/PROTOCOL.md, "Intent locks", Restarts).

Callers (the open executor of :mod:`hive.actors.opens.planner`) use :meth:`Locks.acquire`, which
returns once the lock is ours (a majority of members promised and the hold period passed) and
raises :class:`LockRefused` with the reason otherwise, then :meth:`Locks.finish` with the
outcome. An execution must end within ``timers.exec_budget_ms`` (the caller's timeout).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from hive.actors.membership.roster import Membership
from hive.actors.wire.transport import Outgoing, Transport
from hive.errors import HiveError
from hive.node.port import ChannelState, NodePort
from hive.protocol.intents.locks import (
    Broadcast,
    Ended,
    Execute,
    HolderState,
    LockBook,
    LockTimers,
    Send,
)
from hive.protocol.intents.messages import (
    KIND_OPEN_CHANNEL,
    MAX_LEASE_MS,
    MAX_SCORE,
    Intent,
    IntentAbort,
    IntentAck,
    IntentNack,
    IntentOutcome,
)
from hive.protocol.messages import Message
from hive.protocol.wire.facade import Received
from hive.store import Store
from hive.store import intents as sql
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

LOCK_KINDS: tuple[type[Message], ...] = (Intent, IntentAck, IntentNack, IntentAbort, IntentOutcome)
DEFAULT_LEASE_MS = 180_000
KEPT_MS = 7 * 24 * 3600 * 1000  # ended intents stay in SQLite (for hive-plan) this long
META_ALIVE = "locks-alive-ms"
"""When the locks actor last said it was running (8-byte big-endian ms)."""
ALIVE_EVERY_MS = 30_000


class LockRefused(HiveError):
    """The lock was not ours: ``reason`` is the protocol's (``held: ...``, ``yielded``,
    ``target-taken``, ``lease-short``, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define
class _Waiter:
    done: trio.Event = attrs.Factory(trio.Event)
    executing: bool = False
    reason: str = ""


@attrs.define
class LockStats:
    proposed: int = 0
    executed: int = 0
    yielded: int = 0
    refused: int = 0
    received: int = 0


class Locks:
    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        membership: Membership,
        store: Store,
        now_ms: Callable[[], int],
        rng: random.Random,
        timers: LockTimers | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        inbox_size: int = 256,
    ) -> None:
        self.node = node
        self.transport = transport
        self.membership = membership
        self.store = store
        self.now_ms = now_ms
        self.rng = rng
        self.timers = timers or LockTimers()
        self.lease_ms = lease_ms
        self.inbox: Inbox[Received] = Inbox(inbox_size)
        self.stats = LockStats()
        self.book: LockBook | None = None
        self._waiters: dict[bytes, _Waiter] = {}
        self._startup: list[Any] = []
        self._wake = trio.Event()
        transport.subscribe(LOCK_KINDS, self.inbox)

    # --- membership -----------------------------------------------------------------------------

    def member_keys(self) -> dict[bytes, str]:
        """Active members' hive key -> node id (hex)."""
        roster = self.membership.roster
        if roster is None or not self.membership.is_member:
            return {}
        return {r.body.cert.hive_key: n.hex() for n, r in roster.active().items()}

    @property
    def me(self) -> bytes:
        return self.transport.wire.hive_key

    # --- life cycle -----------------------------------------------------------------------------

    async def load(self) -> None:
        """Build the book (in its quiet period: promises made before a crash are unknown) and
        restore our own live intents from SQLite."""
        now = self.now_ms()
        raw = await self.store.get_meta(META_ALIVE)
        # Promises are not stored: after a restart we give none until every promise we may
        # have given before has lapsed (the last-alive mark, its interval, the longest lease).
        quiet = now if raw is None else int.from_bytes(raw, "big") + ALIVE_EVERY_MS + MAX_LEASE_MS
        book = LockBook(
            self.me, self.member_keys(), timers=self.timers, now_ms=now, quiet_until_ms=quiet
        )
        self.book = book
        for row in await self.store.run("live_intents", sql.live_intents):
            intent = Intent(
                row.intent_id,
                row.kind,
                bytes.fromhex(row.target),
                row.amount_sat,
                row.score,
                row.lease_ms,
            )
            self._startup += book.restore(intent, HolderState(row.state), row.created_ms)
        await self.store.run("prune_intents", lambda c: sql.prune_intents(c, now - KEPT_MS))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.book is None:
            await self.load()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._messages)
            nursery.start_soon(self._timers)
            nursery.start_soon(self._roster)
            nursery.start_soon(self._alive)
            startup, self._startup = self._startup, []
            await self._perform(startup)
            task_status.started()

    async def _alive(self) -> None:
        while True:
            await self.store.set_meta(META_ALIVE, self.now_ms().to_bytes(8, "big"))
            await trio.sleep(ALIVE_EVERY_MS / 1000)

    async def _roster(self) -> None:
        while True:
            assert self.book is not None
            self.book.set_members(self.member_keys())
            await self.membership.wait_changed()

    async def _messages(self) -> None:
        async for received in self.inbox.receive:
            assert self.book is not None
            self.stats.received += 1
            actions = self.book.receive(received.sender, received.message, self.now_ms())
            await self._perform(actions)
            self._wake.set()

    async def _timers(self) -> None:
        while True:
            assert self.book is not None
            deadline = self.book.next_deadline(self.now_ms())
            delay = 3600.0 if deadline is None else max(0.0, (deadline - self.now_ms()) / 1000)
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            await self._perform(self.book.tick(self.now_ms()))

    # --- carrying out actions -------------------------------------------------------------------

    async def _perform(self, actions: Sequence[Any]) -> None:
        keys = self.member_keys()
        for action in actions:
            if isinstance(action, Broadcast):
                connected = self.membership.connected
                peers = [n for k, n in keys.items() if k != self.me and n in connected]
                if peers:
                    frame = self.transport.wire.sign(action.message, self.now_ms())
                    for peer in peers:
                        await self.transport.outbox.send(Outgoing(peer, frame=frame))
            elif isinstance(action, Send):
                node = keys.get(action.to)
                if node is not None and node in self.membership.connected:
                    await self.transport.send(node, action.message)
            elif isinstance(action, Execute):
                await self._save(action.intent, HolderState.EXECUTING, "promised")
                waiter = self._waiters.get(action.intent.intent_id)
                if waiter is None:
                    await self._resolve_interrupted(action.intent)
                else:
                    self.stats.executed += 1
                    waiter.executing = True
                    waiter.done.set()
            elif isinstance(action, Ended):
                await self._save(action.intent, action.state, action.reason)
                log.info(
                    "intent %s for %s ended %s: %s",
                    action.intent.intent_id.hex(),
                    action.intent.target.hex(),
                    action.state.value,
                    action.reason,
                )
                if action.state is HolderState.ABORTED:
                    self.stats.yielded += 1
                waiter = self._waiters.get(action.intent.intent_id)
                if waiter is not None and not waiter.done.is_set():
                    waiter.reason = action.reason
                    waiter.done.set()

    async def _save(self, intent: Intent, state: HolderState, reason: str) -> None:
        assert self.book is not None
        own = self.book.own.get(intent.intent_id)
        created = own.created_ms if own is not None else self.now_ms()
        row = sql.IntentRow(
            intent.intent_id,
            intent.kind,
            intent.target.hex(),
            intent.amount_sat,
            intent.score,
            intent.lease_ms,
            state.value,
            reason[:200],
            created,
            self.now_ms(),
        )
        await self.store.run("save_intent", lambda c: sql.save_intent(c, row))

    async def _resolve_interrupted(self, intent: Intent) -> None:
        """An intent that was executing when we stopped: did the open happen? The node's own
        channels say (a channel to the target, opening or normal, means it did)."""
        target = intent.target.hex()
        found = None
        for channel in await self.node.list_channels():
            if channel.peer_id == target and channel.state in (
                ChannelState.OPENING,
                ChannelState.NORMAL,
            ):
                found = channel
                break
        if found is not None:
            result: str = found.short_channel_id or "opening"
            await self.finish(intent.intent_id, opened=True, result=result, reason="")
        else:
            await self.finish(
                intent.intent_id, opened=False, result="", reason="restart-during-execution"
            )

    # --- the callers' side ----------------------------------------------------------------------

    async def acquire(
        self, target: str, amount_sat: int, score: int, *, kind: str = KIND_OPEN_CHANNEL
    ) -> bytes:
        """Take the lock for ``target``; return its intent id once it is ours (then call
        :meth:`finish`), or raise :class:`LockRefused`."""
        book = self.book
        if book is None:
            raise LockRefused("the lock book is not loaded")
        intent = Intent(
            self.rng.randbytes(16),
            kind,
            bytes.fromhex(target),
            amount_sat,
            max(0, min(MAX_SCORE, score)),
            self.lease_ms,
        )
        # Written before it is announced: a crash right after leaves a row to release.
        await self._save(intent, HolderState.HOLDING, "announced")
        actions, refused = book.propose(intent, self.now_ms())
        if refused is not None:
            self.stats.refused += 1
            await self._save(intent, HolderState.ABORTED, refused)
            raise LockRefused(refused)
        self.stats.proposed += 1
        waiter = self._waiters[intent.intent_id] = _Waiter()
        try:
            await self._perform(actions)
            self._wake.set()
            await waiter.done.wait()
        finally:
            del self._waiters[intent.intent_id]
        if not waiter.executing:
            raise LockRefused(waiter.reason)
        return intent.intent_id

    def holds(self, intent_id: bytes) -> bool:
        """True while our intent is executing (the lock is still ours)."""
        own = None if self.book is None else self.book.own.get(intent_id)
        return own is not None and own.state is HolderState.EXECUTING

    async def finish(self, intent_id: bytes, *, opened: bool, result: str, reason: str) -> None:
        """End an executing intent with its outcome (broadcast to the fleet)."""
        assert self.book is not None
        actions = self.book.executed(
            intent_id, opened=opened, result=result[:96], reason=reason[:64], now_ms=self.now_ms()
        )
        await self._perform(actions)

    async def cancel(self, intent_id: bytes, reason: str) -> None:
        assert self.book is not None
        await self._perform(self.book.cancel(intent_id, reason[:64]))

    def status(self) -> dict[str, Any]:
        book = self.book
        if book is None:
            return {}
        now = self.now_ms()
        return {
            "members": len(book.members),
            "quorum": book.quorum,
            "quiet_for_s": max(0, book.quiet_until_ms - now) / 1000,
            "own": [
                {
                    "intent_id": o.intent.intent_id.hex(),
                    "target": o.intent.target.hex(),
                    "state": o.state.value,
                    "promised": len(o.promised & book.members),
                }
                for o in book.own.values()
            ],
            "promises": len(book.promises),
            "taken": len(book.taken),
            **attrs.asdict(self.stats),
        }

    async def history(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self.store.run("recent_intents", lambda c: sql.recent_intents(c, limit))
        return [
            {
                "intent_id": r.intent_id.hex(),
                "target": r.target,
                "amount_sat": r.amount_sat,
                "state": r.state,
                "reason": r.reason,
                "created_ms": r.created_ms,
            }
            for r in rows
        ]
