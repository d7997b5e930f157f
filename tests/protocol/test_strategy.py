"""Strategy gossip records: commitment and reveal under Hypothesis (round trip, any change of
the report or the salt fails, early reveals and replays are refused), the book's rules under a
state machine, and the pure verdict on a report."""

from __future__ import annotations

import hashlib

import attrs
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hive.protocol.strategy import (
    CommitBody,
    InboundShare,
    ReportBody,
    ReportedChannel,
    StrategyBook,
    StrategyCommitAnnounce,
    StrategyRefused,
    StrategyReportAnnounce,
    StrategyRules,
    StrategySync,
    commitment_of,
    key_of,
    sign_commit,
    sign_report,
)
from hive.protocol.strategy.book import DAY_MS
from hive.protocol.strategy.verify import GraphChannel, Observed, judge
from hive.protocol.wire.codec import decode_message, encode_message

HIVE = hashlib.sha256(b"hive").digest()
KEYS = [nacl.signing.SigningKey(hashlib.sha256(bytes([i])).digest()) for i in range(4)]
MEMBERS = {bytes(k.verify_key) for k in KEYS[:3]}  # KEYS[3] is an outsider
PEER = bytes([2]) + hashlib.sha256(b"peer").digest()
NODE = bytes([3]) + hashlib.sha256(b"member node").digest()
DELAY = DAY_MS
T0 = 100 * DAY_MS
RULES = StrategyRules(max_per_window=3)


def is_member(key: bytes) -> bool:
    return key in MEMBERS


u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
channels = st.builds(
    ReportedChannel,
    short_channel_id=st.from_regex(r"[1-9][0-9]{0,6}x[0-9]{1,4}x[0-9]{1,2}", fullmatch=True),
    capacity_sat=u64,
    base_msat=u32,
    ppm=u32,
)
shares = st.builds(
    InboundShare, member=st.binary(min_size=33, max_size=33), forwarded_msat=u64, forwards=u32
)


@st.composite
def bodies(draw: st.DrawFn, issuer: int = 0) -> ReportBody:
    end = draw(st.integers(T0 - 30 * DAY_MS + 1, T0))
    return ReportBody(
        hive_id=HIVE,
        issuer=bytes(KEYS[issuer].verify_key),
        peer=draw(st.binary(min_size=33, max_size=33)),
        channels=tuple(draw(st.lists(channels, min_size=1, max_size=8))),
        forwarded_msat=draw(u64),
        forwards=draw(u32),
        earned_msat=draw(u64),
        window_start_ms=draw(st.integers(end - 30 * DAY_MS, end - 1)),
        window_end_ms=end,
        inbound=tuple(draw(st.lists(shares, max_size=4))),
    )


def commit(body: ReportBody, salt: bytes, issued: int = T0, issuer: int = 0):  # type: ignore[no-untyped-def]
    c = CommitBody(HIVE, body.issuer, commitment_of(body, salt), issued, issued + DELAY)
    return sign_commit(KEYS[issuer], c)


@given(bodies(), st.binary(min_size=32, max_size=32))
@settings(max_examples=80, deadline=None)
def test_commit_reveal_round_trip(body: ReportBody, salt: bytes) -> None:
    book = StrategyBook(HIVE, RULES)
    c = commit(body, salt)
    report = sign_report(KEYS[0], body, salt, T0 + DELAY)
    for message in (StrategyCommitAnnounce(c), StrategyReportAnnounce(report)):
        kind, raw = encode_message(message)
        assert decode_message(kind, raw) == message
    sync = StrategySync(commits=(c,), reports=(report,))
    assert decode_message(*encode_message(sync)) == sync
    book.add_commit(c, T0, is_member)
    assert book.pending() == [c]
    book.add_report(report, T0 + DELAY, is_member)
    assert book.pending() == []
    assert book.commit_of(report) == c
    assert key_of(report) == (body.issuer, c.body.commitment)


