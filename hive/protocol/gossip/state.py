"""State gossip: each member's state record, deltas between versions, snapshots, anti-entropy
digests and the relay wrapper. Sans-I/O: no clock, no randomness; versions are arguments.

A member publishes its :class:`MemberState` under a per-member ``version`` that only grows.
Changes go out as a :class:`StateDelta` against the previous version; a receiver that does not
hold exactly ``base_version`` raises ``ProtocolError("delta-gap")`` from :func:`apply` and asks
for a :class:`StateSnapshot` with a :class:`StateRequest`. A delta whose ``version`` equals its
``base_version`` and carries no change is a *keepalive*: it says "my state is still
``version``" and lets a receiver that is behind notice the gap. Neighbours exchange a
:class:`StateDigest` (origin -> version) on connect and periodically; :func:`compare` says what
each side lacks. Frames travel further than one hop inside :class:`Relayed` (see
:mod:`hive.protocol.gossip.relay`).

Canonical form: every tuple of a record is kept sorted (by peer first, then by the remaining
fields), by an attrs converter that runs on construction and on decoding, so two equal states
always encode to the same bytes whatever order their parts were given in. Several topology
edges may name the same peer (one per channel); deltas replace a peer's edges as a group.

Identities: ``origin`` fields and the state's owner are 32-byte hive keys (the frame sender);
peers inside records are 33-byte Lightning node ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from hive.protocol.errors import BAD_FIELD, DELTA_GAP, ProtocolError
from hive.protocol.messages import Message, Record, message
from hive.protocol.wire.envelope import KEY_LEN, MAX_FRAME_LEN, MIN_FRAME_LEN
from hive.protocol.wire.fields import (
    between,
    byte_len,
    exact_bytes,
    nullable,
    record_of,
    seq_of,
    text_len,
    u,
)

NODE_ID_LEN = 33  # compressed secp256k1 public key
MAX_EDGES = 1000  # topology edges (channels) per member
MAX_NOTES = 100  # reputation notes per member
MAX_OPPORTUNITIES = 100  # opportunities per member
MAX_BALANCES = 100  # per-peer surplus/deficit entries per member (rebalancing)
MAX_REASON_BYTES = 32
MAX_ADDRESSES = 4  # "host:port" addresses a member can be reached at
MAX_ADDRESS_BYTES = 100
MAX_DIGEST_ENTRIES = 1000
PPM = 1_000_000
MAX_HOPS = 8  # the most hops a relayed frame may still travel (Relayed.hops_left)
# CBOR overhead of a Relayed body around its frame: map head (1), "frame" key (6), byte-string
# head of up to 1 MiB (5), "hops_left" key (10), hops value (1). The outer frame adds its own
# header and signature (MIN_FRAME_LEN), and the whole must stay within MAX_FRAME_LEN.
RELAYED_BODY_OVERHEAD = 23
MAX_RELAYED_FRAME = MAX_FRAME_LEN - MIN_FRAME_LEN - RELAYED_BODY_OVERHEAD

K = TypeVar("K", bytes, str)


def _sort_records(value: Any, cls: type[Any], key: Callable[[Any], Any]) -> Any:
    """``value`` sorted by ``key`` when it is a tuple of ``cls`` records; anything else is
    returned unchanged, so the field's validator reports it precisely."""
    if type(value) is not tuple or any(type(item) is not cls for item in value):
        return value
    return tuple(sorted(value, key=key))


# ---------------------------------------------------------------------------------------------
# Records


@attrs.frozen
class PeerEdge(Record):
    """One channel of a member: the peer, the channel's capacity and our share of it."""

    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))  # Lightning node id
    capacity_sat: int = attrs.field(validator=u(64))
    local_share_ppm: int = attrs.field(validator=between(0, PPM))  # local balance / capacity


@attrs.frozen
class Liquidity(Record):
    """What a member can move: outbound and inbound over its channels, spare on-chain funds."""

    outbound_msat: int = attrs.field(validator=u(64))
    inbound_msat: int = attrs.field(validator=u(64))
    onchain_sat: int = attrs.field(validator=u(64))


