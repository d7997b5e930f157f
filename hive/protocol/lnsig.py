"""Lightning's ``signmessage`` format, as Core Lightning and LND implement it.

Pure functions: no I/O, no clock. The format (not in the BOLTs, but shared by CLN, LND, LDK):

* digest = SHA-256(SHA-256(b"Lightning Signed Message:" + text encoded as UTF-8));
* signature = 65 bytes: one header byte ``31 + recovery_id`` (the "compressed key" form of
  Bitcoin's compact signatures), then ``r`` and ``s`` (32 bytes each, big-endian);
* the 65 bytes are written in z-base-32 (104 characters).

Verification recovers the public key from the signature and compares it with the claimed
node id, so a signature alone proves which node wrote a text.
"""

from __future__ import annotations

import hashlib

import coincurve

PREFIX = b"Lightning Signed Message:"
ZBASE32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_ZBASE32_INDEX = {ch: i for i, ch in enumerate(ZBASE32_ALPHABET)}

# Header byte for a compressed key is 31..34; 27..30 (uncompressed form) names the same key, and
# LND's verifier accepts it too, so we do as well. Anything else is malformed.
_HEADER_COMPRESSED = 31
_HEADER_MIN = 27
_HEADER_MAX = 34
_SIGNATURE_LEN = 65


def zbase32_encode(data: bytes) -> str:
    """Encode ``data`` in z-base-32: 5 bits per character, most significant bit first, the last
    group padded with zero bits (no padding characters)."""
    out: list[str] = []
    acc = 0
    nbits = 0
    for byte in data:
        acc = (acc << 8) | byte
        nbits += 8
        while nbits >= 5:
            nbits -= 5
            out.append(ZBASE32_ALPHABET[(acc >> nbits) & 0x1F])
        acc &= (1 << nbits) - 1
    if nbits:
        out.append(ZBASE32_ALPHABET[(acc << (5 - nbits)) & 0x1F])
    return "".join(out)


def zbase32_decode(text: str) -> bytes:
    """Decode canonical z-base-32 text, the exact inverse of :func:`zbase32_encode`.

    Raises ValueError on a character outside the (lowercase) alphabet, on a character that
    starts no byte, or on non-zero padding bits.
    """
    out = bytearray()
    acc = 0
    nbits = 0
    for ch in text:
        value = _ZBASE32_INDEX.get(ch)
        if value is None:
            raise ValueError(f"invalid z-base-32 character {ch!r}")
        acc = (acc << 5) | value
        nbits += 5
        if nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
            acc &= (1 << nbits) - 1
    if nbits >= 5 or acc:
        raise ValueError("non-canonical z-base-32: stray trailing bits")
    return bytes(out)


def message_digest(text: str) -> bytes:
    """The 32-byte digest a Lightning node signs for ``text``."""
    first = hashlib.sha256(PREFIX + text.encode("utf-8")).digest()
    return hashlib.sha256(first).digest()


def sign_message(privkey: bytes, text: str) -> str:
    """Sign ``text`` with the 32-byte secp256k1 secret ``privkey``; returns z-base-32.

    Raises ValueError when ``privkey`` is not a valid secret key.
    """
    key = coincurve.PrivateKey(privkey)
    raw = key.sign_recoverable(message_digest(text), hasher=None)  # r || s || recovery id
    recovery_id = raw[64]
    return zbase32_encode(bytes([_HEADER_COMPRESSED + recovery_id]) + raw[:64])


def recover_node_id(text: str, zbase: str) -> str | None:
    """The node id (66 lowercase hex characters) whose key signed ``text``, or None when the
    signature is malformed in any way. Never raises on untrusted input."""
    try:
        raw = zbase32_decode(zbase)
    except ValueError:
        return None
    if len(raw) != _SIGNATURE_LEN:
        return None
    header = raw[0]
    if not _HEADER_MIN <= header <= _HEADER_MAX:
        return None
    recovery_id = (header - _HEADER_MIN) % 4
    try:
        digest = message_digest(text)
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: no node could have signed it
        return None
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            raw[1:] + bytes([recovery_id]), digest, hasher=None
        )
    except (ValueError, TypeError):  # coincurve: invalid r/s or no key recoverable
        return None
    return str(key.format(compressed=True).hex())


def check_message(text: str, zbase: str, node_id: str) -> bool:
    """True when ``zbase`` is a valid signature of ``text`` by ``node_id`` (hex, any case)."""
    recovered = recover_node_id(text, zbase)
    return recovered is not None and recovered == node_id.lower()


def node_id_from_secret(privkey: bytes) -> str:
    """The node id (compressed public key, hex) of a 32-byte secret."""
    return str(coincurve.PrivateKey(privkey).public_key.format(compressed=True).hex())