def _mutations(body: ReportBody) -> st.SearchStrategy[ReportBody]:
    def change(field: str, value: object) -> ReportBody:
        return attrs.evolve(body, **{field: value})

    return st.one_of(
        st.binary(min_size=33, max_size=33)
        .filter(lambda p: p != body.peer)
        .map(lambda p: change("peer", p)),
        u64.filter(lambda v: v != body.forwarded_msat).map(lambda v: change("forwarded_msat", v)),
        u64.filter(lambda v: v != body.earned_msat).map(lambda v: change("earned_msat", v)),
        u32.filter(lambda v: v != body.forwards).map(lambda v: change("forwards", v)),
        st.lists(channels, min_size=1, max_size=8)
        .map(tuple)
        .filter(lambda v: v != body.channels)
        .map(lambda v: change("channels", v)),
        st.lists(shares, max_size=4)
        .map(tuple)
        .filter(lambda v: v != body.inbound)
        .map(lambda v: change("inbound", v)),
        st.integers(0, body.window_end_ms - 1)
        .filter(lambda v: v != body.window_start_ms)
        .map(lambda v: change("window_start_ms", v)),
    )


@given(st.data(), bodies(), st.binary(min_size=32, max_size=32))
@settings(max_examples=120, deadline=None)
def test_any_change_of_the_report_or_salt_fails(
    data: st.DataObject, body: ReportBody, salt: bytes
) -> None:
    book = StrategyBook(HIVE, RULES)
    book.add_commit(commit(body, salt), T0, is_member)
    at = T0 + DELAY
    changed_body = data.draw(_mutations(body))
    changed_salt = data.draw(st.binary(min_size=32, max_size=32).filter(lambda s: s != salt))
    for b, s in ((changed_body, salt), (body, changed_salt), (changed_body, changed_salt)):
        # Re-signed by the issuer itself: the signature holds, the commitment does not.
        with pytest.raises(StrategyRefused) as caught:
            book.add_report(sign_report(KEYS[0], b, s, at), at, is_member)
        assert caught.value.reason == "no-commitment"
    honest = sign_report(KEYS[0], body, salt, at)
    tampered = attrs.evolve(honest, body=changed_body)  # changed in transit
    with pytest.raises(StrategyRefused) as caught:
        book.add_report(tampered, at, is_member)
    assert caught.value.reason == "bad-signature"
    with pytest.raises(StrategyRefused) as caught:
        book.add_report(attrs.evolve(honest, salt=changed_salt), at, is_member)
    assert caught.value.reason == "bad-signature"
    book.add_report(honest, at, is_member)


@given(bodies(), st.binary(min_size=32, max_size=32), st.integers(1, DELAY))
@settings(max_examples=60, deadline=None)
def test_early_reveal_is_refused(body: ReportBody, salt: bytes, early_by: int) -> None:
    book = StrategyBook(HIVE, RULES)
    book.add_commit(commit(body, salt), T0, is_member)
    rnb = T0 + DELAY
    # The issuer states an early time: refused whatever our clock says.
    with pytest.raises(StrategyRefused) as caught:
        book.add_report(sign_report(KEYS[0], body, salt, rnb - early_by), rnb, is_member)
    assert caught.value.reason == "early"
    # Or it states the right time but sends it early: our clock refuses it (beyond the skew).
    if early_by > RULES.max_skew_ms:
        with pytest.raises(StrategyRefused) as caught:
            book.add_report(sign_report(KEYS[0], body, salt, rnb), rnb - early_by, is_member)
        assert caught.value.reason == "early"
    book.add_report(sign_report(KEYS[0], body, salt, rnb), rnb, is_member)


