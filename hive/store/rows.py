"""Typed rows the store returns: frozen attrs classes, never raw tuples or dicts."""

from __future__ import annotations

from typing import Literal

import attrs

RecordKind = Literal["member", "exit"]
RECORD_KINDS: frozenset[str] = frozenset({"member", "exit"})

RedeemReason = Literal[
    "granted", "already-redeemed-by-this-node", "exhausted", "unknown-ticket", "expired"
]


@attrs.frozen
class StoredRecord:
    """A signed membership record as stored: ``body`` is its encoded bytes, verbatim."""

    hash: bytes
    kind: RecordKind
    subject: str
    body: bytes
    stored_ms: int


@attrs.frozen
class TicketRow:
    """An invite ticket this node issued, with how many times it has been redeemed."""

    ticket_id: bytes
    body: bytes
    issued_ms: int
    expires_ms: int
    max_uses: int
    uses: int


@attrs.frozen
class TicketUse:
    """One redemption of a ticket: which node, when."""

    ticket_id: bytes
    node_id: str
    at_ms: int


@attrs.frozen
class Redeem:
    """The answer to a redemption.

    ``granted`` is True for "granted" and for "already-redeemed-by-this-node" (a retry by the
    same node is idempotent). ``uses`` is the ticket's use count after the call (0 for an
    unknown ticket). ``use`` is the number (1-based) of the use granted to this node, 0 when
    nothing is granted.
    """

    granted: bool
    uses: int
    reason: RedeemReason
    use: int = 0


@attrs.frozen
class PeerSeen:
    """When a peer was last heard from."""

    node_id: str
    last_seen_ms: int
