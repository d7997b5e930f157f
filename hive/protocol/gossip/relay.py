"""Relaying signed frames between members that are not connected to each other. Sans-I/O.

A relayer forwards an origin's signed frame VERBATIM inside a
:class:`~hive.protocol.gossip.state.Relayed`
message, which the relayer signs as its own frame: the inner frame keeps the origin's
signature, seq and timestamp, so nobody on the way can alter it.

Receiver rule, for a ``Relayed`` that :class:`~hive.protocol.wire.HiveWire` delivered (so the
outer frame, the relayer's, is already verified, fresh and new):

1. :func:`open_relayed` verifies the inner frame (structure and signature), refuses our own
   frame ("own-frame", which is normal: our frame came back round a loop, not misbehaviour),
   refuses a nested ``Relayed`` or a kind that is not relayable ("bad-relay", the relayer's
   fault), then runs the inner ``(origin, seq, timestamp)`` through the SAME
   :class:`~hive.protocol.wire.replay.ReplayGuard` the wire uses (``HiveWire.replay``) and decodes
   the body. A frame arriving over two paths (directly and relayed, or via two relayers) is
   thus refused as "replay" the second time: that is the deduplication by origin and seq. The
   freshness window of the guard also bounds how long a frame can wander.
2. Only when the inner frame was accepted (new) does the receiver forward it onward, with
   :meth:`RelayPolicy.onward_hops` and to :meth:`RelayPolicy.targets`.

A relayable frame the origin sent directly (not wrapped) counts as its first hop: the receiver
forwards it wrapped with ``max_hops - 1`` hops left.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from typing import TypeVar

import attrs

from hive.protocol.errors import BAD_RELAY, ProtocolError
from hive.protocol.gossip.state import MAX_HOPS, Relayed, StateDelta, StateRequest, StateSnapshot
from hive.protocol.messages import REGISTRY, Message
from hive.protocol.wire.envelope import verify_frame
from hive.protocol.wire.facade import Received, accept
from hive.protocol.wire.replay import ReplayGuard

N = TypeVar("N", bound=Hashable)

RELAYABLE: frozenset[type[Message]] = frozenset({StateSnapshot, StateDelta, StateRequest})
"""Kinds that may travel inside :class:`Relayed` (state that concerns the whole fleet, and
requests that must reach an origin we are not connected to)."""

DEFAULT_MAX_HOPS = 4


def wrap(frame: bytes, hops_left: int) -> Relayed:
    """The :class:`Relayed` message carrying ``frame`` verbatim (the caller packs and signs it
    with :meth:`HiveWire.pack`). ValueError/TypeError if ``hops_left`` is not in 1..8 or the
    frame is not of a relayable size."""
    return Relayed(hops_left=hops_left, frame=frame)


def open_relayed(
    relayed: Relayed,
    *,
    peer_id: str,
    relayer: bytes,
    own_key: bytes,
    replay: ReplayGuard,
    now_ms: int,
    relayable: Collection[type[Message]] = RELAYABLE,
) -> Received:
    """Verify, deduplicate and decode the frame inside ``relayed`` (see the module docstring).

    ``peer_id`` is the connected peer that delivered the outer frame and ``relayer`` its
    verified sender (hive key). Returns the inner message as a :class:`Received` whose
    ``sender`` is the origin and whose ``frame`` is the inner frame (to forward onward).

    Raises ProtocolError only. Failures before the inner signature verified, and "bad-relay",
    carry ``sender=relayer`` (the relayer forwarded garbage); later ones (own-frame, unknown
    kind, replay, stale, bad body) carry the origin's key.
    """
    try:
        envelope = verify_frame(relayed.frame)
    except ProtocolError as exc:
        raise exc.with_sender(relayer) from exc
    cls = REGISTRY.by_kind(envelope.kind)
    if cls is Relayed:
        raise ProtocolError(BAD_RELAY, "a Relayed frame inside a Relayed frame", sender=relayer)
    if cls is not None and cls not in relayable:
        raise ProtocolError(BAD_RELAY, f"{cls.__name__} is not relayable", sender=relayer)
    return accept(envelope, peer_id=peer_id, own_key=own_key, replay=replay, now_ms=now_ms)


def _hops(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 1 <= value <= MAX_HOPS:
        raise ValueError(f"{attribute.name} must be in 1..{MAX_HOPS}, got {value!r}")


@attrs.frozen
class RelayPolicy:
    """How far and to whom a new relayable frame is forwarded.

    ``max_hops`` bounds the deliveries of one frame from its origin (the origin's own direct
    send is the first), so a frame reaches every member within ``max_hops`` connection hops
    of its origin; anti-entropy covers members further away.
    """

    max_hops: int = attrs.field(default=DEFAULT_MAX_HOPS, validator=_hops)

    def onward_hops(self, hops_left: int | None) -> int | None:
        """Hops left for forwarding a newly accepted frame, or None: do not forward.

        ``hops_left`` is the received :class:`Relayed`'s, or None when the origin sent the
        frame directly (its first hop).
        """
        remaining = self.max_hops - 1 if hops_left is None else min(hops_left, self.max_hops) - 1
        return remaining if remaining >= 1 else None

    @staticmethod
    def targets(connected: Iterable[N], *, came_from: N, origin: N | None) -> frozenset[N]:
        """Members to forward to: those connected to us, minus the one the frame came from and
        minus its origin (``origin`` is None when the origin's node id is unknown)."""
        return frozenset(peer for peer in connected if peer != came_from and peer != origin)


__all__ = ["DEFAULT_MAX_HOPS", "RELAYABLE", "RelayPolicy", "open_relayed", "wrap"]
