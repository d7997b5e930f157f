"""Bounded field validators and field helpers for message and record classes.

Every field that comes off the wire must be bounded, so every field of a message or record is
declared with one of the validators below; each that checks the exact Python
type (``True`` is not an int, a ``str`` is not a tuple) and the bounds. The validators are plain
frozen attrs objects, so the registry can check at import time that each field's validator fits
its annotated type, and tests can derive Hypothesis strategies from them.

Example::

    @message(kind=0x0042)
    @attrs.frozen
    class Example(Message):
        amount_msat: int = attrs.field(validator=u(64))
        note: str | None = attrs.field(validator=nullable(text_len(200)))
        peers: tuple[bytes, ...] = attrs.field(validator=seq_of(16, exact_bytes(33)))

(Fields are spelled ``attrs.field(validator=...)`` rather than through a helper so that mypy's
attrs plugin still sees them as required constructor arguments.)

Validators raise TypeError (wrong type) or ValueError (out of bounds) with the field name first;
the codec turns both into ``ProtocolError("bad-field")``.
"""

from __future__ import annotations

from typing import Any

import attrs

U8_MAX = (1 << 8) - 1
U16_MAX = (1 << 16) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
# The CBOR subset carries integers in [-2**64, 2**64 - 1].
WIRE_INT_MIN = -(1 << 64)
WIRE_INT_MAX = U64_MAX


class _Validator:
    """Adapter: attrs calls ``v(instance, attribute, value)``; we call ``v.check(value, name)``."""

    __slots__ = ()

    def check(self, value: Any, name: str) -> None:
        raise NotImplementedError

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        self.check(value, attribute.name)


def _type_error(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{name}: expected {expected}, got {type(value).__name__}")


@attrs.frozen
class IntRange(_Validator):
    """An ``int`` (not a bool) with ``lo <= value <= hi``."""

    lo: int
    hi: int

    def __attrs_post_init__(self) -> None:
        if not WIRE_INT_MIN <= self.lo <= self.hi <= WIRE_INT_MAX:
            raise ValueError(f"bad integer bounds [{self.lo}, {self.hi}] for the wire")

    def check(self, value: Any, name: str) -> None:
        if type(value) is not int:
            raise _type_error(name, "integer", value)
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{name}: {value} is outside [{self.lo}, {self.hi}]")

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        # The common case without the adapter's extra call: validators run on every receive.
        if type(value) is not int or not self.lo <= value <= self.hi:
            self.check(value, attribute.name)


@attrs.frozen
class IsBool(_Validator):
    """A ``bool``."""

    def check(self, value: Any, name: str) -> None:
        if type(value) is not bool:
            raise _type_error(name, "boolean", value)


@attrs.frozen
class BytesLen(_Validator):
    """A ``bytes`` whose length is in ``[min_len, max_len]``."""

    min_len: int
    max_len: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_len <= self.max_len:
            raise ValueError(f"bad byte length bounds [{self.min_len}, {self.max_len}]")

    def check(self, value: Any, name: str) -> None:
        if type(value) is not bytes:
            raise _type_error(name, "byte string", value)
        if not self.min_len <= len(value) <= self.max_len:
            raise ValueError(f"{name}: {len(value)} bytes, expected {self.min_len}..{self.max_len}")

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if type(value) is not bytes or not self.min_len <= len(value) <= self.max_len:
            self.check(value, attribute.name)


@attrs.frozen
class TextLen(_Validator):
    """A ``str`` whose UTF-8 encoding is ``min_bytes..max_bytes`` long (no lone surrogates)."""

    min_bytes: int
    max_bytes: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_bytes <= self.max_bytes:
            raise ValueError(f"bad text length bounds [{self.min_bytes}, {self.max_bytes}]")

    def check(self, value: Any, name: str) -> None:
        if type(value) is not str:
            raise _type_error(name, "text", value)
        if len(value) > self.max_bytes:  # cheap early refusal: a code point is >= 1 byte
            raise ValueError(f"{name}: text longer than {self.max_bytes} bytes")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"{name}: text is not valid Unicode ({exc.reason})") from exc
        if not self.min_bytes <= size <= self.max_bytes:
            raise ValueError(
                f"{name}: {size} UTF-8 bytes, expected {self.min_bytes}..{self.max_bytes}"
            )


