"""The ban actor: detection rules, the ban-peer/unban-peer executors, spreading and applying
signed bans (issue 12; rules and bounds in docs/REPUTATION.md, records in docs/PROTOCOL.md).

* **Detect**: node events (forward outcomes and hold times, channels opened to us, channels
  the peer force-closed) feed
  :class:`~hive.fleet.banrules.Observations`; every ``check_s`` the rules of
  :mod:`hive.fleet.banrules` run and each new trigger becomes a ``ban-peer`` proposal through
  the decision engine, with the rule's evidence (one open proposal per peer at a time).
* **Execute**: an approved ``ban-peer`` signs a :class:`~hive.protocol.bans.Ban` with our hive
  key, keeps it (the book, then SQLite), floods it and applies it; ``unban-peer`` signs an
  :class:`~hive.protocol.bans.Unban` for each of our bans on the peer (every ban on it when we
  are an admin).
* **Spread**: a ban or unban is flooded to connected members; each member forwards one it had
  not seen (the book's de-duplication ends the flood). Repair as for the roster: every
  ``sync_interval_s`` and when a member connects we send our book's digest, and a member whose
  digest differs gets our whole book (:class:`~hive.protocol.bans.BanSync`). Flooding plus
  digest repair is the simplest sound way: bans are few and small, every member must hold
  all of them, and the repair catches what a member missed while offline.
* **Apply**: a banned peer is refused channel opens (:meth:`refuse_open`, called without
  blocking from CLN's ``openchannel`` hook and the simulator), kept out of rebalancing routes
  and planner candidates (:meth:`is_banned`), and told to CLBOSS (``set_open_ignored``).

:meth:`is_banned` and :meth:`refuse_open` read an immutable snapshot replaced on every change,
so a thread (pyln's hook loop) may call them safely.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import nacl.signing
import trio

from hive.config import BanConfig
from hive.errors import NodeError, TransientError
from hive.fleet.banrules import Observations, Trigger, evaluate
from hive.governance.api import EngineApi, ExecutionFailed, Refused
from hive.governance.kinds import (
    BAN_PEER,
    UNBAN_PEER,
    KindSpec,
    _only,
    int_param,
    node_id_param,
    text_param,
)
from hive.governance.proposal import Cost, Draft, ExecutionResult, Proposal, ProposalInvalid
from hive.node.port import (
    ChannelOpened,
    ChannelState,
    ChannelStateChanged,
    Forwarded,
    NodeEvent,
    NodeId,
    NodePort,
    PeerConnected,
)
from hive.protocol.bans import (
    Ban,
    BanAnnounce,
    BanBody,
    BanBook,
    BanDigest,
    BanRefused,
    BanRules,
    BanSync,
    Unban,
    UnbanAnnounce,
    UnbanBody,
    ban_digest,
    evidence_digest,
    sign_ban,
    sign_unban,
)
from hive.protocol.bans.records import MAX_RULE, MAX_SYNC_BANS
from hive.protocol.membership import ROLE_ADMIN
from hive.protocol.wire.facade import Received
from hive.ratelimit import KeyedRateLimiter
from hive.store import Store
from hive.store import bans as sql
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

PROPOSER = "bans"
CHECK_S = 60.0
EARLY_CHECK_S = 1.0


def _ban_params(params: Mapping[str, Any]) -> dict[str, Any]:
    kind = "ban-peer"
    _only(params, kind, {"peer"}, {"reason", "rule", "ttl_s", "permanent"})
    out: dict[str, Any] = {
        "peer": node_id_param(params, "peer", kind),
        "reason": text_param(params, "reason", kind),
        "rule": text_param(params, "rule", kind, max_len=MAX_RULE) or "operator",
    }
    if "ttl_s" in params:
        out["ttl_s"] = int_param(params, "ttl_s", kind, low=60, high=10 * 365 * 86_400)
    if "permanent" in params:
        if not isinstance(params["permanent"], bool):
            raise ProposalInvalid("ban-peer: permanent must be true or false")
        out["permanent"] = params["permanent"]
    return out


BAN_PEER_SPEC = KindSpec(
    BAN_PEER.name,
    _ban_params,
    "Ban peer fleet-wide (signed Ban record) for reason, caught by rule; ttl_s bounded by the"
    " fleet's maximum; permanent only holds once several members ban the same peer.",
)
UNBAN_PEER_SPEC = UNBAN_PEER


class Bans:
    def __init__(
        self,
        *,
        node: NodePort,
        transport: Any,
        membership: Any,
        store: Store,
        engine: EngineApi,
        signing_key: nacl.signing.SigningKey,
        now_ms: Any,
        config: BanConfig,
    ) -> None:
        self.node = node
        self.transport = transport
        self.membership = membership
        self.store = store
        self.engine = engine
        self.key = signing_key
        self.hive_key = bytes(signing_key.verify_key)
        self.now_ms = now_ms
        self.config = config
        self.rules = BanRules(
            default_ttl_ms=int(config.default_ttl_s * 1000),
            max_ttl_ms=int(config.max_ttl_s * 1000),
            max_per_window=config.max_per_day,
            permanent_quorum=config.permanent_quorum,
        )
        self.inbox: Inbox[Received] = Inbox(256)
        self.events: Inbox[NodeEvent] = Inbox(1024)
        transport.subscribe((BanAnnounce, UnbanAnnounce, BanDigest, BanSync), self.inbox)
        transport.subscribe_events(self.events)
        self.obs = Observations(
            int(config.window_s * 1000), int(config.force_close_window_s * 1000)
        )
        self.book: BanBook | None = None
        self._stored: tuple[list[Ban], list[Unban]] = ([], [])
        self._overrides: dict[str, str] = {}
        self._snapshot: Mapping[str, int | None] = {}  # peer -> effective expiry (None: none)
        self._scids: dict[str, str] = {}
        self._proposed: dict[str, str] = {}  # peer -> open proposal id
        self.refused_opens = 0
        self.disconnected = 0
        self.disconnected_on_connect = 0
        # Repair answers (a whole book) per asking member: bounded, so a member sending
        # digest after digest cannot make us send our book over and over (amplification).
        self._sync_answers = KeyedRateLimiter(
            rate=1.0 / config.sync_answer_gap_s, burst=config.sync_answer_burst
        )
        self.refusals: dict[str, int] = {}
        self._suspicious = trio.Event()
        self._rules_lock = trio.Lock()

    # --- reading (thread-safe) -------------------------------------------------------------------

    def is_banned(self, peer: NodeId) -> bool:
        """True when ``peer`` is banned on this node now (planner, rebalancer, hooks)."""
        expires = self._snapshot.get(peer.lower(), 0)
        if peer.lower() not in self._snapshot:
            return False
        return expires is None or self.now_ms() < expires

    def banned_peers(self) -> list[NodeId]:
        """Every peer banned on this node now, sorted (the planner leaves them out)."""
        return sorted(peer for peer in list(self._snapshot) if self.is_banned(peer))

    def refuse_open(self, peer: NodeId) -> str | None:
        """The reason to refuse a channel open from ``peer``, or None to accept it."""
        if not self.is_banned(peer):
            return None
        self.refused_opens += 1
        return f"hive: {peer} is banned by the fleet"

    # --- life cycle ------------------------------------------------------------------------------

    async def load(self) -> None:
        bans, unbans, overrides = await self.store.run("load_bans", sql.load_all)
        self._stored = (bans, unbans)
        self._overrides = overrides
        self._ensure_book()
        self._refresh()

    def register(self) -> None:
        self.engine.register_kind(BAN_PEER_SPEC, BanPeerExecutor(self), replace=True)
        self.engine.register_kind(UNBAN_PEER_SPEC, UnbanPeerExecutor(self), replace=True)

    def _ensure_book(self) -> BanBook | None:
        if self.book is None and self.membership.roster is not None:
            book = BanBook(self.membership.roster.hive_id, self.rules)
            book.load(*self._stored)
            book.overrides = {bytes.fromhex(p) for p in self._overrides}
            self.book = book
            self._stored = ([], [])
        return self.book

    def _is_member(self, key: bytes) -> bool:
        roster = self.membership.roster
        return roster is not None and roster.by_hive_key(key) is not None

    def _is_member_node(self, peer: NodeId) -> bool:
        roster = self.membership.roster
        try:
            node = bytes.fromhex(peer)
        except ValueError:
            return False
        return roster is not None and node in roster.active()

    def _is_admin(self, key: bytes) -> bool:
        roster = self.membership.roster
        record = None if roster is None else roster.by_hive_key(key)
        return record is not None and record.body.role == ROLE_ADMIN

    def _refresh(self) -> None:
        book = self.book
        if book is None:
            self._snapshot = {}
            return
        now = self.now_ms()
        snap: dict[str, int | None] = {}
        for ban in book.bans():
            peer = ban.body.peer
            if peer in book.overrides or not book.live(ban, now):
                continue
            key = peer.hex()
            expires = book.expires_of(ban)
            old = snap.get(key, 0)
            snap[key] = None if expires is None or old is None else max(old, expires)
        self._snapshot = snap

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._messages)
            nursery.start_soon(self._node_events)
            nursery.start_soon(self._early_checks)
            for peer in self.banned_peers():  # holds are in memory: take ours again
                await self._apply(peer)
            task_status.started()
            while True:
                await self.tick()
                await trio.sleep(min(CHECK_S, self.config.sync_interval_s))

    async def _early_checks(self) -> None:
        """Run the rules soon after a suspicious event (a force close by the peer, a small
        HTLC held past the floor) instead of at the next check; a burst is judged once."""
        while True:
            await self._suspicious.wait()
            await trio.sleep(EARLY_CHECK_S)
            self._suspicious = trio.Event()
            if self._ensure_book() is not None:
                await self._check_rules()

    async def _check_rules(self) -> None:
        async with self._rules_lock:  # the periodic and the early check never overlap
            for trigger in evaluate(self.obs, self.config):
                await self._propose(trigger)

    async def tick(self) -> None:
        """Prune, run the rules, send digests (once per check)."""
        now = self.now_ms()
        self.obs.prune(now)
        book = self._ensure_book()
        if book is None:
            return
        gone = book.prune(now)
        if gone:
            await self.store.run(
                "prune_bans", lambda c: sql.delete_bans(c, [ban_digest(b) for b in gone], [])
            )
            self._refresh()
            for ban in gone:
                await self._apply(ban.body.peer.hex())
        await self._check_rules()
        if self._snapshot:
            await self._enforce()
        await self._send_digest(self.membership.fleet_peers())

    async def _propose(self, trigger: Trigger) -> None:
        if self.is_banned(trigger.peer) or self._is_member_node(trigger.peer):
            return
        open_id = self._proposed.get(trigger.peer)
        if open_id is not None:
            status = self.engine.get(open_id)
            if status is not None and not status.state.final:
                return  # one open proposal per peer
            del self._proposed[trigger.peer]  # rejected, expired or failed: may propose again
        try:
            status = await self.engine.submit(
                Draft(
                    kind=BAN_PEER.name,
                    params={"peer": trigger.peer, "reason": trigger.reason, "rule": trigger.rule},
                    reason=f"{trigger.rule}: {trigger.reason}",
                    cost=Cost(),
                    proposer=PROPOSER,
                    evidence={"rule": trigger.rule, **trigger.evidence},
                    target=trigger.peer,
                )
            )
        except Refused as exc:
            log.warning("bans: could not propose banning %s: %s", trigger.peer, exc)
            return
        self._proposed[trigger.peer] = status.id
        self.obs.forget(trigger.peer)

    # --- node events -----------------------------------------------------------------------------

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            now = self.now_ms()
            if isinstance(event, Forwarded):
                await self._forwarded(event, now)
            elif isinstance(event, ChannelOpened) and not event.ours:
                self.obs.opened(event.peer_id, event.funding_msat // 1000, now)
            elif isinstance(event, ChannelStateChanged) and event.forced_by_peer:
                channel = event.short_channel_id or f"unconfirmed@{now}"
                self.obs.force_closed(event.peer_id, channel, now)
                self._suspicious.set()
            elif isinstance(event, PeerConnected):
                if event.peer_id in self.membership.fleet_peers():
                    await self._send_digest([event.peer_id])
                elif self.is_banned(event.peer_id):
                    await self._disconnect_on_connect(event.peer_id)

    async def _disconnect_on_connect(self, peer: NodeId) -> None:
        """A banned peer just connected: drop it at once when no channel is at stake."""
        before = self.disconnected
        try:
            await self._disconnect_idle(peer)
        except (NodeError, TransientError) as exc:
            log.warning("bans: could not disconnect banned peer %s: %s", peer, exc)
            return
        self.disconnected_on_connect += self.disconnected - before

    async def _forwarded(self, event: Forwarded, now: int) -> None:
        out_peer = await self._peer_of(event.out_channel)
        if out_peer is not None:
            self.obs.forward(out_peer, not event.settled, now)
        if event.hold_ms is not None:
            in_peer = await self._peer_of(event.in_channel)
            self.obs.held(in_peer, out_peer, event.in_msat, event.hold_ms, now)
            if (
                event.hold_ms >= self.config.jam_min_hold_s * 1000
                and event.in_msat <= self.config.jam_small_sat * 1000
            ):
                self._suspicious.set()

    async def _peer_of(self, scid: str) -> NodeId | None:
        if not scid:
            return None
        peer = self._scids.get(scid)
        if peer is None:
            await self._learn_channels()
            peer = self._scids.get(scid)
        return peer

    async def _learn_channels(self) -> None:
        try:
            channels = await self.node.list_channels()
        except (NodeError, TransientError) as exc:
            log.debug("bans: cannot list channels: %s", exc)
            return
        self._scids = {c.short_channel_id: c.peer_id for c in channels if c.short_channel_id}

    # --- messages --------------------------------------------------------------------------------

    async def _messages(self) -> None:
        async for received in self.inbox.receive:
            message = received.message
            if isinstance(message, BanAnnounce):
                await self.accept([message.ban], [], came_from=received.peer_id)
            elif isinstance(message, UnbanAnnounce):
                await self.accept([], [message.unban], came_from=received.peer_id)
            elif isinstance(message, BanSync):
                await self.accept(list(message.bans), list(message.unbans), came_from=None)
            elif isinstance(message, BanDigest):
                await self._repair(received.peer_id, message)

    async def _repair(self, peer: NodeId, message: BanDigest) -> None:
        """A member's digest differs from ours: send our book, and our digest back so its
        book comes to us; at most ``sync_answer_burst`` answers per member, then one per
        ``sync_answer_gap_s`` (each answer is at most one BanSync and one digest)."""
        book = self._ensure_book()
        if book is None or message.digest == book.digest():
            return
        if not self._sync_answers.allow(peer, trio.current_time()):
            self.refusals["sync-rate"] = self.refusals.get("sync-rate", 0) + 1
            return
        if book.bans() or book.unbans():
            await self._send(peer, self._sync_message(book))
        if not message.answer:
            await self._send_digest([peer], answer=True)

    def _sync_message(self, book: BanBook) -> BanSync:
        return BanSync(
            bans=tuple(book.bans()[-MAX_SYNC_BANS:]), unbans=tuple(book.unbans()[-MAX_SYNC_BANS:])
        )

    async def _send_digest(self, peers: Sequence[NodeId], *, answer: bool = False) -> None:
        """Our book's digest; unasked only when we hold something (an empty book has nothing
        to repair others with, and learns from their digests)."""
        book = self._ensure_book()
        if book is None or not (answer or book.bans() or book.unbans()):
            return
        digest = BanDigest(digest=book.digest(), count=len(book.bans()), answer=answer)
        for peer in peers:
            await self._send(peer, digest)

    async def _send(self, peer: NodeId, message: Any) -> None:
        await self.transport.send(peer, message)

    async def accept(
        self, bans: Sequence[Ban], unbans: Sequence[Unban], *, came_from: NodeId | None
    ) -> list[str]:
        """Take verified-by-the-book bans and unbans; keep, flood onward, apply. Returns codes."""
        book = self._ensure_book()
        if book is None:
            return ["not-member"]
        now = self.now_ms()
        codes = []
        touched: set[str] = set()
        for ban in bans:
            if self._is_member_node(ban.body.peer.hex()):
                codes.append("member")  # members are revoked (hive-revoke), never banned
                self.refusals["member"] = self.refusals.get("member", 0) + 1
                continue
            try:
                digest = book.add(ban, now, self._is_member)
            except BanRefused as exc:
                codes.append(exc.reason)
                self.refusals[exc.reason] = self.refusals.get(exc.reason, 0) + 1
                if exc.reason not in ("known", "lifted"):
                    log.info("bans: refused a ban from %s: %s", came_from, exc)
                continue
            await self.store.run(
                "save_ban", functools.partial(sql.save_ban, digest=digest, ban=ban, now_ms=now)
            )
            codes.append("added")
            touched.add(ban.body.peer.hex())
            await self._flood(BanAnnounce(ban=ban), came_from)
        for unban in unbans:
            try:
                lifted = book.lift(unban, self._is_admin)
            except BanRefused as exc:
                codes.append(exc.reason)
                continue
            await self.store.run(
                "save_unban", functools.partial(sql.save_unban, unban=unban, now_ms=now)
            )
            codes.append("lifted")
            touched.add(lifted.body.peer.hex())
            await self._flood(UnbanAnnounce(unban=unban), came_from)
        if touched:
            self._refresh()
            for peer in sorted(touched):
                await self._apply(peer)
        return codes

    async def _flood(self, message: BanAnnounce | UnbanAnnounce, came_from: NodeId | None) -> None:
        for peer in self.membership.fleet_peers():
            if peer != came_from and peer in self.membership.connected:
                await self._send(peer, message)

    async def _apply(self, peer: NodeId) -> None:
        """Make the node follow the book for ``peer`` (CLBOSS and our open list), and drop
        a banned peer's connection when no channel is at stake."""
        banned = self.is_banned(peer)
        try:
            await self.node.set_open_ignored(
                peer, banned, "banned by the fleet" if banned else "", holder=PROPOSER
            )
            if banned:
                await self._disconnect_idle(peer)
        except (NodeError, TransientError) as exc:
            log.warning("bans: could not tell the node about %s: %s", peer, exc)

    async def _enforce(self) -> None:
        """Disconnect every connected banned peer with no channel at stake (each check)."""
        try:
            peers = await self.node.list_peers()
            for view in peers:
                if view.connected and self.is_banned(view.node_id):
                    await self._disconnect_idle(view.node_id)
        except (NodeError, TransientError) as exc:
            log.warning("bans: could not enforce disconnects: %s", exc)

    async def _disconnect_idle(self, peer: NodeId) -> None:
        """Disconnect ``peer`` when connected and we have no channel with it in any state
        but closed (a channel's funds are at stake while it opens, runs or closes)."""
        channels = await self.node.list_channels()
        if any(c.peer_id == peer and c.state is not ChannelState.CLOSED for c in channels):
            return
        peers = await self.node.list_peers()
        if any(p.node_id == peer and p.connected for p in peers):
            await self.node.disconnect(peer)
            self.disconnected += 1
            log.info("bans: disconnected banned peer %s (no channel at stake)", peer)

    # --- acts ------------------------------------------------------------------------------------

    async def issue(self, params: Mapping[str, Any], evidence: Mapping[str, Any]) -> Ban:
        book = self._ensure_book()
        if book is None:
            raise ExecutionFailed("this node is not a member of a hive")
        now = self.now_ms()
        ttl_ms = min(
            int(params.get("ttl_s", self.config.default_ttl_s) * 1000), self.rules.max_ttl_ms
        )
        body = BanBody(
            hive_id=book.hive_id,
            peer=bytes.fromhex(params["peer"]),
            reason=params.get("reason", "")[:200],
            rule=params.get("rule", "operator"),
            evidence_digest=evidence_digest(
                json.dumps(evidence, sort_keys=True, separators=(",", ":")).encode()
            ),
            issuer=self.hive_key,
            issued_ms=now,
            expires_ms=now + ttl_ms,
            permanent=bool(params.get("permanent", False)),
        )
        ban = sign_ban(self.key, body)
        codes = await self.accept([ban], [], came_from=None)
        if codes != ["added"]:
            raise ExecutionFailed(f"the ban was refused: {codes[0]}")
        self._proposed.pop(params["peer"], None)
        return ban

    async def lift(self, peer: NodeId) -> list[Unban]:
        book = self._ensure_book()
        if book is None:
            raise ExecutionFailed("this node is not a member of a hive")
        admin = self._is_admin(self.hive_key)
        target = bytes.fromhex(peer)
        mine = [
            b for b in book.bans()
            if b.body.peer == target and (admin or b.body.issuer == self.hive_key)
        ]  # fmt: skip
        if not mine:
            raise ExecutionFailed(f"no ban on {peer} that this node may lift")
        now = self.now_ms()
        unbans = [
            sign_unban(self.key, UnbanBody(book.hive_id, ban_digest(b), self.hive_key, now))
            for b in mine
        ]
        await self.accept([], unbans, came_from=None)
        self._proposed.pop(peer, None)
        return unbans

    async def set_override(self, peer: NodeId, on: bool, note: str) -> None:
        """The operator's local override: never ban ``peer`` on this node (or stop that)."""
        now = self.now_ms()
        await self.store.run("ban_override", lambda c: sql.set_override(c, peer, on, now, note))
        if on:
            self._overrides[peer] = note
        else:
            self._overrides.pop(peer, None)
        if self.book is not None:
            self.book.overrides = {bytes.fromhex(p) for p in self._overrides}
        self._refresh()
        await self._apply(peer)

    def listing(self, now_ms: int | None = None) -> dict[str, Any]:
        now = self.now_ms() if now_ms is None else now_ms
        book = self._ensure_book()
        rows = []
        for ban in [] if book is None else book.bans():
            body = ban.body
            expires = book.expires_of(ban) if book else None
            rows.append(
                {
                    "peer": body.peer.hex(),
                    "rule": body.rule,
                    "reason": body.reason,
                    "issuer": body.issuer.hex(),
                    "issued_ms": body.issued_ms,
                    "expires_ms": expires,
                    "permanent_requested": body.permanent,
                    "live": book.live(ban, now) if book else False,
                    "overridden": body.peer.hex() in self._overrides,
                    "evidence_digest": body.evidence_digest.hex(),
                    "digest": ban_digest(ban).hex(),
                }
            )
        return {
            "bans": rows,
            "banned_peers": sorted(self._snapshot),
            "overrides": dict(self._overrides),
            "refused_opens": self.refused_opens,
            "disconnected": self.disconnected,
            "disconnected_on_connect": self.disconnected_on_connect,
            # What the rules are watching now: channels each peer force-closed (within the
            # close window), and resolved forwards with a hold time (within the window).
            "watching": {
                "force_closes": {
                    peer: [channel for _, channel in events]
                    for peer, events in sorted(self.obs.closes.items())
                },
                "held_forwards": len(self.obs.holds),
            },
            "refusals": dict(self.refusals),
        }


