"""The roster: founder, admission chain, exits, pending, dedup, order independence."""

from __future__ import annotations

import contextlib

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol import errors
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    Applied,
    ExitRecord,
    Genesis,
    MemberRecord,
    MemberStatus,
    Roster,
    RosterLimits,
    RosterRecord,
    RosterSync,
    hive_id_of,
    record_hash,
    sign_member,
)

from .membership_helpers import (
    admission,
    founder_record,
    genesis_of,
    leave,
    node,
    refused,
    revoke,
    roster_of,
)

FOUNDER = node("founder")
ALICE = node("alice")
BOB = node("bob")
CAROL = node("carol")
GENESIS = genesis_of(FOUNDER)
HIVE = hive_id_of(GENESIS)
FOUNDED = founder_record(FOUNDER, GENESIS, at_ms=2_000)


def _roster(*records: RosterRecord, limits: RosterLimits | None = None) -> Roster:
    return roster_of(GENESIS, *records, limits=limits)


_refused = refused


def test_forged_genesis_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        Roster(attrs.evolve(GENESIS, name="forged"))
    assert info.value.reason == errors.BAD_GENESIS


def test_founder_is_the_first_admin() -> None:
    roster = Roster(GENESIS)
    assert roster.hive_id == HIVE
    assert roster.status(FOUNDER.node_id) is MemberStatus.UNKNOWN
    result = roster.apply(FOUNDED)
    assert result.status is Applied.NEW
    assert result.landed == (FOUNDED,)
    assert roster.status(FOUNDER.node_id) is MemberStatus.ACTIVE
    assert roster.is_admin(FOUNDER.node_id)
    assert roster.by_hive_key(FOUNDER.hive_key) == FOUNDED
    assert dict(roster.active()) == {FOUNDER.node_id: FOUNDED}


def _ticketless(subject: object, *, role: int) -> MemberRecord:
    """An admission without a ticket, signed by the founder's hive key."""
    if subject is FOUNDER:
        body = attrs.evolve(FOUNDED.body, role=role)
    else:
        body = attrs.evolve(
            admission(FOUNDER, ALICE, HIVE, at_ms=2_000).body, grant=None, role=role
        )
    return sign_member(FOUNDER.key, body)


@pytest.mark.parametrize(
    "record",
    [
        _ticketless(FOUNDER, role=ROLE_MEMBER),  # founder must be admin
        _ticketless(ALICE, role=ROLE_ADMIN),  # only the founder comes in without a ticket
    ],
)
def test_ticketless_admission_must_be_the_founders(record: MemberRecord) -> None:
    assert _refused(Roster(GENESIS), record).reason == errors.BAD_RECORD


def test_second_founder_record_refused() -> None:
    roster = _roster(FOUNDED)
    again = founder_record(FOUNDER, GENESIS, at_ms=9_000)
    assert _refused(roster, again).reason == errors.ALREADY_MEMBER
    roster = _roster(FOUNDED, leave(FOUNDER, HIVE, at_ms=3_000))
    error = _refused(roster, again)
    assert error.reason == errors.BAD_RECORD
    assert "founder" in error.detail


def test_admission_chain() -> None:
    a = admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN)
    b = admission(ALICE, BOB, HIVE, at_ms=4_000)
    c = admission(BOB, CAROL, HIVE, at_ms=5_000)
    roster = _roster(FOUNDED, a, b, c)
    assert set(roster.active()) == {n.node_id for n in (FOUNDER, ALICE, BOB, CAROL)}
    assert roster.is_admin(ALICE.node_id)
    assert not roster.is_admin(BOB.node_id)
    assert roster.by_hive_key(CAROL.hive_key) == c
    assert roster.records() == (FOUNDED, a, b, c)


def test_only_an_admin_grants_admin() -> None:
    roster = _roster(FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000))
    error = _refused(roster, admission(ALICE, BOB, HIVE, at_ms=4_000, role=ROLE_ADMIN))
    assert error.reason == errors.NOT_ADMIN


def test_signer_must_be_active_at_the_time() -> None:
    roster = _roster(
        FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000), leave(ALICE, HIVE, at_ms=4_000)
    )
    assert _refused(roster, admission(ALICE, BOB, HIVE, at_ms=5_000)).reason == errors.NOT_MEMBER
    # Before she was admitted she was not a member either.
    assert _refused(roster, admission(ALICE, BOB, HIVE, at_ms=2_500)).reason == errors.NOT_MEMBER


def test_hive_key_of_an_active_member_cannot_be_reused() -> None:
    roster = _roster(FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000))
    from .membership_helpers import cert_of

    body = attrs.evolve(
        admission(FOUNDER, BOB, HIVE, at_ms=4_000).body,
        cert=cert_of(BOB, HIVE, hive_key=ALICE.hive_key),
    )
    assert _refused(roster, sign_member(FOUNDER.key, body)).reason == errors.BAD_RECORD


