"""Fragmentation of signed frames too large for one custom message, and bounded reassembly.

Fragment payload (big-endian)::

    magic(2) version(1) frame_type(1)=1 | msg_id u64 | index u16 | count u16 | chunk

Fragments are not signed one by one: the reassembled frame is verified as a whole, so a
corrupted or forged fragment only makes that frame fail verification. Reassembly is keyed by
(peer, msg_id), where peer is the connected peer that delivered the fragments, and bounded:

* ``2 <= count <= max_fragments``, ``index < count``, chunks non-empty ("bad-fragment",
  "fragment-limit");
* at most ``max_message_bytes`` frame bytes per message, ``max_partials_per_peer`` partial
  messages and ``max_bytes_per_peer`` charged bytes per peer, ``max_total_bytes`` over all
  members' connections and ``max_outsider_bytes`` over all other peers ("fragment-limit"); what
  is charged for a fragment includes what holding it costs (chunk plus FRAGMENT_OVERHEAD, and
  PARTIAL_OVERHEAD per partial message), so 1-byte chunks cannot hold far more than counted;
* a partial message is dropped ``timeout_ms`` after its first fragment (:meth:`expire`, also
  done lazily for the peer on each :meth:`feed`);
* a repeated fragment with the same chunk is ignored (idempotent); the same index with another
  chunk, or a count that differs from the first fragment's, is "fragment-mismatch" and drops the
  partial message.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Callable

import attrs

from hive.protocol.errors import (
    BAD_FRAGMENT,
    BAD_FRAME_TYPE,
    FRAGMENT_LIMIT,
    FRAGMENT_MISMATCH,
    TRUNCATED,
    ProtocolError,
)
from hive.protocol.wire.envelope import (
    FRAME_FRAGMENT,
    MAGIC,
    MAX_CUSTOM_PAYLOAD,
    MAX_FRAME_LEN,
    VERSION,
    check_prefix,
)

_HEADER = struct.Struct(">2sBBQHH")
FRAGMENT_HEADER_LEN = _HEADER.size  # 16
MAX_CHUNK = MAX_CUSTOM_PAYLOAD - FRAGMENT_HEADER_LEN  # 65517 bytes of frame per fragment
# What holding a fragment or a partial message costs beyond its chunk bytes (the bytes object,
# its slot in the partial, the partial, its indexes and its deadline entry), charged against
# the byte budgets so that tiny chunks cannot hold many times what is counted. Measured with
# tracemalloc (tests/protocol/test_fragment.py checks that what is charged covers it).
FRAGMENT_OVERHEAD = 128
PARTIAL_OVERHEAD = 1024


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen
class ReassemblyLimits:
    """Bounds on reassembly state. Per-peer and pool budgets count what is charged for each
    fragment held (its chunk plus FRAGMENT_OVERHEAD, plus PARTIAL_OVERHEAD per partial
    message); the per-message bound counts frame bytes."""

    max_fragments: int = attrs.field(default=64, validator=_positive)
    max_message_bytes: int = attrs.field(default=MAX_FRAME_LEN, validator=_positive)
    max_partials_per_peer: int = attrs.field(default=4, validator=_positive)
    max_bytes_per_peer: int = attrs.field(default=2 * MAX_FRAME_LEN, validator=_positive)
    max_total_bytes: int = attrs.field(default=16 * MAX_FRAME_LEN, validator=_positive)
    # Non-members' partial messages are charged to a pool of their own, so they can never take
    # what members need (a candidate receives its Welcome, up to ~0.5 MiB, from a non-member).
    max_outsider_bytes: int = attrs.field(default=4 * MAX_FRAME_LEN, validator=_positive)
    timeout_ms: int = attrs.field(default=30_000, validator=_positive)


def split(frame: bytes, msg_id: int, *, chunk_size: int = MAX_CHUNK) -> list[bytes]:
    """Fragment payloads (without the BOLT 1 type) carrying ``frame``; at least two.

    ValueError if ``msg_id`` is not a u64, ``chunk_size`` is not in 1..MAX_CHUNK, or the frame
    needs more than 65535 fragments.
    """
    if not 0 <= msg_id < 1 << 64:
        raise ValueError(f"msg_id {msg_id} is not a u64")
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk size {chunk_size} is not in 1..{MAX_CHUNK}")
    count = max(2, -(-len(frame) // chunk_size))
    if count > 0xFFFF or len(frame) < count:
        raise ValueError(f"cannot split {len(frame)} bytes into {count} fragments")
    base, extra = divmod(len(frame), count)  # spread evenly: the first `extra` get one more
    fragments = []
    start = 0
    for index in range(count):
        end = start + base + (1 if index < extra else 0)
        header = _HEADER.pack(MAGIC, VERSION, FRAME_FRAGMENT, msg_id, index, count)
        fragments.append(header + frame[start:end])
        start = end
    return fragments


@attrs.frozen
class Fragment:
    """A parsed fragment payload."""

    msg_id: int
    index: int
    count: int
    chunk: bytes


def parse_fragment(payload: bytes) -> Fragment:
    """Parse a fragment payload (prefix included); raise ProtocolError only."""
    payload = bytes(payload)
    if check_prefix(payload) != FRAME_FRAGMENT:
        raise ProtocolError(BAD_FRAME_TYPE, "a signed frame where a fragment is due")
    if len(payload) < FRAGMENT_HEADER_LEN:
        raise ProtocolError(
            TRUNCATED, f"fragment of {len(payload)} bytes, header needs {FRAGMENT_HEADER_LEN}"
        )
    _magic, _version, _type, msg_id, index, count = _HEADER.unpack_from(payload)
    chunk = payload[FRAGMENT_HEADER_LEN:]
    if count < 2:
        raise ProtocolError(BAD_FRAGMENT, f"fragment count {count} (a whole frame needs none)")
    if index >= count:
        raise ProtocolError(BAD_FRAGMENT, f"fragment index {index} is not below count {count}")
    if not chunk:
        raise ProtocolError(BAD_FRAGMENT, "empty fragment")
    return Fragment(msg_id=msg_id, index=index, count=count, chunk=chunk)


@attrs.define(eq=False)
class _Partial:
    count: int
    deadline_ms: int
    member: bool  # from a member's connection: charged to the members' pool
    chunks: dict[int, bytes] = attrs.Factory(dict)
    size: int = 0  # bytes charged: chunks and their bookkeeping, and the partial's own
    frame_bytes: int = 0  # chunk bytes alone


class Reassembler:
    """Collects fragments per (peer, msg_id) into whole frames, within :class:`ReassemblyLimits`.

    Costs per fragment do not grow with what is held: partials are indexed by peer (a feed looks
    at that peer's few partials only) and deadlines sit in a heap (:meth:`expire` pops the
    expired ones and touches nothing else).
    """

    def __init__(self, limits: ReassemblyLimits | None = None) -> None:
        self._limits = limits if limits is not None else ReassemblyLimits()
        self._peers: dict[str, dict[int, _Partial]] = {}  # peer -> msg_id -> partial
        self._peer_bytes: dict[str, int] = {}
        self._pool_bytes = {True: 0, False: 0}  # members' and outsiders' charged bytes
        self._partials = 0
        self._deadlines: list[tuple[int, int, str, int, _Partial]] = []  # a heap, lazily purged
        self._pushed = 0  # tie-breaker for the heap
        self._is_member: Callable[[str], bool] = _everyone
        self.expired_total = 0  # partial messages dropped at their deadline, ever

    @property
    def limits(self) -> ReassemblyLimits:
        return self._limits

    def set_member_check(self, is_member_peer: Callable[[str], bool]) -> None:
        """Tell the reassembler which connected peers are members: their partial messages are
        charged to a pool of their own (``max_total_bytes``), outsiders' to
        ``max_outsider_bytes``, so outsiders cannot starve members' reassembly."""
        self._is_member = is_member_peer

    def pending(self, peer_id: str | None = None) -> int:
        """Partial messages held (for one peer, or in all)."""
        if peer_id is None:
            return self._partials
        return len(self._peers.get(peer_id, ()))

    def buffered_bytes(self, peer_id: str | None = None) -> int:
        """Bytes charged for what is held (for one peer, or in all): each chunk plus
        FRAGMENT_OVERHEAD, each partial message PARTIAL_OVERHEAD."""
        if peer_id is None:
            return self._pool_bytes[True] + self._pool_bytes[False]
        return self._peer_bytes.get(peer_id, 0)

    def feed(self, peer_id: str, payload: bytes, now_ms: int) -> bytes | None:
        """Add one fragment payload from ``peer_id``; return the whole frame once complete.

        Raises ProtocolError only (truncated, bad-magic, bad-version, bad-frame-type,
        bad-fragment, fragment-mismatch, fragment-limit).
        """
        fragment = parse_fragment(payload)
        limits = self._limits
        if fragment.count > limits.max_fragments:
            raise ProtocolError(
                FRAGMENT_LIMIT, f"{fragment.count} fragments, at most {limits.max_fragments}"
            )
        self._expire_peer(peer_id, now_ms)
        msg_id = fragment.msg_id
        partials = self._peers.get(peer_id)
        partial = None if partials is None else partials.get(msg_id)
        extra = len(fragment.chunk) + FRAGMENT_OVERHEAD
        if partial is None:
            if partials is not None and len(partials) >= limits.max_partials_per_peer:
                raise ProtocolError(
                    FRAGMENT_LIMIT,
                    f"peer {peer_id} already has {limits.max_partials_per_peer} partial messages",
                )
            partial = _Partial(
                count=fragment.count,
                deadline_ms=now_ms + limits.timeout_ms,
                member=self._is_member(peer_id),
            )
            extra += PARTIAL_OVERHEAD
        elif fragment.count != partial.count:
            self._drop(peer_id, msg_id)
            raise ProtocolError(
                FRAGMENT_MISMATCH,
                f"message {msg_id}: count {fragment.count}, earlier {partial.count}",
            )
        held = partial.chunks.get(fragment.index)
        if held is not None:
            if held == fragment.chunk:
                return None  # a duplicate: idempotent
            self._drop(peer_id, msg_id)
            raise ProtocolError(
                FRAGMENT_MISMATCH,
                f"message {msg_id}: fragment {fragment.index} arrived with other bytes",
            )
        self._check_budget(peer_id, msg_id, partial, len(fragment.chunk), extra)
        if partials is None:
            partials = self._peers[peer_id] = {}
        if msg_id not in partials:
            partials[msg_id] = partial
            self._partials += 1
            self._push_deadline(peer_id, msg_id, partial)
        partial.chunks[fragment.index] = fragment.chunk
        partial.size += extra
        partial.frame_bytes += len(fragment.chunk)
        self._peer_bytes[peer_id] = self._peer_bytes.get(peer_id, 0) + extra
        self._pool_bytes[partial.member] += extra
        if len(partial.chunks) < partial.count:
            return None
        self._drop(peer_id, msg_id)
        return b"".join(partial.chunks[index] for index in range(partial.count))

    def _check_budget(
        self, peer_id: str, msg_id: int, partial: _Partial, chunk_len: int, extra: int
    ) -> None:
        limits = self._limits
        if partial.frame_bytes + chunk_len > limits.max_message_bytes:
            self._drop(peer_id, msg_id)
            raise ProtocolError(
                FRAGMENT_LIMIT,
                f"message {msg_id} would exceed {limits.max_message_bytes} bytes",
            )
        if self._peer_bytes.get(peer_id, 0) + extra > limits.max_bytes_per_peer:
            raise ProtocolError(
                FRAGMENT_LIMIT,
                f"peer {peer_id} would hold more than {limits.max_bytes_per_peer} bytes",
            )
        member = partial.member
        pool_limit = limits.max_total_bytes if member else limits.max_outsider_bytes
        if self._pool_bytes[member] + extra > pool_limit:
            whose = "members" if member else "non-members"
            raise ProtocolError(
                FRAGMENT_LIMIT, f"reassembly for {whose} would hold more than {pool_limit} bytes"
            )

    def _push_deadline(self, peer_id: str, msg_id: int, partial: _Partial) -> None:
        self._pushed += 1
        heapq.heappush(
            self._deadlines, (partial.deadline_ms, self._pushed, peer_id, msg_id, partial)
        )
        if len(self._deadlines) > 2 * self._partials + 64:  # entries of completed partials
            self._deadlines = [
                entry for entry in self._deadlines if self._holds(entry[2], entry[3], entry[4])
            ]
            heapq.heapify(self._deadlines)

    def _holds(self, peer_id: str, msg_id: int, partial: _Partial) -> bool:
        partials = self._peers.get(peer_id)
        return partials is not None and partials.get(msg_id) is partial

    def _drop(self, peer_id: str, msg_id: int) -> None:
        partials = self._peers.get(peer_id)
        partial = None if partials is None else partials.pop(msg_id, None)
        if partials is None or partial is None:
            return
        self._partials -= 1
        self._pool_bytes[partial.member] -= partial.size
        if partials:
            self._peer_bytes[peer_id] -= partial.size
        else:
            del self._peers[peer_id]
            del self._peer_bytes[peer_id]

    def _expire_peer(self, peer_id: str, now_ms: int) -> None:
        partials = self._peers.get(peer_id)
        if partials is None:
            return
        expired = [msg_id for msg_id, p in partials.items() if p.deadline_ms <= now_ms]
        for msg_id in expired:
            self._drop(peer_id, msg_id)
        self.expired_total += len(expired)

    def expire(self, now_ms: int) -> int:
        """Drop every partial message past its deadline; return how many were dropped."""
        heap = self._deadlines
        dropped = 0
        while heap and heap[0][0] <= now_ms:
            _deadline, _pushed, peer_id, msg_id, partial = heapq.heappop(heap)
            if self._holds(peer_id, msg_id, partial):
                self._drop(peer_id, msg_id)
                dropped += 1
        self.expired_total += dropped
        return dropped

    def forget_peer(self, peer_id: str) -> int:
        """Drop a disconnected peer's partial messages; return how many were dropped."""
        partials = self._peers.get(peer_id)
        if partials is None:
            return 0
        count = len(partials)
        for msg_id in list(partials):
            self._drop(peer_id, msg_id)
        return count


def _everyone(_peer_id: str) -> bool:
    return True
