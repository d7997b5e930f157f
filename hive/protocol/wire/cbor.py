"""A deterministic CBOR subset (RFC 8949, section 4.2.1 "core deterministic encoding").

Supported data items: unsigned and negative integers (major types 0 and 1, arguments up to 64
bits), byte strings (2), UTF-8 text strings (3), definite-length arrays (4), definite-length maps
whose keys are text strings (5), and the simple values false, true and null (major type 7, values
20, 21, 22). Nothing else: no floats, no tags, no undefined, no other simple values, no
indefinite lengths.

The encoder writes the one deterministic encoding: every head in its shortest form and map keys
sorted by the bytewise lexicographic order of their encodings (for text keys this is the same as
"shorter key first, then bytewise", since the head carries the length).

The decoder accepts exactly the encodings the encoder produces. It rejects non-shortest heads,
unsorted or duplicate map keys, trailing bytes, nesting deeper than ``max_depth`` and any declared
length larger than what remains of the input, and it raises :class:`ProtocolError` and nothing
else on any input.

Python mapping: int <-> integer, bytes <-> byte string, str <-> text string, list (tuple when
encoding) <-> array, dict[str, ...] <-> map, False/True/None <-> false/true/null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive.protocol.errors import (
    BAD_CBOR,
    DUPLICATE_KEY,
    NON_CANONICAL,
    TOO_DEEP,
    TOO_LARGE,
    TRAILING_BYTES,
    TRUNCATED,
    ProtocolError,
)

MAX_DEPTH = 16  # default bound on array/map nesting when decoding

_UINT_MAX = (1 << 64) - 1
_NINT_MIN = -(1 << 64)

_MT_UINT = 0
_MT_NINT = 1
_MT_BYTES = 2
_MT_TEXT = 3
_MT_ARRAY = 4
_MT_MAP = 5
_MT_TAG = 6
_MT_SIMPLE = 7

_FALSE = 0xF4
_TRUE = 0xF5
_NULL = 0xF6

# Smallest argument that requires each "additional information" length (24..27); a smaller
# argument in that form is non-canonical.
_MIN_FOR_AI = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}
_AI_LEN = {24: 1, 25: 2, 26: 4, 27: 8}


def _head(major: int, arg: int) -> bytes:
    """The shortest head for ``major`` type with argument ``arg`` (0 <= arg < 2**64)."""
    mt = major << 5
    if arg < 24:
        return bytes((mt | arg,))
    if arg < 1 << 8:
        return bytes((mt | 24, arg))
    if arg < 1 << 16:
        return bytes((mt | 25,)) + arg.to_bytes(2, "big")
    if arg < 1 << 32:
        return bytes((mt | 26,)) + arg.to_bytes(4, "big")
    return bytes((mt | 27,)) + arg.to_bytes(8, "big")


def encode(value: Any) -> bytes:
    """The deterministic encoding of ``value``.

    Raises TypeError for values outside the subset (floats, non-text map keys, other types) and
    ValueError for integers outside [-2**64, 2**64 - 1]: those are programming errors of the
    sender, not protocol errors.
    """
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


def _encode_into(out: bytearray, value: Any) -> None:
    kind = type(value)  # exact-type dispatch first: it is most of the cost of sending
    if kind is int:
        if 0 <= value <= _UINT_MAX:
            out += _head(_MT_UINT, value)
        elif _NINT_MIN <= value < 0:
            out += _head(_MT_NINT, -1 - value)
        else:
            raise ValueError(f"integer {value} does not fit in a CBOR head (64 bits)")
    elif kind is str:
        raw = value.encode("utf-8")  # raises UnicodeEncodeError (a ValueError) on lone surrogates
        out += _head(_MT_TEXT, len(raw))
        out += raw
    elif kind is bytes:
        out += _head(_MT_BYTES, len(value))
        out += value
    elif kind is dict:
        _encode_map(out, value)
    elif kind is list or kind is tuple:
        out += _head(_MT_ARRAY, len(value))
        for item in value:
            _encode_into(out, item)
    elif value is None:
        out.append(_NULL)
    elif value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif isinstance(value, bytearray | memoryview):
        _encode_into(out, bytes(value))
    elif isinstance(value, Mapping):
        _encode_map(out, value)
    elif isinstance(value, list | tuple):
        _encode_into(out, list(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in the CBOR subset")


def _encode_map(out: bytearray, value: Mapping[Any, Any]) -> None:
    entries: list[tuple[bytes, Any]] = []
    for key, item in value.items():
        if type(key) is not str:
            raise TypeError(f"map keys must be text, got {type(key).__name__}")
        raw = key.encode("utf-8")
        entries.append((_head(_MT_TEXT, len(raw)) + raw, item))
    entries.sort(key=_first)
    out += _head(_MT_MAP, len(entries))
    for encoded_key, item in entries:
        out += encoded_key
        _encode_into(out, item)


def _first(entry: tuple[bytes, Any]) -> bytes:
    return entry[0]


def head_len(arg: int) -> int:
    """Size of the shortest head carrying ``arg``."""
    if arg < 24:
        return 1
    if arg < 1 << 8:
        return 2
    if arg < 1 << 16:
        return 3
    if arg < 1 << 32:
        return 5
    return 9


def decode(data: bytes, *, max_depth: int = MAX_DEPTH, max_items: int | None = None) -> Any:
    """Decode exactly one data item that spans all of ``data``.

    ``max_items`` bounds the number of data items (map keys and values, array items, the
    containers themselves); None means only the input length bounds it.

    Raises ProtocolError (reasons: truncated, bad-cbor, non-canonical, duplicate-key, too-deep,
    trailing-bytes, too-large) and nothing else.
    """
    decoder = _Decoder(bytes(data), max_depth, len(data) if max_items is None else max_items)
    value = decoder.item(0)
    if decoder.pos != len(decoder.data):
        raise ProtocolError(
            TRAILING_BYTES, f"{len(decoder.data) - decoder.pos} bytes after the CBOR item"
        )
    return value


class _Decoder:
    """A cursor over the input; recursion depth is bounded by ``max_depth``.

    Written for speed (it is most of the cost of receiving a message): one method reads a head
    and its content, with the bounds checks inline.
    """

    __slots__ = ("budget", "data", "end", "max_depth", "max_items", "pos")

    def __init__(self, data: bytes, max_depth: int, max_items: int) -> None:
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.max_depth = max_depth
        self.max_items = max_items
        self.budget = max_items  # data items still allowed

    def _truncated(self, what: str, start: int, need: int) -> ProtocolError:
        return ProtocolError(
            TRUNCATED,
            f"{what} at offset {start} needs {need} bytes, {self.end - self.pos} remain",
        )

    def _argument(self, ai: int, start: int) -> int:
        """The argument of a head whose additional information is ``ai`` (>= 24)."""
        if ai > 27:
            if ai == 31:
                raise ProtocolError(BAD_CBOR, f"indefinite length at offset {start}")
            raise ProtocolError(BAD_CBOR, f"reserved additional information {ai} at {start}")
        size = _AI_LEN[ai]
        pos = self.pos
        if pos + size > self.end:
            raise self._truncated("head argument", start, size)
        arg = int.from_bytes(self.data[pos : pos + size], "big")
        self.pos = pos + size
        if arg < _MIN_FOR_AI[ai]:
            raise ProtocolError(NON_CANONICAL, f"head at offset {start} is not in shortest form")
        return arg

    def item(self, depth: int) -> Any:
        start = self.pos
        if start >= self.end:
            raise self._truncated("data item", start, 1)
        initial = self.data[start]
        self.pos = start + 1
        self.budget -= 1
        if self.budget < 0:
            raise ProtocolError(TOO_LARGE, f"more than {self.max_items} data items")
        major, ai = initial >> 5, initial & 0x1F
        if major == _MT_SIMPLE:
            return _simple(ai, start)
        arg = ai if ai < 24 else self._argument(ai, start)
        if major == _MT_UINT:
            return arg
        if major == _MT_NINT:
            return -1 - arg
        if major in (_MT_BYTES, _MT_TEXT):
            pos = self.pos
            if arg > self.end - pos:
                raise self._truncated("string", start, arg)
            raw = self.data[pos : pos + arg]
            self.pos = pos + arg
            if major == _MT_BYTES:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError(BAD_CBOR, f"invalid UTF-8 in text at offset {start}") from exc
        if major == _MT_TAG:
            raise ProtocolError(BAD_CBOR, f"tag {arg} at offset {start} (tags are not supported)")
        if depth >= self.max_depth:
            raise ProtocolError(TOO_DEEP, f"nesting deeper than {self.max_depth} at offset {start}")
        if major == _MT_ARRAY:
            if arg > self.end - self.pos:  # every item takes at least one byte
                raise self._truncated("array", start, arg)
            return [self.item(depth + 1) for _ in range(arg)]
        return self._map(arg, depth + 1, start)

    def _map(self, count: int, depth: int, start: int) -> dict[str, Any]:
        if 2 * count > self.end - self.pos:  # every entry takes at least two bytes
            raise self._truncated("map", start, 2 * count)
        data = self.data
        result: dict[str, Any] = {}
        previous = b""
        for _ in range(count):
            key_start = self.pos
            if key_start < self.end and data[key_start] >> 5 != _MT_TEXT:
                raise ProtocolError(BAD_CBOR, f"map key at offset {key_start} is not text")
            key = self.item(depth)
            encoded_key = data[key_start : self.pos]
            if encoded_key <= previous:
                if encoded_key == previous:
                    raise ProtocolError(DUPLICATE_KEY, f"map key {key!r} repeated")
                raise ProtocolError(
                    NON_CANONICAL, f"map key {key!r} at offset {key_start} is out of order"
                )
            previous = encoded_key
            result[key] = self.item(depth)
        return result


def _simple(ai: int, start: int) -> Any:
    if ai == 20:
        return False
    if ai == 21:
        return True
    if ai == 22:
        return None
    if ai in (25, 26, 27):
        raise ProtocolError(BAD_CBOR, f"float at offset {start} (floats are not supported)")
    if ai == 31:
        raise ProtocolError(BAD_CBOR, f"unexpected break at offset {start}")
    raise ProtocolError(BAD_CBOR, f"unsupported simple value (ai {ai}) at offset {start}")
