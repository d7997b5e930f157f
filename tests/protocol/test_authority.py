"""Membership authority from the records alone (issue 8 item 9) and the pending bound (item 3).

An admission is effective only with a ticket-use grant signed by an admin (the ticket's issuer)
naming the candidate and the member that ran the handshake, with the candidate's node signature
over that member's challenge; one use admits one node; a revoke keeps in force only the records
made on the revoked member's authority that it lists, so records the revoked key signs later,
dated before its revocation, are void."""

from __future__ import annotations

import attrs

from hive.protocol import errors
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    ROLE_ADMIN,
    Applied,
    MemberStatus,
    Roster,
    RosterLimits,
    RosterRecord,
    hive_id_of,
    record_hash,
    sign_grant,
    sign_member,
)
from hive.protocol.membership.pki import GRANT_TTL_MS

from .membership_helpers import (
    admission,
    founder_record,
    genesis_of,
    grant_of,
    node,
    refused,
    revoke,
    roster_of,
)

FOUNDER = node("founder")
ALICE = node("alice")
BOB = node("bob")
CAROL = node("carol")
DAVE = node("dave")
MALLORY = node("mallory")
GENESIS = genesis_of(FOUNDER)
HIVE = hive_id_of(GENESIS)
FOUNDED = founder_record(FOUNDER, GENESIS, at_ms=2_000)


def _roster(*records: RosterRecord, limits: RosterLimits | None = None) -> Roster:
    return roster_of(GENESIS, *records, limits=limits)


_refused = refused


def _with_alice() -> Roster:
    return _roster(FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000))


# --- a plain member cannot mint members -----------------------------------------------------------


def test_a_plain_member_cannot_grant_its_own_ticket_use() -> None:
    roster = _with_alice()
    # Alice (no admin) signs the grant herself, for an invented ticket: not an admin's authority.
    forged = admission(ALICE, MALLORY, HIVE, at_ms=4_000, issuer=ALICE)
    error = _refused(roster, forged)
    assert error.reason == errors.NOT_ADMIN
    assert "ticket issuer" in error.detail


def test_an_admission_without_a_grant_is_only_the_founders() -> None:
    roster = _with_alice()
    body = attrs.evolve(admission(ALICE, MALLORY, HIVE, at_ms=4_000).body, grant=None)
    assert _refused(roster, sign_member(ALICE.key, body)).reason == errors.BAD_RECORD


def test_the_grant_must_carry_the_candidates_handshake_with_the_signer() -> None:
    roster = _with_alice()
    honest = admission(ALICE, BOB, HIVE, at_ms=4_000)
    assert honest.body.grant is not None
    # The proof signed for the founder's challenge does not prove a handshake with Alice.
    elsewhere = grant_of(FOUNDER, FOUNDER, BOB, HIVE, at_ms=4_000)
    moved = attrs.evolve(elsewhere, body=attrs.evolve(elsewhere.body, member_key=ALICE.hive_key))
    body = attrs.evolve(honest.body, grant=sign_grant(FOUNDER.key, moved.body))
    error = _refused(roster, sign_member(ALICE.key, body))
    assert error.reason == errors.BAD_RECORD
    assert "names member" in error.detail
    # A proof that is not the candidate's node signature at all.
    fake = attrs.evolve(honest.body.grant.body, node_sig="d" * 104)
    body = attrs.evolve(honest.body, grant=sign_grant(FOUNDER.key, fake))
    assert "handshake proof" in _refused(roster, sign_member(ALICE.key, body)).detail
    # A grant for another candidate, or re-signed by someone else, or a tampered one.
    other = admission(ALICE, CAROL, HIVE, at_ms=4_000).body.grant
    body = attrs.evolve(honest.body, grant=other)
    assert "another candidate" in _refused(roster, sign_member(ALICE.key, body)).detail
    tampered = attrs.evolve(honest.body.grant, body=attrs.evolve(fake, use=2, max_uses=2))
    body = attrs.evolve(honest.body, grant=tampered)
    assert "grant signature" in _refused(roster, sign_member(ALICE.key, body)).detail
    assert roster.apply(honest).status is Applied.NEW


