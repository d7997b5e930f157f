"""The join handshake as table-driven state machines (sans-I/O, in the style of h11).

Each side has an explicit transition table ``{(state, event): (next state, action types)}``
(:data:`MEMBER_TABLE`, :data:`CANDIDATE_TABLE`) and a small class holding one session's data:
the actor feeds it events (messages, results of the work it was asked to do, the time) and
carries out the actions it returns (send a message, probe the candidate, claim a ticket use,
sign). An event the table has no entry for changes nothing and is counted in ``ignored``.
Time comes in as ``now_ms``; every non-terminal state has a deadline and ``tick(now_ms)``
fires the timeouts. Terminal states never change.

Member side (one :class:`MemberSession` per candidate peer and session id, kept by
:class:`MemberHandshakes`, which bounds them)::

    Hello --(pure checks: check_hello)--> AWAIT_ANSWER          SendChallenge
    AWAIT_ANSWER --answer_ok-->     PROBING                     StartProbe
    AWAIT_ANSWER --answer_bad-->    REFUSED                     SendRefuse "bad-answer"
    PROBING      --probe_ok-->      CLAIMING                    ClaimTicket
    PROBING      --probe_failed-->  REFUSED                     SendRefuse (the probe's reason)
    CLAIMING     --claim_granted--> ADMITTED                    Admit
    CLAIMING     --claim_denied-->  REFUSED                     SendRefuse (the issuer's reason)
    any live     --timeout-->       FAILED                      SendRefuse "timeout" /
                                                                "issuer-unreachable" (CLAIMING)

The candidate side is :mod:`hive.protocol.membership.candidate`.
"""

from __future__ import annotations

import enum
import hashlib

import attrs

from hive.protocol.errors import (
    ALREADY_MEMBER,
    BAD_ANSWER,
    BAD_CERTIFICATE,
    BAD_TICKET,
    BUSY,
    ISSUER_UNREACHABLE,
    NOT_ISSUER,
    NOT_MEMBER,
    REQUIREMENT,
    REVOKED,
    TIMEOUT,
    ProtocolError,
)
from hive.protocol.membership.pki import (
    GRANT_TTL_MS,
    challenge_text,
    check_requirements,
    node_signed,
    verify_certificate,
    verify_grant,
    verify_ticket,
)
from hive.protocol.membership.records import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    Challenge,
    ChallengeAnswer,
    Grant,
    GrantBody,
    Hello,
    MemberBody,
    Refuse,
    TicketClaim,
    TicketClaimResult,
    Welcome,
)
from hive.protocol.membership.roster import MemberStatus, Roster

SECOND_MS = 1000


def check_hello(
    hello: Hello, *, roster: Roster, peer_id: bytes, sender_key: bytes, now_ms: int
) -> None:
    """The pure checks a member runs on a Hello before it opens a session.

    ``peer_id`` is the connected peer that delivered the frame, ``sender_key`` the frame's
    verified hive key. Raises ProtocolError: "bad-certificate" (the certificate does not name
    this peer and frame key, or does not verify, or its hive key is another member's),
    "other-hive", "bad-ticket" (signature, or the issuer is not an active admin),
    "ticket-expired", "revoked", "already-member", "requirement".
    """
    cert = hello.cert
    if sender_key != cert.hive_key:
        raise ProtocolError(
            BAD_CERTIFICATE,
            f"the frame is signed by hive key {sender_key.hex()}, the certificate names "
            f"{cert.hive_key.hex()}",
        )
    if peer_id != cert.node_id:
        raise ProtocolError(
            BAD_CERTIFICATE,
            f"the certificate is for node {cert.node_id.hex()}, the peer is {peer_id.hex()}",
        )
    ticket = verify_ticket(hello.ticket, roster.hive_id, now_ms)
    issuer = roster.by_hive_key(ticket.body.issuer_key)
    if (
        issuer is None
        or issuer.body.cert.node_id != ticket.body.issuer_node
        or issuer.body.role != ROLE_ADMIN
    ):
        raise ProtocolError(
            BAD_TICKET, f"issuer {ticket.body.issuer_node.hex()} is not an active admin"
        )
    verify_certificate(cert, roster.hive_id)
    status = roster.status(cert.node_id)
    if status is MemberStatus.REVOKED:
        raise ProtocolError(REVOKED, f"node {cert.node_id.hex()} was revoked")
    if status is MemberStatus.ACTIVE:
        raise ProtocolError(ALREADY_MEMBER, f"node {cert.node_id.hex()} is a member already")
    holder = roster.by_hive_key(cert.hive_key)
    if holder is not None:
        raise ProtocolError(
            BAD_CERTIFICATE,
            f"hive key {cert.hive_key.hex()} is member {holder.body.cert.node_id.hex()}'s",
        )
    check_requirements(ticket, hello.manifest, cert.node_id)


