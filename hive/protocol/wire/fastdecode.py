"""The fast path of :func:`hive.protocol.wire.codec.decode_message`: a C CBOR decoder (cbor2)
and one structuring pass that proves the input was the deterministic encoding.

The reference decoder (:mod:`hive.protocol.wire.cbor`) and the cattrs converter are exact and
name every fault, but in pure Python they cost about three signature checks per state message.
This path decodes with cbor2 and then builds the message in a single walk that, for every value,
checks its exact type and adds the size of its *deterministic* encoding. The input is accepted
only if

* cbor2 decoded it with no indefinite lengths, no duplicate keys, text or byte-string keys only,
  nesting within :data:`~hive.protocol.wire.cbor.MAX_DEPTH`, and no tag at all (every tag,
  including the ones cbor2 would interpret, such as bignums or shared references, is refused);
* every value has the Python type the field's validator asks for (so no float, no undefined or
  other simple value, no tag object), every map has exactly the class's fields, in the
  deterministic key order;
* the class's validators accept the values (the class is built through its ``__init__``); and
* the size of the deterministic encoding of what was decoded equals the input's length.

Without tags and indefinite lengths every encoding of a value is at least as long as its
deterministic encoding, equal only when every head is in its shortest form; with the key order
and the exact set of fields checked, the input is then byte for byte the deterministic encoding,
exactly what the reference decoder accepts. Anything else returns None, and the caller runs the
reference path, which refuses it with the precise reason (or, should this path be stricter
somewhere, accepts it): the fast path can only make valid input cheaper, never change a verdict.
``tests/protocol/test_fastdecode.py`` checks the two agree on valid, mutated and random input.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import attrs
import cbor2

from hive.protocol.wire.cbor import MAX_DEPTH, head_len
from hive.protocol.wire.fields import (
    BytesLen,
    IntRange,
    IsBool,
    IsRecord,
    Nullable,
    Seq,
    TextLen,
)

# A reader takes a decoded value and a one-item size accumulator; it returns the structured
# value or raises _NotCanonical.
Reader = Callable[[Any, list[int]], Any]


class _NotCanonical(Exception):
    """The fast path cannot vouch for this input: let the reference path decide."""


class _RefuseEveryTag(dict[int, Callable[[Any], Any]]):
    """cbor2's table of semantic tag decoders, answering "refuse" for every tag number."""

    def __missing__(self, tag: int) -> Callable[[Any], Any]:
        return _refuse_tag

    def get(self, tag: int, default: Any = None) -> Callable[[Any], Any]:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True


def _refuse_tag(_decoder: Any, _tag: Any = None) -> Any:
    raise _NotCanonical("tags are outside the subset")


# The tags cbor2 interprets itself are listed too, so they are refused even if its lookup
# changed to bypass the mapping's hooks.
_SEMANTIC = _RefuseEveryTag(
    dict.fromkeys(
        (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 270, 1004),
        _refuse_tag,
    )
)
_SEMANTIC[55799] = _refuse_tag


def _loads(payload: bytes) -> Any:
    # Trailing bytes are left alone by cbor2.loads; the size check in fast_decode sees them.
    return cbor2.loads(
        payload,
        tag_hook=_refuse_tag,
        semantic_decoders=_SEMANTIC,
        max_depth=MAX_DEPTH,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )


def _int_size(value: int) -> int:
    arg = value if value >= 0 else -1 - value
    if arg < 24:
        return 1
    if arg < 0x100:
        return 2
    if arg < 0x10000:
        return 3
    if arg < 0x100000000:
        return 5
    if arg < 0x10000000000000000:
        return 9
    raise _NotCanonical("integer beyond 64 bits")


def _read_int(value: Any, size: list[int]) -> Any:
    if type(value) is not int:
        raise _NotCanonical("not an integer")
    # The shortest head, inline for the common non-negative sizes (this runs for every integer).
    if 0 <= value < 24:
        size[0] += 1
    elif 0 <= value < 0x100:
        size[0] += 2
    elif 0 <= value < 0x10000:
        size[0] += 3
    elif 0 <= value < 0x100000000:
        size[0] += 5
    else:
        size[0] += _int_size(value)
    return value


def _read_bool(value: Any, size: list[int]) -> Any:
    if type(value) is not bool:
        raise _NotCanonical("not a boolean")
    size[0] += 1
    return value


def _read_bytes(value: Any, size: list[int]) -> Any:
    if type(value) is not bytes:
        raise _NotCanonical("not a byte string")
    length = len(value)
    size[0] += (1 if length < 24 else head_len(length)) + length
    return value


def _read_text(value: Any, size: list[int]) -> Any:
    if type(value) is not str:
        raise _NotCanonical("not text")
    length = len(value) if value.isascii() else len(value.encode("utf-8"))
    size[0] += head_len(length) + length
    return value


def _nullable(inner: Reader) -> Reader:
    def read(value: Any, size: list[int]) -> Any:
        if value is None:
            size[0] += 1
            return None
        return inner(value, size)

    return read


def _sequence(each: Reader, max_len: int) -> Reader:
    def read(value: Any, size: list[int]) -> Any:
        if type(value) is not list or len(value) > max_len:
            raise _NotCanonical("not an array of the allowed length")
        size[0] += head_len(len(value))
        return tuple([each(item, size) for item in value])

    return read


def _canonical_order(names: list[str]) -> tuple[str, ...]:
    """Text keys in the deterministic order: by encoded length, then bytewise."""
    return tuple(sorted(names, key=lambda name: (len(name.encode()), name.encode())))


_CLASS_READERS: dict[type[Any], Reader] = {}


