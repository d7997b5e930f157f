"""The candidate side of the join handshake (see :mod:`hive.protocol.membership.handshake`)::

    IDLE         --start-->     HELLO_SENT     SendHello
    HELLO_SENT   --resend-->    HELLO_SENT     SendHello   (every 10 s, at most 5 times)
    HELLO_SENT   --challenge--> ANSWERING      SignChallenge (the node key signs the text)
    ANSWERING    --signed-->    AWAIT_RESULT   SendAnswer
    AWAIT_RESULT --resend-->    AWAIT_RESULT   SendAnswer  (every 10 s, at most 5 times)
    AWAIT_RESULT --challenge--> AWAIT_RESULT   SendAnswer  (the same challenge came again)
    AWAIT_RESULT --welcome-->   JOINED         Joined      (the Welcome verified)
    HELLO_SENT   --welcome-->   JOINED         Joined      (we were a member already: a crash
                                                            lost the first Welcome)
    AWAIT_RESULT --bad_welcome->FAILED         Failed
    live         --refuse-->    REFUSED        Refused
    live         --timeout-->   FAILED         Failed      (120 s after start)

A Challenge, Welcome or Refuse for another session is ignored and counted.
"""

from __future__ import annotations

import enum

import attrs

from hive.protocol.errors import BAD_RECORD, OTHER_HIVE, TIMEOUT, ProtocolError
from hive.protocol.membership.pki import challenge_text, hive_id_of
from hive.protocol.membership.records import Challenge, ChallengeAnswer, Hello, Refuse, Welcome
from hive.protocol.membership.roster import MemberStatus, Roster


class CandidateState(enum.Enum):
    """Where our join stands."""

    IDLE = "idle"
    HELLO_SENT = "hello-sent"
    ANSWERING = "answering"
    AWAIT_RESULT = "await-result"
    JOINED = "joined"
    REFUSED = "refused"
    FAILED = "failed"


class CandidateEvent(enum.Enum):
    """What can happen to our join (keys of :data:`CANDIDATE_TABLE`)."""

    START = "start"
    RESEND = "resend"
    CHALLENGE = "challenge"
    SIGNED = "signed"
    WELCOME = "welcome"
    BAD_WELCOME = "bad-welcome"
    REFUSE = "refuse"
    TIMEOUT = "timeout"


@attrs.frozen
class SendHello:
    """Send ``message`` to the member ``member_id``."""

    member_id: bytes
    message: Hello


@attrs.frozen
class SignChallenge:
    """Sign ``text`` with the node key (signmessage); report with ``on_signed``."""

    text: str


@attrs.frozen
class SendAnswer:
    """Send ``message`` to the member ``member_id``."""

    member_id: bytes
    message: ChallengeAnswer


@attrs.frozen
class Joined:
    """We are a member: ``roster`` holds the Welcome's verified records (store them)."""

    welcome: Welcome
    roster: Roster = attrs.field(eq=False)


@attrs.frozen
class Refused:
    """The member refused us with ``reason`` (a code) and ``detail``."""

    reason: str
    detail: str


@attrs.frozen
class Failed:
    """The join failed here: no answer in time, or an invalid Welcome."""

    reason: str
    detail: str


CandidateAction = SendHello | SignChallenge | SendAnswer | Joined | Refused | Failed

