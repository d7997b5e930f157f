"""Membership PKI: the signed texts, record signatures and their pure verification.

Two keys per member: the node's secp256k1 key (signs texts in Lightning's signmessage format,
only through the node; verified here with :mod:`hive.protocol.lnsig`) and the companion's
Ed25519 hive key (signs frames, tickets and records; a ``nacl.signing.SigningKey`` is passed in
where something must be signed). Every verifier either returns the verified object or raises
:class:`ProtocolError` with one specific reason code; nothing here reads a clock or draws
randomness (``now_ms`` is an argument).
"""

from __future__ import annotations

import hashlib
import re

import nacl.exceptions
import nacl.signing

from hive.protocol.errors import (
    BAD_CERTIFICATE,
    BAD_GENESIS,
    BAD_RECORD,
    BAD_TICKET,
    OTHER_HIVE,
    REQUIREMENT,
    TICKET_EXPIRED,
    ProtocolError,
)
from hive.protocol.lnsig import recover_node_id
from hive.protocol.membership.records import (
    HIVE_ID_LEN,
    KEY_LEN,
    NODE_ID_LEN,
    NONCE_LEN,
    Certificate,
    ExitBody,
    ExitRecord,
    Genesis,
    Grant,
    GrantBody,
    Manifest,
    MemberBody,
    MemberRecord,
    Ticket,
    TicketBody,
)
from hive.protocol.messages import Record
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER

HIVE_ID_DOMAIN = b"hive/v1/hive-id"
TICKET_DOMAIN = b"hive/v1/ticket"
MEMBER_DOMAIN = b"hive/v1/member"
EXIT_DOMAIN = b"hive/v1/exit"
GRANT_DOMAIN = b"hive/v1/grant"
GRANT_TTL_MS = 600_000  # an admission is dated at most this long after its grant


def canonical_bytes(record: Record) -> bytes:
    """The deterministic CBOR encoding of a record (the bytes every signature and hash covers)."""
    return cbor.encode(CONVERTER.unstructure(record))


def record_hash(record: Record) -> bytes:
    """SHA-256 of a record's canonical bytes (its identity in a roster)."""
    return hashlib.sha256(canonical_bytes(record)).digest()


def _hex(value: bytes, length: int, what: str) -> str:
    if type(value) is not bytes or len(value) != length:
        raise ValueError(f"{what} must be {length} bytes")
    return value.hex()


# --- signed texts (node key, signmessage) -------------------------------------------------------


def genesis_text(node_id: bytes, hive_key: bytes, created_ms: int, name: str) -> str:
    """``hive-genesis:v1:<node_id>:<hive_key>:<created_ms>:<name>`` (lowercase hex)."""
    node = _hex(node_id, NODE_ID_LEN, "node_id")
    key = _hex(hive_key, KEY_LEN, "hive_key")
    if type(created_ms) is not int or created_ms < 0:
        raise ValueError("created_ms must be a non-negative integer")
    return f"hive-genesis:v1:{node}:{key}:{created_ms}:{name}"


def cert_text(hive_id: bytes, node_id: bytes, hive_key: bytes) -> str:
    """``hive-cert:v1:<hive_id>:<node_id>:<hive_key>`` (lowercase hex)."""
    hive = _hex(hive_id, HIVE_ID_LEN, "hive_id")
    node = _hex(node_id, NODE_ID_LEN, "node_id")
    key = _hex(hive_key, KEY_LEN, "hive_key")
    return f"hive-cert:v1:{hive}:{node}:{key}"


def challenge_text(hive_id: bytes, member_node_id: bytes, nonce: bytes) -> str:
    """``hive-challenge:v1:<hive_id>:<member node_id>:<nonce>`` (lowercase hex).

    The member's node id is in the text, so an answer given to one member is worthless to any
    other; the nonce is fresh per session, so it is worthless later too.
    """
    hive = _hex(hive_id, HIVE_ID_LEN, "hive_id")
    node = _hex(member_node_id, NODE_ID_LEN, "member_node_id")
    fresh = _hex(nonce, NONCE_LEN, "nonce")
    return f"hive-challenge:v1:{hive}:{node}:{fresh}"


def node_signed(text: str, node_sig: str, node_id: bytes) -> bool:
    """True when ``node_sig`` (z-base-32) is ``node_id``'s signmessage signature of ``text``."""
    return recover_node_id(text, node_sig) == node_id.hex()


# --- genesis and certificates -------------------------------------------------------------------


def hive_id_of(genesis: Genesis) -> bytes:
    """The hive id: SHA-256("hive/v1/hive-id" || canonical CBOR of the genesis record)."""
    return hashlib.sha256(HIVE_ID_DOMAIN + canonical_bytes(genesis)).digest()


def verify_genesis(genesis: Genesis) -> bytes:
    """Check the founder's node signature over genesis_text; return the hive id.

    Raises ProtocolError "bad-genesis".
    """
    text = genesis_text(genesis.node_id, genesis.hive_key, genesis.created_ms, genesis.name)
    if not node_signed(text, genesis.node_sig, genesis.node_id):
        raise ProtocolError(
            BAD_GENESIS, f"node signature does not verify for node {genesis.node_id.hex()}"
        )
    return hive_id_of(genesis)


