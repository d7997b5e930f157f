"""Ban records and message kinds 0x0070..0x0073 (issue 12: signed bans).

A :class:`Ban` says: member ``issuer`` (its hive key) bans Lightning node ``peer`` for
``reason``, caught by detection rule ``rule`` on evidence whose SHA-256 is ``evidence_digest``,
until ``expires_ms`` (or for good when ``permanent``, which takes several members' bans; see
:mod:`hive.protocol.bans.book`). An :class:`Unban` lifts one ban, by the ban's issuer or an
admin. Both are signed by the signer's hive key (Ed25519) over a domain-separated canonical
CBOR encoding, so they can be relayed by anyone and verified by everyone. The meaning of each
field and the rules are in docs/PROTOCOL.md ("Signed bans") and docs/REPUTATION.md.
"""

from __future__ import annotations

import attrs

from hive.protocol.messages import Message, Record, message
from hive.protocol.wire.fields import (
    boolean,
    exact_bytes,
    record_of,
    seq_of,
    text_len,
    u,
)

NODE_ID_LEN = 33
KEY_LEN = 32
HIVE_ID_LEN = 32
DIGEST_LEN = 32
SIGNATURE_LEN = 64
MAX_REASON = 200
MAX_RULE = 32
MAX_SYNC_BANS = 256


@attrs.frozen
class BanBody(Record):
    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    reason: str = attrs.field(validator=text_len(MAX_REASON))
    rule: str = attrs.field(validator=text_len(MAX_RULE))
    evidence_digest: bytes = attrs.field(validator=exact_bytes(DIGEST_LEN))
    issuer: bytes = attrs.field(validator=exact_bytes(KEY_LEN))  # the issuer's hive key
    issued_ms: int = attrs.field(validator=u(64))
    expires_ms: int = attrs.field(validator=u(64))
    permanent: bool = attrs.field(validator=boolean())


@attrs.frozen
class Ban(Record):
    """A ban body signed by the hive key ``body.issuer``."""

    body: BanBody = attrs.field(validator=record_of(BanBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


@attrs.frozen
class UnbanBody(Record):
    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    ban_digest: bytes = attrs.field(validator=exact_bytes(DIGEST_LEN))  # ban_digest(the Ban)
    by_key: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    at_ms: int = attrs.field(validator=u(64))


@attrs.frozen
class Unban(Record):
    body: UnbanBody = attrs.field(validator=record_of(UnbanBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


# Kinds 0x0070..0x007F: bans. Numbers are permanent.


@message(kind=0x0070)
@attrs.frozen
class BanAnnounce(Message):
    """A new ban, flooded to every member (each forwards a ban it had not seen)."""

    ban: Ban = attrs.field(validator=record_of(Ban))


@message(kind=0x0071)
@attrs.frozen
class UnbanAnnounce(Message):
    """A lifted ban, flooded like :class:`BanAnnounce`."""

    unban: Unban = attrs.field(validator=record_of(Unban))


@message(kind=0x0072)
@attrs.frozen
class BanDigest(Message):
    """Repair: the digest of the sender's ban book (see BanBook.digest). A member whose book
    differs answers with its :class:`BanSync` (when it holds anything) and, unless
    ``answer`` is set, with its own digest marked ``answer`` so the sender's book comes back;
    an ``answer`` digest is never answered with another digest (no ping-pong)."""

    digest: bytes = attrs.field(validator=exact_bytes(DIGEST_LEN))
    count: int = attrs.field(validator=u(32))
    answer: bool = attrs.field(validator=boolean())


@message(kind=0x0073)
@attrs.frozen
class BanSync(Message):
    """Answer to a differing :class:`BanDigest`: the sender's live bans and unbans."""

    bans: tuple[Ban, ...] = attrs.field(validator=seq_of(MAX_SYNC_BANS, record_of(Ban)))
    unbans: tuple[Unban, ...] = attrs.field(validator=seq_of(MAX_SYNC_BANS, record_of(Unban)))
