"""The membership actor: who is in the hive, and the joins, leaves and revocations that change it.

It owns the roster (the verified set of member and exit records,
:mod:`hive.protocol.membership.roster`),
persists every record that lands in SQLite, and spreads records through the fleet: each new
record goes to every connected member at once (flooding, stopped by the roster's de-duplication),
and a roster digest exchanged on every (re)connection and every ``sync_interval_s`` repairs
whatever was lost: a member whose digest differs gets our whole roster.

It runs the member side of the join handshake for candidates (challenge, active probe, ticket
claim at the issuer, admission) and the candidate side for `hive-join`
(:mod:`hive.actors.membership.joining`). The handshake logic itself is the pure state machines of
:mod:`hive.protocol.membership.handshake`; this actor only carries out their actions.

It also decides admission for the transport: every frame except the handshake's must come from
an active member, over that member's own connection; handshake frames, which anyone may send,
are rate-limited per peer and in all and go to an inbox of their own. Our own exit and telling
revoked nodes are :mod:`hive.actors.membership.leaving`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import nacl.signing
import trio

from hive.actors.membership.contact import AddressBook
from hive.actors.membership.joining import CandidateDriver, JoinResult
from hive.actors.membership.leaving import META_PENDING_EXIT, ExitDriver
from hive.actors.membership.probe import probe_candidate
from hive.actors.wire.transport import Transport
from hive.config import MembershipConfig
from hive.errors import HiveError, NodeError
from hive.node.port import NodeEvent, NodeId, NodeInfo, NodePort, PeerConnected, PeerDisconnected
from hive.protocol.errors import (
    NOT_ISSUER,
    TICKET_EXHAUSTED,
    TICKET_EXPIRED,
    TICKET_UNKNOWN,
    ProtocolError,
)
from hive.protocol.membership import (
    Challenge,
    ChallengeAnswer,
    ExitAnnounce,
    ExitRecord,
    Genesis,
    Hello,
    MemberAnnounce,
    MemberRecord,
    MemberStatus,
    Refuse,
    Roster,
    RosterDigest,
    RosterRecord,
    RosterSync,
    TicketClaim,
    TicketClaimResult,
    Welcome,
    canonical_bytes,
    record_hash,
    sign_member,
)
from hive.protocol.membership.handshake import (
    Admit,
    ClaimTicket,
    MemberAction,
    MemberHandshakes,
    Rewelcome,
    SendChallenge,
    SendRefuse,
    SendWelcome,
    StartProbe,
    check_claim,
    grant_body,
)
from hive.protocol.membership.pki import sign_grant
from hive.protocol.membership.records import RecordAck
from hive.protocol.messages import Message
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER
from hive.protocol.wire.facade import Received
from hive.ratelimit import KeyedRateLimiter, TokenBucket
from hive.store import META_GENESIS, Store
from hive.store.membership import adopt_hive
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

# Kinds a non-member may send us (a candidate joining), or we may receive before we are members.
HANDSHAKE_KINDS: frozenset[type[Message]] = frozenset(
    {Hello, ChallengeAnswer, Challenge, Welcome, Refuse}
)
MEMBERSHIP_KINDS: tuple[type[Message], ...] = (
    TicketClaim,
    TicketClaimResult,
    MemberAnnounce,
    ExitAnnounce,
    RosterDigest,
    RosterSync,
    RecordAck,
)
REDEEM_REASONS = {
    "exhausted": TICKET_EXHAUSTED,
    "unknown-ticket": TICKET_UNKNOWN,
    "expired": TICKET_EXPIRED,
}
# Handshake frames anyone may send: a per-peer and an overall token bucket bound how many reach
# the (separate, bounded) joins inbox, so a join flood can neither fill it for honest candidates
# for long nor touch the inbox that carries the members' records.
JOIN_RATE_PER_PEER = (2.0, 10.0)  # frames per second, burst
JOIN_RATE_TOTAL = (50.0, 64.0)
REWELCOME_GAP_MS = 30_000  # a member asking again is welcomed again at most this often


@attrs.define
class MembershipStats:
    records_landed: int = 0
    announced: int = 0
    syncs_sent: int = 0
    joins_admitted: int = 0
    rewelcomed: int = 0
    joins_refused: Counter[str] = attrs.field(factory=Counter)
    rejected: Counter[str] = attrs.field(factory=Counter)


def decode_record(kind: str, body: bytes) -> RosterRecord:
    """A stored record back from its canonical bytes (raises ProtocolError if damaged)."""
    cls: type[RosterRecord] = MemberRecord if kind == "member" else ExitRecord
    try:
        record: RosterRecord = CONVERTER.structure(cbor.decode(body), cls)
    except ProtocolError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError("bad-record", f"stored {kind} record: {exc}") from exc
    return record


def decode_genesis(body: bytes) -> Genesis:
    try:
        genesis: Genesis = CONVERTER.structure(cbor.decode(body), Genesis)
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError("bad-genesis", f"stored genesis: {exc}") from exc
    return genesis


class Membership:
    """Roster keeper, record spreader, handshake driver and transport gatekeeper."""

    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        store: Store,
        signing_key: nacl.signing.SigningKey,
        info: NodeInfo,
        now_ms: Callable[[], int],
        rng: random.Random,
        config: MembershipConfig | None = None,
        contact: AddressBook | None = None,
    ) -> None:
        self.node = node
        # Where members can be reached after a restart (hive/actors/membership/contact.py).
        self.contact = contact or AddressBook(store, now_ms)
        self.transport = transport
        self.store = store
        self.signing_key = signing_key
        self.info = info
        self.node_id = bytes.fromhex(info.node_id)
        self.hive_key = bytes(signing_key.verify_key)
        self.now_ms = now_ms
        self.rng = rng
        self.config = config or MembershipConfig()
        self.roster: Roster | None = None
        self.stats = MembershipStats()
        self.inbox: Inbox[Received] = Inbox(256)
        self.joins: Inbox[Received] = Inbox(64)
        self.events: Inbox[NodeEvent] = Inbox(256)
        self.connected: set[NodeId] = set()
        self.handshakes = MemberHandshakes(own_node_id=self.node_id, own_hive_key=self.hive_key)
        self.candidate = CandidateDriver(self)
        self._changed = trio.Event()
        rate, burst = JOIN_RATE_PER_PEER
        self._join_rate = KeyedRateLimiter(rate=rate, burst=burst)
        rate, burst = JOIN_RATE_TOTAL
        self._join_total = TokenBucket(rate, burst, burst, 0.0)
        self.exits = ExitDriver(self)
        self._rewelcomed: dict[NodeId, int] = {}  # member -> when we last welcomed it again
        transport.subscribe(MEMBERSHIP_KINDS, self.inbox)
        transport.subscribe(HANDSHAKE_KINDS, self.joins)
        transport.subscribe_events(self.events)

    # ------------------------------------------------------------------------------------------
    # Queries

    @property
    def is_member(self) -> bool:
        return self.roster is not None and self.node_id in self.roster.active()

    def fleet_peers(self) -> list[NodeId]:
        """Active members other than us (node ids), for liveness and broadcasts."""
        if not self.is_member or self.roster is None:
            return []
        return sorted(n.hex() for n in self.roster.active() if n != self.node_id)

    def admit(self, received: Received) -> str | None:
        """Why the transport must refuse ``received``, or None to let it through."""
        message = received.message
        if type(message) in HANDSHAKE_KINDS:
            now = self.now_ms() / 1000
            if not self._join_rate.allow(received.peer_id, now):
                return "join-rate"
            if not self._join_total.take(now):
                return "join-busy"
            return None
        if self.roster is None:
            return "not-member"
        record = self.roster.by_hive_key(received.sender)
        if record is None:
            if isinstance(message, ExitAnnounce) and _own_leave(message.record, received):
                return None  # a member that left repeats its leave until it is acknowledged
            if self.roster.status(bytes.fromhex(received.peer_id)) is MemberStatus.REVOKED:
                self.exits.heard_from_revoked(received.peer_id)
                return "revoked"
            return "not-member"
        if record.body.cert.node_id.hex() != received.peer_id:
            return "key-mismatch"
        return None

    @property
    def pending_exit(self) -> ExitRecord | None:
        """Our exit record while no member has acknowledged it."""
        return self.exits.pending

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def load(self) -> None:
        """Rebuild the roster from the store (every record re-verified)."""
        stored_genesis = await self.store.get_meta(META_GENESIS)
        if stored_genesis is None:
            return
        roster = Roster(decode_genesis(stored_genesis))
        stored = await self.store.records()
        result = roster.merge(decode_record(row.kind, row.body) for row in stored)
        for record, error in result.refused:
            log.warning("stored record %s no longer verifies: %s", record_hash(record).hex(), error)
        self.roster = roster
        await self.exits.load()
        log.info(
            "hive %s loaded: %d active members",
            roster.hive_id.hex()[:16],
            len(roster.active()),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.connected = {p.node_id for p in await self.node.list_peers() if p.connected}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._messages, self.inbox, nursery)
            nursery.start_soon(self._messages, self.joins, nursery)
            nursery.start_soon(self._node_events)
            nursery.start_soon(self._ticks, nursery)
            nursery.start_soon(self._sync_loop)
            nursery.start_soon(self._connector)
            nursery.start_soon(self.exits.retry_loop)
            nursery.start_soon(self.exits.tell_revoked_loop)
            task_status.started()

    # ------------------------------------------------------------------------------------------
    # Records: apply, persist, spread

    async def adopt(self, roster: Roster, *, forget_tickets: bool = False) -> None:
        """Become a member of ``roster``'s hive (genesis or a verified Welcome): the genesis
        and every record replace what the store held, in one transaction, so a crash leaves
        either the old state or the new one (the join can be retried from the old one)."""
        now = self.now_ms()
        rows = [
            (record_hash(r), _kind(r), _subject(r), canonical_bytes(r)) for r in roster.records()
        ]
        genesis = canonical_bytes(roster.genesis)
        await self.store.run(
            "adopt_hive",
            lambda conn: adopt_hive(
                conn,
                {META_GENESIS: genesis},
                rows,
                now,
                forget_tickets=forget_tickets,
                forget_meta=(META_PENDING_EXIT,),
            ),
        )
        self.stats.records_landed += len(rows)
        self.exits.forget()
        self.roster = roster
        self.notify()

    async def apply_records(
        self, records: Iterable[RosterRecord], *, came_from: NodeId | None
    ) -> int:
        """Apply records from the network; persist and forward the ones that land."""
        if self.roster is None:
            return 0
        result = self.roster.merge(records, source=came_from)
        for record, error in result.refused:
            self._reject(came_from, error.reason, f"{type(record).__name__}: {error.detail}")
        await self._persist(result.landed, result.dropped)
        if result.landed:
            self.notify()
            for record in result.landed:
                skip = {came_from, _subject(record)}
                onward = [p for p in self.fleet_peers() if p not in skip and p in self.connected]
                fanout = self.config.relay_fanout
                if fanout is not None and len(onward) > fanout:
                    onward = self.rng.sample(onward, fanout)
                await self.broadcast(_announce(record), targets=onward)
        return len(result.landed)

    async def add_own_record(self, record: RosterRecord) -> None:
        """Apply a record we signed, persist it and announce it to every connected member."""
        landed, targets = await self._apply_own(record)
        await self._announce_own(landed, targets)

    async def _apply_own(
        self, record: RosterRecord
    ) -> tuple[tuple[RosterRecord, ...], list[NodeId]]:
        assert self.roster is not None
        # Taken before applying: after our own leave we have no fleet peers, yet they must hear.
        targets = self.fleet_peers()
        result = self.roster.apply(record)
        await self._persist(result.landed, result.dropped)
        self.notify()
        return result.landed, targets

    async def _announce_own(
        self, landed: Sequence[RosterRecord], targets: Sequence[NodeId]
    ) -> None:
        for record in landed:
            # A new member learns its own admission from the Welcome instead; the subject of a
            # revoke must hear it (else it goes on believing it is a member).
            exclude = {_subject(record)} if isinstance(record, MemberRecord) else set()
            await self.broadcast(_announce(record), exclude=exclude, targets=targets)

    async def _persist(
        self, landed: Sequence[RosterRecord], dropped: Sequence[RosterRecord]
    ) -> None:
        now = self.now_ms()
        for record in landed:
            await self.store.add_record(
                record_hash(record), _kind(record), _subject(record), canonical_bytes(record), now
            )
        for record in dropped:
            await self.store.delete_record(record_hash(record))
        self.stats.records_landed += len(landed)

    async def broadcast(
        self,
        message: Message,
        *,
        exclude: Iterable[NodeId | None] = (),
        targets: Iterable[NodeId] | None = None,
    ) -> None:
        """Send ``message`` to every connected member (or of ``targets``) except ``exclude``."""
        skip = set(exclude)
        for peer in self.fleet_peers() if targets is None else targets:
            if peer not in skip and peer in self.connected:
                await self.transport.send(peer, message)
                self.stats.announced += 1

    def notify(self) -> None:
        """Wake whoever waits for a roster change (:meth:`wait_changed`)."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    # ------------------------------------------------------------------------------------------
    # Inbound

    async def _messages(self, inbox: Inbox[Received], nursery: trio.Nursery) -> None:
        async for received in inbox.receive:
            try:
                await self._dispatch(received, nursery)
            except ProtocolError as exc:
                self._reject(received.peer_id, exc.reason, exc.detail)
            except NodeError as exc:
                # The node refused a request made on this message's behalf (signing, a store
                # write is a StoreError and not caught here): that message fails, we go on.
                self.stats.rejected["node-error"] += 1
                log.warning(
                    "node error while handling %s from %s: %s",
                    type(received.message).__name__,
                    received.peer_id,
                    exc,
                )

    async def _dispatch(self, received: Received, nursery: trio.Nursery) -> None:
        msg = received.message
        peer = received.peer_id
        if isinstance(msg, Hello):
            await self._on_hello(received, msg)
        elif isinstance(msg, ChallengeAnswer):
            actions = self.handshakes.on_answer(
                bytes.fromhex(peer), msg, sender_key=received.sender, now_ms=self.now_ms()
            )
            await self._carry_out(actions, nursery)
        elif isinstance(msg, Challenge | Welcome | Refuse):
            await self.candidate.on_message(received, msg)
        elif isinstance(msg, TicketClaim):
            await self._on_claim(received, msg)
        elif isinstance(msg, TicketClaimResult):
            actions = self.handshakes.on_claim_result(
                msg, sender_key=received.sender, now_ms=self.now_ms()
            )
            await self._carry_out(actions, nursery)
        elif isinstance(msg, MemberAnnounce):
            await self.apply_records([msg.record], came_from=peer)
        elif isinstance(msg, ExitAnnounce):
            await self.apply_records([msg.record], came_from=peer)
            if self.roster is not None and msg.record in self.roster.records():
                # Stored (now or before): the exit's author may stop repeating it.
                await self.transport.send(peer, RecordAck(record=record_hash(msg.record)))
        elif isinstance(msg, RecordAck):
            await self.exits.on_ack(received, msg)
        elif isinstance(msg, RosterDigest):
            await self._on_digest(peer, msg)
        elif isinstance(msg, RosterSync):
            await self._on_sync(peer, msg)

    async def _on_hello(self, received: Received, hello: Hello) -> None:
        peer = received.peer_id
        if not self.is_member or self.roster is None:
            await self.transport.send(
                peer,
                Refuse(
                    session=hello.session,
                    reason="not-member",
                    detail="this node is not a member of any hive",
                ),
            )
            self.stats.joins_refused["not-member"] += 1
            return
        actions = self.handshakes.on_hello(
            bytes.fromhex(peer),
            hello,
            roster=self.roster,
            sender_key=received.sender,
            nonce=self.rng.randbytes(32),
            now_ms=self.now_ms(),
        )
        await self._carry_out(actions, None)

    async def _on_claim(self, received: Received, claim: TicketClaim) -> None:
        """We issued the ticket (or were asked as if we had): redeem it once, fleet-wide."""
        result = await self.redeem(claim, claimant_key=received.sender)
        await self.transport.send(received.peer_id, result)

    async def redeem(self, claim: TicketClaim, *, claimant_key: bytes) -> TicketClaimResult:
        """Count one use of our ticket for the claim's candidate, and sign the grant, once the
        claim proves a real ticket and a completed handshake with the claimant
        (:func:`~hive.protocol.membership.handshake.check_claim`)."""
        ticket_id = claim.ticket.body.ticket_id
        now = self.now_ms()

        def denied(reason: str) -> TicketClaimResult:
            return TicketClaimResult(
                claim_id=claim.claim_id,
                ticket_id=ticket_id,
                granted=False,
                reason=reason[:32],
                grant=None,
            )

        if self.roster is None:
            return denied(NOT_ISSUER)
        try:
            member_node = check_claim(
                claim,
                roster=self.roster,
                claimant_key=claimant_key,
                own_hive_key=self.hive_key,
                now_ms=now,
            )
        except ProtocolError as exc:
            log.info("ticket %s claim refused: %s", ticket_id.hex(), exc)
            self.stats.rejected[f"claim-{exc.reason}"] += 1
            return denied(exc.reason)
        if await self.store.ticket(ticket_id) is None:
            return denied(NOT_ISSUER)  # signed by our key, yet not in our store: forgotten
        candidate = claim.cert.node_id
        redeemed = await self.store.redeem_ticket(ticket_id, candidate.hex(), now)
        log.info(
            "ticket %s claim for %s: %s (uses %d)",
            ticket_id.hex(),
            candidate.hex(),
            redeemed.reason,
            redeemed.uses,
        )
        if not redeemed.granted:
            return denied(REDEEM_REASONS.get(redeemed.reason, "denied"))
        grant = sign_grant(
            self.signing_key,
            grant_body(
                claim,
                member_node=member_node,
                member_key=claimant_key,
                use=redeemed.use,
                now_ms=now,
            ),
        )
        return TicketClaimResult(
            claim_id=claim.claim_id, ticket_id=ticket_id, granted=True, reason="", grant=grant
        )

    async def _on_digest(self, peer: NodeId, digest: RosterDigest) -> None:
        if self.roster is None or digest.hive_id != self.roster.hive_id:
            return
        if digest.digest != self.roster.digest():
            await self.transport.send(peer, self.roster.sync_message())
            self.stats.syncs_sent += 1

    async def _on_sync(self, peer: NodeId, sync: RosterSync) -> None:
        if self.roster is None or sync.hive_id != self.roster.hive_id:
            return
        landed = await self.apply_records([*sync.members, *sync.exits], came_from=peer)
        if landed:
            log.info("roster sync from %s: %d new records", peer, landed)

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, PeerConnected):
                self.connected.add(event.peer_id)
                if event.peer_id in self.fleet_peers() and self.roster is not None:
                    await self.transport.send(event.peer_id, self.roster.digest_message())
                await self.exits.on_connected(event.peer_id)
            elif isinstance(event, PeerDisconnected):
                self.connected.discard(event.peer_id)
                if self.roster is not None:
                    self.roster.forget_pending(event.peer_id)

    async def _sync_loop(self) -> None:
        """Anti-entropy: compare roster digests with every connected member periodically."""
        while True:
            await trio.sleep(self.config.sync_interval_s)
            if self.roster is None:
                continue
            for peer in self.fleet_peers():
                if peer in self.connected:
                    await self.transport.send(peer, self.roster.digest_message())

    async def _connector(self) -> None:
        """Keep a connection to every member: custom messages need one. Tries again whenever
        the roster changes and every sync interval."""
        while True:
            for peer in self.fleet_peers():
                if peer not in self.connected:
                    await self.try_connect(peer)
            with trio.move_on_after(self.config.sync_interval_s):
                await self.wait_changed()

    async def try_connect(self, peer: NodeId) -> None:
        """Connect to a member (a failure is logged, not raised)."""
        try:
            await self.contact.connect(self.node, peer)
        except HiveError as exc:
            log.debug("cannot connect to member %s: %s", peer, exc)
            return
        if peer not in self.connected:
            self.connected.add(peer)
            if self.roster is not None:
                await self.transport.send(peer, self.roster.digest_message())

    async def _ticks(self, nursery: trio.Nursery) -> None:
        while True:
            await trio.sleep(self.config.tick_s)
            await self._carry_out(self.handshakes.tick(self.now_ms()), nursery)
            await self.candidate.tick()

    # ------------------------------------------------------------------------------------------
    # Member side of the handshake: carry out the state machine's actions

    async def _carry_out(
        self, actions: Sequence[MemberAction], nursery: trio.Nursery | None
    ) -> None:
        for action in actions:
            if isinstance(action, SendChallenge | SendWelcome):
                await self.transport.send(action.peer_id.hex(), action.message)
            elif isinstance(action, SendRefuse):
                reason = action.message.reason
                self.stats.joins_refused[reason] += 1
                log.info(
                    "refused join of %s: %s (%s)",
                    action.peer_id.hex(),
                    reason,
                    action.message.detail,
                )
                await self.transport.send(action.peer_id.hex(), action.message)
            elif isinstance(action, StartProbe):
                assert nursery is not None, "a probe starts only from a candidate's answer"
                nursery.start_soon(self._probe_then_report, action)
            elif isinstance(action, ClaimTicket):
                await self._claim(action, nursery)
            elif isinstance(action, Admit):
                await self._admit(action)
            elif isinstance(action, Rewelcome):
                await self._rewelcome(action)

    async def _probe_then_report(self, action: StartProbe) -> None:
        failure = await probe_candidate(self.node, action.peer_id.hex(), action.hello)
        actions = self.handshakes.on_probe_result(
            action.peer_id, action.hello.session, failure, self.now_ms()
        )
        await self._carry_out(actions, None)

    async def _claim(self, action: ClaimTicket, nursery: trio.Nursery | None) -> None:
        if action.local:
            result = await self.redeem(action.message, claimant_key=self.hive_key)
            actions = self.handshakes.on_claim_result(
                result, sender_key=self.hive_key, now_ms=self.now_ms()
            )
            await self._carry_out(actions, nursery)
            return
        issuer = action.issuer_node.hex()
        if issuer not in self.connected:
            await self.try_connect(issuer)
        # If the issuer cannot be reached the session times out as "issuer-unreachable".
        await self.transport.send(issuer, action.message)

    async def _admit(self, action: Admit) -> None:
        assert self.roster is not None
        record = sign_member(self.signing_key, action.body)
        landed: tuple[RosterRecord, ...] = ()
        targets: list[NodeId] = []
        try:
            landed, targets = await self._apply_own(record)
        except ProtocolError as exc:
            if exc.reason != "already-member":
                raise
            # A parallel session admitted this node first: welcome it with the record in force.
            record = self.roster.active()[action.peer_id]
        self.stats.joins_admitted += 1
        welcome = self._welcome(action.session, record)
        log.info("admitted %s to the hive", action.peer_id.hex())
        self.handshakes.welcome_sent(action.peer_id, welcome)
        # The Welcome goes first, so the newcomer tends to know the fleet before the fleet,
        # hearing the announcement, starts talking to it.
        await self.transport.send(action.peer_id.hex(), welcome)
        await self._announce_own(landed, targets)

    def _welcome(self, session: bytes, record: MemberRecord) -> Welcome:
        assert self.roster is not None
        records = self.roster.records()
        return Welcome(
            session=session,
            record=record,
            genesis=self.roster.genesis,
            members=tuple(r for r in records if isinstance(r, MemberRecord)),
            exits=tuple(r for r in records if isinstance(r, ExitRecord)),
        )

    async def _rewelcome(self, action: Rewelcome) -> None:
        """An active member lost (or never stored) its Welcome: send it one again (at most
        once per REWELCOME_GAP_S per member: a Welcome is large, and members ask cheaply)."""
        assert self.roster is not None
        now = self.now_ms()
        peer = action.peer_id.hex()
        if now - self._rewelcomed.get(peer, -REWELCOME_GAP_MS) < REWELCOME_GAP_MS:
            self.stats.rejected["rewelcome-too-soon"] += 1
            return
        if len(self._rewelcomed) >= 1024:
            self._rewelcomed.clear()
        self._rewelcomed[peer] = now
        record = self.roster.active()[action.peer_id]
        self.stats.rewelcomed += 1
        log.info("welcomed %s again: it is a member but did not know", action.peer_id.hex())
        await self.transport.send(action.peer_id.hex(), self._welcome(action.session, record))

    async def leave(self, record: ExitRecord, *, delete: bool, wait_s: float) -> bool:
        """Our own leave (see :meth:`hive.actors.membership.leaving.ExitDriver.leave`)."""
        return await self.exits.leave(record, delete=delete, wait_s=wait_s)

    # ------------------------------------------------------------------------------------------

    async def join(
        self, ticket_text: str, member: NodeId | None, host: str | None, port: int | None
    ) -> JoinResult:
        return await self.candidate.join(ticket_text, member, host, port)

    def _reject(self, peer: NodeId | None, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        log.info("membership: refused input from %s: %s (%s)", peer, reason, detail)

    def status(self) -> dict[str, Any]:
        roster = self.roster
        now = self.now_ms()
        return {
            "hive_id": roster.hive_id.hex() if roster else None,
            "member": self.is_member,
            "role": self.role(),
            "members": len(roster.active()) if roster else 0,
            "records_landed": self.stats.records_landed,
            "joins_admitted": self.stats.joins_admitted,
            "rewelcomed": self.stats.rewelcomed,
            "exit_unacknowledged": self.pending_exit is not None,
            "joins_refused": dict(self.stats.joins_refused),
            "rejected": dict(self.stats.rejected),
            "handshakes": [
                {
                    "peer_id": v.peer_id.hex(),
                    "session": v.session.hex(),
                    "state": v.state.value,
                    "age_s": (now - v.since_ms) / 1000,
                }
                for v in self.handshakes.views()
            ],
            "joining": self.candidate.status(),
            "joins_inbox": attrs.asdict(self.joins.stats()),
        }

    def role(self) -> str | None:
        if self.roster is None:
            return None
        if self.roster.is_admin(self.node_id):
            return "admin"
        return "member" if self.is_member else None


def _announce(record: RosterRecord) -> Message:
    if isinstance(record, MemberRecord):
        return MemberAnnounce(record=record)
    return ExitAnnounce(record=record)


def _own_leave(record: ExitRecord, received: Received) -> bool:
    """True when ``record`` is the sender's own leave, delivered over its own connection."""
    body = record.body
    return body.by_key == received.sender and body.node_id.hex() == received.peer_id


def _kind(record: RosterRecord) -> str:
    return "member" if isinstance(record, MemberRecord) else "exit"


def _subject(record: RosterRecord) -> NodeId:
    """The node a record is about."""
    if isinstance(record, MemberRecord):
        return record.body.cert.node_id.hex()
    return record.body.node_id.hex()