def check_claim(
    claim: TicketClaim,
    *,
    roster: Roster,
    claimant_key: bytes,
    own_hive_key: bytes,
    now_ms: int,
) -> bytes:
    """The checks the ticket issuer runs on a TicketClaim before it counts a use; returns the
    claimant member's node id (the grant names it).

    ``claimant_key`` is the hive key of the claim's frame (our own for a local claim). Raises
    ProtocolError: "not-issuer" (the ticket is not ours), "other-hive", "bad-ticket",
    "ticket-expired", "not-member" (the claimant is no active member), "bad-certificate",
    "revoked", "requirement" (the ticket is for another node), "bad-answer" (the candidate's
    node key did not sign the claimant's challenge).
    """
    ticket = claim.ticket
    if ticket.body.issuer_key != own_hive_key:
        raise ProtocolError(NOT_ISSUER, f"ticket {ticket.body.ticket_id.hex()} is not ours")
    verify_ticket(ticket, roster.hive_id, now_ms)
    claimant = roster.by_hive_key(claimant_key)
    if claimant is None:
        raise ProtocolError(NOT_MEMBER, f"claimant {claimant_key.hex()} is no active member")
    cert = verify_certificate(claim.cert, roster.hive_id)
    if roster.status(cert.node_id) is MemberStatus.REVOKED:
        raise ProtocolError(REVOKED, f"node {cert.node_id.hex()} was revoked")
    for_node = ticket.body.for_node
    if for_node is not None and for_node != cert.node_id:
        raise ProtocolError(REQUIREMENT, f"for-node: the ticket is for node {for_node.hex()}")
    member_node = claimant.body.cert.node_id
    text = challenge_text(roster.hive_id, member_node, claim.nonce)
    if not node_signed(text, claim.node_sig, cert.node_id):
        raise ProtocolError(
            BAD_ANSWER,
            f"node {cert.node_id.hex()} did not sign member {member_node.hex()}'s challenge",
        )
    return member_node


def grant_body(
    claim: TicketClaim, *, member_node: bytes, member_key: bytes, use: int, now_ms: int
) -> GrantBody:
    """The grant the issuer signs for a claim that passed :func:`check_claim`."""
    ticket = claim.ticket.body
    return GrantBody(
        hive_id=ticket.hive_id,
        ticket_id=ticket.ticket_id,
        issuer_key=ticket.issuer_key,
        use=use,
        max_uses=ticket.max_uses,
        candidate=claim.cert.node_id,
        candidate_key=claim.cert.hive_key,
        member_node=member_node,
        member_key=member_key,
        granted_ms=now_ms,
        nonce=claim.nonce,
        node_sig=claim.node_sig,
    )


def claim_id_of(peer_id: bytes, session: bytes) -> bytes:
    """The TicketClaim id of a member session: derived, so retries reuse it and no randomness
    is needed; unique per (candidate peer, session)."""
    return hashlib.sha256(b"hive/v1/claim" + peer_id + session).digest()[:16]


# --- member side -------------------------------------------------------------------------------


class MemberState(enum.Enum):
    """Where a candidate's join stands, as the member sees it."""

    AWAIT_ANSWER = "await-answer"
    PROBING = "probing"
    CLAIMING = "claiming"
    ADMITTED = "admitted"
    REFUSED = "refused"
    FAILED = "failed"


class MemberEvent(enum.Enum):
    """What can happen to a join session (keys of :data:`MEMBER_TABLE`)."""

    ANSWER_OK = "answer-ok"
    ANSWER_BAD = "answer-bad"
    PROBE_OK = "probe-ok"
    PROBE_FAILED = "probe-failed"
    CLAIM_GRANTED = "claim-granted"
    CLAIM_DENIED = "claim-denied"
    TIMEOUT = "timeout"


@attrs.frozen
class SendChallenge:
    """Send ``message`` to the candidate ``peer_id``."""

    peer_id: bytes
    message: Challenge