@attrs.frozen
class ReputationNote(Record):
    """A peer the member saw misbehave: what it did (short code) and how often."""

    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    reason: str = attrs.field(validator=text_len(MAX_REASON_BYTES, min_bytes=1))
    count: int = attrs.field(validator=u(32))


@attrs.frozen
class Opportunity(Record):
    """A peer that earned well for the member: fees earned through it and forwards."""

    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    earned_msat: int = attrs.field(validator=u(64))
    forwards: int = attrs.field(validator=u(32))


# --- rebalancing (issue 15): surplus/deficit per direction and own rebalancing totals -------


@attrs.frozen
class ChannelBalance(Record):
    """What a member can spare or lacks with one peer over its forecast horizon, per direction
    (out: local balance toward the peer; in: the peer's side, our inbound)."""

    peer: bytes = attrs.field(validator=exact_bytes(NODE_ID_LEN))
    surplus_out_msat: int = attrs.field(validator=u(64))
    deficit_out_msat: int = attrs.field(validator=u(64))
    surplus_in_msat: int = attrs.field(validator=u(64))
    deficit_in_msat: int = attrs.field(validator=u(64))


@attrs.frozen
class RebalanceTotals(Record):
    """A member's own rebalancing totals since it joined: liquidity it provided to others by
    forwarding their circular payments, liquidity it consumed, fees it paid, moves made."""

    provided_msat: int = attrs.field(validator=u(64))
    consumed_msat: int = attrs.field(validator=u(64))
    fees_paid_msat: int = attrs.field(validator=u(64))
    rebalances: int = attrs.field(validator=u(32))


NO_REBALANCING = RebalanceTotals(provided_msat=0, consumed_msat=0, fees_paid_msat=0, rebalances=0)


def _balances(value: tuple[ChannelBalance, ...]) -> tuple[ChannelBalance, ...]:
    return _sort_records(  # type: ignore[no-any-return]
        value,
        ChannelBalance,
        lambda b: (
            b.peer,
            b.surplus_out_msat,
            b.deficit_out_msat,
            b.surplus_in_msat,
            b.deficit_in_msat,
        ),
    )


def _balances_or_none(
    value: tuple[ChannelBalance, ...] | None,
) -> tuple[ChannelBalance, ...] | None:
    return None if value is None else _balances(value)


# --- end of the rebalancing block ------------------------------------------------------------


# Canonical-order converters (attrs runs them on construction and so on decoding too).


def _edges(value: tuple[PeerEdge, ...]) -> tuple[PeerEdge, ...]:
    return _sort_records(  # type: ignore[no-any-return]
        value, PeerEdge, lambda e: (e.peer, e.capacity_sat, e.local_share_ppm)
    )


def _notes(value: tuple[ReputationNote, ...]) -> tuple[ReputationNote, ...]:
    return _sort_records(  # type: ignore[no-any-return]
        value, ReputationNote, lambda n: (n.peer, n.reason, n.count)
    )


def _notes_or_none(
    value: tuple[ReputationNote, ...] | None,
) -> tuple[ReputationNote, ...] | None:
    return None if value is None else _notes(value)


def _opportunities(value: tuple[Opportunity, ...]) -> tuple[Opportunity, ...]:
    return _sort_records(  # type: ignore[no-any-return]
        value, Opportunity, lambda o: (o.peer, o.earned_msat, o.forwards)
    )


def _opportunities_or_none(
    value: tuple[Opportunity, ...] | None,
) -> tuple[Opportunity, ...] | None:
    return None if value is None else _opportunities(value)