def class_reader(cls: type[Any]) -> Reader:
    """The reader of a message or record class (memoised: classes never change)."""
    reader = _CLASS_READERS.get(cls)
    if reader is None:
        reader = _CLASS_READERS[cls] = _make_class_reader(cls)
    return reader


def _make_class_reader(cls: type[Any]) -> Reader:
    fields = attrs.fields(cls)
    if any(not field.init or field.kw_only for field in fields):
        raise TypeError(f"{cls.__name__}: the fast path builds classes from positional fields")
    order = _canonical_order([field.name for field in fields])
    constant = head_len(len(fields)) + sum(
        head_len(len(name.encode())) + len(name.encode()) for name in order
    )
    readers: list[Reader] = []  # in the deterministic key order, which the map's order is
    names = [field.name for field in fields]
    to_fields = operator.itemgetter(*[order.index(name) for name in names])
    same_order = tuple(names) == order

    def read(value: Any, size: list[int]) -> Any:
        if type(value) is not dict or tuple(value) != order:
            raise _NotCanonical(f"not a {cls.__name__} map in deterministic order")
        size[0] += constant
        values = [reader(item, size) for reader, item in zip(readers, value.values(), strict=True)]
        # Positional, in the class's field order (attrs' __init__ takes them so).
        if same_order:
            return cls(*values)
        picked = to_fields(values)
        return cls(*picked) if len(names) > 1 else cls(picked)

    by_name = {field.name: field for field in fields}
    validators = [by_name[name].validator for name in order]
    if same_order and all(type(v) in _FLAT for v in validators):
        kinds = [_FLAT[type(v)] for v in validators]
        if kinds == [_BYTES, _INT, _INT]:  # PeerEdge, Opportunity: the bulk of a state
            return _bytes_int_int_reader(cls, order, constant)
        return _flat_reader(cls, order, constant, kinds)
    # Filled after `read` exists, so a record class that (indirectly) holds itself terminates.
    _CLASS_READERS[cls] = read
    readers.extend(_reader(validator) for validator in validators)
    return read


_INT, _BYTES, _TEXT, _BOOL = range(4)
_FLAT = {IntRange: _INT, BytesLen: _BYTES, TextLen: _TEXT, IsBool: _BOOL}


def _flat_reader(cls: type[Any], order: tuple[str, ...], constant: int, kinds: list[int]) -> Reader:
    """A reader for a class whose fields are all plain integers, byte strings, texts or
    booleans (most records): the same checks as the general readers, in one loop."""

    def read(value: Any, size: list[int]) -> Any:
        if type(value) is not dict or tuple(value) != order:
            raise _NotCanonical(f"not a {cls.__name__} map in deterministic order")
        total = constant
        values = list(value.values())
        for item, kind in zip(values, kinds, strict=True):
            if kind == _INT:
                if type(item) is not int:
                    raise _NotCanonical("not an integer")
                total += 1 if 0 <= item < 24 else _int_size(item)
            elif kind == _BYTES:
                if type(item) is not bytes:
                    raise _NotCanonical("not a byte string")
                length = len(item)
                total += (1 if length < 24 else head_len(length)) + length
            elif kind == _TEXT:
                if type(item) is not str:
                    raise _NotCanonical("not text")
                length = len(item) if item.isascii() else len(item.encode("utf-8"))
                total += (1 if length < 24 else head_len(length)) + length
            elif type(item) is not bool:
                raise _NotCanonical("not a boolean")
            else:
                total += 1
        size[0] += total
        return cls(*values)

    return read


def _bytes_int_int_reader(cls: type[Any], order: tuple[str, ...], constant: int) -> Reader:
    """:func:`_flat_reader` unrolled for (bytes, int, int) records, which a state is made of."""

    def read(value: Any, size: list[int]) -> Any:
        if type(value) is not dict or tuple(value) != order:
            raise _NotCanonical(f"not a {cls.__name__} map in deterministic order")
        first, second, third = value.values()
        if type(first) is not bytes or type(second) is not int or type(third) is not int:
            raise _NotCanonical(f"not a {cls.__name__} of the right types")
        length = len(first)
        size[0] += (
            constant
            + (1 if length < 24 else head_len(length))
            + length
            + (1 if 0 <= second < 24 else _int_size(second))
            + (1 if 0 <= third < 24 else _int_size(third))
        )
        return cls(first, second, third)

    return read


def _reader(validator: Any) -> Reader:
    if isinstance(validator, Nullable):
        return _nullable(_reader(validator.inner))
    if isinstance(validator, IntRange):
        return _read_int
    if isinstance(validator, IsBool):
        return _read_bool
    if isinstance(validator, BytesLen):
        return _read_bytes
    if isinstance(validator, TextLen):
        return _read_text
    if isinstance(validator, IsRecord):
        return class_reader(validator.cls)
    if isinstance(validator, Seq):
        return _sequence(_reader(validator.each), validator.max_len)
    raise TypeError(f"no fast reader for validator {validator!r}")


def fast_decode(cls: type[Any], payload: bytes) -> Any | None:
    """The ``cls`` instance ``payload`` is the deterministic encoding of, or None when the
    fast path cannot vouch for it (then the reference decoder must decide)."""
    try:
        raw = _loads(payload)
        size = [0]
        message = class_reader(cls)(raw, size)
    except (cbor2.CBORDecodeError, _NotCanonical, TypeError, ValueError):
        # Refused or not provable here; the reference path gives the reason. (cbor2 wraps
        # what a tag hook raises into CBORDecodeError; validators raise TypeError/ValueError.)
        return None
    if size[0] != len(payload):
        return None  # some head was longer than needed
    return message
