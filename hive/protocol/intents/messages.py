"""Intent lock message kinds 0x0060..0x0064 (issue 16). Sans-I/O; see docs/PROTOCOL.md,
"Intent locks".

Every kind names its intent by ``intent_id`` (16 bytes, chosen by the holder) and repeats the
``target`` so a receiver can file it without holding the intent. The holder is the frame's
signer (its hive key); nothing here trusts a field to say who sent it.
"""

from __future__ import annotations

import attrs

from hive.protocol.messages import Message, message
from hive.protocol.wire.fields import between, boolean, exact_bytes, text_len, u

INTENT_ID_LEN = 16
NODE_ID_LEN = 33
MAX_KIND_BYTES = 32
MAX_REASON_BYTES = 64
MAX_RESULT_BYTES = 96  # a channel id, txid or short channel id
MIN_LEASE_MS = 10_000
MAX_LEASE_MS = 600_000
MAX_SCORE = 1_000_000_000  # planner score in milli-ppm of the network's demand

KIND_OPEN_CHANNEL = "open-channel"


@message(kind=0x0060)
@attrs.frozen
class Intent(Message):
    """ "I mean to do ``kind`` to ``target``": a request for every member's promise.

    ``lease_ms`` bounds the lock: a receiver holds its promise for ``lease_ms`` from when it
    first received the intent (its own clock, so no clocks are compared); the holder stops
    starting work ``exec_budget`` before its own ``created + lease_ms``. ``score`` is the
    planner's score (tie-break, higher wins)."""

    intent_id: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))
    kind: str = attrs.field(validator=text_len(MAX_KIND_BYTES, min_bytes=1))
    target: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    amount_sat: int = attrs.field(validator=u(64))
    score: int = attrs.field(validator=between(0, MAX_SCORE))
    lease_ms: int = attrs.field(validator=between(MIN_LEASE_MS, MAX_LEASE_MS))


@message(kind=0x0061)
@attrs.frozen
class IntentAck(Message):
    """The sender promises: no other intent for ``target`` gets its promise while this one is
    live (until its abort, its outcome or the lease ends)."""

    intent_id: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))
    target: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))


@message(kind=0x0062)
@attrs.frozen
class IntentNack(Message):
    """The sender cannot promise: it holds a promise for ``held_by`` (another live intent for
    the target, of ``held_score``, by ``held_holder``), or ``reason`` says why not."""

    intent_id: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))
    target: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    reason: str = attrs.field(validator=text_len(MAX_REASON_BYTES, min_bytes=1))
    held_by: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))  # zeros: none
    held_holder: bytes = attrs.field(validator=exact_bytes(32))  # hive key; zeros: none
    held_score: int = attrs.field(validator=between(0, MAX_SCORE))
    held_executing: bool = attrs.field(validator=boolean())


@message(kind=0x0063)
@attrs.frozen
class IntentAbort(Message):
    """The holder gives the intent up before executing; promises for it are released."""

    intent_id: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))
    target: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    reason: str = attrs.field(validator=text_len(MAX_REASON_BYTES, min_bytes=1))


@message(kind=0x0064)
@attrs.frozen
class IntentOutcome(Message):
    """How an executed intent ended (``opened`` with ``result`` = the channel's funding txid or
    channel id, or ``failed`` with ``reason``); ends the lock and its epoch."""

    intent_id: bytes = attrs.field(validator=exact_bytes(INTENT_ID_LEN))
    target: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    opened: bool = attrs.field(validator=boolean())
    result: str = attrs.field(validator=text_len(MAX_RESULT_BYTES))
    reason: str = attrs.field(validator=text_len(MAX_REASON_BYTES))


__all__ = [
    "INTENT_ID_LEN",
    "KIND_OPEN_CHANNEL",
    "MAX_LEASE_MS",
    "MAX_SCORE",
    "MIN_LEASE_MS",
    "Intent",
    "IntentAbort",
    "IntentAck",
    "IntentNack",
    "IntentOutcome",
]