def test_unknown_signer_is_pending_until_it_lands() -> None:
    a = admission(FOUNDER, ALICE, HIVE, at_ms=3_000)
    b = admission(ALICE, BOB, HIVE, at_ms=4_000)
    c = admission(BOB, CAROL, HIVE, at_ms=5_000)
    roster = Roster(GENESIS)
    for record in (c, b, a):
        assert roster.apply(record).status is Applied.PENDING
    assert roster.apply(c).status is Applied.PENDING  # still pending, not twice
    assert roster.pending_count() == 3
    assert roster.active() == {}
    result = roster.apply(FOUNDED)
    assert result.status is Applied.NEW
    assert result.landed == (FOUNDED, a, b, c)
    assert roster.pending_count() == 0
    assert len(roster.active()) == 4


def test_exit_of_an_unknown_node_is_pending() -> None:
    roster = _roster(FOUNDED)
    gone = leave(ALICE, HIVE, at_ms=4_000)
    assert roster.apply(gone).status is Applied.PENDING
    result = roster.apply(admission(FOUNDER, ALICE, HIVE, at_ms=3_000))
    assert result.landed[1:] == (gone,)
    assert roster.status(ALICE.node_id) is MemberStatus.LEFT


def test_pending_that_turns_out_invalid_is_forgotten() -> None:
    roster = _roster(FOUNDED)
    # Bob (a plain member to be) grants admin: pending while Bob is unknown, refused once known.
    assert roster.apply(admission(BOB, CAROL, HIVE, at_ms=5_000, role=ROLE_ADMIN)).status is (
        Applied.PENDING
    )
    result = roster.apply(admission(FOUNDER, BOB, HIVE, at_ms=4_000))
    assert len(result.landed) == 1
    assert roster.pending_count() == 0
    assert roster.status(CAROL.node_id) is MemberStatus.UNKNOWN


def test_revoke_is_admin_only() -> None:
    roster = _roster(
        FOUNDED,
        admission(FOUNDER, ALICE, HIVE, at_ms=3_000),
        admission(FOUNDER, BOB, HIVE, at_ms=3_500),
    )
    assert _refused(roster, revoke(ALICE, BOB, HIVE, at_ms=4_000)).reason == errors.NOT_ADMIN
    assert roster.apply(revoke(FOUNDER, BOB, HIVE, at_ms=4_000)).status is Applied.NEW
    assert roster.status(BOB.node_id) is MemberStatus.REVOKED
    assert roster.by_hive_key(BOB.hive_key) is None


def test_leave_must_be_signed_by_the_leaver() -> None:
    roster = _roster(FOUNDED, admission(FOUNDER, ALICE, HIVE, at_ms=3_000))
    forged = leave(ALICE, HIVE, at_ms=4_000)
    from hive.protocol.membership import sign_exit

    by_founder = sign_exit(FOUNDER.key, attrs.evolve(forged.body, by_key=FOUNDER.hive_key))
    assert _refused(roster, by_founder).reason == errors.BAD_RECORD
    assert roster.status(ALICE.node_id) is MemberStatus.ACTIVE


def test_revoked_is_never_readmitted() -> None:
    roster = _roster(
        FOUNDED,
        admission(FOUNDER, ALICE, HIVE, at_ms=3_000),
        revoke(FOUNDER, ALICE, HIVE, at_ms=4_000),
    )
    for at_ms in (5_000, 10**12):
        again = admission(FOUNDER, ALICE, HIVE, at_ms=at_ms, ticket_id=b"\x02" * 16)
        assert _refused(roster, again).reason == errors.REVOKED
    assert _refused(roster, revoke(FOUNDER, ALICE, HIVE, at_ms=6_000)).reason == errors.REVOKED


def test_leave_then_rejoin_with_a_newer_record() -> None:
    first = admission(FOUNDER, ALICE, HIVE, at_ms=3_000)
    gone = leave(ALICE, HIVE, at_ms=4_000)
    roster = _roster(FOUNDED, first, gone)
    assert roster.status(ALICE.node_id) is MemberStatus.LEFT
    # An admission at the very time of the leave is not after it.
    same_time = admission(FOUNDER, ALICE, HIVE, at_ms=4_000, ticket_id=b"\x02" * 16)
    assert _refused(roster, same_time).reason == errors.ALREADY_MEMBER
    back = admission(FOUNDER, ALICE, HIVE, at_ms=4_001, ticket_id=b"\x02" * 16)
    assert roster.apply(back).status is Applied.NEW
    assert roster.status(ALICE.node_id) is MemberStatus.ACTIVE
    assert roster.active()[ALICE.node_id] == back
    assert roster.records() == (FOUNDED, first, gone, back)


