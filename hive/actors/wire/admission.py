"""Admission before replay: the transport asks who the members are before a frame is decoded.

A verified frame carries its sender's hive key and its kind in clear. Before the replay guard
records anything, :func:`gate` refuses a frame whose claimed sender is not an active member's
key, unless its kind is one of the join handshake's (the only kinds non-members may send). So
an outsider's frames never enter the replay state except as handshakes, and those land in the
outsiders' partition of the guard (:func:`is_member_key`), which members' state does not share;
likewise their partial fragmented messages are charged to the outsiders' reassembly pool
(:func:`is_member_peer`), which members' reassembly does not share.
The full check on the decoded message (the member's own connection, "key-mismatch") stays
:meth:`Membership.admit`.
"""

from __future__ import annotations

from collections.abc import Callable

from hive.actors.membership.roster import HANDSHAKE_KINDS, Membership
from hive.actors.wire.transport import Transport
from hive.protocol.errors import NOT_MEMBER, REVOKED
from hive.protocol.membership import MemberStatus
from hive.protocol.messages import REGISTRY
from hive.protocol.wire.facade import Envelope

_OPEN_KINDS = frozenset(REGISTRY.kind_of(cls) for cls in HANDSHAKE_KINDS)


def is_member_key(membership: Membership) -> Callable[[bytes], bool]:
    """True for the hive key of an active member (read from the roster as it is now)."""

    def check(hive_key: bytes) -> bool:
        roster = membership.roster
        return roster is not None and roster.by_hive_key(hive_key) is not None

    return check


def is_member_peer(membership: Membership) -> Callable[[str], bool]:
    """True for the node id (hex) of an active member: its connection's partial fragmented
    messages are charged to the members' reassembly pool."""

    def check(peer_id: str) -> bool:
        roster = membership.roster
        if roster is None:
            return False
        try:
            node_id = bytes.fromhex(peer_id)
        except ValueError:
            return False
        return roster.status(node_id) is MemberStatus.ACTIVE

    return check


def gate(membership: Membership) -> Callable[[str, Envelope], str | None]:
    """Why a verified frame must be refused before its replay check, or None."""
    member = is_member_key(membership)

    def check(peer_id: str, envelope: Envelope) -> str | None:
        if envelope.kind in _OPEN_KINDS or member(envelope.sender):
            return None
        roster = membership.roster
        if roster is not None and roster.status(bytes.fromhex(peer_id)) is MemberStatus.REVOKED:
            # It may not know it was revoked (offline then): membership tells it, at most
            # once per sync interval, since its frames never reach the actor from here.
            membership.exits.heard_from_revoked(peer_id)
            return REVOKED
        return NOT_MEMBER

    return check


def wire_admission(transport: Transport, membership: Membership) -> None:
    """Let ``membership`` decide who may talk to us, before and after decoding."""
    transport.set_members(
        is_member_key=is_member_key(membership),
        is_member_peer=is_member_peer(membership),
        gate=gate(membership),
    )
    transport.set_admission(membership.admit)