def test_an_admission_follows_its_grant_closely() -> None:
    roster = _with_alice()
    grant = grant_of(FOUNDER, ALICE, BOB, HIVE, at_ms=4_000)
    late = sign_member(
        ALICE.key,
        attrs.evolve(
            admission(ALICE, BOB, HIVE, at_ms=4_000).body,
            admitted_ms=4_000 + GRANT_TTL_MS + 1,
            grant=grant,
        ),
    )
    error = _refused(roster, late)
    assert error.reason == errors.BAD_RECORD
    assert "within" in error.detail
    early = sign_member(ALICE.key, attrs.evolve(late.body, admitted_ms=3_999))
    assert _refused(roster, early).reason == errors.BAD_RECORD


def test_one_ticket_use_admits_one_node() -> None:
    ticket = b"\x42" * 16
    roster = _roster(FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000, ticket_id=ticket))
    again = admission(FOUNDER, BOB, HIVE, at_ms=4_000, ticket_id=ticket)  # the same use 1
    assert _refused(roster, again).reason == errors.TICKET_EXHAUSTED
    second = admission(FOUNDER, BOB, HIVE, at_ms=4_000, ticket_id=ticket, use=2)
    assert roster.apply(second).status is Applied.NEW


def test_the_issuer_must_be_an_admin_at_the_time() -> None:
    roster = _roster(
        FOUNDED,
        admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN),
        admission(FOUNDER, BOB, HIVE, at_ms=3_500),
    )
    assert roster.apply(admission(BOB, CAROL, HIVE, at_ms=4_000, issuer=ALICE)).landed
    assert _refused(roster, admission(BOB, DAVE, HIVE, at_ms=4_100, issuer=BOB)).reason == (
        errors.NOT_ADMIN
    )


# --- a revoked key cannot act in the past ---------------------------------------------------------


def _alice_admin_admitted_bob() -> tuple[Roster, RosterRecord, RosterRecord]:
    alice = admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN)
    bob = admission(ALICE, BOB, HIVE, at_ms=4_000, issuer=ALICE)
    roster = _roster(FOUNDED, alice, bob)
    kept = roster.authority_records(ALICE.node_id)
    assert kept == (record_hash(bob),)
    out = revoke(FOUNDER, ALICE, HIVE, at_ms=10_000, kept=kept)
    return roster, bob, out


def test_a_revoked_admin_cannot_admit_with_back_dated_records() -> None:
    roster, bob, out = _alice_admin_admitted_bob()
    assert roster.apply(out).status is Applied.NEW
    # After her revocation, Alice signs a ticket-use grant and an admission dated before it.
    back_dated = admission(ALICE, MALLORY, HIVE, at_ms=5_000, issuer=ALICE)
    error = _refused(roster, back_dated)
    assert error.reason == errors.REVOKED
    assert "not kept" in error.detail
    # What she did before, as the revoker knew it, stays.
    assert roster.status(BOB.node_id) is MemberStatus.ACTIVE
    assert bob in roster.records()


def test_a_back_dated_admission_that_arrived_first_is_dropped_by_the_revoke() -> None:
    roster, _bob, out = _alice_admin_admitted_bob()
    back_dated = admission(ALICE, MALLORY, HIVE, at_ms=5_000, issuer=ALICE)
    assert roster.apply(back_dated).status is Applied.NEW  # not revoked yet, here
    result = roster.apply(out)
    assert result.dropped == (back_dated,)
    assert roster.status(MALLORY.node_id) is MemberStatus.UNKNOWN
    assert roster.status(BOB.node_id) is MemberStatus.ACTIVE


