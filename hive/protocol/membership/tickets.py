"""The ticket string: one compact, copy-pasteable, checksummed line.

Format: ``"hive1"`` followed by lowercase RFC 4648 base32, without padding, of::

    CBOR(Ticket) || SHA-256(CBOR(Ticket))[0:4]

Parsing ignores whitespace (a string pasted across lines still parses) and letter case, then
checks, each with its own detail under the reason "bad-ticket": the prefix, the alphabet, the
length, the checksum (a typo gives "checksum mismatch"), and finally the CBOR and the fields.
The signature is not checked here (see :func:`hive.protocol.membership.pki.verify_ticket`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import cattrs
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from hive.protocol.errors import BAD_TICKET, ProtocolError
from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.membership.records import Ticket
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER, wire_bounds

PREFIX = "hive1"
CHECKSUM_LEN = 4
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_MAX_CHARS = 1200  # a valid ticket is at most ~700 characters
_BAD_LENGTHS = frozenset({1, 3, 6})  # base32 text lengths (mod 8) no byte string encodes to


def encode_ticket(ticket: Ticket) -> str:
    """The ticket string of ``ticket``."""
    raw = canonical_bytes(ticket)
    data = raw + hashlib.sha256(raw).digest()[:CHECKSUM_LEN]
    return PREFIX + base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _fail(detail: str) -> ProtocolError:
    return ProtocolError(BAD_TICKET, detail)


def decode_ticket(text: str) -> Ticket:
    """Parse a ticket string (see the module doc); raise ProtocolError "bad-ticket" only."""
    if type(text) is not str:
        raise _fail(f"expected text, got {type(text).__name__}")
    compact = "".join(text.split()).lower()
    if not compact.startswith(PREFIX):
        raise _fail(f"not a ticket: it must start with {PREFIX!r}")
    body = compact[len(PREFIX) :]
    if len(body) > _MAX_CHARS:
        raise _fail(f"too long: {len(body)} characters after the prefix, at most {_MAX_CHARS}")
    for index, char in enumerate(body):
        if char not in _ALPHABET:
            raise _fail(
                f"invalid character {char!r} at position {index + len(PREFIX)} "
                "(base32 uses a-z and 2-7)"
            )
    if len(body) % 8 in _BAD_LENGTHS or len(body) < 8:
        raise _fail(f"truncated or damaged: {len(body)} characters cannot be a ticket")
    try:
        data = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except binascii.Error as exc:  # pragma: no cover - the checks above leave nothing invalid
        raise _fail(f"not base32: {exc}") from exc
    raw, checksum = data[:-CHECKSUM_LEN], data[-CHECKSUM_LEN:]
    # A change in the unused low bits of the last character decodes to the same bytes: refuse
    # it like any other typo, so exactly one string denotes each ticket.
    canonical = base64.b32encode(data).decode("ascii").rstrip("=").lower()
    if hashlib.sha256(raw).digest()[:CHECKSUM_LEN] != checksum or canonical != body:
        raise _fail("checksum mismatch: the ticket was altered or mistyped")
    try:
        value = cbor.decode(raw, max_items=wire_bounds(Ticket).max_items)
    except ProtocolError as exc:
        raise _fail(f"{exc.reason}: {exc.detail}") from exc
    try:
        ticket: Ticket = CONVERTER.structure(value, Ticket)
    except BaseValidationError as exc:
        raise _fail("; ".join(cattrs.transform_error(exc, path="$"))) from exc
    except (TypeError, ValueError, KeyError, ForbiddenExtraKeysError) as exc:
        raise _fail(str(exc)) from exc
    return ticket
