"""Signing and verifying ban records (Ed25519 over domain-separated canonical CBOR)."""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing

from hive.protocol.bans.records import Ban, BanBody, Unban, UnbanBody
from hive.protocol.membership.pki import canonical_bytes

BAN_DOMAIN = b"hive/v1/ban"
UNBAN_DOMAIN = b"hive/v1/unban"


def ban_digest(ban: Ban) -> bytes:
    """A ban's identity: SHA-256 of its canonical bytes (signature included)."""
    return hashlib.sha256(canonical_bytes(ban)).digest()


def unban_digest(unban: Unban) -> bytes:
    return hashlib.sha256(canonical_bytes(unban)).digest()


def _check_signer(key: nacl.signing.SigningKey, expected: bytes) -> None:
    if bytes(key.verify_key) != expected:
        raise ValueError(f"the signing key is not {expected.hex()}")


def _ok(public_key: bytes, signed: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(signed, signature)
    except nacl.exceptions.CryptoError:
        return False
    return True


def sign_ban(key: nacl.signing.SigningKey, body: BanBody) -> Ban:
    _check_signer(key, body.issuer)
    return Ban(body=body, signature=key.sign(BAN_DOMAIN + canonical_bytes(body)).signature)


def sign_unban(key: nacl.signing.SigningKey, body: UnbanBody) -> Unban:
    _check_signer(key, body.by_key)
    return Unban(body=body, signature=key.sign(UNBAN_DOMAIN + canonical_bytes(body)).signature)


def ban_signed(ban: Ban) -> bool:
    return _ok(ban.body.issuer, BAN_DOMAIN + canonical_bytes(ban.body), ban.signature)


def unban_signed(unban: Unban) -> bool:
    return _ok(unban.body.by_key, UNBAN_DOMAIN + canonical_bytes(unban.body), unban.signature)


def evidence_digest(canonical_evidence: bytes) -> bytes:
    return hashlib.sha256(canonical_evidence).digest()
