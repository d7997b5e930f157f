"""The one exception type of the wire protocol.

Every decode, verify and reassembly path in :mod:`hive.protocol` raises :class:`ProtocolError`
and nothing else, whatever bytes it is fed. The ``reason`` is a short machine-readable code from
:data:`REASONS` (the transport counts rejections by it and logs it); ``detail`` is for humans.
"""

from __future__ import annotations

from hive.errors import HiveError

# Framing (BOLT 1 message, magic, version, layout).
BAD_TYPE = "bad-type"  # BOLT 1 message type is not HIVE_MSG_TYPE
BAD_MAGIC = "bad-magic"
BAD_VERSION = "bad-version"  # a wire version this implementation does not speak
BAD_FRAME_TYPE = "bad-frame-type"
TRUNCATED = "truncated"  # input ends before a declared length / fixed header
BAD_LENGTH = "bad-length"  # declared payload length disagrees with the frame length
TOO_LARGE = "too-large"
# CBOR.
BAD_CBOR = "bad-cbor"  # outside the subset: floats, tags, indefinite lengths, bad UTF-8, ...
NON_CANONICAL = "non-canonical"  # a valid CBOR encoding, but not the deterministic one
DUPLICATE_KEY = "duplicate-key"
TOO_DEEP = "too-deep"
TRAILING_BYTES = "trailing-bytes"
# Messages.
UNKNOWN_KIND = "unknown-kind"
UNKNOWN_FIELD = "unknown-field"
BAD_FIELD = "bad-field"  # missing field, wrong type or out of bounds
# Authenticity and freshness.
BAD_SIGNATURE = "bad-signature"
OWN_FRAME = "own-frame"  # a frame we signed ourselves came back to us
REPLAY = "replay"  # (sender, seq) already accepted
SEQ_TOO_OLD = "seq-too-old"  # seq is below the sender's replay window: cannot tell, so refused
STALE = "stale"  # timestamp older than the accepted age
FUTURE = "future"  # timestamp further ahead than the accepted clock skew
# Fragmentation.
BAD_FRAGMENT = "bad-fragment"  # index >= count, count < 2, empty chunk
FRAGMENT_MISMATCH = "fragment-mismatch"  # fragments of one message disagree (count, chunk)
FRAGMENT_LIMIT = "fragment-limit"  # a reassembly bound was hit
# State gossip (hive.protocol.gossip.state).
DELTA_GAP = "delta-gap"  # a state delta's base_version is not the version held: ask a snapshot
BAD_RELAY = "bad-relay"  # a Relayed frame nests another Relayed or carries a non-relayable kind
# Membership and PKI (hive.protocol.membership and its handshake); also the codes of the
# Refuse message a member sends a candidate.
BAD_GENESIS = "bad-genesis"  # genesis node signature does not verify
BAD_TICKET = "bad-ticket"  # ticket string malformed, or ticket signature/issuer invalid
TICKET_EXPIRED = "ticket-expired"
OTHER_HIVE = "other-hive"  # a ticket, certificate or record of another hive
BAD_CERTIFICATE = "bad-certificate"  # node signature of a certificate does not verify / mismatch
BAD_RECORD = "bad-record"  # member/exit record signature or shape invalid
NOT_ADMIN = "not-admin"  # an admin-only act signed by a non-admin
NOT_MEMBER = "not-member"  # signer or subject not an active member at that time
REVOKED = "revoked"  # the node was revoked; it can never come back
ALREADY_MEMBER = "already-member"  # the node is active already
REQUIREMENT = "requirement"  # the ticket's requirements are not met (for-node, splicing, version)
MANIFEST_LIE = "manifest-lie"  # the probe contradicts the manifest
PROBE_FAILED = "probe-failed"  # the member could not observe the candidate (gone, node error)
BAD_ANSWER = "bad-answer"  # challenge answer does not prove both keys
ROSTER_LIMIT = "roster-limit"  # a roster bound (members, records, pending) was hit
BUSY = "busy"  # too many live handshakes
TIMEOUT = "timeout"  # a handshake step did not complete in time
ISSUER_UNREACHABLE = "issuer-unreachable"  # the ticket issuer did not answer the claim in time
TICKET_EXHAUSTED = "ticket-exhausted"  # every use of the ticket is taken
TICKET_UNKNOWN = "ticket-unknown"  # the issuer does not know the ticket
NOT_ISSUER = "not-issuer"  # the claim went to a node that did not issue the ticket

REASONS: frozenset[str] = frozenset(
    {
        BAD_TYPE,
        BAD_MAGIC,
        BAD_VERSION,
        BAD_FRAME_TYPE,
        TRUNCATED,
        BAD_LENGTH,
        TOO_LARGE,
        BAD_CBOR,
        NON_CANONICAL,
        DUPLICATE_KEY,
        TOO_DEEP,
        TRAILING_BYTES,
        UNKNOWN_KIND,
        UNKNOWN_FIELD,
        BAD_FIELD,
        BAD_SIGNATURE,
        OWN_FRAME,
        REPLAY,
        SEQ_TOO_OLD,
        STALE,
        FUTURE,
        BAD_FRAGMENT,
        FRAGMENT_MISMATCH,
        FRAGMENT_LIMIT,
        BAD_GENESIS,
        BAD_TICKET,
        TICKET_EXPIRED,
        OTHER_HIVE,
        BAD_CERTIFICATE,
        BAD_RECORD,
        NOT_ADMIN,
        NOT_MEMBER,
        REVOKED,
        ALREADY_MEMBER,
        REQUIREMENT,
        MANIFEST_LIE,
        PROBE_FAILED,
        BAD_ANSWER,
        ROSTER_LIMIT,
        BUSY,
        TIMEOUT,
        ISSUER_UNREACHABLE,
        TICKET_EXHAUSTED,
        TICKET_UNKNOWN,
        NOT_ISSUER,
        DELTA_GAP,
        BAD_RELAY,
    }
)


class ProtocolError(HiveError):
    """Bytes from the wire were refused.

    ``reason`` is one of :data:`REASONS`; ``detail`` says what exactly was wrong. ``sender`` is
    the origin's 32-byte hive key when the rejection happened after the frame's signature was
    verified (so the rejection can be attributed to, and counted against, that sender), else None.
    """

    def __init__(self, reason: str, detail: str = "", *, sender: bytes | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown protocol error reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.sender = sender

    def with_sender(self, sender: bytes) -> ProtocolError:
        """A copy of this error attributed to ``sender`` (a verified origin)."""
        return ProtocolError(self.reason, self.detail, sender=sender)
