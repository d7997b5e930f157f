"""Records signed by a hive key, shared by every concern whose records anyone may relay and
everyone must check (signed bans, strategy gossip): Ed25519 over a domain tag followed by the
body's canonical CBOR, and a record's identity as the SHA-256 of its canonical bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import nacl.exceptions
import nacl.signing

from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.messages import Record


def record_digest(record: Record) -> bytes:
    """A record's identity: SHA-256 of its canonical bytes (signature included)."""
    return hashlib.sha256(canonical_bytes(record)).digest()


def sign_text(key: nacl.signing.SigningKey, signer: bytes, signed: bytes) -> bytes:
    """Ed25519 signature of ``signed`` by ``key``, which must be the hive key ``signer``."""
    if bytes(key.verify_key) != signer:
        raise ValueError(f"the signing key is not {signer.hex()}")
    return key.sign(signed).signature


def signed_by(public_key: bytes, signed: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature over ``signed``."""
    try:
        nacl.signing.VerifyKey(public_key).verify(signed, signature)
    except nacl.exceptions.CryptoError:
        return False
    return True


def set_digest(tag: bytes, *groups: Iterable[bytes]) -> bytes:
    """SHA-256 over ``tag`` and each group's sorted digests, groups separated by ``|``: the
    repair digest of a set of records (equal sets, equal digests, whatever the order)."""
    h = hashlib.sha256(tag)
    for i, group in enumerate(groups):
        if i:
            h.update(b"|")
        for d in sorted(group):
            h.update(d)
    return h.digest()