def test_duplicates_are_recognized() -> None:
    a = admission(FOUNDER, ALICE, HIVE, at_ms=3_000)
    roster = _roster(FOUNDED, a)
    digest = roster.digest()
    assert roster.apply(a).status is Applied.DUPLICATE
    assert roster.apply(FOUNDED).status is Applied.DUPLICATE
    assert roster.digest() == digest
    assert roster.digest_message().count == 2


def test_late_earlier_revoke_drops_what_relied_on_the_revoked() -> None:
    bob = admission(FOUNDER, BOB, HIVE, at_ms=3_000)
    carol = admission(BOB, CAROL, HIVE, at_ms=5_000)
    roster = _roster(FOUNDED, bob, carol)
    result = roster.apply(revoke(FOUNDER, BOB, HIVE, at_ms=4_000))
    assert result.status is Applied.NEW
    assert result.dropped == (carol,)
    assert roster.status(CAROL.node_id) is MemberStatus.UNKNOWN
    assert roster.status(BOB.node_id) is MemberStatus.REVOKED
    assert carol not in roster.records()


def test_concurrent_double_admission_keeps_the_earlier() -> None:
    alice = admission(FOUNDER, ALICE, HIVE, at_ms=3_000, role=ROLE_ADMIN)
    by_founder = admission(FOUNDER, BOB, HIVE, at_ms=5_000)
    by_alice = admission(ALICE, BOB, HIVE, at_ms=4_000)
    roster = _roster(FOUNDED, alice, by_founder)
    result = roster.apply(by_alice)
    assert result.landed == (by_alice,)
    assert result.dropped == (by_founder,)
    assert roster.active()[BOB.node_id] == by_alice
    assert _refused(roster, by_founder).reason == errors.ALREADY_MEMBER


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            admission(FOUNDER, ALICE, hive_id_of(genesis_of(FOUNDER, name="x")), at_ms=3_000),
            errors.OTHER_HIVE,
        ),
        (
            attrs.evolve(admission(FOUNDER, ALICE, HIVE, at_ms=3_000), signature=bytes(64)),
            errors.BAD_RECORD,
        ),
        (attrs.evolve(leave(ALICE, HIVE, at_ms=3_000), signature=bytes(64)), errors.BAD_RECORD),
    ],
)
def test_invalid_records_refused_even_when_pending_would_fit(
    record: RosterRecord, reason: str
) -> None:
    assert _refused(Roster(GENESIS), record).reason == reason


def test_pending_is_bounded() -> None:
    roster = Roster(GENESIS, limits=RosterLimits(max_pending=2))
    roster.apply(admission(ALICE, BOB, HIVE, at_ms=4_000))
    roster.apply(admission(ALICE, CAROL, HIVE, at_ms=4_000))
    error = _refused(roster, admission(ALICE, node("dave"), HIVE, at_ms=4_000))
    assert error.reason == errors.ROSTER_LIMIT
    assert roster.pending_count() == 2


def test_stored_records_are_bounded() -> None:
    roster = _roster(
        FOUNDED,
        admission(FOUNDER, ALICE, HIVE, at_ms=3_000),
        limits=RosterLimits(max_member_records=2, max_exit_records=1),
    )
    assert (
        _refused(roster, admission(FOUNDER, BOB, HIVE, at_ms=4_000)).reason == errors.ROSTER_LIMIT
    )
    roster.apply(leave(ALICE, HIVE, at_ms=5_000))
    assert _refused(roster, leave(FOUNDER, HIVE, at_ms=6_000)).reason == errors.ROSTER_LIMIT


def test_sync_message_carries_everything_and_merges() -> None:
    records = (
        FOUNDED,
        admission(FOUNDER, ALICE, HIVE, at_ms=3_000),
        leave(ALICE, HIVE, at_ms=4_000),
        admission(FOUNDER, BOB, HIVE, at_ms=5_000),
    )
    roster = _roster(*records)
    sync = roster.sync_message()
    assert isinstance(sync, RosterSync)
    assert (sync.hive_id, sync.genesis) == (HIVE, GENESIS)
    assert len(sync.members) == 3
    assert len(sync.exits) == 1
    other = Roster(sync.genesis)
    merged = other.merge(reversed((*sync.exits, *sync.members)))
    assert merged.refused == ()
    assert merged.pending == 0
    assert set(merged.landed) == set(records)
    assert other.digest() == roster.digest()
    assert other.digest_message() == roster.digest_message()


