"""Signing and verifying ban records (Ed25519 over domain-separated canonical CBOR)."""

from __future__ import annotations

import hashlib

import nacl.signing

from hive.protocol.bans.records import Ban, BanBody, Unban, UnbanBody
from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.signed import record_digest, sign_text, signed_by

BAN_DOMAIN = b"hive/v1/ban"
UNBAN_DOMAIN = b"hive/v1/unban"


def ban_digest(ban: Ban) -> bytes:
    """A ban's identity: SHA-256 of its canonical bytes (signature included)."""
    return record_digest(ban)


def unban_digest(unban: Unban) -> bytes:
    return record_digest(unban)


def sign_ban(key: nacl.signing.SigningKey, body: BanBody) -> Ban:
    return Ban(body=body, signature=sign_text(key, body.issuer, BAN_DOMAIN + canonical_bytes(body)))


def sign_unban(key: nacl.signing.SigningKey, body: UnbanBody) -> Unban:
    signature = sign_text(key, body.by_key, UNBAN_DOMAIN + canonical_bytes(body))
    return Unban(body=body, signature=signature)


def ban_signed(ban: Ban) -> bool:
    return signed_by(ban.body.issuer, BAN_DOMAIN + canonical_bytes(ban.body), ban.signature)


def unban_signed(unban: Unban) -> bool:
    return signed_by(unban.body.by_key, UNBAN_DOMAIN + canonical_bytes(unban.body), unban.signature)


def evidence_digest(canonical_evidence: bytes) -> bytes:
    return hashlib.sha256(canonical_evidence).digest()
