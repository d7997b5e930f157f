"""Exits, for the membership actor: our own leave until a member acknowledges it, and telling
revoked nodes that they are out.

A leave is persisted (the exit record in the roster, and ``META_PENDING_EXIT``) before it is
announced, and announced again until a member answers ``RecordAck``: while `hive-leave` waits
(every ``EXIT_RESEND_S``), then every sync interval, also after a restart. Only then is the
exit forgotten and, with ``delete_data``, the hive's local data deleted: an acknowledged leave
cannot be lost with the data. A revoked node that still talks to us is sent its revoke (at
most once per sync interval), so it learns it is out even if it missed the announcement.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from hive.node.port import NodeId
from hive.protocol.membership import (
    EXIT_REVOKE,
    ExitAnnounce,
    ExitRecord,
    canonical_bytes,
    record_hash,
)
from hive.protocol.membership.records import RecordAck
from hive.protocol.wire.facade import Received
from hive.store import META_GENESIS

if TYPE_CHECKING:
    from hive.actors.membership.roster import Membership

log = logging.getLogger(__name__)

META_PENDING_EXIT = "pending-exit"
"""Our exit record not yet acknowledged by a member: 1 byte (1 = delete the hive's data once
acknowledged), then the record's canonical bytes."""
EXIT_RESEND_S = 5.0  # how often an unacknowledged exit is sent again while a command waits
MAX_REVOKED_TRACKED = 1024


class ExitDriver:
    """Our pending exit, and the revoked peers we tell."""

    def __init__(self, membership: Membership) -> None:
        self._m = membership
        self.pending: ExitRecord | None = None
        self._delete_on_ack = False
        self._acked = trio.Event()
        self._told_revoked: dict[NodeId, int] = {}  # revoked peer -> when we last told it
        self._revoked_heard = trio.Event()

    async def load(self) -> None:
        """Resume announcing an exit a restart interrupted."""
        from hive.actors.membership.roster import (
            decode_record,  # (membership imports this module)
        )

        stored = await self._m.store.get_meta(META_PENDING_EXIT)
        if stored is None:
            return
        record = decode_record("exit", stored[1:])
        assert isinstance(record, ExitRecord)
        self.pending, self._delete_on_ack = record, stored[0] == 1
        log.info("our exit is not acknowledged yet: announcing it again")

    def forget(self) -> None:
        """A new hive replaces the old one (its pending exit went with the old records)."""
        self.pending = None

    # --- our own leave ---------------------------------------------------------------------

    async def leave(self, record: ExitRecord, *, delete: bool, wait_s: float) -> bool:
        """Apply and persist our own leave, then announce it until a member acknowledges it
        (waiting up to ``wait_s``; afterwards :meth:`retry_loop` goes on). With ``delete``, the
        hive's local data goes once acknowledged, never before. True when acknowledged within
        ``wait_s`` (or when no other member is left to hear it)."""
        m = self._m
        alone = not m.fleet_peers()
        await m.store.set_meta(META_PENDING_EXIT, bytes([delete]) + canonical_bytes(record))
        self.pending, self._delete_on_ack = record, delete
        self._acked = trio.Event()
        await m.add_own_record(record)
        m.candidate.forget()
        if alone:  # the last member: nobody is left to hear it, nothing can be lost
            await self._finish()
            return True
        with trio.move_on_after(wait_s):
            while not self._acked.is_set():
                with trio.move_on_after(EXIT_RESEND_S):
                    await self._acked.wait()
                if not self._acked.is_set():
                    await self._send()
        return self._acked.is_set()

    async def _send(self) -> None:
        m, record = self._m, self.pending
        if record is None or m.roster is None:
            return
        for node in sorted(n.hex() for n in m.roster.active() if n != m.node_id):
            if node not in m.connected:
                await m.try_connect(node)
            if node in m.connected:
                await m.transport.send(node, ExitAnnounce(record=record))

    async def on_ack(self, received: Received, ack: RecordAck) -> None:
        """A member stored our exit: we are done with it."""
        m, record = self._m, self.pending
        acker = None if m.roster is None else m.roster.by_hive_key(received.sender)
        if (
            record is None
            or ack.record != record_hash(record)
            or acker is None
            or acker.body.cert.node_id == m.node_id
        ):
            m.stats.rejected["unexpected-ack"] += 1
            return
        log.info("our exit was acknowledged by %s", received.peer_id)
        await self._finish()  # before waking the command: it reports what was deleted
        self._acked.set()

    async def _finish(self) -> None:
        """The fleet has our exit: forget it, and the hive's data when that was asked."""
        m = self._m
        if self.pending is None:
            return
        self.pending = None
        if self._delete_on_ack:
            await m.store.clear_hive((META_GENESIS, META_PENDING_EXIT))
            m.roster = None
            log.info("local hive data deleted: the fleet has our exit")
        else:
            await m.store.delete_meta(META_PENDING_EXIT)
        m.notify()

    async def retry_loop(self) -> None:
        """Repeat an unacknowledged exit every sync interval until a member acknowledges it."""
        while True:
            await trio.sleep(self._m.config.sync_interval_s)
            if self.pending is not None:
                await self._send()

    # --- revoked nodes ---------------------------------------------------------------------

    def heard_from_revoked(self, peer: NodeId) -> None:
        """A revoked node still talks to us: it may not know. Tell it (at most once per sync
        interval)."""
        if peer not in self._told_revoked and len(self._told_revoked) < MAX_REVOKED_TRACKED:
            self._told_revoked[peer] = 0
            self._revoked_heard.set()

    async def on_connected(self, peer: NodeId) -> None:
        if peer in self._told_revoked:
            await self._tell(peer)

    async def tell_revoked_loop(self) -> None:
        while True:
            await self._revoked_heard.wait()
            self._revoked_heard = trio.Event()
            for peer in list(self._told_revoked):
                if peer in self._m.connected:
                    await self._tell(peer)

    async def _tell(self, peer: NodeId) -> None:
        m = self._m
        now = m.now_ms()
        if m.roster is None or now - self._told_revoked.get(peer, 0) < (
            m.config.sync_interval_s * 1000
        ):
            return
        node = bytes.fromhex(peer)
        for record in m.roster.records():
            if (
                isinstance(record, ExitRecord)
                and record.body.node_id == node
                and record.body.kind == EXIT_REVOKE
            ):
                self._told_revoked[peer] = now
                await m.transport.send(peer, ExitAnnounce(record=record))