def test_merge_reports_refusals_without_raising() -> None:
    bad = attrs.evolve(admission(FOUNDER, ALICE, HIVE, at_ms=3_000), signature=bytes(64))
    merged = Roster(GENESIS).merge([FOUNDED, bad])
    assert merged.landed == (FOUNDED,)
    assert [(r, e.reason) for r, e in merged.refused] == [(bad, errors.BAD_RECORD)]


# --- order independence (Hypothesis) -------------------------------------------------------------

NODES = [node(f"n{i}") for i in range(6)]


@st.composite
def histories(draw: st.DrawFn) -> tuple[Genesis, list[RosterRecord]]:
    """An honest history: admissions by active members, leaves, revokes, rejoins."""
    records: list[RosterRecord] = [FOUNDED]
    roles = {FOUNDER: ROLE_ADMIN}
    revoked: set[object] = set()
    now = 2_000
    for step in range(draw(st.integers(min_value=0, max_value=14))):
        now += draw(st.integers(min_value=1, max_value=500))
        active = sorted(roles, key=lambda n: n.name)
        if not active:
            break
        op = draw(st.sampled_from(["admit", "admit", "leave", "revoke"]))
        if op == "admit":
            outside = [n for n in NODES if n not in roles and n not in revoked]
            if not outside:
                continue
            subject = draw(st.sampled_from(outside))
            signer = draw(st.sampled_from(active))
            admins = [n for n in active if roles[n] == ROLE_ADMIN]
            if not admins:
                continue
            issuer = draw(st.sampled_from(admins))
            role = (
                ROLE_ADMIN if roles[signer] == ROLE_ADMIN and draw(st.booleans()) else ROLE_MEMBER
            )
            ticket = bytes([step]) * 16
            records.append(
                admission(
                    signer, subject, HIVE, at_ms=now, role=role, ticket_id=ticket, issuer=issuer
                )
            )
            roles[subject] = role
        elif op == "leave":
            subject = draw(st.sampled_from(active))
            records.append(leave(subject, HIVE, at_ms=now))
            del roles[subject]
        else:
            admins = [n for n in active if roles[n] == ROLE_ADMIN]
            if not admins:
                continue
            by = draw(st.sampled_from(admins))
            subject = draw(st.sampled_from(active))
            # An honest revoker keeps in force what the revoked member did before.
            known = Roster(GENESIS)
            known.merge(records)
            kept = known.authority_records(subject.node_id)
            records.append(revoke(by, subject, HIVE, at_ms=now, kept=kept))
            del roles[subject]
            revoked.add(subject)
    return GENESIS, records


def _converge(genesis: Genesis, order: list[RosterRecord]) -> Roster:
    """Deliver every record, then again (as RosterSync does) until nothing changes."""
    roster = Roster(genesis)
    for _ in range(len(order) + 1):
        before = roster.digest()
        for record in order:
            _try(roster, record)
        if roster.digest() == before:
            break
    return roster


def _try(roster: Roster, record: RosterRecord) -> None:
    with contextlib.suppress(ProtocolError):  # refused now; offered again in the next round
        roster.apply(record)


def _view(roster: Roster) -> tuple[object, ...]:
    statuses = {n.name: roster.status(n.node_id) for n in (*NODES, FOUNDER)}
    return roster.digest(), dict(roster.active()), statuses, set(roster.records())


@settings(max_examples=60, deadline=None)
@given(histories(), st.data())
def test_any_arrival_order_converges_to_the_same_roster(
    history: tuple[Genesis, list[RosterRecord]], data: st.DataObject
) -> None:
    genesis, records = history
    in_order = Roster(genesis)
    for record in records:
        assert in_order.apply(record).status is Applied.NEW
    assert in_order.pending_count() == 0
    shuffled = data.draw(st.permutations(records))
    converged = _converge(genesis, list(shuffled))
    assert _view(converged) == _view(in_order)
    assert converged.pending_count() == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=10, unique=True),
    st.randoms(),
)
def test_digest_depends_only_on_the_set(times: list[int], rnd: object) -> None:
    records: list[RosterRecord] = [FOUNDED]
    for index, at in enumerate(sorted(times)):
        records.append(admission(FOUNDER, NODES[index % len(NODES)], HIVE, at_ms=3_000 + at))
    ok = Roster(genesis_of(FOUNDER))
    first = ok.merge(records)
    shuffled = list(records)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    other = Roster(genesis_of(FOUNDER))
    second = other.merge(shuffled)
    assert ok.digest() == other.digest()
    assert {record_hash(r) for r in first.landed} == {record_hash(r) for r in second.landed}
    assert len(first.refused) == len(second.refused)
    assert all(isinstance(r, MemberRecord | ExitRecord) for r in ok.records())
