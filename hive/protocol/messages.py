"""Message kinds: frozen attrs classes registered with a u16 kind number.

Adding a kind takes a few lines::

    @message(kind=0x0030)
    @attrs.frozen
    class LockRequest(Message):
        target: bytes = attrs.field(validator=exact_bytes(33))
        expires_ms: int = attrs.field(validator=u(64))

The registry maps kind numbers to classes and back, and refuses at import time: a duplicate kind
or class name, a class that is not a frozen attrs class, a field type outside the wire's types
(int, bool, str, bytes, homogeneous tuples of those or of records, records, ``X | None``), and a
field whose validator (see :mod:`hive.protocol.wire.fields`) is missing or does not fit its type. So
every field that comes off the wire is bounded.

Records (:class:`Record` subclasses, frozen attrs) are nested structures inside messages; they
are not messages and have no kind.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from hive.protocol.wire.fields import (
    BytesLen,
    IntRange,
    IsBool,
    IsRecord,
    Nullable,
    Seq,
    TextLen,
    between,
    byte_len,
    exact_bytes,
    record_of,
    seq_of,
    u,
)

KIND_MAX = 0xFFFF


class Message:
    """Base of every message kind (register subclasses with :func:`message`)."""

    __slots__ = ()


class Record:
    """Base of nested record classes used as message fields."""

    __slots__ = ()


M = TypeVar("M", bound=Message)


def _is_frozen(cls: type[Any]) -> bool:
    """True when instances of the attrs class ``cls`` refuse attribute assignment."""
    fields = attrs.fields(cls)
    if not fields:
        return True  # nothing to assign; a field-less kind is immutable either way
    probe = object.__new__(cls)
    try:
        setattr(probe, fields[0].name, None)
    except attrs.exceptions.FrozenInstanceError:
        return True
    except (TypeError, ValueError):
        return False  # an on_setattr validator ran: assignment is possible
    return False


def _check_type(where: str, tp: Any, validator: Any, seen: set[type[Any]]) -> None:
    """Refuse (TypeError) a field type outside the wire's types or a validator that misfits."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        present = [arg for arg in args if arg is not type(None)]
        if len(args) != 2 or len(present) != 1:
            raise TypeError(f"{where}: only `X | None` unions are allowed, got {tp!r}")
        if not isinstance(validator, Nullable):
            raise TypeError(f"{where}: optional field needs a nullable(...) validator")
        _check_type(where, present[0], validator.inner, seen)
        return
    if isinstance(validator, Nullable):
        raise TypeError(f"{where}: nullable validator on a field that is not `X | None`")
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: only homogeneous `tuple[X, ...]` is allowed, got {tp!r}")
        if not isinstance(validator, Seq):
            raise TypeError(f"{where}: tuple field needs a seq_of(...) validator")
        if typing.get_origin(args[0]) is not None:
            raise TypeError(f"{where}: tuple items must be int, bool, str, bytes or a record")
        _check_type(f"{where}[]", args[0], validator.each, seen)
        return
    expected: dict[Any, type[Any]] = {bool: IsBool, int: IntRange, bytes: BytesLen, str: TextLen}
    if tp in expected:
        if not isinstance(validator, expected[tp]):
            raise TypeError(f"{where}: {tp.__name__} field needs a {expected[tp].__name__} check")
        return
    if isinstance(tp, type) and issubclass(tp, Record):
        if not isinstance(validator, IsRecord) or validator.cls is not tp:
            raise TypeError(f"{where}: record field needs record_of({tp.__name__})")
        _check_class(tp, seen)
        return
    raise TypeError(f"{where}: type {tp!r} cannot go on the wire")


def _check_class(cls: type[Any], seen: set[type[Any]]) -> None:
    """Check a message or record class and, recursively, the records it uses."""
    if cls in seen:
        return
    seen.add(cls)
    if not attrs.has(cls):
        raise TypeError(f"{cls.__name__} must be an attrs class")
    if issubclass(cls, Message) and issubclass(cls, Record):
        raise TypeError(f"{cls.__name__} cannot be both a Message and a Record")
    if not _is_frozen(cls):
        raise TypeError(f"{cls.__name__} must be frozen (@attrs.frozen)")
    try:
        attrs.resolve_types(cls)
    except NameError as exc:
        raise TypeError(
            f"{cls.__name__}: cannot resolve its annotations ({exc}); "
            "define message and record classes at module level"
        ) from exc
    for field in attrs.fields(cls):
        if not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: every field must be an init field")
        _check_type(f"{cls.__name__}.{field.name}", field.type, field.validator, seen)


