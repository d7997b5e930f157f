"""The join handshake: pure Hello checks, both state machines, and a Hypothesis state machine
driving member and candidates over a network that loses, repeats and reorders messages."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hive.protocol import errors
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    ChallengeAnswer,
    Hello,
    MemberBody,
    MemberStatus,
    Refuse,
    Roster,
    TicketClaim,
    TicketClaimResult,
    Welcome,
    challenge_text,
    hive_id_of,
    sign_member,
)
from hive.protocol.membership.candidate import (
    CANDIDATE_TABLE,
    MAX_RESENDS,
    CandidateEvent,
    CandidateSession,
    CandidateState,
    Failed,
    Joined,
    Refused,
    SendAnswer,
    SendHello,
    SignChallenge,
)
from hive.protocol.membership.handshake import (
    MEMBER_DEADLINES_MS,
    MEMBER_TABLE,
    Admit,
    ClaimTicket,
    HandshakeLimits,
    MemberEvent,
    MemberHandshakes,
    MemberSession,
    MemberState,
    Rewelcome,
    SendChallenge,
    SendRefuse,
    SendWelcome,
    StartProbe,
    check_claim,
    check_hello,
    claim_id_of,
    grant_body,
)
from hive.protocol.membership.pki import sign_grant

from .membership_helpers import (
    DAY_MS,
    admission,
    cert_of,
    founder_record,
    genesis_of,
    manifest,
    node,
    revoke,
    ticket_of,
)

FOUNDER = node("founder")  # runs the member side; admin and ticket issuer
ALICE = node("alice")  # another admin
BOB = node("bob")  # a plain member
CAND = node("candidate")
OTHER = node("other-candidate")
GENESIS = genesis_of(FOUNDER)
HIVE = hive_id_of(GENESIS)
SESSION = b"S" * 16
NONCE = b"N" * 32
T0 = 1_000_000


def base_roster() -> Roster:
    roster = Roster(GENESIS)
    roster.merge(
        [
            founder_record(FOUNDER, GENESIS, at_ms=2_000),
            admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN),
            admission(FOUNDER, BOB, HIVE, at_ms=4_000),
        ]
    )
    assert len(roster.active()) == 3
    return roster


def hello_of(
    who: Any = CAND, *, session: bytes = SESSION, issuer: Any = FOUNDER, **ticket: Any
) -> Hello:
    return Hello(
        session=session,
        ticket=ticket_of(issuer, HIVE, **ticket),
        cert=cert_of(who, HIVE),
        manifest=manifest(),
    )


def answer_of(
    who: Any = CAND, *, nonce: bytes = NONCE, member: Any = FOUNDER, session: bytes = SESSION
) -> ChallengeAnswer:
    text = challenge_text(HIVE, member.node_id, nonce)
    return ChallengeAnswer(session=session, nonce=nonce, node_sig=who.sign_text(text))


def granted(
    claim: ClaimTicket, issuer: Any = FOUNDER, *, use: int = 1, now_ms: int = T0
) -> TicketClaimResult:
    """What the issuer answers a claim that passes its checks: a grant signed by its key,
    naming the member that runs the handshake (the founder, in these tests)."""
    body = grant_body(
        claim.message,
        member_node=FOUNDER.node_id,
        member_key=FOUNDER.hive_key,
        use=use,
        now_ms=now_ms,
    )
    return TicketClaimResult(
        claim_id=claim.message.claim_id,
        ticket_id=body.ticket_id,
        granted=True,
        reason="",
        grant=sign_grant(issuer.key, body),
    )


def member_side(**limits: Any) -> MemberHandshakes:
    return MemberHandshakes(
        own_node_id=FOUNDER.node_id, own_hive_key=FOUNDER.hive_key, limits=HandshakeLimits(**limits)
    )


def opened(
    handshakes: MemberHandshakes, roster: Roster, hello: Hello | None = None
) -> MemberSession:
    hello = hello or hello_of()
    actions = handshakes.on_hello(
        CAND.node_id, hello, roster=roster, sender_key=CAND.hive_key, nonce=NONCE, now_ms=T0
    )
    session = handshakes.get(CAND.node_id, hello.session)
    assert session is not None
    assert actions == (SendChallenge(CAND.node_id, session.challenge),)
    return session


# --- pure Hello checks ---------------------------------------------------------------------


def _revoked_roster() -> Roster:
    roster = base_roster()
    roster.apply(admission(FOUNDER, CAND, HIVE, at_ms=5_000))
    roster.apply(revoke(FOUNDER, CAND, HIVE, at_ms=6_000))
    return roster


def _member_roster() -> Roster:
    roster = base_roster()
    roster.apply(admission(FOUNDER, CAND, HIVE, at_ms=5_000))
    return roster


def _forged_ticket_hello() -> Hello:
    hello = hello_of()
    return attrs.evolve(hello, ticket=attrs.evolve(hello.ticket, signature=bytes(64)))


def _forged_cert_hello() -> Hello:
    hello = hello_of()
    forged = attrs.evolve(hello.cert, node_sig=OTHER.sign_text("hive-cert:v1:x"))
    return attrs.evolve(hello, cert=forged)


HELLO_REFUSALS = {
    "forged ticket signature": (_forged_ticket_hello(), {}, errors.BAD_TICKET),
    "ticket of another hive": (
        attrs.evolve(
            hello_of(), ticket=ticket_of(FOUNDER, hive_id_of(genesis_of(FOUNDER, name="x")))
        ),
        {},
        errors.OTHER_HIVE,
    ),
    "expired ticket": (hello_of(), {"now_ms": DAY_MS}, errors.TICKET_EXPIRED),
    "issuer not an admin": (hello_of(issuer=BOB), {}, errors.BAD_TICKET),
    "issuer not a member": (hello_of(issuer=OTHER), {}, errors.BAD_TICKET),
    "ticket for another node": (hello_of(for_node=OTHER.node_id), {}, errors.REQUIREMENT),
    "splicing required": (
        attrs.evolve(hello_of(req_splice=True), manifest=manifest(splicing=False)),
        {},
        errors.REQUIREMENT,
    ),
    "version too old": (hello_of(min_version="v26.01"), {}, errors.REQUIREMENT),
    "forged certificate": (_forged_cert_hello(), {}, errors.BAD_CERTIFICATE),
    "certificate of another peer": (hello_of(), {"peer_id": OTHER.node_id}, errors.BAD_CERTIFICATE),
    "frame key is not the certificate's": (
        hello_of(),
        {"sender_key": OTHER.hive_key},
        errors.BAD_CERTIFICATE,
    ),
    "revoked candidate": (hello_of(), {"roster": _revoked_roster}, errors.REVOKED),
    "already a member, with another hive key": (
        attrs.evolve(hello_of(), cert=cert_of(CAND, HIVE, hive_key=OTHER.hive_key)),
        {"roster": _member_roster, "sender_key": OTHER.hive_key},
        errors.ALREADY_MEMBER,
    ),
    "hive key of a member": (
        attrs.evolve(hello_of(), cert=cert_of(CAND, HIVE, hive_key=BOB.hive_key)),
        {"sender_key": BOB.hive_key},
        errors.BAD_CERTIFICATE,
    ),
}


@pytest.mark.parametrize(
    ("hello", "changes", "reason"), HELLO_REFUSALS.values(), ids=HELLO_REFUSALS.keys()
)
def test_check_hello_refusals(hello: Hello, changes: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {
        "roster": base_roster(),
        "peer_id": CAND.node_id,
        "sender_key": CAND.hive_key,
        "now_ms": T0,
    }
    if "roster" in changes:
        changes = {**changes, "roster": changes["roster"]()}
    args.update(changes)
    with pytest.raises(ProtocolError) as info:
        check_hello(hello, **args)
    assert info.value.reason == reason
    # The member answers with exactly that Refuse and keeps nothing.
    handshakes = member_side()
    actions = handshakes.on_hello(
        args["peer_id"],
        hello,
        roster=args["roster"],
        sender_key=args["sender_key"],
        nonce=NONCE,
        now_ms=args["now_ms"],
    )
    assert actions == (
        SendRefuse(
            args["peer_id"], Refuse(session=SESSION, reason=reason, detail=info.value.detail[:200])
        ),
    )
    assert handshakes.get(args["peer_id"], SESSION) is None
    assert handshakes.views() == ()


def test_check_hello_accepts_a_good_hello() -> None:
    hello = hello_of(req_splice=True, min_version="v25.05", for_node=CAND.node_id, issuer=ALICE)
    check_hello(
        hello, roster=base_roster(), peer_id=CAND.node_id, sender_key=CAND.hive_key, now_ms=T0
    )


# --- member side ---------------------------------------------------------------------------------


def test_member_happy_path_with_local_claim() -> None:
    roster = base_roster()
    handshakes = member_side()
    session = opened(handshakes, roster)
    assert session.state is MemberState.AWAIT_ANSWER
    (probe,) = handshakes.on_answer(
        CAND.node_id, answer_of(), sender_key=CAND.hive_key, now_ms=T0 + 1
    )
    assert probe == StartProbe(CAND.node_id, session.hello)
    (claim,) = handshakes.on_probe_result(CAND.node_id, SESSION, None, T0 + 2)
    assert isinstance(claim, ClaimTicket)
    assert claim.local
    assert claim.message.claim_id == claim_id_of(CAND.node_id, SESSION)
    assert claim.message.cert == session.hello.cert
    assert claim.message.ticket == session.hello.ticket
    assert (claim.message.nonce, claim.message.node_sig) == (NONCE, answer_of().node_sig)
    result = granted(claim, now_ms=T0 + 2)
    (admit,) = handshakes.on_claim_result(result, sender_key=FOUNDER.hive_key, now_ms=T0 + 3)
    assert isinstance(admit, Admit)
    assert admit.body.cert == session.hello.cert
    assert (admit.body.admitted_by, admit.body.admitted_ms) == (FOUNDER.hive_key, T0 + 3)
    assert admit.body.grant == result.grant
    record = sign_member(FOUNDER.key, admit.body)
    assert roster.apply(record).landed == (record,)
    assert roster.status(CAND.node_id) is MemberStatus.ACTIVE
    assert session.history == [
        MemberEvent.ANSWER_OK,
        MemberEvent.PROBE_OK,
        MemberEvent.CLAIM_GRANTED,
    ]
    # A retried Hello gets nothing until the Welcome exists, then the same Welcome.
    hello = session.hello
    assert (
        handshakes.on_hello(
            CAND.node_id,
            hello,
            roster=roster,
            sender_key=CAND.hive_key,
            nonce=b"x" * 32,
            now_ms=T0 + 4,
        )
        == ()
    )
    sync = roster.sync_message()
    welcome = Welcome(
        session=SESSION, record=record, genesis=GENESIS, members=sync.members, exits=sync.exits
    )
    handshakes.welcome_sent(CAND.node_id, welcome)
    again = handshakes.on_hello(
        CAND.node_id, hello, roster=roster, sender_key=CAND.hive_key, nonce=b"x" * 32, now_ms=T0 + 5
    )
    assert again == (SendWelcome(CAND.node_id, welcome),)
    assert session.admits == 1


def test_duplicate_hello_repeats_the_same_challenge() -> None:
    roster = base_roster()
    handshakes = member_side()
    session = opened(handshakes, roster)
    again = handshakes.on_hello(
        CAND.node_id,
        session.hello,
        roster=roster,
        sender_key=CAND.hive_key,
        nonce=b"y" * 32,
        now_ms=T0 + 5,
    )
    assert again == (SendChallenge(CAND.node_id, session.challenge),)
    assert session.challenge.nonce == NONCE
    # A different Hello reusing the session id is not a retry.
    other = attrs.evolve(session.hello, manifest=manifest(channels=9))
    assert (
        handshakes.on_hello(
            CAND.node_id, other, roster=roster, sender_key=CAND.hive_key, nonce=NONCE, now_ms=T0
        )
        == ()
    )
    assert handshakes.ignored == 1


BAD_ANSWERS = {
    "other nonce": (answer_of(nonce=b"M" * 32), CAND.hive_key),
    "frame key not the certificate's": (answer_of(), OTHER.hive_key),
    "signed by another node": (answer_of(OTHER), CAND.hive_key),
    "answer meant for another member": (answer_of(member=ALICE), CAND.hive_key),
    "garbage signature": (
        ChallengeAnswer(session=SESSION, nonce=NONCE, node_sig="zz"),
        CAND.hive_key,
    ),
}


@pytest.mark.parametrize(("answer", "sender"), BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_bad_answer_is_refused(answer: ChallengeAnswer, sender: bytes) -> None:
    roster = base_roster()
    handshakes = member_side()
    session = opened(handshakes, roster)
    (refuse,) = handshakes.on_answer(CAND.node_id, answer, sender_key=sender, now_ms=T0 + 1)
    assert isinstance(refuse, SendRefuse)
    assert refuse.message.reason == errors.BAD_ANSWER
    assert session.state is MemberState.REFUSED
    # Retries get the same refusal; a later good answer changes nothing.
    assert handshakes.on_hello(
        CAND.node_id,
        session.hello,
        roster=roster,
        sender_key=CAND.hive_key,
        nonce=NONCE,
        now_ms=T0 + 2,
    ) == (refuse,)
    assert (
        handshakes.on_answer(CAND.node_id, answer_of(), sender_key=CAND.hive_key, now_ms=T0 + 3)
        == ()
    )
    assert session.state is MemberState.REFUSED


def test_probe_failure_refuses_with_its_reason() -> None:
    handshakes = member_side()
    opened(handshakes, base_roster())
    handshakes.on_answer(CAND.node_id, answer_of(), sender_key=CAND.hive_key, now_ms=T0)
    lie = ProtocolError(errors.MANIFEST_LIE, "splicing: claimed, but feature bits 62/63 are absent")
    (refuse,) = handshakes.on_probe_result(CAND.node_id, SESSION, lie, T0 + 1)
    assert refuse == SendRefuse(
        CAND.node_id, Refuse(session=SESSION, reason="manifest-lie", detail=lie.detail)
    )


def _claiming(handshakes: MemberHandshakes, hello: Hello | None = None) -> ClaimTicket:
    opened(handshakes, base_roster(), hello)
    handshakes.on_answer(CAND.node_id, answer_of(), sender_key=CAND.hive_key, now_ms=T0)
    (claim,) = handshakes.on_probe_result(CAND.node_id, SESSION, None, T0)
    assert isinstance(claim, ClaimTicket)
    return claim


def test_claim_goes_to_a_remote_issuer_and_only_its_answer_counts() -> None:
    handshakes = member_side()
    claim = _claiming(handshakes, hello_of(issuer=ALICE))
    assert not claim.local
    assert (claim.issuer_node, claim.issuer_key) == (ALICE.node_id, ALICE.hive_key)
    grant = granted(claim, ALICE)
    assert handshakes.on_claim_result(grant, sender_key=FOUNDER.hive_key, now_ms=T0) == ()
    assert (
        handshakes.on_claim_result(
            attrs.evolve(grant, ticket_id=bytes(16)), sender_key=ALICE.hive_key, now_ms=T0
        )
        == ()
    )
    assert (
        handshakes.on_claim_result(
            attrs.evolve(grant, claim_id=bytes(16)), sender_key=ALICE.hive_key, now_ms=T0
        )
        == ()
    )
    assert handshakes.ignored == 3
    # "Granted" without a grant, or with a grant the issuer did not sign, or for another
    # candidate: ignored (the session times out as issuer-unreachable unless a real one comes).
    session = handshakes.get(CAND.node_id, SESSION)
    assert session is not None
    for bad in (
        attrs.evolve(grant, grant=None),
        attrs.evolve(
            grant,
            grant=sign_grant(BOB.key, attrs.evolve(grant.grant.body, issuer_key=BOB.hive_key)),  # type: ignore[union-attr]
        ),
        attrs.evolve(
            grant,
            grant=sign_grant(
                ALICE.key,
                attrs.evolve(grant.grant.body, candidate=OTHER.node_id),  # type: ignore[union-attr]
            ),
        ),
    ):
        assert handshakes.on_claim_result(bad, sender_key=ALICE.hive_key, now_ms=T0) == ()
    assert session.ignored == 3
    (admit,) = handshakes.on_claim_result(grant, sender_key=ALICE.hive_key, now_ms=T0)
    assert isinstance(admit, Admit)
    assert handshakes.on_claim_result(grant, sender_key=ALICE.hive_key, now_ms=T0) == ()  # once


def test_denied_claim_refuses_with_the_issuers_reason() -> None:
    handshakes = member_side()
    claim = _claiming(handshakes)
    denied = TicketClaimResult(
        claim_id=claim.message.claim_id,
        ticket_id=claim.message.ticket.body.ticket_id,
        granted=False,
        reason=errors.TICKET_EXHAUSTED,
        grant=None,
    )
    (refuse,) = handshakes.on_claim_result(denied, sender_key=FOUNDER.hive_key, now_ms=T0)
    assert isinstance(refuse, SendRefuse)
    assert refuse.message.reason == errors.TICKET_EXHAUSTED


@pytest.mark.parametrize(
    ("steps", "state", "reason"),
    [
        (0, MemberState.AWAIT_ANSWER, "timeout"),
        (1, MemberState.PROBING, "timeout"),
        (2, MemberState.CLAIMING, "issuer-unreachable"),
    ],
)
def test_each_state_times_out(steps: int, state: MemberState, reason: str) -> None:
    handshakes = member_side()
    session = opened(handshakes, base_roster())
    start = T0 + 500
    if steps >= 1:
        handshakes.on_answer(CAND.node_id, answer_of(), sender_key=CAND.hive_key, now_ms=start)
    if steps >= 2:
        handshakes.on_probe_result(CAND.node_id, SESSION, None, start)
    if steps == 0:
        start = T0
    assert session.state is state
    deadline = start + MEMBER_DEADLINES_MS[state]
    assert handshakes.next_deadline_ms() == deadline
    assert handshakes.tick(deadline - 1) == ()
    (refuse,) = handshakes.tick(deadline)
    assert isinstance(refuse, SendRefuse)
    assert refuse.message.reason == reason
    assert session.state is MemberState.FAILED
    assert handshakes.live_count() == 0
    # The finished session lingers 10 minutes to answer retries, then is forgotten.
    assert handshakes.tick(deadline + 600_000 - 1) == ()
    assert handshakes.get(CAND.node_id, SESSION) is session
    assert handshakes.tick(deadline + 600_000) == ()
    assert handshakes.get(CAND.node_id, SESSION) is None
    assert handshakes.next_deadline_ms() is None


def test_live_sessions_are_bounded_per_peer_and_in_all() -> None:
    roster = base_roster()
    handshakes = member_side(per_peer=2, total=3)
    for index in range(2):
        hello = hello_of(session=bytes([index]) * 16)
        (action,) = handshakes.on_hello(
            CAND.node_id, hello, roster=roster, sender_key=CAND.hive_key, nonce=NONCE, now_ms=T0
        )
        assert isinstance(action, SendChallenge)
    (busy,) = handshakes.on_hello(
        CAND.node_id,
        hello_of(session=b"\x09" * 16),
        roster=roster,
        sender_key=CAND.hive_key,
        nonce=NONCE,
        now_ms=T0,
    )
    assert isinstance(busy, SendRefuse)
    assert busy.message.reason == errors.BUSY
    hello = hello_of(OTHER, session=b"\x07" * 16)
    (action,) = handshakes.on_hello(
        OTHER.node_id, hello, roster=roster, sender_key=OTHER.hive_key, nonce=NONCE, now_ms=T0
    )
    assert isinstance(action, SendChallenge)
    hello = hello_of(OTHER, session=b"\x08" * 16)
    (busy,) = handshakes.on_hello(
        OTHER.node_id, hello, roster=roster, sender_key=OTHER.hive_key, nonce=NONCE, now_ms=T0
    )
    assert busy.message.reason == errors.BUSY  # type: ignore[union-attr]
    assert handshakes.live_count() == 3
    assert len(handshakes.views()) == 3


def _session_in(state: MemberState) -> MemberSession:
    session = MemberSession(
        peer_id=CAND.node_id,
        hello=hello_of(),
        nonce=NONCE,
        hive_id=HIVE,
        own_node_id=FOUNDER.node_id,
        own_hive_key=FOUNDER.hive_key,
        now_ms=T0,
        limits=HandshakeLimits(),
    )
    session.state = state
    session.answer = answer_of()
    claim = ClaimTicket(session._make(ClaimTicket).message, FOUNDER.node_id, FOUNDER.hive_key, True)  # type: ignore[union-attr]
    session.grant = granted(claim).grant
    return session


@pytest.mark.parametrize(
    ("state", "event"),
    list(itertools.product(MemberState, MemberEvent)),
    ids=lambda v: v.value,
)
def test_member_table_per_transition(state: MemberState, event: MemberEvent) -> None:
    session = _session_in(state)
    actions = session._fire(event, T0 + 7, refusal=(errors.TIMEOUT, "why"))
    entry = MEMBER_TABLE.get((state, event))
    if entry is None:
        assert actions == ()
        assert session.state is state
        assert session.ignored == 1
        return
    target, kinds = entry
    assert session.state is target
    assert tuple(type(a) for a in actions) == kinds
    assert session.entered_ms == T0 + 7
    assert session.history == [event]
    assert (target is MemberState.ADMITTED) == (session.admits == 1)


def test_member_table_shape() -> None:
    terminal = {MemberState.ADMITTED, MemberState.REFUSED, MemberState.FAILED}
    assert all(state not in terminal for state, _ in MEMBER_TABLE)  # terminal never changes
    for state in set(MemberState) - terminal:
        assert MEMBER_TABLE[(state, MemberEvent.TIMEOUT)][0] is MemberState.FAILED
    admitting = [key for key, (target, _) in MEMBER_TABLE.items() if target is MemberState.ADMITTED]
    assert admitting == [(MemberState.CLAIMING, MemberEvent.CLAIM_GRANTED)]


# --- candidate side ------------------------------------------------------------------------------


def test_candidate_and_member_complete_a_join() -> None:
    roster = base_roster()
    handshakes = member_side()
    hello = hello_of()
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello)
    assert candidate.start(T0) == (SendHello(FOUNDER.node_id, hello),)
    (challenge,) = handshakes.on_hello(
        CAND.node_id, hello, roster=roster, sender_key=CAND.hive_key, nonce=NONCE, now_ms=T0
    )
    assert isinstance(challenge, SendChallenge)
    (sign,) = candidate.on_challenge(challenge.message, T0 + 1)
    assert sign == SignChallenge(challenge_text(HIVE, FOUNDER.node_id, NONCE))
    (send,) = candidate.on_signed(CAND.sign_text(sign.text), T0 + 2)
    assert isinstance(send, SendAnswer)
    (_probe,) = handshakes.on_answer(
        CAND.node_id, send.message, sender_key=CAND.hive_key, now_ms=T0 + 3
    )
    (claim,) = handshakes.on_probe_result(CAND.node_id, SESSION, None, T0 + 4)
    assert isinstance(claim, ClaimTicket)
    result = granted(claim, now_ms=T0 + 4)
    (admit,) = handshakes.on_claim_result(result, sender_key=FOUNDER.hive_key, now_ms=T0 + 5)
    assert isinstance(admit, Admit)
    record = sign_member(FOUNDER.key, admit.body)
    roster.apply(record)
    sync = roster.sync_message()
    welcome = Welcome(
        session=SESSION, record=record, genesis=GENESIS, members=sync.members, exits=sync.exits
    )
    (joined,) = candidate.on_welcome(welcome, T0 + 6)
    assert isinstance(joined, Joined)
    assert joined.roster.digest() == roster.digest()
    assert joined.roster.status(CAND.node_id) is MemberStatus.ACTIVE
    assert candidate.state is CandidateState.JOINED
    assert candidate.on_refuse(Refuse(session=SESSION, reason="busy", detail=""), T0 + 7) == ()
    assert candidate.state is CandidateState.JOINED


def test_candidate_resends_hello_then_times_out() -> None:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    candidate.start(T0)
    sent: list[object] = []
    for now in range(T0, T0 + 120_000, 1_000):
        sent.extend(candidate.tick(now))
    assert sent == [SendHello(FOUNDER.node_id, candidate.hello)] * MAX_RESENDS
    assert candidate.state is CandidateState.HELLO_SENT
    (failed,) = candidate.tick(T0 + 120_000)
    assert failed == Failed(errors.TIMEOUT, "no result 120000 ms after the Hello")
    assert candidate.tick(T0 + 999_999) == ()
    assert candidate.next_tick_ms() is None


def _answering(candidate: CandidateSession) -> SendAnswer:
    candidate.start(T0)
    (sign,) = candidate.on_challenge(attrs.evolve(_challenge()), T0 + 1)
    (send,) = candidate.on_signed(CAND.sign_text(sign.text), T0 + 2)  # type: ignore[union-attr]
    assert isinstance(send, SendAnswer)
    return send


def _challenge() -> Any:
    from hive.protocol.membership import Challenge

    return Challenge(session=SESSION, nonce=NONCE)


def test_candidate_repeats_its_answer_on_a_repeated_challenge_and_on_time() -> None:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    send = _answering(candidate)
    assert candidate.on_challenge(_challenge(), T0 + 3) == (send,)
    assert candidate.on_challenge(attrs.evolve(_challenge(), nonce=b"Q" * 32), T0 + 3) == ()
    assert candidate.tick(T0 + 2 + 10_000) == (send,)
    assert candidate.state is CandidateState.AWAIT_RESULT


def test_candidate_ignores_other_sessions_and_takes_a_refusal() -> None:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    candidate.start(T0)
    other = b"O" * 16
    assert candidate.on_challenge(attrs.evolve(_challenge(), session=other), T0) == ()
    assert candidate.on_refuse(Refuse(session=other, reason="busy", detail=""), T0) == ()
    assert candidate.ignored == 2
    (refused,) = candidate.on_refuse(
        Refuse(session=SESSION, reason="requirement", detail="splicing"), T0
    )
    assert refused == Refused("requirement", "splicing")
    assert candidate.state is CandidateState.REFUSED


def test_candidate_fails_on_a_welcome_that_does_not_admit_it() -> None:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    _answering(candidate)
    roster = base_roster()
    bob = roster.active()[BOB.node_id]
    sync = roster.sync_message()
    welcome = Welcome(
        session=SESSION, record=bob, genesis=GENESIS, members=sync.members, exits=sync.exits
    )
    (failed,) = candidate.on_welcome(welcome, T0 + 5)
    assert isinstance(failed, Failed)
    assert failed.reason == errors.BAD_RECORD
    assert candidate.state is CandidateState.FAILED


def test_candidate_fails_on_a_welcome_with_unverifiable_records() -> None:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    _answering(candidate)
    # A record for us, signed by someone who is no member: we would not be in the roster.
    record = sign_member(OTHER.key, attrs.evolve(admission(OTHER, CAND, HIVE, at_ms=5_000).body))
    welcome = Welcome(session=SESSION, record=record, genesis=GENESIS, members=(), exits=())
    (failed,) = candidate.on_welcome(welcome, T0 + 5)
    assert failed == Failed(errors.BAD_RECORD, "the Welcome's records do not make us a member")


def _candidate_in(state: CandidateState) -> CandidateSession:
    candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello_of())
    candidate._nonce = NONCE
    candidate._answer = answer_of()
    candidate._outcome = ("timeout", "why")
    candidate._welcome = Welcome(
        session=SESSION,
        record=founder_record(FOUNDER, GENESIS),
        genesis=GENESIS,
        members=(),
        exits=(),
    )
    candidate.roster = base_roster()
    candidate.state = state
    return candidate


@pytest.mark.parametrize(
    ("state", "event"),
    list(itertools.product(CandidateState, CandidateEvent)),
    ids=lambda v: v.value,
)
def test_candidate_table_per_transition(state: CandidateState, event: CandidateEvent) -> None:
    candidate = _candidate_in(state)
    actions = candidate._fire(event, T0 + 3)
    entry = CANDIDATE_TABLE.get((state, event))
    if entry is None:
        assert actions == ()
        assert candidate.state is state
        assert candidate.ignored == 1
        return
    target, kinds = entry
    assert candidate.state is target
    assert tuple(type(a) for a in actions) == kinds
    assert candidate.history == [event]
    assert (candidate.entered_ms == T0 + 3) == (target is not state)


# --- Hypothesis: member and candidates over a lossy, reordering network ----------------------

CANDIDATES = [node("c0"), node("c1"), node("c2")]
FORGER = CANDIDATES[2]  # presents a certificate its node key did not sign


class JoinMachine(RuleBasedStateMachine):
    """One member (the founder, issuer of one single-use ticket) and candidates that start joins
    at will; every message may be delivered late, twice, or never; probes and claims may fail."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.roster = base_roster()
        self.limits = HandshakeLimits(per_peer=2, total=3)
        self.member = member_side(per_peer=2, total=3)
        self.ticket = ticket_of(FOUNDER, HIVE, expires_ms=T0 + DAY_MS)
        self.net: list[
            tuple[str, bytes, Any]
        ] = []  # ("member", peer id, msg) / ("cand", session, msg)
        self.work: list[Any] = []  # probes, claims and signing requests waiting for the actor
        self.candidates: dict[bytes, tuple[Any, CandidateSession]] = {}
        self.sessions: list[MemberSession] = []  # every member session ever opened
        self.final: dict[object, object] = {}  # session -> first terminal state seen
        self.admit_actions: Counter[tuple[bytes, bytes]] = Counter()
        self.granted: set[bytes] = set()  # candidates the issuer granted the single use to
        self.rewelcomed: set[tuple[bytes, bytes]] = set()  # (peer, session) welcomed again
        self.nonces = itertools.count()

    # actor glue

    def _member_actions(self, actions: tuple[Any, ...]) -> None:
        for action in actions:
            if isinstance(action, SendChallenge | SendRefuse | SendWelcome):
                self.net.append(("cand", action.message.session, action.message))
            elif isinstance(action, StartProbe | ClaimTicket):
                self.work.append(action)
            elif isinstance(action, Admit):
                self.admit_actions[(action.peer_id, action.session)] += 1
                record = sign_member(FOUNDER.key, action.body)
                try:
                    self.roster.apply(record)
                except ProtocolError as exc:
                    if exc.reason != errors.ALREADY_MEMBER:
                        raise
                    # A parallel session of this candidate was admitted first.
                    record = self.roster.active()[action.peer_id]
                sync = self.roster.sync_message()
                welcome = Welcome(
                    session=action.session,
                    record=record,
                    genesis=GENESIS,
                    members=sync.members,
                    exits=sync.exits,
                )
                self.member.welcome_sent(action.peer_id, welcome)
                self.net.append(("cand", action.session, welcome))
            elif isinstance(action, Rewelcome):
                # A member that asks again (its first Welcome was lost) is welcomed again.
                self.rewelcomed.add((action.peer_id, action.session))
                sync = self.roster.sync_message()
                welcome = Welcome(
                    session=action.session,
                    record=self.roster.active()[action.peer_id],
                    genesis=GENESIS,
                    members=sync.members,
                    exits=sync.exits,
                )
                self.net.append(("cand", action.session, welcome))
            else:  # pragma: no cover - the member side has no other actions
                raise AssertionError(action)

    def _candidate_actions(self, who: Any, session: bytes, actions: tuple[Any, ...]) -> None:
        for action in actions:
            if isinstance(action, SendHello | SendAnswer):
                self.net.append(("member", who.node_id, action.message))
            elif isinstance(action, SignChallenge):
                self.work.append((session, action))

    def _track(self, peer: bytes, session: bytes) -> None:
        found = self.member.get(peer, session)
        if found is not None and all(found is not known for known in self.sessions):
            self.sessions.append(found)

    # rules

    @precondition(lambda self: len(self.candidates) < 5)
    @rule(who=st.sampled_from(CANDIDATES))
    def start_join(self, who: Any) -> None:
        session = len(self.candidates).to_bytes(16, "big")
        cert = cert_of(who, HIVE)
        if who is FORGER:
            cert = attrs.evolve(cert, node_sig=CANDIDATES[0].sign_text("not this"))
        ticket = self.ticket
        hello = Hello(session=session, ticket=ticket, cert=cert, manifest=manifest())
        candidate = CandidateSession(member_id=FOUNDER.node_id, hello=hello)
        self.candidates[session] = (who, candidate)
        self._candidate_actions(who, session, candidate.start(self.now))

    @precondition(lambda self: self.net)
    @rule(data=st.data(), how=st.sampled_from(["deliver", "duplicate", "drop"]))
    def network(self, data: st.DataObject, how: str) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.net) - 1))
        where, address, message = self.net[index] if how == "duplicate" else self.net.pop(index)
        if how != "drop":
            self._deliver(where, address, message)

    @precondition(lambda self: self.net)
    @rule()
    def deliver_in_order(self) -> None:
        self._deliver(*self.net.pop(0))

    def _deliver(self, where: str, address: bytes, message: Any) -> None:
        if where == "cand":
            who, candidate = self.candidates[address]
            if isinstance(message, Refuse):
                answers = candidate.on_refuse(message, self.now)
            elif isinstance(message, Welcome):
                answers = candidate.on_welcome(message, self.now)
            else:
                answers = candidate.on_challenge(message, self.now)
            self._candidate_actions(who, address, answers)
            return
        who = next(w for w in CANDIDATES if w.node_id == address)
        if isinstance(message, Hello):
            nonce = next(self.nonces).to_bytes(32, "big")
            actions = self.member.on_hello(
                address,
                message,
                roster=self.roster,
                sender_key=who.hive_key,
                nonce=nonce,
                now_ms=self.now,
            )
        else:
            actions = self.member.on_answer(
                address, message, sender_key=who.hive_key, now_ms=self.now
            )
        self._track(address, message.session)
        self._member_actions(actions)

    @precondition(lambda self: self.work)
    @rule(data=st.data(), ok=st.sampled_from([True, True, True, False]))
    def actor_work(self, data: st.DataObject, ok: bool) -> None:
        item = self.work.pop(data.draw(st.integers(min_value=0, max_value=len(self.work) - 1)))
        if isinstance(item, StartProbe):
            failure = None if ok else ProtocolError(errors.MANIFEST_LIE, "splicing")
            self._member_actions(
                self.member.on_probe_result(item.peer_id, item.hello.session, failure, self.now)
            )
        elif isinstance(item, ClaimTicket):
            candidate = item.message.cert.node_id
            grant_it = ok and (not self.granted or candidate in self.granted)
            if grant_it:
                self.granted.add(candidate)
                result = granted(item, now_ms=self.now)
            else:
                result = TicketClaimResult(
                    claim_id=item.message.claim_id,
                    ticket_id=item.message.ticket.body.ticket_id,
                    granted=False,
                    reason=errors.TICKET_EXHAUSTED,
                    grant=None,
                )
            self._member_actions(
                self.member.on_claim_result(result, sender_key=item.issuer_key, now_ms=self.now)
            )
        else:
            session_id, sign = item
            who, joiner = self.candidates[session_id]
            signer = who if ok else CANDIDATES[0] if who is not CANDIDATES[0] else CANDIDATES[1]
            self._candidate_actions(
                who, session_id, joiner.on_signed(signer.sign_text(sign.text), self.now)
            )

    @rule(ms=st.integers(min_value=0, max_value=10_000))
    def a_little_time_passes(self, ms: int) -> None:
        self._advance(ms)

    @precondition(lambda self: len(self.net) + len(self.work) <= 2)
    @rule(ms=st.integers(min_value=10_000, max_value=700_000))
    def much_time_passes(self, ms: int) -> None:
        self._advance(ms)

    def _advance(self, ms: int) -> None:
        self.now += ms
        self._member_actions(self.member.tick(self.now))
        for session, (who, candidate) in self.candidates.items():
            self._candidate_actions(who, session, candidate.tick(self.now))

    # invariants

    @invariant()
    def member_sessions_follow_the_table(self) -> None:
        for session in self.sessions:
            key = (session.peer_id, session.hello.session)
            state = MemberState.AWAIT_ANSWER
            for event in session.history:
                state = MEMBER_TABLE[(state, event)][0]
            assert state is session.state
            if session.state is MemberState.ADMITTED:
                assert session.history == [
                    MemberEvent.ANSWER_OK,
                    MemberEvent.PROBE_OK,
                    MemberEvent.CLAIM_GRANTED,
                ]
            assert session.admits <= 1
            assert self.admit_actions[key] <= 1  # even if a late duplicate Hello reopens it
            if session.terminal:
                assert self.final.setdefault(session, session.state) is session.state
            else:
                assert self.now < session.deadline_ms()
            if key[0] == FORGER.node_id:
                raise AssertionError("a forged certificate opened a session")

    @invariant()
    def candidates_settle_and_never_change_their_minds(self) -> None:
        for session, (who, candidate) in self.candidates.items():
            if candidate.terminal:
                assert self.final.setdefault(candidate, candidate.state) is candidate.state
            elif candidate.state is not CandidateState.IDLE:
                assert self.now < candidate.deadline_ms()
            if candidate.state is CandidateState.JOINED:
                opened = [
                    s
                    for s in self.sessions
                    if (s.peer_id, s.hello.session) == (who.node_id, session)
                ]
                assert any(s.state is MemberState.ADMITTED for s in opened) or (
                    (who.node_id, session) in self.rewelcomed
                )
                assert self.roster.status(who.node_id) is MemberStatus.ACTIVE

    @invariant()
    def bounds_hold(self) -> None:
        live = [
            s
            for s in self.sessions
            if not s.terminal and self.member.get(s.peer_id, s.hello.session) is s
        ]
        assert self.member.live_count() == len(live) <= self.limits.total
        for peer in {s.peer_id for s in live}:
            assert sum(1 for s in live if s.peer_id == peer) <= self.limits.per_peer

    @invariant()
    def a_single_use_ticket_admits_one_node(self) -> None:
        admitted = {
            record.body.cert.node_id
            for record in self.roster.active().values()
            if record.body.grant is not None
            and record.body.grant.body.ticket_id == self.ticket.body.ticket_id
        }
        assert len(admitted) <= 1
        assert admitted <= self.granted


JoinMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
test_join_state_machine = JoinMachine.TestCase


# --- crash recovery and the issuer's checks (issue 8 items 5 and 9) ------------------------------


def test_a_member_that_never_stored_its_welcome_is_welcomed_again() -> None:
    roster = _member_roster()  # the candidate's admission landed; its Welcome was lost
    handshakes = member_side()
    # Even after its ticket expired (the crash was long ago), no new ticket use is needed.
    actions = handshakes.on_hello(
        CAND.node_id,
        hello_of(),
        roster=roster,
        sender_key=CAND.hive_key,
        nonce=NONCE,
        now_ms=DAY_MS * 3,
    )
    assert actions == (Rewelcome(CAND.node_id, SESSION),)
    assert handshakes.views() == ()
    # Someone else's frame key, or another peer, is not the member asking again.
    (refuse,) = handshakes.on_hello(
        OTHER.node_id, hello_of(), roster=roster, sender_key=CAND.hive_key, nonce=NONCE, now_ms=T0
    )
    assert isinstance(refuse, SendRefuse)


def _claim(
    *, claimant: Any = BOB, who: Any = CAND, issuer: Any = FOUNDER, **ticket: Any
) -> TicketClaim:
    answer = answer_of(who, member=claimant)
    return TicketClaim(
        claim_id=b"c" * 16,
        ticket=ticket_of(issuer, HIVE, **ticket),
        cert=cert_of(who, HIVE),
        nonce=answer.nonce,
        node_sig=answer.node_sig,
    )