class BanPeerExecutor:
    def __init__(self, bans: Bans) -> None:
        self.bans = bans

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        ban = await self.bans.issue(proposal.params, proposal.evidence)
        return ExecutionResult(
            cost=Cost(),
            calls=(f"sign and flood Ban {proposal.params['peer']}", "set_open_ignored"),
            detail={"ban": ban_digest(ban).hex(), "expires_ms": ban.body.expires_ms},
        )

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        book = self.bans.book
        if book is None:
            return None
        peer = bytes.fromhex(proposal.params["peer"])
        for ban in book.bans():
            if ban.body.peer == peer and ban.body.issuer == self.bans.hive_key:
                return ExecutionResult(cost=Cost(), calls=(), detail={"ban": ban_digest(ban).hex()})
        return None


class UnbanPeerExecutor:
    def __init__(self, bans: Bans) -> None:
        self.bans = bans

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        unbans = await self.bans.lift(proposal.params["peer"])
        return ExecutionResult(
            cost=Cost(),
            calls=(f"sign and flood {len(unbans)} Unban", "set_open_ignored"),
            detail={"lifted": [u.body.ban_digest.hex() for u in unbans]},
        )

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        if not self.bans.is_banned(proposal.params["peer"]):
            return ExecutionResult(cost=Cost(), calls=(), detail={"reconciled": True})
        return None
