"""Builders for membership tests: real secp256k1 node keys and Ed25519 hive keys."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import attrs
import nacl.signing
import pytest

from hive.protocol import lnsig
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    EXIT_LEAVE,
    EXIT_REVOKE,
    ROLE_ADMIN,
    ROLE_MEMBER,
    Applied,
    Certificate,
    ExitBody,
    ExitRecord,
    Genesis,
    Grant,
    GrantBody,
    Manifest,
    MemberBody,
    MemberRecord,
    Roster,
    RosterLimits,
    RosterRecord,
    Ticket,
    TicketBody,
    cert_text,
    challenge_text,
    genesis_text,
    hive_id_of,
    sign_exit,
    sign_member,
    sign_ticket,
)
from hive.protocol.membership.pki import sign_grant

DAY_MS = 86_400_000


@attrs.frozen
class Node:
    """A test node: its node key (secret and id) and its companion's hive key."""

    name: str
    secret: bytes
    node_id: bytes
    key: nacl.signing.SigningKey = attrs.field(eq=False)

    @property
    def hive_key(self) -> bytes:
        return bytes(self.key.verify_key)

    def sign_text(self, text: str) -> str:
        return lnsig.sign_message(self.secret, text)


@functools.cache
def node(name: str) -> Node:
    """A deterministic node called ``name``."""
    secret = hashlib.sha256(b"node:" + name.encode()).digest()
    seed = hashlib.sha256(b"hive:" + name.encode()).digest()
    node_id = bytes.fromhex(lnsig.node_id_from_secret(secret))
    return Node(name, secret, node_id, nacl.signing.SigningKey(seed))


def genesis_of(founder: Node, *, name: str = "test hive", created_ms: int = 1_000) -> Genesis:
    text = genesis_text(founder.node_id, founder.hive_key, created_ms, name)
    return Genesis(
        name=name,
        node_id=founder.node_id,
        hive_key=founder.hive_key,
        created_ms=created_ms,
        node_sig=founder.sign_text(text),
    )


def cert_of(who: Node, hive_id: bytes, *, hive_key: bytes | None = None) -> Certificate:
    key = who.hive_key if hive_key is None else hive_key
    return Certificate(
        hive_id=hive_id,
        node_id=who.node_id,
        hive_key=key,
        node_sig=who.sign_text(cert_text(hive_id, who.node_id, key)),
    )


def founder_record(founder: Node, genesis: Genesis, *, at_ms: int = 2_000) -> MemberRecord:
    hive_id = hive_id_of(genesis)
    body = MemberBody(
        hive_id=hive_id,
        cert=cert_of(founder, hive_id),
        role=ROLE_ADMIN,
        admitted_by=founder.hive_key,
        admitted_ms=at_ms,
        grant=None,
    )
    return sign_member(founder.key, body)


def grant_of(
    issuer: Node,
    member: Node,
    subject: Node,
    hive_id: bytes,
    *,
    at_ms: int,
    ticket_id: bytes | None = None,
    use: int = 1,
    max_uses: int = 1,
    nonce: bytes = b"\x07" * 32,
) -> Grant:
    """``issuer``'s grant of ``use`` of a ticket to ``subject``, through ``member``'s handshake
    (the subject really signs ``member``'s challenge text)."""
    if ticket_id is None:
        ticket_id = hashlib.sha256(b"ticket:" + subject.node_id).digest()[:16]
    body = GrantBody(
        hive_id=hive_id,
        ticket_id=ticket_id,
        issuer_key=issuer.hive_key,
        use=use,
        max_uses=max(use, max_uses),
        candidate=subject.node_id,
        candidate_key=subject.hive_key,
        member_node=member.node_id,
        member_key=member.hive_key,
        granted_ms=at_ms,
        nonce=nonce,
        node_sig=_proof(subject, hive_id, member.node_id, nonce),
    )
    return sign_grant(issuer.key, body)


@functools.cache
def _proof(subject: Node, hive_id: bytes, member_node: bytes, nonce: bytes) -> str:
    return subject.sign_text(challenge_text(hive_id, member_node, nonce))


def admission(
    signer: Node,
    subject: Node,
    hive_id: bytes,
    *,
    at_ms: int,
    role: int = ROLE_MEMBER,
    ticket_id: bytes | None = None,
    issuer: Node | None = None,
    use: int = 1,
) -> MemberRecord:
    """``signer`` admits ``subject`` at ``at_ms`` with a grant by ``issuer`` (the founder
    unless given; the signer itself when it is the founder) of ``use`` of a ticket (by
    default one of its own for the subject)."""
    grant = grant_of(
        issuer or node("founder"),
        signer,
        subject,
        hive_id,
        at_ms=at_ms,
        ticket_id=ticket_id,
        use=use,
    )
    body = MemberBody(
        hive_id=hive_id,
        cert=cert_of(subject, hive_id),
        role=role,
        admitted_by=signer.hive_key,
        admitted_ms=at_ms,
        grant=grant,
    )
    return sign_member(signer.key, body)


def leave(subject: Node, hive_id: bytes, *, at_ms: int, reason: str = "bye") -> ExitRecord:
    body = ExitBody(
        hive_id=hive_id,
        node_id=subject.node_id,
        by_key=subject.hive_key,
        at_ms=at_ms,
        kind=EXIT_LEAVE,
        reason=reason,
        kept=(),
    )
    return sign_exit(subject.key, body)


def revoke(
    by: Node, subject: Node, hive_id: bytes, *, at_ms: int, kept: tuple[bytes, ...] = ()
) -> ExitRecord:
    body = ExitBody(
        hive_id=hive_id,
        node_id=subject.node_id,
        by_key=by.hive_key,
        at_ms=at_ms,
        kind=EXIT_REVOKE,
        reason="misbehaved",
        kept=tuple(sorted(kept)),
    )
    return sign_exit(by.key, body)


def ticket_of(issuer: Node, hive_id: bytes, **changes: Any) -> Ticket:
    """A valid ticket from ``issuer`` (issued at 0, valid one day); ``changes`` edit the body."""
    body = TicketBody(
        hive_id=hive_id,
        ticket_id=hashlib.sha256(b"ticket:" + issuer.node_id).digest()[:16],
        issuer_key=issuer.hive_key,
        issuer_node=issuer.node_id,
        issued_ms=0,
        expires_ms=DAY_MS,
        max_uses=1,
        req_splice=False,
        min_version="",
        for_node=None,
    )
    return sign_ticket(issuer.key, attrs.evolve(body, **changes))


def manifest(**changes: Any) -> Manifest:
    base = Manifest(
        node_version="v25.09",
        hive_version="0.1.0",
        features=bytes.fromhex("08a0000a8a59a1"),
        splicing=True,
        channels=3,
        capacity_sat=3_000_000,
        public=True,
    )
    return attrs.evolve(base, **changes)


def roster_of(
    genesis: Genesis, *records: RosterRecord, limits: RosterLimits | None = None
) -> Roster:
    """A roster of ``genesis`` in which each of ``records`` landed as new, in this order."""
    roster = Roster(genesis, limits=limits)
    for record in records:
        assert roster.apply(record).status is Applied.NEW, record
    return roster


def refused(roster: Roster, record: RosterRecord) -> ProtocolError:
    """The error ``roster`` refuses ``record`` with (checking that nothing was stored)."""
    digest = roster.digest()
    with pytest.raises(ProtocolError) as info:
        roster.apply(record)
    assert roster.digest() == digest
    return info.value