@given(bodies(), st.binary(min_size=32, max_size=32))
@settings(max_examples=40, deadline=None)
def test_replay_is_refused(body: ReportBody, salt: bytes) -> None:
    book = StrategyBook(HIVE, RULES)
    c = commit(body, salt)
    rnb = T0 + DELAY
    report = sign_report(KEYS[0], body, salt, rnb)
    book.add_commit(c, T0, is_member)
    book.add_report(report, rnb, is_member)
    for again in (lambda: book.add_commit(c, rnb, is_member),
                  lambda: book.add_report(report, rnb, is_member),
                  lambda: book.add_report(sign_report(KEYS[0], body, salt, rnb + 1), rnb + 1,
                                          is_member)):  # fmt: skip
        with pytest.raises(StrategyRefused) as caught:
            again()
        assert caught.value.reason == "known"
    later = rnb + RULES.report_ttl_ms
    book.prune(later)
    assert book.reports() == []
    assert book.commits() == []
    with pytest.raises(StrategyRefused) as caught:
        book.add_report(report, later, is_member)
    assert caught.value.reason == "no-commitment"
    with pytest.raises(StrategyRefused) as caught:
        book.add_commit(c, later, is_member)
    assert caught.value.reason == "expired"


def test_refusals_of_commitments() -> None:
    channel = ReportedChannel("1x1x0", 1_000_000, 0, 100)
    body = ReportBody(HIVE, bytes(KEYS[0].verify_key), PEER, (channel,), 1, 1, 1, 0, T0, ())
    book = StrategyBook(HIVE, RULES)
    salt = bytes(32)
    outsider = ReportBody(
        **{**attrs.asdict(body, recurse=False), "issuer": bytes(KEYS[3].verify_key)}
    )
    cases = {
        "not-member": commit(outsider, salt, issuer=3),
        "bad-commit": sign_commit(
            KEYS[0], CommitBody(HIVE, body.issuer, commitment_of(body, salt), T0, T0 + 31 * DAY_MS)
        ),
        "other-hive": sign_commit(
            KEYS[0], CommitBody(bytes(32), body.issuer, commitment_of(body, salt), T0, T0 + 1)
        ),
        "expired": commit(body, salt, issued=T0 - 9 * DAY_MS),
    }
    for code, c in cases.items():
        with pytest.raises(StrategyRefused) as caught:
            book.add_commit(c, T0, is_member)
        assert caught.value.reason == code
    good = commit(body, salt)
    with pytest.raises(StrategyRefused) as caught:
        book.add_commit(attrs.evolve(good, signature=bytes(64)), T0, is_member)
    assert caught.value.reason == "bad-signature"
    for i in range(3):
        book.add_commit(commit(body, bytes([i + 1]) * 32, issued=T0 - i), T0, is_member)
    with pytest.raises(StrategyRefused) as caught:
        book.add_commit(good, T0, is_member)
    assert caught.value.reason == "rate-limited"
    # A report whose window ends after its commitment was made is refused.
    late = attrs.evolve(body, window_end_ms=T0 + DAY_MS)
    other = StrategyBook(HIVE, RULES)
    other.add_commit(commit(late, salt), T0, is_member)
    with pytest.raises(StrategyRefused) as caught:
        other.add_report(sign_report(KEYS[0], late, salt, T0 + DELAY), T0 + DELAY, is_member)
    assert caught.value.reason == "bad-report"