@attrs.frozen
class StartProbe:
    """Check the Hello's manifest against what the node observes of ``peer_id``; report with
    :meth:`MemberHandshakes.on_probe_result`."""

    peer_id: bytes
    hello: Hello


@attrs.frozen
class ClaimTicket:
    """Send ``message`` to the ticket's issuer (``issuer_node``, frames signed by
    ``issuer_key``), or redeem locally when ``local``; report with ``on_claim_result``."""

    message: TicketClaim
    issuer_node: bytes
    issuer_key: bytes
    local: bool


@attrs.frozen
class Admit:
    """Sign ``body`` with our hive key, apply and store the record, announce it, send the
    candidate a Welcome, then hand the Welcome to :meth:`MemberHandshakes.welcome_sent`.

    When the roster refuses the record as "already-member" (a parallel session of the same
    candidate was admitted first: the issuer grants a claim again for the same node), the
    Welcome carries the record in force instead."""

    peer_id: bytes
    session: bytes
    body: MemberBody


@attrs.frozen
class SendRefuse:
    """Send ``message`` to the candidate ``peer_id`` (and log its reason)."""

    peer_id: bytes
    message: Refuse


@attrs.frozen
class SendWelcome:
    """Send ``message`` again (the candidate repeated its Hello)."""

    peer_id: bytes
    message: Welcome


@attrs.frozen
class Rewelcome:
    """An active member asks to join again with its own node and hive key: its admission
    landed, but it never stored the Welcome (a crash of either side in between). Send it a
    Welcome for ``session`` with the record in force; no ticket use is counted again."""

    peer_id: bytes
    session: bytes


MemberAction = (
    SendChallenge | StartProbe | ClaimTicket | Admit | SendRefuse | SendWelcome | Rewelcome
)

_S = MemberState
_E = MemberEvent
MEMBER_TABLE: dict[tuple[MemberState, MemberEvent], tuple[MemberState, tuple[type, ...]]] = {
    (_S.AWAIT_ANSWER, _E.ANSWER_OK): (_S.PROBING, (StartProbe,)),
    (_S.AWAIT_ANSWER, _E.ANSWER_BAD): (_S.REFUSED, (SendRefuse,)),
    (_S.AWAIT_ANSWER, _E.TIMEOUT): (_S.FAILED, (SendRefuse,)),
    (_S.PROBING, _E.PROBE_OK): (_S.CLAIMING, (ClaimTicket,)),
    (_S.PROBING, _E.PROBE_FAILED): (_S.REFUSED, (SendRefuse,)),
    (_S.PROBING, _E.TIMEOUT): (_S.FAILED, (SendRefuse,)),
    (_S.CLAIMING, _E.CLAIM_GRANTED): (_S.ADMITTED, (Admit,)),
    (_S.CLAIMING, _E.CLAIM_DENIED): (_S.REFUSED, (SendRefuse,)),
    (_S.CLAIMING, _E.TIMEOUT): (_S.FAILED, (SendRefuse,)),
}
"""The member side's transitions; anything else is ignored."""

MEMBER_TERMINAL = frozenset({_S.ADMITTED, _S.REFUSED, _S.FAILED})
MEMBER_DEADLINES_MS = {_S.AWAIT_ANSWER: 30_000, _S.PROBING: 30_000, _S.CLAIMING: 30_000}
TIMEOUT_REASONS = {_S.AWAIT_ANSWER: TIMEOUT, _S.PROBING: TIMEOUT, _S.CLAIMING: ISSUER_UNREACHABLE}


@attrs.frozen
class HandshakeLimits:
    """Bounds and timers of the member side."""

    per_peer: int = 2  # live sessions per candidate peer
    total: int = 64  # live sessions in all
    linger_ms: int = 600_000  # how long a finished session answers retries
    max_lingering: int = 256  # finished sessions kept for retries (oldest forgotten first)
    deadlines_ms: dict[MemberState, int] = attrs.field(factory=lambda: dict(MEMBER_DEADLINES_MS))