CLAIM_REFUSALS = {
    "not our ticket": (_claim(issuer=ALICE), BOB, errors.NOT_ISSUER),
    "claimant is no member": (_claim(claimant=OTHER), OTHER, errors.NOT_MEMBER),
    "proof for another member's challenge": (_claim(claimant=ALICE), BOB, errors.BAD_ANSWER),
    "forged ticket": (
        attrs.evolve(_claim(), ticket=attrs.evolve(_claim().ticket, signature=bytes(64))),
        BOB,
        errors.BAD_TICKET,
    ),
    "ticket for another node": (_claim(for_node=OTHER.node_id), BOB, errors.REQUIREMENT),
    "forged certificate": (
        attrs.evolve(_claim(), cert=attrs.evolve(_claim().cert, node_sig="d" * 104)),
        BOB,
        errors.BAD_CERTIFICATE,
    ),
}


@pytest.mark.parametrize(
    ("claim", "claimant", "reason"), CLAIM_REFUSALS.values(), ids=CLAIM_REFUSALS.keys()
)
def test_the_issuer_counts_a_use_only_for_a_real_ticket_and_handshake(
    claim: TicketClaim, claimant: Any, reason: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        check_claim(
            claim,
            roster=base_roster(),
            claimant_key=claimant.hive_key,
            own_hive_key=FOUNDER.hive_key,
            now_ms=T0,
        )
    assert info.value.reason == reason


def test_a_good_claim_names_the_claimant_and_its_grant_admits() -> None:
    roster = base_roster()
    claim = _claim()
    member = check_claim(
        claim, roster=roster, claimant_key=BOB.hive_key, own_hive_key=FOUNDER.hive_key, now_ms=T0
    )
    assert member == BOB.node_id
    grant = sign_grant(
        FOUNDER.key,
        grant_body(claim, member_node=member, member_key=BOB.hive_key, use=1, now_ms=T0),
    )
    body = MemberBody(
        hive_id=HIVE,
        cert=claim.cert,
        role=ROLE_MEMBER,
        admitted_by=BOB.hive_key,
        admitted_ms=T0 + 5,
        grant=grant,
    )
    assert roster.apply(sign_member(BOB.key, body)).status.value == "new"
    assert roster.status(CAND.node_id) is MemberStatus.ACTIVE
