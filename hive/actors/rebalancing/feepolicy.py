"""The member fee policy actor: our channels with active members forward at the member fee.

Every channel between us and an active member gets ``hive-member-fee-base-msat`` /
``hive-member-fee-ppm`` (0/0 by default) through ``node.set_fee_policy`` (CLN ``setchannel``).
Order of writes, so that a crash between any two of them loses nothing:

1. the fee the channel had before is stored (table ``member_fees``; never overwritten, so a
   restart in the middle keeps the operator's fee, not ours);
2. other fee automation is told to keep off (``clboss-unmanage MEMBER lnfee``);
3. the member fee is set.

When the peer is no longer an active member (it left, was revoked, or we left), the stored fee
is set back, CLBOSS is given the fees back, and the row is deleted, in that order. A channel
opened to a member later gets the policy on the next check (channel events wake the actor); a
restart re-asserts the policy wherever the node reports another fee.

Members' own side is public: every ``fee_check_s`` we read each member's channels towards us
from the graph, and a member still charging us more than the member fee after a grace period
is reported in our state record as a reputation note (``fee-not-member``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import trio

from hive.actors.membership.roster import Membership
from hive.actors.wire.transport import Transport
from hive.config import RebalanceConfig
from hive.errors import NodeError
from hive.node.port import (
    ChannelOpened,
    ChannelState,
    ChannelStateChanged,
    ChannelView,
    FeePolicy,
    NodeEvent,
    NodeId,
    NodePort,
)
from hive.protocol.gossip.state import MAX_NOTES, ReputationNote
from hive.store import Store
from hive.store import rebalance as rb
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

FEE_NOTE = "fee-not-member"
GRACE_MS = 3_600_000  # a new member's channel policy needs time to reach our graph


class FeePolicyActor:
    """Applies, re-asserts and restores the member fee policy."""

    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        membership: Membership,
        store: Store,
        node_id: NodeId,
        now_ms: Callable[[], int],
        config: RebalanceConfig | None = None,
    ) -> None:
        self.node = node
        self.membership = membership
        self.store = store
        self.node_id = node_id
        self.now_ms = now_ms
        self.config = config or RebalanceConfig()
        self.policy = FeePolicy(
            base_msat=self.config.member_fee_base_msat, ppm=self.config.member_fee_ppm
        )
        self.kept: dict[NodeId, rb.MemberFee] = {}
        self.events: Inbox[NodeEvent] = Inbox(128)
        self.counts: Counter[str] = Counter()
        self._told: set[NodeId] = set()  # peers CLBOSS was told about since start
        self._member_since: dict[NodeId, int] = {}
        self._offenders: Counter[NodeId] = Counter()
        self._last_audit_ms: int | None = None
        self._wake = trio.Event()
        transport.subscribe_events(self.events)

    async def load(self) -> None:
        self.kept = {f.peer_id: f for f in await self.store.run("member_fees", rb.member_fees)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._node_events)
            nursery.start_soon(self._membership_changes)
            task_status.started()
            while True:
                await self.reconcile()
                with trio.move_on_after(self.config.fee_check_s):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, ChannelOpened | ChannelStateChanged):
                self._wake.set()

    async def _membership_changes(self) -> None:
        while True:
            await self.membership.wait_changed()
            self._wake.set()

    # ------------------------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, int]:
        """One pass: apply to members, re-assert, restore non-members; returns what it did."""
        done: Counter[str] = Counter()
        now = self.now_ms()
        members = set(self.membership.fleet_peers())
        for member in members:
            self._member_since.setdefault(member, now)
        for gone in set(self._member_since) - members:
            del self._member_since[gone]
            self._offenders.pop(gone, None)
        channels = await self.node.list_channels()
        by_peer: dict[NodeId, list[ChannelView]] = {}
        for c in channels:
            if c.state is ChannelState.NORMAL:
                by_peer.setdefault(c.peer_id, []).append(c)
        for peer in sorted(members & set(by_peer)):
            done[await self._apply(peer, by_peer[peer], now)] += 1
        for peer in sorted(set(self.kept) - members):
            await self._restore(peer, by_peer.get(peer, []))
            done["restored"] += 1
        if (
            self._last_audit_ms is None
            or now - self._last_audit_ms >= self.config.fee_check_s * 1000
        ):
            self._last_audit_ms = now
            await self._audit(members, now)
        done.pop("unchanged", None)
        self.counts.update(done)
        return dict(done)

    async def _apply(self, peer: NodeId, channels: Sequence[ChannelView], now: int) -> str:
        if peer not in self.kept:
            previous = channels[0].our_fee
            await self.store.run(
                "keep_member_fee", lambda c: rb.keep_member_fee(c, peer, previous, now)
            )
            self.kept[peer] = rb.MemberFee(peer, previous, now)
            log.info("member fee: keeping %s's previous fee %s to restore later", peer, previous)
        if peer not in self._told:
            await self.node.set_fee_unmanaged(peer, True)
            self._told.add(peer)
        if all(c.our_fee == self.policy for c in channels):
            return "unchanged"
        try:
            await self.node.set_fee_policy(peer, self.policy)
        except NodeError as exc:
            log.warning(
                "member fee: could not set %s on channels with %s: %s", self.policy, peer, exc
            )
            return "failed"
        first = self.kept[peer].since_ms == now
        log.info(
            "member fee: %s %s on channels with member %s",
            "applied" if first else "re-asserted",
            self.policy,
            peer,
        )
        return "applied" if first else "reasserted"

    async def _restore(self, peer: NodeId, channels: Sequence[ChannelView]) -> None:
        kept = self.kept[peer]
        if channels:
            try:
                await self.node.set_fee_policy(peer, kept.previous)
                log.info(
                    "member fee: %s is no longer a member; fee %s restored", peer, kept.previous
                )
            except NodeError as exc:
                # The channel may be closing; the fee no longer matters then. Do not retry forever.
                log.warning("member fee: could not restore %s for %s: %s", kept.previous, peer, exc)
        await self.node.set_fee_unmanaged(peer, False)
        self._told.discard(peer)
        await self.store.run("drop_member_fee", lambda c: rb.drop_member_fee(c, peer))
        del self.kept[peer]

    async def _audit(self, members: set[NodeId], now: int) -> None:
        """Members whose public policy towards us is above the member fee, after the grace."""
        for member in sorted(members):
            if now - self._member_since.get(member, now) < GRACE_MS:
                continue
            try:
                public = await self.node.list_public_channels(member)
            except NodeError as exc:
                log.debug("member fee audit: no graph for %s: %s", member, exc)
                continue
            towards_us = [p for p in public if p.destination == self.node_id and p.active]
            charging = [p for p in towards_us if _above(p.fee, self.policy)]
            if charging:
                self._offenders[member] += 1
                log.warning(
                    "member %s charges us %s on %s, above the member fee %s",
                    member,
                    charging[0].fee,
                    charging[0].short_channel_id,
                    self.policy,
                )
            else:
                self._offenders.pop(member, None)

    # ------------------------------------------------------------------------------------------

    def reputation(self) -> tuple[ReputationNote, ...]:
        """Notes against members that keep charging us above the member fee."""
        return tuple(
            ReputationNote(peer=bytes.fromhex(m), reason=FEE_NOTE, count=min(n, 2**32 - 1))
            for m, n in sorted(self._offenders.items())
        )[:MAX_NOTES]

    def status(self) -> dict[str, Any]:
        return {
            "policy": {"base_msat": self.policy.base_msat, "ppm": self.policy.ppm},
            "member_channels": {
                peer: {
                    "since_ms": kept.since_ms,
                    "previous": {"base_msat": kept.previous.base_msat, "ppm": kept.previous.ppm},
                }
                for peer, kept in sorted(self.kept.items())
            },
            "members_charging_us": dict(self._offenders),
            "counts": dict(self.counts),
        }


def _above(fee: FeePolicy, policy: FeePolicy) -> bool:
    return fee.base_msat > policy.base_msat or fee.ppm > policy.ppm


__all__ = ["FEE_NOTE", "FeePolicyActor"]