def _peer_set(value: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """Sorted, without repeats: ``removed`` is a set on the wire."""
    if type(value) is not tuple or any(type(item) is not bytes for item in value):
        return value
    return tuple(sorted(set(value)))


def _text_set(value: tuple[str, ...]) -> tuple[str, ...]:
    """Sorted by code point, without repeats: ``addresses`` is a set on the wire."""
    if type(value) is not tuple or any(type(item) is not str for item in value):
        return value
    return tuple(sorted(set(value)))


def _text_set_or_none(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if value is None else _text_set(value)


_ADDRESSES = seq_of(MAX_ADDRESSES, text_len(MAX_ADDRESS_BYTES, min_bytes=1))


@attrs.frozen
class MemberState(Record):
    """A member's whole published state at ``version`` (tuples in canonical order)."""

    version: int = attrs.field(validator=u(64))
    topology: tuple[PeerEdge, ...] = attrs.field(
        converter=_edges, validator=seq_of(MAX_EDGES, record_of(PeerEdge))
    )
    liquidity: Liquidity = attrs.field(validator=record_of(Liquidity))
    reputation: tuple[ReputationNote, ...] = attrs.field(
        converter=_notes, validator=seq_of(MAX_NOTES, record_of(ReputationNote))
    )
    opportunities: tuple[Opportunity, ...] = attrs.field(
        converter=_opportunities,
        validator=seq_of(MAX_OPPORTUNITIES, record_of(Opportunity)),
    )
    # Where the member can be reached ("host:port"), so members without a channel between them
    # can reconnect after a restart.
    addresses: tuple[str, ...] = attrs.field(default=(), converter=_text_set, validator=_ADDRESSES)
    # Rebalancing (issue 15). Required on the wire like every field (the defaults only serve
    # Python callers); the record grew before protocol version 1 was released.
    balances: tuple[ChannelBalance, ...] = attrs.field(
        default=(),
        converter=_balances,
        validator=seq_of(MAX_BALANCES, record_of(ChannelBalance)),
    )
    rebalancing: RebalanceTotals = attrs.field(
        default=attrs.Factory(lambda: NO_REBALANCING), validator=record_of(RebalanceTotals)
    )

    def capacity_by_peer(self) -> dict[bytes, int]:
        """Claimed capacity (sat) per peer, summed over the peer's edges."""
        totals: dict[bytes, int] = {}
        for edge in self.topology:
            totals[edge.peer] = totals.get(edge.peer, 0) + edge.capacity_sat
        return totals


@attrs.frozen
class DigestEntry(Record):
    """One origin's state version as the digest's sender holds it."""

    origin: bytes = attrs.field(validator=exact_bytes(KEY_LEN))  # hive key
    version: int = attrs.field(validator=u(64))


# ---------------------------------------------------------------------------------------------
# Kinds 0x0040..0x004F: state gossip.


@message(kind=0x0040)
@attrs.frozen
class StateSnapshot(Message):
    """The sender's whole state (the frame's sender is the state's owner)."""

    state: MemberState = attrs.field(validator=record_of(MemberState))


@message(kind=0x0041)
@attrs.frozen
class StateDelta(Message):
    """The change of the sender's state from ``base_version`` to ``version``.

    ``upserts`` are the complete new edge sets of every peer whose edges changed; ``removed``
    are peers with no edge any more (a peer in both ends up with its upserted edges). A
    ``None`` liquidity, reputation or opportunities means unchanged; a tuple replaces the whole
    list. ``version == base_version`` with no change at all is a keepalive.
    """

    base_version: int = attrs.field(validator=u(64))
    version: int = attrs.field(validator=u(64))
    upserts: tuple[PeerEdge, ...] = attrs.field(
        converter=_edges, validator=seq_of(MAX_EDGES, record_of(PeerEdge))
    )
    removed: tuple[bytes, ...] = attrs.field(
        converter=_peer_set, validator=seq_of(MAX_EDGES, exact_bytes(NODE_ID_LEN))
    )
    liquidity: Liquidity | None = attrs.field(validator=nullable(record_of(Liquidity)))
    reputation: tuple[ReputationNote, ...] | None = attrs.field(
        converter=_notes_or_none,
        validator=nullable(seq_of(MAX_NOTES, record_of(ReputationNote))),
    )
    opportunities: tuple[Opportunity, ...] | None = attrs.field(
        converter=_opportunities_or_none,
        validator=nullable(seq_of(MAX_OPPORTUNITIES, record_of(Opportunity))),
    )
    addresses: tuple[str, ...] | None = attrs.field(
        default=None, converter=_text_set_or_none, validator=nullable(_ADDRESSES)
    )
    # Rebalancing (issue 15): None means unchanged, as above.
    balances: tuple[ChannelBalance, ...] | None = attrs.field(
        default=None,
        converter=_balances_or_none,
        validator=nullable(seq_of(MAX_BALANCES, record_of(ChannelBalance))),
    )
    rebalancing: RebalanceTotals | None = attrs.field(
        default=None, validator=nullable(record_of(RebalanceTotals))
    )

    @property
    def is_empty(self) -> bool:
        """True when the delta changes nothing (only the version, if that)."""
        return (
            not self.upserts
            and not self.removed
            and self.liquidity is None
            and self.reputation is None
            and self.opportunities is None
            and self.addresses is None
            and self.balances is None
            and self.rebalancing is None
        )


@message(kind=0x0042)
@attrs.frozen
class StateRequest(Message):
    """Ask for ``origin``'s state: "I hold ``have_version`` (0: nothing), send me newer"."""

    origin: bytes = attrs.field(validator=exact_bytes(KEY_LEN))
    have_version: int = attrs.field(validator=u(64))


def _digest_entries(value: tuple[DigestEntry, ...]) -> tuple[DigestEntry, ...]:
    return _sort_records(  # type: ignore[no-any-return]
        value, DigestEntry, lambda d: (d.origin, d.version)
    )


@message(kind=0x0043)
@attrs.frozen
class StateDigest(Message):
    """Every state version the sender holds, its own included (anti-entropy)."""

    entries: tuple[DigestEntry, ...] = attrs.field(
        converter=_digest_entries,
        validator=seq_of(MAX_DIGEST_ENTRIES, record_of(DigestEntry)),
    )


@message(kind=0x0044)
@attrs.frozen
class Relayed(Message):
    """Another member's signed frame, verbatim, forwarded by the sender of this frame.

    ``hops_left`` counts the deliveries the inner frame may still make, this one included: a
    receiver forwards it onward (with ``hops_left - 1``) only when it is above 1.
    """

    hops_left: int = attrs.field(validator=between(1, MAX_HOPS))
    frame: bytes = attrs.field(validator=byte_len(MIN_FRAME_LEN, MAX_RELAYED_FRAME))


# ---------------------------------------------------------------------------------------------
# Versions, deltas


def first_version(last_persisted: int | None, now_ms: int) -> int:
    """The first state version after a start: ``max(last persisted + 1, now_ms * 1000)``.

    Like the frame seq, versions must grow across restarts or receivers ignore the new state
    as old; ``now_ms * 1000`` is above every earlier version unless the member made more than
    1000 changes per millisecond on average. Afterwards each change takes ``version + 1``.
    """
    floor = now_ms * 1000
    return floor if last_persisted is None else max(last_persisted + 1, floor)


def _edges_by_peer(edges: Iterable[PeerEdge]) -> dict[bytes, tuple[PeerEdge, ...]]:
    groups: dict[bytes, list[PeerEdge]] = {}
    for edge in edges:
        groups.setdefault(edge.peer, []).append(edge)
    return {peer: tuple(group) for peer, group in groups.items()}


def diff(old: MemberState, new: MemberState) -> StateDelta:
    """The delta that turns ``old`` into ``new`` (``apply(old, diff(old, new)) == new``).

    ValueError if ``new.version`` is below ``old.version``, or equal while the states differ.
    """
    if new.version < old.version or (new.version == old.version and new != old):
        raise ValueError(
            f"cannot diff version {old.version} -> {new.version}: versions must grow with changes"
        )
    before, after = _edges_by_peer(old.topology), _edges_by_peer(new.topology)
    upserts = tuple(
        edge for peer, edges in after.items() if before.get(peer) != edges for edge in edges
    )
    removed = tuple(peer for peer in before if peer not in after)
    return StateDelta(
        base_version=old.version,
        version=new.version,
        upserts=upserts,
        removed=removed,
        liquidity=None if new.liquidity == old.liquidity else new.liquidity,
        reputation=None if new.reputation == old.reputation else new.reputation,
        opportunities=None if new.opportunities == old.opportunities else new.opportunities,
        addresses=None if new.addresses == old.addresses else new.addresses,
        balances=None if new.balances == old.balances else new.balances,
        rebalancing=None if new.rebalancing == old.rebalancing else new.rebalancing,
    )


def keepalive(state: MemberState) -> StateDelta:
    """The empty delta ``state.version -> state.version`` ("still at this version")."""
    return StateDelta(
        base_version=state.version,
        version=state.version,
        upserts=(),
        removed=(),
        liquidity=None,
        reputation=None,
        opportunities=None,
    )


def apply(old: MemberState, delta: StateDelta) -> MemberState:
    """``old`` with ``delta`` applied.

    Raises ProtocolError "delta-gap" when ``delta.base_version`` is not ``old.version`` (the
    receiver then sends a :class:`StateRequest`), "bad-field" when the delta goes backwards
    (``version < base_version``), is a keepalive carrying changes, or would leave more than
    :data:`MAX_EDGES` edges.
    """
    if delta.version < delta.base_version:
        raise ProtocolError(
            BAD_FIELD, f"StateDelta: version {delta.version} is below base {delta.base_version}"
        )
    if delta.base_version != old.version:
        raise ProtocolError(
            DELTA_GAP, f"delta from version {delta.base_version}, we hold version {old.version}"
        )
    if delta.version == delta.base_version:
        if not delta.is_empty:
            raise ProtocolError(
                BAD_FIELD, f"StateDelta: changes under the same version {delta.version}"
            )
        return old
    touched = set(delta.removed).union(edge.peer for edge in delta.upserts)
    topology = tuple(edge for edge in old.topology if edge.peer not in touched) + delta.upserts
    if len(topology) > MAX_EDGES:
        raise ProtocolError(
            BAD_FIELD, f"StateDelta: leaves {len(topology)} edges, at most {MAX_EDGES}"
        )
    return MemberState(
        version=delta.version,
        topology=topology,
        liquidity=old.liquidity if delta.liquidity is None else delta.liquidity,
        reputation=old.reputation if delta.reputation is None else delta.reputation,
        opportunities=old.opportunities if delta.opportunities is None else delta.opportunities,
        addresses=old.addresses if delta.addresses is None else delta.addresses,
        balances=old.balances if delta.balances is None else delta.balances,
        rebalancing=old.rebalancing if delta.rebalancing is None else delta.rebalancing,
    )


# ---------------------------------------------------------------------------------------------
# Anti-entropy


def make_digest(versions: Mapping[bytes, int]) -> StateDigest:
    """The digest of ``versions`` (hive key -> version). ValueError beyond the digest's bounds."""
    return StateDigest(
        entries=tuple(DigestEntry(origin=origin, version=v) for origin, v in versions.items())
    )


def digest_versions(digest: StateDigest) -> dict[bytes, int]:
    """hive key -> version of a digest (a repeated origin counts with its highest version)."""
    versions: dict[bytes, int] = {}
    for entry in digest.entries:
        versions[entry.origin] = max(entry.version, versions.get(entry.origin, -1))
    return versions


def compare(ours: Mapping[K, int], theirs: Mapping[K, int]) -> tuple[list[K], list[K]]:
    """``(we_should_send, we_should_request)`` between two version maps.

    ``we_should_send``: origins whose state we hold at a higher version than they do (or they
    lack). ``we_should_request``: origins they hold at a higher version than we do (or we lack).
    Symmetric: what A must send to B is exactly what B must request from A. Both lists are
    sorted, so the outcome does not depend on mapping order.
    """
    send = [key for key, version in ours.items() if version > theirs.get(key, -1)]
    request = [key for key, version in theirs.items() if version > ours.get(key, -1)]
    return sorted(send), sorted(request)


__all__ = [
    "MAX_BALANCES",
    "MAX_EDGES",
    "MAX_HOPS",
    "MAX_NOTES",
    "MAX_OPPORTUNITIES",
    "MAX_RELAYED_FRAME",
    "ChannelBalance",
    "DigestEntry",
    "Liquidity",
    "MemberState",
    "Opportunity",
    "PeerEdge",
    "RebalanceTotals",
    "Relayed",
    "ReputationNote",
    "StateDelta",
    "StateDigest",
    "StateRequest",
    "StateSnapshot",
    "apply",
    "compare",
    "diff",
    "digest_versions",
    "first_version",
    "keepalive",
    "make_digest",
]