class MessageRegistry:
    """Kind number <-> message class, both ways; duplicates are refused."""

    def __init__(self) -> None:
        self._by_kind: dict[int, type[Message]] = {}
        self._by_name: dict[str, type[Message]] = {}
        self._kind_of: dict[type[Message], int] = {}

    def register(self, cls: type[M], kind: int) -> type[M]:
        """Register ``cls`` as ``kind``; raise TypeError/ValueError on any misfit or duplicate."""
        if not isinstance(cls, type) or not issubclass(cls, Message):
            raise TypeError(f"{cls!r} must subclass Message")
        if type(kind) is not int or not 0 < kind <= KIND_MAX:
            raise ValueError(f"{cls.__name__}: kind must be in 1..{KIND_MAX}, got {kind!r}")
        if kind in self._by_kind:
            raise ValueError(
                f"kind {kind:#06x} of {cls.__name__} is already {self._by_kind[kind].__name__}"
            )
        if cls.__name__ in self._by_name:
            raise ValueError(f"a message named {cls.__name__} is already registered")
        _check_class(cls, set())
        self._by_kind[kind] = cls
        self._by_name[cls.__name__] = cls
        self._kind_of[cls] = kind
        return cls

    def message(self, *, kind: int) -> Callable[[type[M]], type[M]]:
        """Class decorator: ``@registry.message(kind=...)`` above ``@attrs.frozen``."""

        def decorate(cls: type[M]) -> type[M]:
            return self.register(cls, kind)

        return decorate

    def by_kind(self, kind: int) -> type[Message] | None:
        """The class registered as ``kind``, or None."""
        return self._by_kind.get(kind)

    def by_name(self, name: str) -> type[Message] | None:
        """The class registered under ``name``, or None."""
        return self._by_name.get(name)

    def kind_of(self, cls: type[Message]) -> int:
        """The kind number of a registered class (KeyError if it is not registered)."""
        return self._kind_of[cls]

    def kinds(self) -> Mapping[int, type[Message]]:
        """A read-only view: kind -> class."""
        return types.MappingProxyType(self._by_kind)

    def __iter__(self) -> Iterator[type[Message]]:
        return iter(list(self._by_kind.values()))

    def __len__(self) -> int:
        return len(self._by_kind)


REGISTRY = MessageRegistry()
"""The hive's message kinds (filled at import time by the decorators below, then constant)."""

message = REGISTRY.message


# ---------------------------------------------------------------------------------------------
# Kinds. Numbers are permanent: never reuse one, never change a field of a published kind
# (add a new kind instead). 0x0001..0x000F liveness, 0x0010..0x001F fleet state.


@message(kind=0x0001)
@attrs.frozen
class Ping(Message):
    """Liveness probe; the receiver answers with a :class:`Pong` carrying the same nonce."""

    nonce: bytes = attrs.field(validator=byte_len(8, 32))


@message(kind=0x0002)
@attrs.frozen
class Pong(Message):
    """Answer to :class:`Ping`."""

    nonce: bytes = attrs.field(validator=byte_len(8, 32))


@attrs.frozen
class ChannelSummary(Record):
    """One channel of a member, as announced to the fleet."""

    peer: bytes = attrs.field(validator=exact_bytes(33))  # remote node id (compressed secp256k1)
    capacity_sat: int = attrs.field(validator=u(64))
    local_share_ppm: int = attrs.field(validator=between(0, 1_000_000))  # our share of capacity


@message(kind=0x0010)
@attrs.frozen
class StateAnnounce(Message):
    """Superseded by the state gossip kinds (hive/protocol/gossip/state.py) and not sent; kept
    registered because kind numbers are never reused, and as the codec's worked example."""

    version: int = attrs.field(validator=u(64))
    channels: tuple[ChannelSummary, ...] = attrs.field(
        validator=seq_of(1000, record_of(ChannelSummary))
    )
    outbound_msat: int = attrs.field(validator=u(64))
    inbound_msat: int = attrs.field(validator=u(64))
    onchain_sat: int = attrs.field(validator=u(64))


__all__ = [
    "REGISTRY",
    "ChannelSummary",
    "Message",
    "MessageRegistry",
    "Ping",
    "Pong",
    "Record",
    "StateAnnounce",
    "message",
]
