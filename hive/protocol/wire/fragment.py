"""Fragmentation of signed frames too large for one custom message, and bounded reassembly.

Fragment payload (big-endian)::

    magic(2) version(1) frame_type(1)=1 | msg_id u64 | index u16 | count u16 | chunk

Fragments are not signed one by one: the reassembled frame is verified as a whole, so a
corrupted or forged fragment only makes that frame fail verification. Reassembly is keyed by
(peer, msg_id), where peer is the connected peer that delivered the fragments, and bounded:

* ``2 <= count <= max_fragments``, ``index < count``, chunks non-empty ("bad-fragment",
  "fragment-limit");
* at most ``max_message_bytes`` per message, ``max_partials_per_peer`` partial messages and
  ``max_bytes_per_peer`` buffered bytes per peer, ``max_total_bytes`` over all peers
  ("fragment-limit");
* a partial message is dropped ``timeout_ms`` after its first fragment (:meth:`expire`, also
  done lazily for the peer on each :meth:`feed`);
* a repeated fragment with the same chunk is ignored (idempotent); the same index with another
  chunk, or a count that differs from the first fragment's, is "fragment-mismatch" and drops the
  partial message.
"""

from __future__ import annotations

import struct

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


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen
class ReassemblyLimits:
    """Bounds on reassembly state (bytes count chunk bytes buffered)."""

    max_fragments: int = attrs.field(default=64, validator=_positive)
    max_message_bytes: int = attrs.field(default=MAX_FRAME_LEN, validator=_positive)
    max_partials_per_peer: int = attrs.field(default=4, validator=_positive)
    max_bytes_per_peer: int = attrs.field(default=2 * MAX_FRAME_LEN, validator=_positive)
    max_total_bytes: int = attrs.field(default=16 * MAX_FRAME_LEN, validator=_positive)
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


@attrs.define
class _Partial:
    count: int
    deadline_ms: int
    chunks: dict[int, bytes] = attrs.Factory(dict)
    size: int = 0


class Reassembler:
    """Collects fragments per (peer, msg_id) into whole frames, within :class:`ReassemblyLimits`."""

    def __init__(self, limits: ReassemblyLimits | None = None) -> None:
        self._limits = limits if limits is not None else ReassemblyLimits()
        self._partials: dict[tuple[str, int], _Partial] = {}
        self._peer_partials: dict[str, int] = {}
        self._peer_bytes: dict[str, int] = {}
        self._total_bytes = 0
        self.expired_total = 0  # partial messages dropped at their deadline, ever

    @property
    def limits(self) -> ReassemblyLimits:
        return self._limits

    def pending(self, peer_id: str | None = None) -> int:
        """Partial messages held (for one peer, or in all)."""
        if peer_id is None:
            return len(self._partials)
        return self._peer_partials.get(peer_id, 0)

    def buffered_bytes(self, peer_id: str | None = None) -> int:
        """Chunk bytes held (for one peer, or in all)."""
        if peer_id is None:
            return self._total_bytes
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
        key = (peer_id, fragment.msg_id)
        partial = self._partials.get(key)
        if partial is None:
            if self._peer_partials.get(peer_id, 0) >= limits.max_partials_per_peer:
                raise ProtocolError(
                    FRAGMENT_LIMIT,
                    f"peer {peer_id} already has {limits.max_partials_per_peer} partial messages",
                )
            partial = _Partial(count=fragment.count, deadline_ms=now_ms + limits.timeout_ms)
        elif fragment.count != partial.count:
            self._drop(key)
            raise ProtocolError(
                FRAGMENT_MISMATCH,
                f"message {fragment.msg_id}: count {fragment.count}, earlier {partial.count}",
            )
        held = partial.chunks.get(fragment.index)
        if held is not None:
            if held == fragment.chunk:
                return None  # a duplicate: idempotent
            self._drop(key)
            raise ProtocolError(
                FRAGMENT_MISMATCH,
                f"message {fragment.msg_id}: fragment {fragment.index} arrived with other bytes",
            )
        self._check_budget(peer_id, key, partial, len(fragment.chunk))
        if key not in self._partials:
            self._partials[key] = partial
            self._peer_partials[peer_id] = self._peer_partials.get(peer_id, 0) + 1
        partial.chunks[fragment.index] = fragment.chunk
        partial.size += len(fragment.chunk)
        self._peer_bytes[peer_id] = self._peer_bytes.get(peer_id, 0) + len(fragment.chunk)
        self._total_bytes += len(fragment.chunk)
        if len(partial.chunks) < partial.count:
            return None
        self._drop(key)
        return b"".join(partial.chunks[index] for index in range(partial.count))

    def _check_budget(
        self, peer_id: str, key: tuple[str, int], partial: _Partial, extra: int
    ) -> None:
        limits = self._limits
        if partial.size + extra > limits.max_message_bytes:
            self._drop(key)
            raise ProtocolError(
                FRAGMENT_LIMIT,
                f"message {key[1]} would exceed {limits.max_message_bytes} bytes",
            )
        if self._peer_bytes.get(peer_id, 0) + extra > limits.max_bytes_per_peer:
            raise ProtocolError(
                FRAGMENT_LIMIT,
                f"peer {peer_id} would buffer more than {limits.max_bytes_per_peer} bytes",
            )
        if self._total_bytes + extra > limits.max_total_bytes:
            raise ProtocolError(
                FRAGMENT_LIMIT, f"reassembly would buffer more than {limits.max_total_bytes} bytes"
            )

    def _drop(self, key: tuple[str, int]) -> None:
        partial = self._partials.pop(key, None)
        if partial is None:
            return
        peer_id = key[0]
        remaining = self._peer_partials[peer_id] - 1
        peer_bytes = self._peer_bytes[peer_id] - partial.size
        if remaining:
            self._peer_partials[peer_id] = remaining
            self._peer_bytes[peer_id] = peer_bytes
        else:
            del self._peer_partials[peer_id]
            del self._peer_bytes[peer_id]
        self._total_bytes -= partial.size

    def _expire_peer(self, peer_id: str, now_ms: int) -> None:
        if peer_id not in self._peer_partials:
            return
        expired = [
            key
            for key, partial in self._partials.items()
            if key[0] == peer_id and partial.deadline_ms <= now_ms
        ]
        for key in expired:
            self._drop(key)
        self.expired_total += len(expired)

    def expire(self, now_ms: int) -> int:
        """Drop every partial message past its deadline; return how many were dropped."""
        expired = [key for key, partial in self._partials.items() if partial.deadline_ms <= now_ms]
        for key in expired:
            self._drop(key)
        self.expired_total += len(expired)
        return len(expired)

    def forget_peer(self, peer_id: str) -> int:
        """Drop a disconnected peer's partial messages; return how many were dropped."""
        keys = [key for key in self._partials if key[0] == peer_id]
        for key in keys:
            self._drop(key)
        return len(keys)
