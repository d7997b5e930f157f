"""The ban record and the ban book: signatures, codec round trip, and the book's rules under a
Hypothesis state machine (rate limit, permanence quorum, lifting, expiry, repair convergence)."""

from __future__ import annotations

import hashlib

import attrs
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hive.protocol.bans import (
    Ban,
    BanAnnounce,
    BanBody,
    BanBook,
    BanRefused,
    BanRules,
    UnbanBody,
    ban_digest,
    sign_ban,
    sign_unban,
)
from hive.protocol.bans.book import DAY_MS
from hive.protocol.wire.codec import decode_message, encode_message

HIVE = hashlib.sha256(b"hive").digest()
KEYS = [nacl.signing.SigningKey(hashlib.sha256(bytes([i])).digest()) for i in range(5)]
MEMBERS = {bytes(k.verify_key) for k in KEYS[:4]}  # KEYS[4] is an outsider
ADMIN = bytes(KEYS[0].verify_key)
PEERS = [bytes([2]) + hashlib.sha256(bytes([100 + i])).digest() for i in range(3)]
RULES = BanRules(max_per_window=2, permanent_quorum=3, max_ttl_ms=10 * DAY_MS)


def is_member(key: bytes) -> bool:
    return key in MEMBERS


def is_admin(key: bytes) -> bool:
    return key == ADMIN


def make_ban(k: int, peer: int, issued: int, ttl: int = DAY_MS, permanent: bool = False) -> Ban:
    key = KEYS[k]
    body = BanBody(
        hive_id=HIVE,
        peer=PEERS[peer],
        reason="htlc failures",
        rule="htlc-failure-rate",
        evidence_digest=hashlib.sha256(b"evidence").digest(),
        issuer=bytes(key.verify_key),
        issued_ms=issued,
        expires_ms=issued + ttl,
        permanent=permanent,
    )
    return sign_ban(key, body)


def test_round_trip_and_signature() -> None:
    ban = make_ban(1, 0, 1_000)
    kind, body = encode_message(BanAnnounce(ban=ban))
    assert kind == 0x0070
    assert decode_message(kind, body) == BanAnnounce(ban=ban)
    book = BanBook(HIVE, RULES)
    forged = attrs.evolve(ban, body=attrs.evolve(ban.body, peer=PEERS[1]))
    with pytest.raises(BanRefused) as caught:
        book.add(forged, 1_000, is_member)
    assert caught.value.reason == "bad-signature"
    with pytest.raises(BanRefused) as caught:
        book.add(make_ban(4, 0, 1_000), 1_000, is_member)
    assert caught.value.reason == "not-member"
    with pytest.raises(BanRefused) as caught:
        book.add(make_ban(1, 0, 1_000, ttl=11 * DAY_MS), 1_000, is_member)
    assert caught.value.reason == "bad-ban"
    book.add(ban, 1_000, is_member)
    assert book.is_banned(PEERS[0], 1_000)
    assert not book.is_banned(PEERS[0], 1_000 + DAY_MS)


def test_only_issuer_or_admin_lifts() -> None:
    book = BanBook(HIVE, RULES)
    ban = make_ban(2, 0, 1_000)
    book.add(ban, 1_000, is_member)
    other = sign_unban(KEYS[3], UnbanBody(HIVE, ban_digest(ban), bytes(KEYS[3].verify_key), 2))
    with pytest.raises(BanRefused) as caught:
        book.lift(other, is_admin)
    assert caught.value.reason == "not-allowed"
    admin = sign_unban(KEYS[0], UnbanBody(HIVE, ban_digest(ban), ADMIN, 2))
    book.lift(admin, is_admin)
    assert not book.is_banned(PEERS[0], 1_000)
    with pytest.raises(BanRefused) as caught:
        book.add(ban, 1_000, is_member)  # repair cannot bring a lifted ban back
    assert caught.value.reason == "lifted"


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_repair_converges(items: list[tuple[int, int]]) -> None:
    """Two books fed the same bans in opposite orders end with the same digest when the rate
    limit cannot bite (distinct days)."""
    bans = [make_ban(k, p, 1_000 + i * DAY_MS, ttl=9 * DAY_MS) for i, (k, p) in enumerate(items)]
    now = 8 * DAY_MS
    a, b = BanBook(HIVE, RULES), BanBook(HIVE, RULES)
    for ban in bans:
        a.add(ban, now, is_member)
    for ban in reversed(bans):
        b.add(ban, now, is_member)
    assert a.digest() == b.digest()


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = BanBook(HIVE, RULES)
        self.now = 10 * DAY_MS
        self.held: dict[bytes, Ban] = {}
        self.lifted: set[bytes] = set()

    @rule(
        k=st.integers(0, 4),
        peer=st.integers(0, 2),
        permanent=st.booleans(),
        back=st.integers(0, DAY_MS),
    )
    def issue(self, k: int, peer: int, permanent: bool, back: int) -> None:
        ban = make_ban(k, peer, self.now - back, ttl=DAY_MS, permanent=permanent)
        issuer = ban.body.issuer
        recent = sum(
            1
            for b in self.held.values()
            if b.body.issuer == issuer
            and ban.body.issued_ms - RULES.window_ms < b.body.issued_ms <= ban.body.issued_ms
        )
        try:
            digest = self.book.add(ban, self.now, is_member)
        except BanRefused as exc:
            refused = exc.reason
        else:
            assert issuer in MEMBERS
            assert recent < RULES.max_per_window
            self.held[digest] = ban
            return
        assert refused in {"not-member", "rate-limited", "expired", "known", "lifted"}
        if refused == "rate-limited":
            assert recent >= RULES.max_per_window
        if refused == "not-member":
            assert issuer not in MEMBERS

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), by=st.integers(0, 3))
    def lift(self, data: st.DataObject, by: int) -> None:
        digest = data.draw(st.sampled_from(sorted(self.held)))
        key = KEYS[by]
        unban = sign_unban(key, UnbanBody(HIVE, digest, bytes(key.verify_key), self.now))
        try:
            self.book.lift(unban, is_admin)
        except BanRefused as exc:
            refused = exc.reason
        else:
            refused = ""
        if refused:
            assert refused == "not-allowed"
            assert bytes(key.verify_key) not in (ADMIN, self.held[digest].body.issuer)
            return
        del self.held[digest]
        self.lifted.add(digest)

    @rule(step=st.integers(1, DAY_MS))
    def tick(self, step: int) -> None:
        self.now += step
        for ban in self.book.prune(self.now):
            del self.held[ban_digest(ban)]

    @invariant()
    def one_member_never_bans_for_good(self) -> None:
        for ban in self.book.bans():
            if self.book.expires_of(ban) is None:
                assert len(self.book.issuers_of(ban.body.peer)) >= RULES.permanent_quorum

    @invariant()
    def banned_means_a_live_ban(self) -> None:
        banned = self.book.banned_peers(self.now)
        live = {b.body.peer for b in self.held.values() if self.book.live(b, self.now)}
        assert banned == live
        assert not self.lifted & set(self.held)


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