def verify_certificate(cert: Certificate, hive_id: bytes) -> Certificate:
    """Check that ``cert`` belongs to ``hive_id`` and its node signature recovers its node id.

    Raises ProtocolError "other-hive" or "bad-certificate".
    """
    if cert.hive_id != hive_id:
        raise ProtocolError(OTHER_HIVE, f"certificate is for hive {cert.hive_id.hex()}")
    text = cert_text(cert.hive_id, cert.node_id, cert.hive_key)
    if not node_signed(text, cert.node_sig, cert.node_id):
        raise ProtocolError(
            BAD_CERTIFICATE,
            f"node signature does not verify for node {cert.node_id.hex()} "
            f"and hive key {cert.hive_key.hex()}",
        )
    return cert


# --- Ed25519 signatures over records ------------------------------------------------------------


def _check_signer(key: nacl.signing.SigningKey, expected: bytes, what: str) -> None:
    if bytes(key.verify_key) != expected:
        raise ValueError(f"the signing key is not {what} {expected.hex()}")


def _ed25519_ok(public_key: bytes, signed: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(signed, signature)
    except nacl.exceptions.CryptoError:
        return False
    return True


def sign_ticket(key: nacl.signing.SigningKey, body: TicketBody) -> Ticket:
    """Sign ``body`` with the issuer's hive key (ValueError if it is not ``body.issuer_key``)."""
    _check_signer(key, body.issuer_key, "the ticket's issuer_key")
    return Ticket(body=body, signature=key.sign(TICKET_DOMAIN + canonical_bytes(body)).signature)


def verify_ticket(ticket: Ticket, hive_id: bytes, now_ms: int) -> Ticket:
    """Check a ticket's hive, signature and validity period at ``now_ms``.

    Raises ProtocolError "other-hive", "bad-ticket" (signature, or expiry before issue) or
    "ticket-expired" (``now_ms >= expires_ms``). Whether the issuer is an admin, and how many
    uses remain, are for the roster and the issuer to say.
    """
    body = ticket.body
    if body.hive_id != hive_id:
        raise ProtocolError(OTHER_HIVE, f"ticket is for hive {body.hive_id.hex()}")
    if not _ed25519_ok(body.issuer_key, TICKET_DOMAIN + canonical_bytes(body), ticket.signature):
        raise ProtocolError(BAD_TICKET, f"signature does not verify for {body.issuer_key.hex()}")
    if body.expires_ms <= body.issued_ms:
        raise ProtocolError(BAD_TICKET, "ticket expires before it is issued")
    if now_ms >= body.expires_ms:
        raise ProtocolError(
            TICKET_EXPIRED, f"ticket expired at {body.expires_ms} ms, it is {now_ms} ms"
        )
    return ticket


def sign_member(key: nacl.signing.SigningKey, body: MemberBody) -> MemberRecord:
    """Sign an admission (ValueError unless ``key`` is ``body.admitted_by``)."""
    _check_signer(key, body.admitted_by, "admitted_by")
    signature = key.sign(MEMBER_DOMAIN + canonical_bytes(body)).signature
    return MemberRecord(body=body, signature=signature)


def sign_exit(key: nacl.signing.SigningKey, body: ExitBody) -> ExitRecord:
    """Sign a leave or revoke (ValueError unless ``key`` is ``body.by_key``)."""
    _check_signer(key, body.by_key, "by_key")
    return ExitRecord(body=body, signature=key.sign(EXIT_DOMAIN + canonical_bytes(body)).signature)


def sign_grant(key: nacl.signing.SigningKey, body: GrantBody) -> Grant:
    """Sign a ticket-use grant (ValueError unless ``key`` is ``body.issuer_key``)."""
    _check_signer(key, body.issuer_key, "the grant's issuer_key")
    return Grant(body=body, signature=key.sign(GRANT_DOMAIN + canonical_bytes(body)).signature)


def verify_grant(grant: Grant, hive_id: bytes) -> Grant:
    """Check what a grant proves by itself: its hive, the issuer's signature, the use number,
    and the handshake proof (the candidate's node key signed the challenge text of the member
    the grant names, with the grant's nonce).

    Whether the issuer is an admin at the time, and whether the use was granted to another node
    already, are the roster's questions. Raises ProtocolError "other-hive" or "bad-record".
    """
    body = grant.body
    if body.hive_id != hive_id:
        raise ProtocolError(OTHER_HIVE, f"grant is for hive {body.hive_id.hex()}")
    if not _ed25519_ok(body.issuer_key, GRANT_DOMAIN + canonical_bytes(body), grant.signature):
        raise ProtocolError(
            BAD_RECORD, f"grant signature does not verify for {body.issuer_key.hex()}"
        )
    if body.use > body.max_uses:
        raise ProtocolError(BAD_RECORD, f"grant of use {body.use} of a {body.max_uses}-use ticket")
    text = challenge_text(hive_id, body.member_node, body.nonce)
    if not node_signed(text, body.node_sig, body.candidate):
        raise ProtocolError(
            BAD_RECORD,
            f"the grant's handshake proof does not verify for node {body.candidate.hex()}",
        )
    return grant


def verify_member_record(record: MemberRecord, hive_id: bytes) -> MemberRecord:
    """Check what a member record proves by itself: hive, signature, certificate, and for an
    admission with a grant, the grant (see :func:`verify_grant`) and that it is this
    admission's: the same candidate and hive key, the signer is the member the grant names,
    and the admission is dated in ``[granted_ms, granted_ms + GRANT_TTL_MS]``.

    Who may sign it (an active member, an admin for the admin role) and grant it (an active
    admin) is the roster's question. Raises ProtocolError "other-hive", "bad-record" or
    "bad-certificate".
    """
    body = record.body
    if body.hive_id != hive_id:
        raise ProtocolError(OTHER_HIVE, f"member record is for hive {body.hive_id.hex()}")
    if not _ed25519_ok(body.admitted_by, MEMBER_DOMAIN + canonical_bytes(body), record.signature):
        raise ProtocolError(
            BAD_RECORD, f"member record signature does not verify for {body.admitted_by.hex()}"
        )
    verify_certificate(body.cert, hive_id)
    if body.grant is not None:
        grant = verify_grant(body.grant, hive_id).body
        if (grant.candidate, grant.candidate_key) != (body.cert.node_id, body.cert.hive_key):
            raise ProtocolError(BAD_RECORD, "the grant is for another candidate or hive key")
        if grant.member_key != body.admitted_by:
            raise ProtocolError(BAD_RECORD, "the grant names another admitting member")
        if not grant.granted_ms <= body.admitted_ms <= grant.granted_ms + GRANT_TTL_MS:
            raise ProtocolError(
                BAD_RECORD,
                f"admitted at {body.admitted_ms} ms, the grant dates from {grant.granted_ms} ms "
                f"(an admission follows its grant within {GRANT_TTL_MS} ms)",
            )
    return record


def verify_exit_record(record: ExitRecord, hive_id: bytes) -> ExitRecord:
    """Check an exit record's hive and signature. Raises "other-hive" or "bad-record"."""
    body = record.body
    if body.hive_id != hive_id:
        raise ProtocolError(OTHER_HIVE, f"exit record is for hive {body.hive_id.hex()}")
    if not _ed25519_ok(body.by_key, EXIT_DOMAIN + canonical_bytes(body), record.signature):
        raise ProtocolError(
            BAD_RECORD, f"exit record signature does not verify for {body.by_key.hex()}"
        )
    return record


# --- requirements -------------------------------------------------------------------------------

_VERSION = re.compile(r"[vV]?([0-9]{1,9}(?:\.[0-9]{1,9}){0,5})(.*)", re.ASCII | re.DOTALL)
_PRERELEASE = re.compile(r"[-.~_]?(rc|pre|alpha|beta|dev)", re.ASCII | re.IGNORECASE)
_VERSION_PARTS = 6


def version_key(text: str) -> tuple[int, ...]:
    """A sortable key of a dotted numeric version: "25.09" < "v25.09.1"; "v25.09rc2" < "v25.09".

    Accepts an optional leading "v", 1..6 numeric components, then any suffix: a suffix that
    starts with rc/pre/alpha/beta/dev marks a pre-release (below the release), anything else
    (e.g. "-modded", "-12-gabc123") counts as the release. Raises ValueError when no version
    can be read.
    """
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    numbers = [int(part) for part in match.group(1).split(".")]
    numbers += [0] * (_VERSION_PARTS - len(numbers))
    release = 0 if _PRERELEASE.match(match.group(2)) else 1
    return (*numbers, release)


def check_requirements(ticket: Ticket, manifest: Manifest, candidate_node_id: bytes) -> None:
    """Check the ticket's requirements against the candidate and its manifest.

    Raises ProtocolError "requirement" with a detail naming the requirement: "for-node",
    "splicing" or "min-version" (also when either version cannot be parsed).
    """
    body = ticket.body
    if body.for_node is not None and body.for_node != candidate_node_id:
        raise ProtocolError(
            REQUIREMENT,
            f"for-node: the ticket is for node {body.for_node.hex()}, "
            f"not {candidate_node_id.hex()}",
        )
    if body.req_splice and not manifest.splicing:
        raise ProtocolError(REQUIREMENT, "splicing: the ticket requires splicing support")
    if body.min_version:
        try:
            required = version_key(body.min_version)
        except ValueError as exc:
            raise ProtocolError(REQUIREMENT, f"min-version: ticket {exc}") from exc
        try:
            offered = version_key(manifest.node_version)
        except ValueError as exc:
            raise ProtocolError(REQUIREMENT, f"min-version: node {exc}") from exc
        if offered < required:
            raise ProtocolError(
                REQUIREMENT,
                f"min-version: node version {manifest.node_version!r} is below "
                f"{body.min_version!r}",
            )
