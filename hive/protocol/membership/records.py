"""Membership records and message kinds 0x0020..0x002B (issue 3: membership and PKI).

Records are nested structures (frozen attrs :class:`Record` subclasses); messages are registered
in the one :data:`hive.protocol.messages.REGISTRY`. Every field is bounded; see docs/PROTOCOL.md
section 10 for the meaning of each field and the signed texts. Verification lives in
:mod:`hive.protocol.membership.pki`, the ticket string in
:mod:`hive.protocol.membership.tickets`, the member set in
:mod:`hive.protocol.membership.roster`; :mod:`hive.protocol.membership` re-exports all of them.
"""

from __future__ import annotations

import attrs

from hive.protocol.messages import Message, Record, message
from hive.protocol.wire.fields import (
    between,
    boolean,
    byte_len,
    exact_bytes,
    nullable,
    record_of,
    seq_of,
    text_len,
    u,
)

NODE_ID_LEN = 33  # compressed secp256k1 public key
KEY_LEN = 32  # Ed25519 public key (a "hive key")
HIVE_ID_LEN = 32
SIGNATURE_LEN = 64  # Ed25519 signature
SESSION_LEN = 16
TICKET_ID_LEN = 16
NONCE_LEN = 32
NODE_SIG_MAX = 160  # z-base-32 signmessage signature (104 characters in practice)
MAX_TICKET_USES = 1000
MAX_SYNC_RECORDS = 500  # members and exits per Welcome / RosterSync
MAX_KEPT = 2 * MAX_SYNC_RECORDS  # records a revoke keeps in force
HASH_LEN = 32  # SHA-256: a record's identity

ROLE_MEMBER = 0
ROLE_ADMIN = 1
EXIT_LEAVE = 0
EXIT_REVOKE = 1


@attrs.frozen
class Genesis(Record):
    """The founding statement of a hive, signed by the founder's node key (see genesis_text)."""

    name: str = attrs.field(validator=text_len(64))
    node_id: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    hive_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    created_ms: int = attrs.field(validator=u(64))
    node_sig: str = attrs.field(validator=text_len(NODE_SIG_MAX))


@attrs.frozen
class Certificate(Record):
    """A node key's statement that ``hive_key`` speaks for ``node_id`` in hive ``hive_id``."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    node_id: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    hive_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    node_sig: str = attrs.field(validator=text_len(NODE_SIG_MAX))


@attrs.frozen
class Manifest(Record):
    """What a candidate claims about itself; the member checks what it can observe."""

    node_version: str = attrs.field(validator=text_len(64))
    hive_version: str = attrs.field(validator=text_len(32))
    features: bytes = attrs.field(validator=byte_len(0, 64))  # init feature bits, big-endian
    splicing: bool = attrs.field(validator=boolean())
    channels: int = attrs.field(validator=u(32))
    capacity_sat: int = attrs.field(validator=u(64))
    public: bool = attrs.field(validator=boolean())


@attrs.frozen
class TicketBody(Record):
    """The signed content of an invitation ticket."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    ticket_id: bytes = attrs.field(validator=exact_bytes(TICKET_ID_LEN))
    issuer_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    issuer_node: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    issued_ms: int = attrs.field(validator=u(64))
    expires_ms: int = attrs.field(validator=u(64))
    max_uses: int = attrs.field(validator=between(1, MAX_TICKET_USES))
    req_splice: bool = attrs.field(validator=boolean())
    min_version: str = attrs.field(validator=text_len(32))  # "" = no requirement
    for_node: bytes | None = attrs.field(validator=nullable(exact_bytes(NODE_ID_LEN)))


