"""Strategy gossip records and message kinds 0x0080..0x0083 (issue 12: the learning engine).

A member that found a high-yield peer first floods a :class:`StrategyCommit`: a signed
commitment (SHA-256 over a random salt and the canonical bytes of the report) with the time it
was made and the time before which the report will not be revealed. After that exclusivity
delay it floods the :class:`StrategyReport` itself: the report body, the salt and the reveal
time, signed again. Receivers check that the reveal matches a commitment they hold and is not
early (:mod:`hive.protocol.strategy.book`). The report body says, for one outside ``peer``:
the issuer's public channels with it (capacity and fee rates), the volume forwarded out
through them, the fees earned (the yield is fees per sat of capacity) over a stated window,
and how much of that volume came in from each member (``inbound``), which those members can
check against what they forwarded themselves. Fields and rules: docs/PROTOCOL.md
("Strategy gossip"); what can and cannot be verified: docs/REPUTATION.md.
"""

from __future__ import annotations

import attrs

from hive.protocol.messages import Message, Record, message
from hive.protocol.wire.fields import boolean, exact_bytes, record_of, seq_of, text_len, u

NODE_ID_LEN = 33
KEY_LEN = 32
HIVE_ID_LEN = 32
DIGEST_LEN = 32
SALT_LEN = 32
SIGNATURE_LEN = 64
MAX_SCID = 24  # "BLOCKxTXxOUT": at most 8+1+8+1+5 characters; a little room
MAX_CHANNELS = 8
MAX_INBOUND = 32
MAX_SYNC_COMMITS = 256
MAX_SYNC_REPORTS = 128


@attrs.frozen
class ReportedChannel(Record):
    """One of the issuer's public channels with the peer, as the issuer states it."""

    short_channel_id: str = attrs.field(validator=text_len(MAX_SCID, min_bytes=5))
    capacity_sat: int = attrs.field(validator=u(64))
    base_msat: int = attrs.field(validator=u(32))
    ppm: int = attrs.field(validator=u(32))


@attrs.frozen
class InboundShare(Record):
    """Of the volume forwarded out to the peer, what came in through a member's channel."""

    member: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))  # the member's node id
    forwarded_msat: int = attrs.field(validator=u(64))  # what the issuer received from it
    forwards: int = attrs.field(validator=u(32))


@attrs.frozen
class ReportBody(Record):
    """What the commitment binds: the report as it will be revealed."""

    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    issuer: bytes = attrs.field(validator=exact_bytes(KEY_LEN))  # the issuer's hive key
    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    channels: tuple[ReportedChannel, ...] = attrs.field(
        validator=seq_of(MAX_CHANNELS, record_of(ReportedChannel), min_len=1)
    )
    forwarded_msat: int = attrs.field(validator=u(64))  # settled, out through those channels
    forwards: int = attrs.field(validator=u(32))
    earned_msat: int = attrs.field(validator=u(64))  # fees earned on those forwards
    window_start_ms: int = attrs.field(validator=u(64))
    window_end_ms: int = attrs.field(validator=u(64))
    inbound: tuple[InboundShare, ...] = attrs.field(
        validator=seq_of(MAX_INBOUND, record_of(InboundShare))
    )

    @property
    def capacity_sat(self) -> int:
        return sum(c.capacity_sat for c in self.channels)

    @property
    def yield_ppm(self) -> int:
        """Fees earned per sat of capacity over the window, in parts per million."""
        capacity = self.capacity_sat
        return 0 if capacity == 0 else self.earned_msat * 1000 // capacity


@attrs.frozen
class CommitBody(Record):
    hive_id: bytes = attrs.field(validator=exact_bytes(HIVE_ID_LEN))
    issuer: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    commitment: bytes = attrs.field(validator=exact_bytes(DIGEST_LEN))
    issued_ms: int = attrs.field(validator=u(64))
    reveal_not_before_ms: int = attrs.field(validator=u(64))


@attrs.frozen
class StrategyCommit(Record):
    """A commitment signed by the hive key ``body.issuer``."""

    body: CommitBody = attrs.field(validator=record_of(CommitBody))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


@attrs.frozen
class StrategyReport(Record):
    """The reveal: the committed report, its salt and the reveal time, signed by the issuer."""

    body: ReportBody = attrs.field(validator=record_of(ReportBody))
    salt: bytes = attrs.field(validator=exact_bytes(SALT_LEN))
    revealed_ms: int = attrs.field(validator=u(64))
    signature: bytes = attrs.field(validator=exact_bytes(SIGNATURE_LEN))


# Kinds 0x0080..0x0087: strategy gossip. Numbers are permanent; 0x0084..0x0087 are reserved.


@message(kind=0x0080)
@attrs.frozen
class StrategyCommitAnnounce(Message):
    """A new commitment, flooded to every member (each forwards one it had not seen)."""

    commit: StrategyCommit = attrs.field(validator=record_of(StrategyCommit))


@message(kind=0x0081)
@attrs.frozen
class StrategyReportAnnounce(Message):
    """A reveal, flooded like a commitment (later to members in leech standing)."""

    report: StrategyReport = attrs.field(validator=record_of(StrategyReport))


@message(kind=0x0082)
@attrs.frozen
class StrategyDigest(Message):
    """Repair: the digest of the sender's strategy book, answered like BanDigest."""

    digest: bytes = attrs.field(validator=exact_bytes(DIGEST_LEN))
    count: int = attrs.field(validator=u(32))
    answer: bool = attrs.field(validator=boolean())


@message(kind=0x0083)
@attrs.frozen
class StrategySync(Message):
    """Answer to a differing digest: the sender's commitments and the reports it may pass on."""

    commits: tuple[StrategyCommit, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_COMMITS, record_of(StrategyCommit))
    )
    reports: tuple[StrategyReport, ...] = attrs.field(
        validator=seq_of(MAX_SYNC_REPORTS, record_of(StrategyReport))
    )