class MemberSession:
    """One candidate's join, as seen by the member running it."""

    def __init__(
        self,
        *,
        peer_id: bytes,
        hello: Hello,
        nonce: bytes,
        hive_id: bytes,
        own_node_id: bytes,
        own_hive_key: bytes,
        now_ms: int,
        limits: HandshakeLimits,
    ) -> None:
        self.peer_id = peer_id
        self.hello = hello
        self.challenge = Challenge(session=hello.session, nonce=nonce)
        self.claim_id = claim_id_of(peer_id, hello.session)
        self._hive_id = hive_id
        self._own_node_id = own_node_id
        self._own_hive_key = own_hive_key
        self._limits = limits
        self.state = MemberState.AWAIT_ANSWER
        self.entered_ms = now_ms
        self.history: list[MemberEvent] = []  # events that moved the session, in order
        self.admits = 0
        self.ignored = 0
        self.refusal: Refuse | None = None
        self.welcome: Welcome | None = None
        self.answer: ChallengeAnswer | None = None  # the verified answer: the handshake proof
        self.grant: Grant | None = None  # the issuer's grant, once the claim is granted

    @property
    def terminal(self) -> bool:
        return self.state in MEMBER_TERMINAL

    def deadline_ms(self) -> int:
        """When the current state times out (live) or the session is forgotten (terminal)."""
        if self.terminal:
            return self.entered_ms + self._limits.linger_ms
        return self.entered_ms + self._limits.deadlines_ms[self.state]

    def on_hello_again(self) -> tuple[MemberAction, ...]:
        """The candidate repeated its Hello: answer as before (idempotent)."""
        if self.state is MemberState.ADMITTED:
            return () if self.welcome is None else (SendWelcome(self.peer_id, self.welcome),)
        if self.refusal is not None:
            return (SendRefuse(self.peer_id, self.refusal),)
        return (SendChallenge(self.peer_id, self.challenge),)

    def on_answer(
        self, answer: ChallengeAnswer, *, sender_key: bytes, now_ms: int
    ) -> tuple[MemberAction, ...]:
        """Verify both halves of the proof: the frame's hive key is the certificate's, and the
        node key signed the challenge text for this member and this nonce."""
        if self.state is not MemberState.AWAIT_ANSWER:
            self.ignored += 1
            return ()
        cert = self.hello.cert
        if answer.nonce != self.challenge.nonce:
            detail = "the answer is for another nonce"
        elif sender_key != cert.hive_key:
            detail = f"the answer is signed by hive key {sender_key.hex()}, not the certificate's"
        elif not node_signed(
            challenge_text(self._hive_id, self._own_node_id, answer.nonce),
            answer.node_sig,
            cert.node_id,
        ):
            detail = f"the node signature does not verify for {cert.node_id.hex()}"
        else:
            self.answer = answer
            return self._fire(MemberEvent.ANSWER_OK, now_ms)
        return self._fire(MemberEvent.ANSWER_BAD, now_ms, refusal=(BAD_ANSWER, detail))

    def on_probe_result(
        self, failure: ProtocolError | None, now_ms: int
    ) -> tuple[MemberAction, ...]:
        """The probe matched the manifest (``failure`` None) or contradicted it."""
        if failure is None:
            return self._fire(MemberEvent.PROBE_OK, now_ms)
        return self._fire(
            MemberEvent.PROBE_FAILED, now_ms, refusal=(failure.reason, failure.detail)
        )

    def grant_fits(self, grant: Grant) -> bool:
        """True when ``grant`` is the issuer's valid grant of this session's claim."""
        if self.answer is None:
            return False
        try:
            verify_grant(grant, self._hive_id)
        except ProtocolError:
            return False
        body, cert = grant.body, self.hello.cert
        ticket = self.hello.ticket.body
        return (
            body.issuer_key == ticket.issuer_key
            and body.ticket_id == ticket.ticket_id
            and (body.candidate, body.candidate_key) == (cert.node_id, cert.hive_key)
            and (body.member_node, body.member_key) == (self._own_node_id, self._own_hive_key)
            and body.nonce == self.answer.nonce
        )

    def on_claim_result(self, result: TicketClaimResult, now_ms: int) -> tuple[MemberAction, ...]:
        """The issuer granted (with a grant that fits, see :meth:`grant_fits`; a grant that
        does not is ignored) or denied the use of the ticket."""
        if result.granted:
            if result.grant is None or not self.grant_fits(result.grant):
                self.ignored += 1
                return ()
            if self.state is MemberState.CLAIMING:
                self.grant = result.grant
            return self._fire(MemberEvent.CLAIM_GRANTED, now_ms)
        detail = f"the ticket issuer denied the claim ({result.reason})"
        return self._fire(MemberEvent.CLAIM_DENIED, now_ms, refusal=(result.reason, detail))

    def tick(self, now_ms: int) -> tuple[MemberAction, ...]:
        """Fire the timeout when the current state's deadline has passed."""
        if self.terminal or now_ms < self.deadline_ms():
            return ()
        reason = TIMEOUT_REASONS[self.state]
        detail = f"no progress in state {self.state.value} for {now_ms - self.entered_ms} ms"
        return self._fire(MemberEvent.TIMEOUT, now_ms, refusal=(reason, detail))

    def _fire(
        self, event: MemberEvent, now_ms: int, *, refusal: tuple[str, str] | None = None
    ) -> tuple[MemberAction, ...]:
        entry = MEMBER_TABLE.get((self.state, event))
        if entry is None:
            self.ignored += 1
            return ()
        target, kinds = entry
        if refusal is not None:
            self.refusal = Refuse(
                session=self.hello.session,
                reason=_clip(refusal[0], 32),
                detail=_clip(refusal[1], 200),
            )
        self.history.append(event)
        self.state = target
        self.entered_ms = now_ms
        return tuple(self._make(kind) for kind in kinds)

    def _make(self, kind: type) -> MemberAction:
        if kind is StartProbe:
            return StartProbe(self.peer_id, self.hello)
        if kind is ClaimTicket and self.answer is not None:
            body = self.hello.ticket.body
            claim = TicketClaim(
                claim_id=self.claim_id,
                ticket=self.hello.ticket,
                cert=self.hello.cert,
                nonce=self.answer.nonce,
                node_sig=self.answer.node_sig,
            )
            local = body.issuer_key == self._own_hive_key
            return ClaimTicket(claim, body.issuer_node, body.issuer_key, local)
        if kind is Admit:
            self.admits += 1
            return Admit(self.peer_id, self.hello.session, self._member_body())
        if kind is SendRefuse and self.refusal is not None:
            return SendRefuse(self.peer_id, self.refusal)
        raise AssertionError(f"no builder for action {kind.__name__} in state {self.state}")

    def _member_body(self) -> MemberBody:
        grant = self.grant
        assert grant is not None, "an admission follows a granted claim"
        # Dated at the grant or after it (the issuer's clock may run ahead of ours), and within
        # the grant's time to live (ours may run ahead of the issuer's).
        granted = grant.body.granted_ms
        return MemberBody(
            hive_id=self._hive_id,
            cert=self.hello.cert,
            role=ROLE_MEMBER,
            admitted_by=self._own_hive_key,
            admitted_ms=min(max(self.entered_ms, granted), granted + GRANT_TTL_MS),
            grant=grant,
        )