@attrs.frozen
class Ticket(Record):
    """A ticket body and the issuer's hive-key signature over it."""

    body: TicketBody = attrs.field(validator=record_of(TicketBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


@attrs.frozen
class GrantBody(Record):
    """A ticket issuer's grant of one use of its ticket: to ``candidate`` (node id and hive
    key), through the handshake that member ``member_node`` / ``member_key`` ran with it.

    ``nonce`` and ``node_sig`` are that handshake's proof: the candidate's node key signed
    ``challenge_text(hive_id, member_node, nonce)``. ``use`` is the use number (1-based) the
    issuer counted for this candidate, out of ``max_uses``.
    """

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    ticket_id: bytes = attrs.field(validator=exact_bytes(TICKET_ID_LEN))
    issuer_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    use: int = attrs.field(validator=between(1, MAX_TICKET_USES))
    max_uses: int = attrs.field(validator=between(1, MAX_TICKET_USES))
    candidate: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    candidate_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    member_node: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    member_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    granted_ms: int = attrs.field(validator=u(64))
    nonce: bytes = attrs.field(validator=exact_bytes(NONCE_LEN))
    node_sig: str = attrs.field(validator=text_len(NODE_SIG_MAX))


@attrs.frozen
class Grant(Record):
    """A grant body signed by the ticket issuer's hive key ``body.issuer_key``."""

    body: GrantBody = attrs.field(validator=record_of(GrantBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


@attrs.frozen
class MemberBody(Record):
    """Admission of ``cert.node_id``; ``grant`` (the issuer's grant of a ticket use) is None
    only for the founder."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    cert: Certificate = attrs.field(validator=record_of(Certificate))
    role: int = attrs.field(validator=between(ROLE_MEMBER, ROLE_ADMIN))
    admitted_by: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    admitted_ms: int = attrs.field(validator=u(64))
    grant: Grant | None = attrs.field(validator=nullable(record_of(Grant)))


@attrs.frozen
class MemberRecord(Record):
    """A member body signed by the hive key ``body.admitted_by``."""

    body: MemberBody = attrs.field(validator=record_of(MemberBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


@attrs.frozen
class ExitBody(Record):
    """A leave (kind 0, by the leaver's own key) or a revoke (kind 1, by an admin's key)."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    node_id: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    by_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    at_ms: int = attrs.field(validator=u(64))
    kind: int = attrs.field(validator=between(EXIT_LEAVE, EXIT_REVOKE))
    reason: str = attrs.field(validator=text_len(200))
    # A revoke: the hashes of the records made on the revoked member's authority (admissions it
    # signed or granted, revokes it signed) that stay in force; empty for a leave.
    kept: tuple[bytes, ...] = attrs.field(validator=seq_of(MAX_KEPT, exact_bytes(HASH_LEN)))


@attrs.frozen
class ExitRecord(Record):
    """An exit body signed by the hive key ``body.by_key``."""

    body: ExitBody = attrs.field(validator=record_of(ExitBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


RosterRecord = MemberRecord | ExitRecord

# ---------------------------------------------------------------------------------------------
# Kinds 0x0020..0x002F: membership. Numbers are permanent.


@message(kind=0x0020)
@attrs.frozen
class Hello(Message):
    """Candidate -> member: opens join session ``session`` (chosen at random by the candidate)."""

    session: bytes = attrs.field(validator=exact_bytes(SESSION_LEN))
    ticket: Ticket = attrs.field(validator=record_of(Ticket))
    cert: Certificate = attrs.field(validator=record_of(Certificate))
    manifest: Manifest = attrs.field(validator=record_of(Manifest))


@message(kind=0x0021)
@attrs.frozen
class Challenge(Message):
    """Member -> candidate: a fresh nonce for the candidate's node key to sign."""

    session: bytes = attrs.field(validator=exact_bytes(SESSION_LEN))
    nonce: bytes = attrs.field(validator=exact_bytes(NONCE_LEN))


@message(kind=0x0022)
@attrs.frozen
class ChallengeAnswer(Message):
    """Candidate -> member: the node-key signature of challenge_text (the frame's hive-key
    signature is the other half of the proof)."""

    session: bytes = attrs.field(validator=exact_bytes(SESSION_LEN))
    nonce: bytes = attrs.field(validator=exact_bytes(NONCE_LEN))
    node_sig: str = attrs.field(validator=text_len(NODE_SIG_MAX))


@message(kind=0x0023)
@attrs.frozen
class Welcome(Message):
    """Member -> candidate: the new member's record and the roster it joins."""

    session: bytes = attrs.field(validator=exact_bytes(SESSION_LEN))
    record: MemberRecord = attrs.field(validator=record_of(MemberRecord))
    genesis: Genesis = attrs.field(validator=record_of(Genesis))
    members: tuple[MemberRecord, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_RECORDS, record_of(MemberRecord))
    )
    exits: tuple[ExitRecord, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_RECORDS, record_of(ExitRecord))
    )


@message(kind=0x0024)
@attrs.frozen
class Refuse(Message):
    """Member -> candidate: the join is refused; ``reason`` is a code (docs/PROTOCOL.md)."""

    session: bytes = attrs.field(validator=exact_bytes(SESSION_LEN))
    reason: str = attrs.field(validator=text_len(32))
    detail: str = attrs.field(validator=text_len(200))


@message(kind=0x0025)
@attrs.frozen
class TicketClaim(Message):
    """Member -> ticket issuer: count one use of ``ticket`` for the candidate of ``cert``,
    who answered this member's challenge ``nonce`` with ``node_sig`` (the proof the issuer
    checks before it counts anything, and puts in its grant)."""

    claim_id: bytes = attrs.field(validator=exact_bytes(16))
    ticket: Ticket = attrs.field(validator=record_of(Ticket))
    cert: Certificate = attrs.field(validator=record_of(Certificate))
    nonce: bytes = attrs.field(validator=exact_bytes(NONCE_LEN))
    node_sig: str = attrs.field(validator=text_len(NODE_SIG_MAX))


@message(kind=0x0026)
@attrs.frozen
class TicketClaimResult(Message):
    """Issuer -> member: the claim ``claim_id`` was granted (``grant`` is the signed grant),
    or denied with a reason code (``grant`` None)."""

    claim_id: bytes = attrs.field(validator=exact_bytes(16))
    ticket_id: bytes = attrs.field(validator=exact_bytes(TICKET_ID_LEN))
    granted: bool = attrs.field(validator=boolean())
    reason: str = attrs.field(validator=text_len(32))
    grant: Grant | None = attrs.field(validator=nullable(record_of(Grant)))


@message(kind=0x0027)
@attrs.frozen
class MemberAnnounce(Message):
    """A new membership record, flooded to every member."""

    record: MemberRecord = attrs.field(validator=record_of(MemberRecord))


@message(kind=0x0028)
@attrs.frozen
class ExitAnnounce(Message):
    """A leave or revoke record, flooded to every member."""

    record: ExitRecord = attrs.field(validator=record_of(ExitRecord))


@message(kind=0x0029)
@attrs.frozen
class RosterDigest(Message):
    """A member's roster digest (see Roster.digest); a differing digest asks for a RosterSync."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    digest: bytes = attrs.field(validator=exact_bytes(32))
    count: int = attrs.field(validator=u(32))


@message(kind=0x002A)
@attrs.frozen
class RosterSync(Message):
    """Every record a member holds, for a peer whose digest differs."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    genesis: Genesis = attrs.field(validator=record_of(Genesis))
    members: tuple[MemberRecord, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_RECORDS, record_of(MemberRecord))
    )
    exits: tuple[ExitRecord, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_RECORDS, record_of(ExitRecord))
    )


@message(kind=0x002B)
@attrs.frozen
class RecordAck(Message):
    """Member -> the member that announced a record to it: the record (by hash) is stored.

    A leaver keeps announcing its exit until one member acknowledges it, and only then may
    delete its local data."""

    record: bytes = attrs.field(validator=exact_bytes(HASH_LEN))
