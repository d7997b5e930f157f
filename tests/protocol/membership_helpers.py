"""Builders for membership tests: real secp256k1 node keys and Ed25519 hive keys."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import attrs
import nacl.signing

from hive.protocol import lnsig
from hive.protocol.membership import (
    EXIT_LEAVE,
    EXIT_REVOKE,
    ROLE_ADMIN,
    ROLE_MEMBER,
    Certificate,
    ExitBody,
    ExitRecord,
    Genesis,
    Manifest,
    MemberBody,
    MemberRecord,
    Ticket,
    TicketBody,
    cert_text,
    genesis_text,
    hive_id_of,
    sign_exit,
    sign_member,
    sign_ticket,
)

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
        ticket_id=None,
    )
    return sign_member(founder.key, body)


def admission(
    signer: Node,
    subject: Node,
    hive_id: bytes,
    *,
    at_ms: int,
    role: int = ROLE_MEMBER,
    ticket_id: bytes = b"\x01" * 16,
) -> MemberRecord:
    body = MemberBody(
        hive_id=hive_id,
        cert=cert_of(subject, hive_id),
        role=role,
        admitted_by=signer.hive_key,
        admitted_ms=at_ms,
        ticket_id=ticket_id,
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
    )
    return sign_exit(subject.key, body)


def revoke(by: Node, subject: Node, hive_id: bytes, *, at_ms: int) -> ExitRecord:
    body = ExitBody(
        hive_id=hive_id,
        node_id=subject.node_id,
        by_key=by.hive_key,
        at_ms=at_ms,
        kind=EXIT_REVOKE,
        reason="misbehaved",
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