@attrs.frozen
class IsRecord(_Validator):
    """An instance of the record class ``cls`` (its own fields validate themselves)."""

    cls: type[Any]

    def check(self, value: Any, name: str) -> None:
        if type(value) is not self.cls:
            raise _type_error(name, self.cls.__name__, value)

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if type(value) is not self.cls:
            self.check(value, attribute.name)


@attrs.frozen
class Seq(_Validator):
    """A ``tuple`` of ``min_len..max_len`` items, each checked by ``each``."""

    min_len: int
    max_len: int
    each: IntRange | IsBool | BytesLen | TextLen | IsRecord

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_len <= self.max_len:
            raise ValueError(f"bad tuple length bounds [{self.min_len}, {self.max_len}]")

    def check(self, value: Any, name: str) -> None:
        if type(value) is not tuple:
            raise _type_error(name, "tuple", value)
        if not self.min_len <= len(value) <= self.max_len:
            raise ValueError(f"{name}: {len(value)} items, expected {self.min_len}..{self.max_len}")
        for index, item in enumerate(value):
            self.each.check(item, f"{name}[{index}]")

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        # Records (the common element) without naming each item: names only matter on failure.
        each = self.each
        if (
            type(value) is tuple
            and self.min_len <= len(value) <= self.max_len
            and type(each) is IsRecord
            and all(type(item) is each.cls for item in value)
        ):
            return
        self.check(value, attribute.name)


@attrs.frozen
class Nullable(_Validator):
    """``None`` or a value that ``inner`` accepts."""

    inner: IntRange | IsBool | BytesLen | TextLen | IsRecord | Seq

    def check(self, value: Any, name: str) -> None:
        if value is not None:
            self.inner.check(value, name)

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            self.inner(instance, attribute, value)


FieldValidator = IntRange | IsBool | BytesLen | TextLen | IsRecord | Seq | Nullable
ElementValidator = IntRange | IsBool | BytesLen | TextLen | IsRecord


# Validator constructors (use as ``attrs.field(validator=...)``).


def u(bits: int) -> IntRange:
    """Unsigned integer of ``bits`` bits (8, 16, 32 or 64)."""
    if bits not in (8, 16, 32, 64):
        raise ValueError(f"unsupported integer width {bits}")
    return IntRange(0, (1 << bits) - 1)


def between(lo: int, hi: int) -> IntRange:
    """Integer in ``[lo, hi]``."""
    return IntRange(lo, hi)


def byte_len(min_len: int, max_len: int) -> BytesLen:
    """Byte string of ``min_len..max_len`` bytes."""
    return BytesLen(min_len, max_len)


def exact_bytes(length: int) -> BytesLen:
    """Byte string of exactly ``length`` bytes."""
    return BytesLen(length, length)


def text_len(max_bytes: int, *, min_bytes: int = 0) -> TextLen:
    """Text of ``min_bytes..max_bytes`` UTF-8 bytes."""
    return TextLen(min_bytes, max_bytes)


def record_of(cls: type[Any]) -> IsRecord:
    """A record of class ``cls``."""
    return IsRecord(cls)


def boolean() -> IsBool:
    """A boolean."""
    return IsBool()


def seq_of(max_len: int, each: ElementValidator, *, min_len: int = 0) -> Seq:
    """A tuple of ``min_len..max_len`` items, each checked by ``each``."""
    return Seq(min_len, max_len, each)


def nullable(inner: IntRange | IsBool | BytesLen | TextLen | IsRecord | Seq) -> Nullable:
    """``None`` or a value ``inner`` accepts (for fields annotated ``X | None``)."""
    return Nullable(inner)