_S = CandidateState
_E = CandidateEvent
_LIVE = (_S.HELLO_SENT, _S.ANSWERING, _S.AWAIT_RESULT)
CANDIDATE_TABLE: dict[
    tuple[CandidateState, CandidateEvent], tuple[CandidateState, tuple[type, ...]]
]
CANDIDATE_TABLE = {
    (_S.IDLE, _E.START): (_S.HELLO_SENT, (SendHello,)),
    (_S.HELLO_SENT, _E.RESEND): (_S.HELLO_SENT, (SendHello,)),
    (_S.HELLO_SENT, _E.CHALLENGE): (_S.ANSWERING, (SignChallenge,)),
    (_S.ANSWERING, _E.SIGNED): (_S.AWAIT_RESULT, (SendAnswer,)),
    (_S.AWAIT_RESULT, _E.RESEND): (_S.AWAIT_RESULT, (SendAnswer,)),
    (_S.AWAIT_RESULT, _E.CHALLENGE): (_S.AWAIT_RESULT, (SendAnswer,)),
    (_S.AWAIT_RESULT, _E.WELCOME): (_S.JOINED, (Joined,)),
    (_S.AWAIT_RESULT, _E.BAD_WELCOME): (_S.FAILED, (Failed,)),
    # We are a member already and never stored the Welcome (a crash): it comes at once.
    (_S.HELLO_SENT, _E.WELCOME): (_S.JOINED, (Joined,)),
    (_S.HELLO_SENT, _E.BAD_WELCOME): (_S.FAILED, (Failed,)),
    **{(state, _E.REFUSE): (_S.REFUSED, (Refused,)) for state in _LIVE},
    **{(state, _E.TIMEOUT): (_S.FAILED, (Failed,)) for state in _LIVE},
}
"""The candidate side's transitions; anything else is ignored."""

CANDIDATE_TERMINAL = frozenset({_S.JOINED, _S.REFUSED, _S.FAILED})
RESEND_EVERY_MS = 10_000
MAX_RESENDS = 5
OVERALL_DEADLINE_MS = 120_000