class BookMachine(RuleBasedStateMachine):
    """Commitments by three members and reveals at random times, replays, pruning: a report
    is held only with its commitment and never before its reveal time; no issuer ever has
    more than ``max_per_window`` commitments within a window."""

    def __init__(self) -> None:
        super().__init__()
        self.book = StrategyBook(HIVE, RULES)
        self.now = T0
        self.made: list[tuple[int, ReportBody, bytes, int]] = []

    @rule(issuer=st.integers(0, 2), n=st.integers(0, 2**16))
    def make_commit(self, issuer: int, n: int) -> None:
        key = bytes(KEYS[issuer].verify_key)
        body = ReportBody(HIVE, key, PEER, (ReportedChannel("9x9x9", 1_000, 0, n),),
                          n, 1, n, self.now - DAY_MS, self.now, ())  # fmt: skip
        salt = hashlib.sha256(n.to_bytes(4, "big") + bytes([issuer])).digest()
        c = commit(body, salt, issued=self.now, issuer=issuer)
        try:
            self.book.add_commit(c, self.now, is_member)
        except StrategyRefused as exc:
            refused = exc.reason
        else:
            self.made.append((issuer, body, salt, self.now))
            return
        assert refused in ("known", "rate-limited")

    @rule(index=st.integers(0, 50), offset=st.integers(-DAY_MS, DAY_MS))
    def reveal(self, index: int, offset: int) -> None:
        if not self.made:
            return
        issuer, body, salt, issued = self.made[index % len(self.made)]
        at = issued + DELAY + offset
        refused = "added"
        try:
            self.book.add_report(sign_report(KEYS[issuer], body, salt, at), self.now, is_member)
        except StrategyRefused as exc:
            refused = exc.reason
        assert refused in ("added", "early", "known", "no-commitment", "bad-report", "expired")

    @rule(hours=st.integers(1, 24 * 10))
    def wait(self, hours: int) -> None:
        self.now += hours * 3_600_000

    @rule()
    def prune(self) -> None:
        self.book.prune(self.now)

    @invariant()
    def reports_follow_their_commitments(self) -> None:
        for report in self.book.reports():
            c = self.book.commit_of(report)
            assert c is not None
            assert report.revealed_ms >= c.body.reveal_not_before_ms

    @invariant()
    def rate_limit_holds(self) -> None:
        commits = self.book.commits()
        for c in commits:
            window = [
                o for o in commits
                if o.body.issuer == c.body.issuer
                and c.body.issued_ms - RULES.window_ms < o.body.issued_ms <= c.body.issued_ms
            ]  # fmt: skip
            assert len(window) <= RULES.max_per_window


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


def test_verdicts() -> None:
    ch = ReportedChannel("5x1x0", 2_000_000, 1_000, 200)
    share = InboundShare(NODE, 50_000_000, 10)
    body = ReportBody(HIVE, bytes(KEYS[0].verify_key), PEER, (ch,), 60_000_000, 12, 12_000,
                      T0 - DAY_MS, T0, (share,))  # fmt: skip
    assert body.yield_ppm == 6  # 12 sat earned on 2 000 000 sat of capacity
    exact = GraphChannel("5x1x0", PEER, 2_000_000, 1_000, 200)
    seen = Observed(covered=True, sent_msat=50_000_000)
    assert judge(body, NODE, [exact], seen, past_grace=False).verdict == "consistent"
    assert judge(body, NODE, [], seen, past_grace=False).verdict == "pending"
    absent = judge(body, NODE, [], seen, past_grace=True)
    assert absent.verdict == "false"
    assert absent.lies[0].result == "absent"
    bigger = attrs.evolve(exact, capacity_sat=3_000_000)
    assert judge(body, NODE, [bigger], seen, past_grace=False).verdict == "false"
    elsewhere = attrs.evolve(exact, destination=NODE)
    assert judge(body, NODE, [elsewhere], seen, past_grace=False).lies[0].result == "endpoint"
    repriced = judge(body, NODE, [attrs.evolve(exact, ppm=1)], seen, past_grace=False)
    assert repriced.verdict == "consistent"  # fees change: shown, never a lie
    assert repriced.checks[0].result == "fee-changed"
    little = Observed(covered=True, sent_msat=1_000_000)
    lie = judge(body, NODE, [exact], little, past_grace=False)
    assert lie.verdict == "false"
    assert lie.lies[0].result == "exceeds"
    within = Observed(covered=True, sent_msat=45_000_000)  # within 10 % and the floor
    assert judge(body, NODE, [exact], within, past_grace=False).verdict == "consistent"
    blind = Observed(covered=False, sent_msat=0)
    assert judge(body, NODE, [exact], blind, past_grace=False).verdict == "pending"
    assert judge(body, NODE, [exact], blind, past_grace=True).verdict == "consistent"
    other = bytes([2]) * 33  # a member not named in the report checks the graph only
    assert judge(body, other, [exact], None, past_grace=False).verdict == "consistent"
    assert judge(body, NODE, None, seen, past_grace=True).verdict == "unverified"
