"""The roster: the verified, order-independent set of membership records of one hive.

What the roster says is a pure function of the set of records it holds: the records are replayed
in the order of their own timestamps (``admitted_ms`` / ``at_ms``; at equal times admissions
before exits, then by record hash), and each is *effective* when it is authorized at its time:

* the founder's record (``ticket_id`` None) is self-signed by the genesis hive key, names the
  genesis node and role admin; there is one;
* any other admission is signed by the hive key of a member active at ``admitted_ms``; granting
  role admin needs an admin; the subject is not active and was never revoked; its hive key is
  not another active member's;
* a leave is signed by the leaver's own hive key; a revoke by an active admin's; the subject is
  active at ``at_ms``. A revoked node never comes back; a node that left comes back with a newer
  admission (``admitted_ms`` after the leave).

:meth:`Roster.apply` stores a record only when it is effective (so every stored record is), and
refuses it otherwise with the reason of the rule it breaks, or keeps it *pending* (in memory,
bounded) while a record it depends on (its signer's admission, its subject's admission) is not
known at all; pending records are retried whenever records land. A record that arrives late with
an earlier timestamp can end the authority that stored records relied on: those are dropped
(reported in :attr:`ApplyResult.dropped`). A record refused because the roster is incomplete
(e.g. signed by a member whose re-admission has not arrived yet) is offered again by the next
RosterSync, so members that exchange syncs converge to the same set and the same digest.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from hive.protocol.errors import (
    ALREADY_MEMBER,
    BAD_RECORD,
    NOT_ADMIN,
    NOT_MEMBER,
    REVOKED,
    ROSTER_LIMIT,
    TICKET_EXHAUSTED,
    ProtocolError,
)
from hive.protocol.membership.pki import (
    record_hash,
    verify_exit_record,
    verify_genesis,
    verify_member_record,
)
from hive.protocol.membership.records import (
    EXIT_LEAVE,
    EXIT_REVOKE,
    MAX_SYNC_RECORDS,
    ROLE_ADMIN,
    ExitRecord,
    Genesis,
    MemberRecord,
    RosterDigest,
    RosterRecord,
    RosterSync,
)


class Applied(enum.Enum):
    """What :meth:`Roster.apply` did with a valid record."""

    NEW = "new"  # stored: it is part of the roster now
    DUPLICATE = "duplicate"  # stored already
    PENDING = "pending"  # waits for a record it depends on


class MemberStatus(enum.Enum):
    """Where a node stands in the roster."""

    ACTIVE = "active"
    LEFT = "left"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@attrs.frozen
class ApplyResult:
    """The outcome of one :meth:`Roster.apply`.

    ``landed``: records that became part of the roster (the applied one first when NEW, then
    pending ones it unblocked); the caller persists and relays them. ``dropped``: stored records
    that stopped being effective (the caller deletes them).
    """

    status: Applied
    landed: tuple[RosterRecord, ...] = ()
    dropped: tuple[RosterRecord, ...] = ()


@attrs.frozen
class MergeResult:
    """The outcome of :meth:`Roster.merge` (a Welcome's or a RosterSync's records)."""

    landed: tuple[RosterRecord, ...]
    dropped: tuple[RosterRecord, ...]
    pending: int
    refused: tuple[tuple[RosterRecord, ProtocolError], ...]


@attrs.frozen
class RosterLimits:
    """Bounds of one roster (a RosterSync carries at most 500 admissions and 500 exits)."""

    max_member_records: int = MAX_SYNC_RECORDS
    max_exit_records: int = MAX_SYNC_RECORDS
    max_pending: int = 100


_SortKey = tuple[int, int, bytes]


def _sort_key(record: RosterRecord, digest: bytes) -> _SortKey:
    if isinstance(record, MemberRecord):
        return (record.body.admitted_ms, 0, digest)
    return (record.body.at_ms, 1, digest)


def _authority_keys(record: RosterRecord) -> tuple[bytes, ...]:
    """The hive keys whose authority ``record`` rests on (not counting its subject's own)."""
    if isinstance(record, MemberRecord):
        grant = record.body.grant
        if grant is None:
            return ()
        return (record.body.admitted_by, grant.body.issuer_key)
    if record.body.kind == EXIT_REVOKE:
        return (record.body.by_key,)
    return ()


def _record_time(record: RosterRecord) -> int:
    return record.body.admitted_ms if isinstance(record, MemberRecord) else record.body.at_ms


def exclusions(
    records: Mapping[bytes, RosterRecord], revokes: Iterable[ExitRecord]
) -> dict[ExitRecord, frozenset[bytes]]:
    """For each of ``revokes``, the records (by hash) among ``records`` it voids.

    A revoke of node N keeps in force, of the records made on N's authority before it (the
    admissions N signed or granted, the revokes N signed, under any hive key N was admitted
    with), exactly those whose hashes it lists in ``kept``: a revoked key can sign records
    dated before its revocation at any time, so only the revoker's list tells them apart.
    One pass indexes the records by the keys they rest on, so this costs about one pass over
    ``records`` plus the records each revoke concerns.
    """
    keys_of: dict[bytes, set[bytes]] = {}
    by_key: dict[bytes, list[bytes]] = {}
    for digest, record in records.items():
        if isinstance(record, MemberRecord):
            keys_of.setdefault(record.body.cert.node_id, set()).add(record.body.cert.hive_key)
        for key in _authority_keys(record):
            by_key.setdefault(key, []).append(digest)
    voids: dict[ExitRecord, frozenset[bytes]] = {}
    for revoke in revokes:
        node = revoke.body.node_id
        kept = set(revoke.body.kept)
        voids[revoke] = frozenset(
            digest
            for key in keys_of.get(node, ())
            for digest in by_key.get(key, ())
            if _subject_id(records[digest]) != node
            and _record_time(records[digest]) < revoke.body.at_ms
            and digest not in kept
        )
    return voids


def _is_revoke(record: RosterRecord) -> bool:
    return isinstance(record, ExitRecord) and record.body.kind == EXIT_REVOKE


def _subject_id(record: RosterRecord) -> bytes:
    if isinstance(record, MemberRecord):
        return record.body.cert.node_id
    return record.body.node_id


class _Replay:
    """The roster state after replaying effective records in sort-key order."""

    def __init__(self, genesis: Genesis, excluded: frozenset[bytes] = frozenset()) -> None:
        self.genesis = genesis
        self.excluded = excluded
        self.active: dict[bytes, MemberRecord] = {}  # node id -> admission in force
        self.key_owner: dict[bytes, bytes] = {}  # hive key -> node id, active members only
        self.left: set[bytes] = set()
        self.revoked: set[bytes] = set()
        self.uses: dict[tuple[bytes, int], bytes] = {}  # (ticket id, use) -> node id
        self.founded = False
        self.last: _SortKey | None = None

    def check(self, record: RosterRecord, digest: bytes) -> tuple[str, str] | None:
        """Why ``record`` is not effective after the records replayed so far, or None."""
        if digest in self.excluded:
            return (
                REVOKED,
                "made on the authority of a member revoked later, and not kept by its revoke",
            )
        if isinstance(record, MemberRecord):
            return self._check_member(record)
        return self._check_exit(record)

    def _check_member(self, record: MemberRecord) -> tuple[str, str] | None:
        body = record.body
        node = body.cert.node_id
        at = body.admitted_ms
        if node in self.revoked:
            return REVOKED, f"node {node.hex()} was revoked and cannot be admitted again"
        if node in self.active:
            return ALREADY_MEMBER, f"node {node.hex()} is already a member at {at} ms"
        holder = self.key_owner.get(body.cert.hive_key)
        if holder is not None:
            return BAD_RECORD, f"hive key {body.cert.hive_key.hex()} belongs to {holder.hex()}"
        grant = body.grant
        if grant is None:
            if self.founded:
                return BAD_RECORD, "the founder's ticketless admission exists already"
            return None
        signer = self.key_owner.get(body.admitted_by)
        if signer is None:
            return NOT_MEMBER, f"signer {body.admitted_by.hex()} is not a member at {at} ms"
        if signer != grant.body.member_node:
            return (
                BAD_RECORD,
                f"the grant names member {grant.body.member_node.hex()}, not the signer",
            )
        if body.role == ROLE_ADMIN and self.active[signer].body.role != ROLE_ADMIN:
            return NOT_ADMIN, f"signer {signer.hex()} is not an admin and cannot grant admin"
        issuer = self.key_owner.get(grant.body.issuer_key)
        if issuer is None:
            return (
                NOT_MEMBER,
                f"ticket issuer {grant.body.issuer_key.hex()} is not a member at {at} ms",
            )
        if self.active[issuer].body.role != ROLE_ADMIN:
            return NOT_ADMIN, f"ticket issuer {issuer.hex()} is not an admin at {at} ms"
        used_by = self.uses.get((grant.body.ticket_id, grant.body.use))
        if used_by is not None and used_by != node:
            return (
                TICKET_EXHAUSTED,
                f"use {grant.body.use} of ticket {grant.body.ticket_id.hex()} admitted "
                f"{used_by.hex()} already",
            )
        return None

    def _check_exit(self, record: ExitRecord) -> tuple[str, str] | None:
        body = record.body
        node = body.node_id
        if node in self.revoked:
            return REVOKED, f"node {node.hex()} is revoked already"
        admission = self.active.get(node)
        if admission is None:
            return NOT_MEMBER, f"node {node.hex()} is not a member at {body.at_ms} ms"
        if body.kind == EXIT_LEAVE:
            if body.by_key != admission.body.cert.hive_key:
                return BAD_RECORD, "a leave must be signed by the leaver's own hive key"
            return None
        signer = self.key_owner.get(body.by_key)
        if signer is None:
            return NOT_MEMBER, f"revoker {body.by_key.hex()} is not a member at {body.at_ms} ms"
        if self.active[signer].body.role != ROLE_ADMIN:
            return NOT_ADMIN, f"revoker {signer.hex()} is not an admin"
        return None

    def commit(self, record: RosterRecord, key: _SortKey) -> None:
        """Apply an effective record (``check`` returned None)."""
        self.last = key
        if isinstance(record, MemberRecord):
            node = record.body.cert.node_id
            self.active[node] = record
            self.key_owner[record.body.cert.hive_key] = node
            self.left.discard(node)
            grant = record.body.grant
            if grant is None:
                self.founded = True
            else:
                self.uses[(grant.body.ticket_id, grant.body.use)] = node
            return
        node = record.body.node_id
        admission = self.active.pop(node)
        del self.key_owner[admission.body.cert.hive_key]
        if record.body.kind == EXIT_REVOKE:
            self.revoked.add(node)
        else:
            self.left.add(node)


class Roster:
    """The records of one hive (see the module doc). Not thread-safe; pure: no clock, no I/O."""

    def __init__(self, genesis: Genesis, *, limits: RosterLimits | None = None) -> None:
        """Raises ProtocolError "bad-genesis" when the founder's signature does not verify."""
        self._hive_id = verify_genesis(genesis)
        self._genesis = genesis
        self._limits = limits or RosterLimits()
        self._stored: dict[bytes, RosterRecord] = {}  # record hash -> record (all effective)
        self._keys: dict[bytes, _SortKey] = {}
        # Pending records with the source that offered them (the connected member, in the
        # actor): when the bound is full, the source holding the most makes room, so junk from
        # one source never locks out another's honest out-of-order record.
        self._pending: dict[bytes, tuple[RosterRecord, object]] = {}
        self._known_keys: Counter[bytes] = Counter()  # hive keys of stored admissions
        self._known_nodes: Counter[bytes] = Counter()
        self._members_stored = 0
        self._state = _Replay(genesis)

    # --- queries ---------------------------------------------------------------------------

    @property
    def hive_id(self) -> bytes:
        return self._hive_id

    @property
    def genesis(self) -> Genesis:
        return self._genesis

    def active(self) -> Mapping[bytes, MemberRecord]:
        """Active members: node id -> the admission in force (a read-only snapshot)."""
        return MappingProxyType(dict(self._state.active))

    def by_hive_key(self, hive_key: bytes) -> MemberRecord | None:
        """The admission of the active member whose hive key is ``hive_key``, or None."""
        node = self._state.key_owner.get(hive_key)
        return None if node is None else self._state.active[node]

    def is_admin(self, node_id: bytes) -> bool:
        """True when ``node_id`` is an active admin."""
        record = self._state.active.get(node_id)
        return record is not None and record.body.role == ROLE_ADMIN

    def status(self, node_id: bytes) -> MemberStatus:
        """Active, left, revoked, or unknown."""
        if node_id in self._state.active:
            return MemberStatus.ACTIVE
        if node_id in self._state.revoked:
            return MemberStatus.REVOKED
        if node_id in self._state.left:
            return MemberStatus.LEFT
        return MemberStatus.UNKNOWN

    def records(self) -> tuple[RosterRecord, ...]:
        """Every stored record, in replay order."""
        return tuple(self._stored[h] for h in sorted(self._stored, key=self._keys.__getitem__))

    def pending_count(self) -> int:
        """Records waiting for a record they depend on."""
        return len(self._pending)

    def digest(self) -> bytes:
        """SHA-256 over the sorted SHA-256 hashes of the stored records' canonical bytes."""
        return hashlib.sha256(b"".join(sorted(self._stored))).digest()

    def digest_message(self) -> RosterDigest:
        return RosterDigest(hive_id=self._hive_id, digest=self.digest(), count=len(self._stored))

    def sync_message(self) -> RosterSync:
        """Every stored record, for a member whose digest differs."""
        records = self.records()
        return RosterSync(
            hive_id=self._hive_id,
            genesis=self._genesis,
            members=tuple(r for r in records if isinstance(r, MemberRecord)),
            exits=tuple(r for r in records if isinstance(r, ExitRecord)),
        )

    # --- updates ---------------------------------------------------------------------------

    def apply(self, record: RosterRecord, *, source: object = None) -> ApplyResult:
        """Verify ``record`` and add it (see the module doc). ``source`` names who offered it
        (any hashable; the actor passes the connected peer), for the pending bound.

        Raises ProtocolError: "other-hive", "bad-record", "bad-certificate" (the record itself
        is invalid); "not-member", "not-admin", "revoked", "already-member", "bad-record",
        "ticket-exhausted" (it is not authorized at its time); "roster-limit" (a bound is full).
        """
        digest = record_hash(record)
        if digest in self._stored:
            return ApplyResult(Applied.DUPLICATE)
        if digest in self._pending:
            return ApplyResult(Applied.PENDING)
        self._verify(record)
        if self._blocked(record):
            self._make_room(source)
            self._pending[digest] = (record, source)
            return ApplyResult(Applied.PENDING)
        dropped = list(self._land(record, digest))
        landed: list[RosterRecord] = [record]
        progress = True
        while progress and self._pending:
            progress = False
            for waiting_digest, (waiting, _source) in sorted(
                self._pending.items(), key=lambda item: _sort_key(item[1][0], item[0])
            ):
                if self._blocked(waiting):
                    continue
                del self._pending[waiting_digest]
                progress = True
                try:
                    dropped.extend(self._land(waiting, waiting_digest))
                except ProtocolError:
                    continue  # not authorized after all: forgotten (it was never stored)
                landed.append(waiting)
        gone = {record_hash(r) for r in dropped}
        return ApplyResult(
            Applied.NEW,
            landed=tuple(r for r in landed if record_hash(r) not in gone),
            dropped=tuple(r for r in dropped if r not in landed),
        )

    def _make_room(self, source: object) -> None:
        """Make room for one pending record from ``source``, or raise "roster-limit" when
        ``source`` itself holds the largest share of the pending bound."""
        if len(self._pending) < self._limits.max_pending:
            return
        held = Counter(src for _record, src in self._pending.values())
        heaviest, count = max(held.items(), key=lambda item: (item[1], repr(item[0])))
        if held[source] >= count:
            raise ProtocolError(
                ROSTER_LIMIT,
                f"{len(self._pending)} records pending already, {held[source]} from this source",
            )
        oldest = next(d for d, (_r, src) in self._pending.items() if src == heaviest)
        del self._pending[oldest]

    def forget_pending(self, source: object) -> int:
        """Drop the pending records ``source`` offered (say, it disconnected); how many."""
        gone = [d for d, (_r, src) in self._pending.items() if src == source]
        for digest in gone:
            del self._pending[digest]
        return len(gone)

    def authority_records(self, node_id: bytes) -> tuple[bytes, ...]:
        """Hashes of the stored records made on ``node_id``'s authority (admissions it signed
        or granted, revokes it signed), sorted: what a revoke of it keeps in force."""
        keys = {
            r.body.cert.hive_key
            for r in self._stored.values()
            if isinstance(r, MemberRecord) and r.body.cert.node_id == node_id
        }
        return tuple(
            sorted(
                digest
                for digest, record in self._stored.items()
                if _subject_id(record) != node_id
                and any(key in keys for key in _authority_keys(record))
            )
        )

    def merge(self, records: Iterable[RosterRecord], *, source: object = None) -> MergeResult:
        """Apply many records (a Welcome's or RosterSync's), oldest first; never raises."""
        items = [(record_hash(r), r) for r in records]
        landed: list[RosterRecord] = []
        dropped: list[RosterRecord] = []
        refused: list[tuple[RosterRecord, ProtocolError]] = []
        for _digest, record in sorted(items, key=lambda item: _sort_key(item[1], item[0])):
            try:
                result = self.apply(record, source=source)
            except ProtocolError as exc:
                refused.append((record, exc))
                continue
            landed.extend(result.landed)
            dropped.extend(result.dropped)
        gone = {record_hash(r) for r in dropped}
        return MergeResult(
            landed=tuple(r for r in landed if record_hash(r) not in gone),
            dropped=tuple(r for r in dropped if record_hash(r) not in self._stored),
            pending=len(self._pending),
            refused=tuple(refused),
        )

    # --- internals -------------------------------------------------------------------------

    def _verify(self, record: RosterRecord) -> None:
        """The checks a record passes by itself, whatever else the roster holds."""
        if isinstance(record, ExitRecord):
            verify_exit_record(record, self._hive_id)
            return
        verify_member_record(record, self._hive_id)
        body = record.body
        if body.grant is None:
            genesis = self._genesis
            founder_shaped = (
                body.cert.node_id == genesis.node_id
                and body.cert.hive_key == genesis.hive_key
                and body.admitted_by == genesis.hive_key
                and body.role == ROLE_ADMIN
            )
            if not founder_shaped:
                raise ProtocolError(
                    BAD_RECORD,
                    "an admission without a ticket must be the founder's own, as admin, "
                    "signed by the genesis hive key",
                )

    def _blocked(self, record: RosterRecord) -> bool:
        """True when a record this one depends on is not stored at all (so: pending)."""
        if isinstance(record, MemberRecord):
            grant = record.body.grant
            return grant is not None and (
                self._known_keys[record.body.admitted_by] == 0
                or self._known_keys[grant.body.issuer_key] == 0
            )
        body = record.body
        if self._known_nodes[body.node_id] == 0:
            return True
        return body.kind == EXIT_REVOKE and self._known_keys[body.by_key] == 0

    def _land(self, record: RosterRecord, digest: bytes) -> list[RosterRecord]:
        """Store ``record`` if effective (else raise); return the stored records it voided."""
        is_member = isinstance(record, MemberRecord)
        if is_member and self._members_stored >= self._limits.max_member_records:
            raise ProtocolError(ROSTER_LIMIT, f"{self._members_stored} admissions stored")
        if not is_member and (
            len(self._stored) - self._members_stored >= self._limits.max_exit_records
        ):
            raise ProtocolError(ROSTER_LIMIT, f"{len(self._stored) - self._members_stored} exits")
        key = _sort_key(record, digest)
        state = self._state
        if (state.last is None or key > state.last) and not _is_revoke(record):
            why = state.check(record, digest)
            if why is not None:
                raise ProtocolError(*why)
            state.commit(record, key)
            self._store(digest, record, key)
            return []
        # An earlier record arrived late, or a revoke that may void earlier records: replay
        # everything with it in place.
        fresh, void = self._replay_with(record, digest, key)
        self._state = fresh
        self._store(digest, record, key)
        return [self._unstore(each_digest) for each_digest in void]

    def _replay_with(
        self, record: RosterRecord, digest: bytes, key: _SortKey
    ) -> tuple[_Replay, list[bytes]]:
        """Replay the stored records and ``record``: the new state and the stored records it
        voids; raises when ``record`` itself is not effective (nothing changes then).

        Revokes void what they do not keep (:func:`exclusions`), and are taken in time order:
        a revoke that voids something is admitted only if, with its exclusions added to those
        of the revokes admitted before it, it is effective itself and every revoke admitted
        before it stays effective (so a revoke cannot undo an earlier one, nor void its own
        signer's authority). The result depends only on the records."""
        records = {**self._stored, digest: record}
        keys = {**self._keys, digest: key}
        order = sorted(keys, key=keys.__getitem__)
        revokes = [d for d in order if _is_revoke(records[d])]
        revoke_records = {d: r for d in revokes if isinstance(r := records[d], ExitRecord)}
        by_revoke = exclusions(records, revoke_records.values())
        voids = {d: by_revoke[r] for d, r in revoke_records.items()}
        admitted: list[bytes] = []
        excluded: frozenset[bytes] = frozenset()
        for each in revokes:
            if not voids[each]:
                admitted.append(each)
                continue
            trial = excluded | voids[each]
            _state, void, failure = self._replay_once(records, keys, order, trial, digest)
            if failure is not None:
                void.append(digest)
            if each not in void and not set(admitted) & set(void):
                admitted.append(each)
                excluded = trial
        fresh, void, failure = self._replay_once(records, keys, order, excluded, digest)
        if failure is not None:
            raise ProtocolError(*failure)  # the old state stays as it was
        return fresh, void

    def _replay_once(
        self,
        records: Mapping[bytes, RosterRecord],
        keys: Mapping[bytes, _SortKey],
        order: list[bytes],
        excluded: frozenset[bytes],
        digest: bytes,
    ) -> tuple[_Replay, list[bytes], tuple[str, str] | None]:
        """One replay with ``excluded`` void: the state, the other records found not
        effective, and why the record ``digest`` is not (or None)."""
        fresh = _Replay(self._genesis, excluded)
        void: list[bytes] = []
        failure: tuple[str, str] | None = None
        for each_digest in order:
            why = fresh.check(records[each_digest], each_digest)
            if why is None:
                fresh.commit(records[each_digest], keys[each_digest])
            elif each_digest == digest:
                failure = why
            else:
                void.append(each_digest)
        return fresh, void, failure

    def _store(self, digest: bytes, record: RosterRecord, key: _SortKey) -> None:
        self._stored[digest] = record
        self._keys[digest] = key
        if isinstance(record, MemberRecord):
            self._members_stored += 1
            self._known_keys[record.body.cert.hive_key] += 1
            self._known_nodes[record.body.cert.node_id] += 1

    def _unstore(self, digest: bytes) -> RosterRecord:
        record = self._stored.pop(digest)
        del self._keys[digest]
        if isinstance(record, MemberRecord):
            self._members_stored -= 1
            self._known_keys[record.body.cert.hive_key] -= 1
            self._known_nodes[record.body.cert.node_id] -= 1
        return record