class CandidateSession:
    """Our join through the member ``member_id`` with ``hello`` (its session id is ours)."""

    def __init__(self, *, member_id: bytes, hello: Hello) -> None:
        self.member_id = member_id
        self.hello = hello
        self.hive_id = hello.ticket.body.hive_id
        self.state = CandidateState.IDLE
        self.started_ms = 0
        self.entered_ms = 0
        self.resends = 0  # in the current state
        self.ignored = 0
        self.history: list[CandidateEvent] = []
        self.roster: Roster | None = None  # set when JOINED
        self._nonce: bytes | None = None
        self._answer: ChallengeAnswer | None = None
        self._outcome: tuple[str, str] | None = None
        self._welcome: Welcome | None = None

    @property
    def terminal(self) -> bool:
        return self.state in CANDIDATE_TERMINAL

    def deadline_ms(self) -> int:
        return self.started_ms + OVERALL_DEADLINE_MS

    def next_tick_ms(self) -> int | None:
        """When :meth:`tick` next has something to do, or None (idle or finished)."""
        if self.state is CandidateState.IDLE or self.terminal:
            return None
        due = self.deadline_ms()
        if self.state is not CandidateState.ANSWERING and self.resends < MAX_RESENDS:
            due = min(due, self.entered_ms + (self.resends + 1) * RESEND_EVERY_MS)
        return due

    def start(self, now_ms: int) -> tuple[CandidateAction, ...]:
        """Send the Hello; the overall deadline starts now."""
        if self.state is CandidateState.IDLE:
            self.started_ms = now_ms
        return self._fire(CandidateEvent.START, now_ms)

    def on_challenge(self, challenge: Challenge, now_ms: int) -> tuple[CandidateAction, ...]:
        if challenge.session != self.hello.session:
            self.ignored += 1
            return ()
        if self._nonce is not None and challenge.nonce != self._nonce:
            self.ignored += 1  # a second, different challenge for one session: not honest
            return ()
        if self.state is CandidateState.HELLO_SENT:
            self._nonce = challenge.nonce
        return self._fire(CandidateEvent.CHALLENGE, now_ms)

    def on_signed(self, node_sig: str, now_ms: int) -> tuple[CandidateAction, ...]:
        """The node key signed the challenge text (``node_sig`` is its z-base-32 signature)."""
        if self.state is not CandidateState.ANSWERING or self._nonce is None:
            self.ignored += 1
            return ()
        self._answer = ChallengeAnswer(
            session=self.hello.session, nonce=self._nonce, node_sig=node_sig
        )
        return self._fire(CandidateEvent.SIGNED, now_ms)

    def on_welcome(self, welcome: Welcome, now_ms: int) -> tuple[CandidateAction, ...]:
        """Verify the Welcome: our hive, our certificate, and a roster in which we are active."""
        if welcome.session != self.hello.session or self.state not in (
            CandidateState.HELLO_SENT,
            CandidateState.AWAIT_RESULT,
        ):
            self.ignored += 1
            return ()
        try:
            roster = self._verify_welcome(welcome)
        except ProtocolError as exc:
            self._outcome = (exc.reason, exc.detail)
            return self._fire(CandidateEvent.BAD_WELCOME, now_ms)
        self.roster = roster
        self._welcome = welcome
        return self._fire(CandidateEvent.WELCOME, now_ms)

    def on_refuse(self, refuse: Refuse, now_ms: int) -> tuple[CandidateAction, ...]:
        if refuse.session != self.hello.session:
            self.ignored += 1
            return ()
        if not self.terminal:
            self._outcome = (refuse.reason, refuse.detail)
        return self._fire(CandidateEvent.REFUSE, now_ms)

    def tick(self, now_ms: int) -> tuple[CandidateAction, ...]:
        """Fire the overall timeout, or the re-send that is due."""
        due = self.next_tick_ms()
        if due is None or now_ms < due:
            return ()
        if now_ms >= self.deadline_ms():
            self._outcome = (TIMEOUT, f"no result {now_ms - self.started_ms} ms after the Hello")
            return self._fire(CandidateEvent.TIMEOUT, now_ms)
        self.resends += 1
        return self._fire(CandidateEvent.RESEND, now_ms)

    def _verify_welcome(self, welcome: Welcome) -> Roster:
        if hive_id_of(welcome.genesis) != self.hive_id:
            raise ProtocolError(OTHER_HIVE, "the Welcome's genesis is not our ticket's hive")
        cert = self.hello.cert
        ours = welcome.record.body.cert
        if (ours.hive_id, ours.node_id, ours.hive_key) != (
            self.hive_id,
            cert.node_id,
            cert.hive_key,
        ):
            raise ProtocolError(BAD_RECORD, "the Welcome's record is not for our node and hive key")
        roster = Roster(welcome.genesis)
        roster.merge((*welcome.members, *welcome.exits, welcome.record))
        if roster.status(cert.node_id) is not MemberStatus.ACTIVE:
            raise ProtocolError(BAD_RECORD, "the Welcome's records do not make us a member")
        return roster

    def _fire(self, event: CandidateEvent, now_ms: int) -> tuple[CandidateAction, ...]:
        entry = CANDIDATE_TABLE.get((self.state, event))
        if entry is None:
            self.ignored += 1
            return ()
        target, kinds = entry
        self.history.append(event)
        if target is not self.state:  # self-loops (re-sends) keep the state's timer
            self.entered_ms = now_ms
            self.resends = 0
        self.state = target
        return tuple(self._make(kind) for kind in kinds)

    def _make(self, kind: type) -> CandidateAction:
        if kind is SendHello:
            return SendHello(self.member_id, self.hello)
        if kind is SignChallenge and self._nonce is not None:
            return SignChallenge(challenge_text(self.hive_id, self.member_id, self._nonce))
        if kind is SendAnswer and self._answer is not None:
            return SendAnswer(self.member_id, self._answer)
        if kind is Joined and self._welcome is not None and self.roster is not None:
            return Joined(self._welcome, self.roster)
        if kind is Refused and self._outcome is not None:
            return Refused(*self._outcome)
        if kind is Failed and self._outcome is not None:
            return Failed(*self._outcome)
        raise AssertionError(f"no builder for action {kind.__name__} in state {self.state}")