def _clip(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


@attrs.frozen
class SessionView:
    """One handshake as `hive-status` shows it."""

    peer_id: bytes
    session: bytes
    state: MemberState
    since_ms: int
    deadline_ms: int


class MemberHandshakes:
    """Every join session a member runs, bounded; the actor's one entry point."""

    def __init__(
        self, *, own_node_id: bytes, own_hive_key: bytes, limits: HandshakeLimits | None = None
    ) -> None:
        self._own_node_id = own_node_id
        self._own_hive_key = own_hive_key
        self._limits = limits or HandshakeLimits()
        self._sessions: dict[tuple[bytes, bytes], MemberSession] = {}
        self._claims: dict[bytes, tuple[bytes, bytes]] = {}
        self.ignored = 0  # events for no session, or not from whom they must come

    def get(self, peer_id: bytes, session: bytes) -> MemberSession | None:
        return self._sessions.get((peer_id, session))

    def live_count(self) -> int:
        return sum(1 for s in self._sessions.values() if not s.terminal)

    def views(self) -> tuple[SessionView, ...]:
        """Every session, live and lingering, for status displays."""
        return tuple(
            SessionView(peer, sid, s.state, s.entered_ms, s.deadline_ms())
            for (peer, sid), s in self._sessions.items()
        )

    def on_hello(
        self,
        peer_id: bytes,
        hello: Hello,
        *,
        roster: Roster,
        sender_key: bytes,
        nonce: bytes,
        now_ms: int,
    ) -> tuple[MemberAction, ...]:
        """A Hello from ``peer_id``: a retry of a known session is answered as before; a new one
        passes :func:`check_hello` and the bounds (else one Refuse, nothing kept), then gets a
        Challenge with ``nonce`` (32 fresh random bytes from the caller)."""
        known = self._sessions.get((peer_id, hello.session))
        if known is not None:
            if known.hello != hello:
                self.ignored += 1
                return ()
            return known.on_hello_again()
        in_force = roster.active().get(peer_id)
        if (
            in_force is not None
            and hello.cert.node_id == peer_id
            and in_force.body.cert.hive_key == hello.cert.hive_key == sender_key
        ):
            return (Rewelcome(peer_id, hello.session),)
        try:
            check_hello(hello, roster=roster, peer_id=peer_id, sender_key=sender_key, now_ms=now_ms)
        except ProtocolError as exc:
            return (SendRefuse(peer_id, _refuse(hello, exc.reason, exc.detail)),)
        live = [s for s in self._sessions.values() if not s.terminal]
        per_peer = sum(1 for s in live if s.peer_id == peer_id)
        if per_peer >= self._limits.per_peer or len(live) >= self._limits.total:
            detail = f"{per_peer} joins from this peer and {len(live)} in all are in progress"
            return (SendRefuse(peer_id, _refuse(hello, BUSY, detail)),)
        session = MemberSession(
            peer_id=peer_id,
            hello=hello,
            nonce=nonce,
            hive_id=roster.hive_id,
            own_node_id=self._own_node_id,
            own_hive_key=self._own_hive_key,
            now_ms=now_ms,
            limits=self._limits,
        )
        self._sessions[(peer_id, hello.session)] = session
        self._claims[session.claim_id] = (peer_id, hello.session)
        self._forget_lingering_over_bound()
        return (SendChallenge(peer_id, session.challenge),)

    def on_answer(
        self, peer_id: bytes, answer: ChallengeAnswer, *, sender_key: bytes, now_ms: int
    ) -> tuple[MemberAction, ...]:
        session = self._sessions.get((peer_id, answer.session))
        if session is None:
            self.ignored += 1
            return ()
        return session.on_answer(answer, sender_key=sender_key, now_ms=now_ms)

    def on_probe_result(
        self, peer_id: bytes, session_id: bytes, failure: ProtocolError | None, now_ms: int
    ) -> tuple[MemberAction, ...]:
        session = self._sessions.get((peer_id, session_id))
        if session is None:
            self.ignored += 1
            return ()
        return session.on_probe_result(failure, now_ms)

    def on_claim_result(
        self, result: TicketClaimResult, *, sender_key: bytes, now_ms: int
    ) -> tuple[MemberAction, ...]:
        """A claim result; it counts only from the ticket's issuer (``sender_key``, our own key
        for a local redemption) and for the claimed ticket."""
        where = self._claims.get(result.claim_id)
        session = None if where is None else self._sessions.get(where)
        if (
            session is None
            or sender_key != session.hello.ticket.body.issuer_key
            or result.ticket_id != session.hello.ticket.body.ticket_id
        ):
            self.ignored += 1
            return ()
        return session.on_claim_result(result, now_ms)

    def welcome_sent(self, peer_id: bytes, welcome: Welcome) -> None:
        """Remember the Welcome sent for an admitted session, to repeat it on a retried Hello."""
        session = self._sessions.get((peer_id, welcome.session))
        if session is not None and session.state is MemberState.ADMITTED:
            session.welcome = welcome

    def tick(self, now_ms: int) -> tuple[MemberAction, ...]:
        """Fire due timeouts and forget finished sessions whose lingering time is over."""
        actions: list[MemberAction] = []
        for key, session in list(self._sessions.items()):
            if session.terminal and now_ms >= session.deadline_ms():
                self._drop(key)
            else:
                actions.extend(session.tick(now_ms))
        return tuple(actions)

    def next_deadline_ms(self) -> int | None:
        """The earliest time :meth:`tick` has something to do, or None."""
        return min((s.deadline_ms() for s in self._sessions.values()), default=None)

    def _drop(self, key: tuple[bytes, bytes]) -> None:
        session = self._sessions.pop(key)
        self._claims.pop(session.claim_id, None)

    def _forget_lingering_over_bound(self) -> None:
        finished = sorted((s.entered_ms, key) for key, s in self._sessions.items() if s.terminal)
        for _, key in finished[: max(0, len(finished) - self._limits.max_lingering)]:
            self._drop(key)


def _refuse(hello: Hello, reason: str, detail: str) -> Refuse:
    return Refuse(session=hello.session, reason=_clip(reason, 32), detail=_clip(detail, 200))