def test_a_revoked_member_cannot_admit_back_dated_even_with_an_honest_grant() -> None:
    # Bob, a plain member, got a grant from the founder before he was revoked; afterwards he
    # admits with it, dated before his revocation: not kept, so void.
    bob = admission(FOUNDER, BOB, HIVE, at_ms=3_000)
    roster = _roster(FOUNDED, bob)
    out = revoke(FOUNDER, BOB, HIVE, at_ms=10_000, kept=roster.authority_records(BOB.node_id))
    roster.apply(out)
    late = admission(BOB, MALLORY, HIVE, at_ms=9_000)
    assert _refused(roster, late).reason == errors.REVOKED


def test_a_revoked_admin_cannot_escape_with_a_counter_revoke_it_signs_later() -> None:
    roster, _bob, out = _alice_admin_admitted_bob()
    roster.apply(out)
    # Alice revokes the founder "before" he revoked her; she is not active after her
    # revocation, and a revoke dated before it is an act of hers the founder did not keep.
    counter = revoke(ALICE, FOUNDER, HIVE, at_ms=9_000)
    assert _refused(roster, counter).reason == errors.REVOKED
    assert roster.is_admin(FOUNDER.node_id)


def test_the_outcome_does_not_depend_on_arrival_order() -> None:
    _roster, bob, out = _alice_admin_admitted_bob()
    alice = admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN)
    back_dated = admission(ALICE, MALLORY, HIVE, at_ms=5_000, issuer=ALICE)
    records = [FOUNDED, alice, bob, out, back_dated]
    views = set()
    for shift in range(len(records)):
        roster = Roster(GENESIS)
        order = records[shift:] + records[:shift]
        for _round in range(3):
            roster.merge(order)
        views.add((roster.digest(), tuple(sorted(roster.active()))))
    assert len(views) == 1
    ((_digest, active),) = views
    assert MALLORY.node_id not in active
    assert BOB.node_id in active


# --- junk cannot occupy the pending bound for others ----------------------------------------------


def test_junk_from_one_source_does_not_lock_out_another_sources_pending_record() -> None:
    roster = Roster(GENESIS, limits=RosterLimits(max_pending=10))
    roster.apply(FOUNDED)
    strangers = [node(f"junk{i}") for i in range(30)]
    reasons = []
    for stranger in strangers:  # admissions signed and granted by keys nobody admitted
        junk = admission(stranger, stranger, HIVE, at_ms=5_000, issuer=stranger)
        try:
            roster.apply(junk, source="attacker")
        except ProtocolError as exc:
            reasons.append(exc.reason)
    assert reasons == [errors.ROSTER_LIMIT] * 20
    assert roster.pending_count() == 10
    # An honest record that arrived before the admission it depends on still gets in line.
    carol = admission(BOB, CAROL, HIVE, at_ms=6_000)
    assert roster.apply(carol, source="honest").status is Applied.PENDING
    result = roster.apply(admission(FOUNDER, BOB, HIVE, at_ms=5_500), source="honest")
    assert carol in result.landed
    assert roster.status(CAROL.node_id) is MemberStatus.ACTIVE
    assert roster.forget_pending("attacker") == 9
    assert roster.pending_count() == 0


def test_a_revoked_admin_cannot_undo_its_revocation_with_a_later_counter_revoke() -> None:
    alice = admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN)
    roster = _roster(FOUNDED, alice)
    # Alice revokes the founder, keeping what he did (her own admission among it).
    out = revoke(ALICE, FOUNDER, HIVE, at_ms=9_000, kept=roster.authority_records(FOUNDER.node_id))
    assert roster.apply(out).status is Applied.NEW
    # The revoked founder signs a later revoke of Alice that keeps nothing of hers, which would
    # void her revoke of him if it counted.
    counter = revoke(FOUNDER, ALICE, HIVE, at_ms=10_000)
    _refused(roster, counter)
    assert roster.status(FOUNDER.node_id) is MemberStatus.REVOKED
    assert roster.is_admin(ALICE.node_id)
    # Whatever order the two arrive in.
    other = Roster(GENESIS)
    other.merge([FOUNDED, alice, counter])
    other.merge([out])
    assert other.digest() == roster.digest()
