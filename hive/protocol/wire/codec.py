"""The message codec: registered attrs classes <-> deterministic CBOR bytes, through one cattrs
Converter.

Shape on the wire: a message (or record) is a CBOR map keyed by field name, every field present
(``None`` is CBOR null); tuples are arrays; bytes are byte strings; ints, bools and text are
themselves. Structuring is strict: exact primitive types (no int from a bool, no tuple from a
byte string), every field present, no unknown field, and the classes' validators run.

Failures become ``ProtocolError``: "unknown-field" when a map carries a field the class does not
have, "bad-field" for everything else (missing field, wrong type, out of bounds), with a detail
naming the kind and the place of each offending field, e.g.
``StateAnnounce: local_share_ppm: 1000001 is outside [0, 1000000] @ $.channels[3]``. Bodies far
larger than the kind's largest valid body are refused as "too-large" (see :func:`wire_bounds`).
"""

from __future__ import annotations

import typing
from typing import Any

import attrs
import cattrs
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from hive.protocol.errors import BAD_FIELD, TOO_LARGE, UNKNOWN_FIELD, UNKNOWN_KIND, ProtocolError
from hive.protocol.messages import REGISTRY, Message, Record
from hive.protocol.wire import cbor
from hive.protocol.wire.fastdecode import fast_decode
from hive.protocol.wire.fields import BytesLen, IntRange, IsBool, IsRecord, Nullable, Seq, TextLen

# What a structure hook may raise for bad input (anything else is a bug and propagates).
_INPUT_ERRORS = (TypeError, ValueError, KeyError, BaseValidationError, ForbiddenExtraKeysError)
_MAX_REPORTED = 4  # field errors quoted in one ProtocolError detail


class MissingFieldsError(ValueError):
    """A map lacks fields of the class it is structured into."""


def _strict(expected: type[Any], label: str) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        if type(value) is not expected:
            raise TypeError(f"expected {label}, got {type(value).__name__}")
        return value

    return hook


def _is_tuple(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple


def _is_wire_class(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Message | Record) and attrs.has(tp)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _strict(int, "integer"))
    converter.register_structure_hook(bool, _strict(bool, "boolean"))
    converter.register_structure_hook(str, _strict(str, "text"))
    converter.register_structure_hook(bytes, _strict(bytes, "byte string"))

    def tuple_factory(tp: Any) -> Any:
        item_type = typing.get_args(tp)[0]
        item_hook = converter.get_structure_hook(item_type)

        def structure_tuple(value: Any, _type: Any) -> tuple[Any, ...]:
            if type(value) is not list and type(value) is not tuple:
                raise TypeError(f"expected array, got {type(value).__name__}")
            items: list[Any] = []
            for index, item in enumerate(value):
                try:
                    items.append(item_hook(item, item_type))
                except _INPUT_ERRORS as exc:
                    # Report the first bad item only: the rest would cost work and log space.
                    exc.__notes__ = [
                        *getattr(exc, "__notes__", []),
                        IterableValidationNote(f"item @ index {index}", index, item_type),
                    ]
                    raise IterableValidationError(f"while structuring {tp!r}", [exc], tp) from None
            return tuple(items)

        return structure_tuple

    def class_factory(cls: type[Any]) -> Any:
        inner = make_dict_structure_fn(cls, converter)
        names = frozenset(field.name for field in attrs.fields(cls))
        # Tuple length bounds, checked before any item is structured (cheap refusal of floods).
        max_items: dict[str, int] = {}
        for field in attrs.fields(cls):
            check = (
                field.validator.inner if isinstance(field.validator, Nullable) else field.validator
            )
            if isinstance(check, Seq):
                max_items[field.name] = check.max_len

        def structure_class(value: Any, _type: Any) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected map for {cls.__name__}, got {type(value).__name__}")
            extra = value.keys() - names
            if extra:
                raise ForbiddenExtraKeysError(
                    f"unknown field(s) {', '.join(sorted(map(str, extra)))}", cls, set(extra)
                )
            missing = names - value.keys()
            if missing:
                raise MissingFieldsError(f"missing field(s) {', '.join(sorted(missing))}")
            for name, limit in max_items.items():
                items = value[name]
                if type(items) is list and len(items) > limit:
                    raise ValueError(f"{name}: {len(items)} items, at most {limit} allowed")
            try:
                return inner(value, cls)
            except (TypeError, ValueError) as exc:
                # A validator refused the assembled values in the class's __init__; the message
                # already names the field.
                raise ClassValidationError(
                    f"while structuring {cls.__name__}", [exc], cls
                ) from None

        return structure_class

    converter.register_structure_hook_factory(_is_tuple, tuple_factory)
    converter.register_structure_hook_factory(_is_wire_class, class_factory)
    return converter


CONVERTER = _make_converter()
"""The one converter for wire messages (configured once, never changed)."""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _format_leaf(exc: BaseException, _type: type | None) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!s}" if exc.args else "missing field"
    return str(exc)


def _as_protocol_error(exc: BaseException, kind_name: str) -> ProtocolError:
    """Flatten a cattrs error tree into one reason and one detail string."""
    reason = BAD_FIELD
    if any(isinstance(leaf, ForbiddenExtraKeysError) for leaf in _leaves(exc)):
        reason = UNKNOWN_FIELD
    lines = cattrs.transform_error(exc, path="$", format_exception=_format_leaf)
    shown = "; ".join(lines[:_MAX_REPORTED])
    if len(lines) > _MAX_REPORTED:
        shown += f"; and {len(lines) - _MAX_REPORTED} more"
    return ProtocolError(reason, f"{kind_name}: {shown}")


def unstructure(message: Message) -> dict[str, Any]:
    """The CBOR-able primitive form of ``message`` (a map keyed by field name)."""
    raw = CONVERTER.unstructure(message)
    if type(raw) is not dict:  # pragma: no cover - registered classes always unstructure to dict
        raise TypeError(f"{type(message).__name__} did not unstructure to a map")
    return raw


def structure(raw: Any, cls: type[Message]) -> Message:
    """Build a ``cls`` from primitives; raise ProtocolError (unknown-field/bad-field)."""
    try:
        result: Message = CONVERTER.structure(raw, cls)
    except _INPUT_ERRORS as exc:
        raise _as_protocol_error(exc, cls.__name__) from exc
    return result


def encode_message(message: Message) -> tuple[int, bytes]:
    """``(kind, payload)``: the kind number and the deterministic CBOR payload of ``message``."""
    kind = REGISTRY.kind_of(type(message))
    return kind, cbor.encode(unstructure(message))


@attrs.frozen
class Bounds:
    """Upper bounds of a value's deterministic encoding, derived from its validators."""

    max_bytes: int
    max_items: int  # CBOR data items, containers and map keys included


def _validator_bounds(validator: Any) -> Bounds:
    if isinstance(validator, Nullable):
        return _validator_bounds(validator.inner)  # null (1 byte, 1 item) is never larger
    if isinstance(validator, IntRange | IsBool):
        return Bounds(max_bytes=9, max_items=1)
    if isinstance(validator, BytesLen):
        return Bounds(cbor.head_len(validator.max_len) + validator.max_len, 1)
    if isinstance(validator, TextLen):
        return Bounds(cbor.head_len(validator.max_bytes) + validator.max_bytes, 1)
    if isinstance(validator, IsRecord):
        return wire_bounds(validator.cls)
    if isinstance(validator, Seq):
        each = _validator_bounds(validator.each)
        return Bounds(
            max_bytes=cbor.head_len(validator.max_len) + validator.max_len * each.max_bytes,
            max_items=1 + validator.max_len * each.max_items,
        )
    raise TypeError(f"no encoding bounds for validator {validator!r}")


# Margins above a kind's largest valid body before decoding is refused as "too-large": enough
# that a body with a few extra fields is still reported precisely ("unknown-field"), small
# enough that decoding a hostile body costs about what the largest valid one would.
SLACK_BYTES = 1024
SLACK_ITEMS = 128

_BOUNDS_MEMO: dict[type[Any], Bounds] = {}  # a pure function's memo (classes never change)


def wire_bounds(cls: type[Any]) -> Bounds:
    """Bounds of the encoding of any valid instance of the message or record class ``cls``.

    :func:`decode_message` refuses a payload longer than ``max_bytes + SLACK_BYTES`` before
    decoding it and stops decoding after ``max_items + SLACK_ITEMS`` data items, so a hostile
    payload costs about what the largest valid message of that kind would.
    """
    bounds = _BOUNDS_MEMO.get(cls)
    if bounds is None:
        bounds = _BOUNDS_MEMO[cls] = _class_bounds(cls)
    return bounds


def _class_bounds(cls: type[Any]) -> Bounds:
    fields = attrs.fields(cls)
    max_bytes = cbor.head_len(len(fields))
    max_items = 1
    for field in fields:
        value = _validator_bounds(field.validator)
        max_bytes += len(cbor.encode(field.name)) + value.max_bytes
        max_items += 1 + value.max_items
    return Bounds(max_bytes=max_bytes, max_items=max_items)


def decode_message(kind: int, payload: bytes) -> Message:
    """The message of ``kind`` encoded in ``payload``; raise ProtocolError and nothing else.

    Valid input takes the fast path (:mod:`hive.protocol.wire.fastdecode`: cbor2 and one
    structuring pass that proves the input canonical); everything else is decided by
    :func:`reference_decode_message`, which names the fault."""
    cls = _kind_class(kind)
    _check_size(cls, payload)
    message: Message | None = fast_decode(cls, payload)  # None unless provably canonical
    if message is not None:
        return message
    return _reference(cls, payload)


def reference_decode_message(kind: int, payload: bytes) -> Message:
    """:func:`decode_message` by the reference decoder and the cattrs converter alone (the
    pure-Python path that decides every input the fast path does not vouch for)."""
    cls = _kind_class(kind)
    _check_size(cls, payload)
    return _reference(cls, payload)


def _kind_class(kind: int) -> type[Message]:
    cls = REGISTRY.by_kind(kind)
    if cls is None:
        raise ProtocolError(UNKNOWN_KIND, f"kind {kind:#06x} is not known to this implementation")
    return cls


def _check_size(cls: type[Message], payload: bytes) -> None:
    bounds = wire_bounds(cls)
    if len(payload) > bounds.max_bytes + SLACK_BYTES:
        raise ProtocolError(
            TOO_LARGE,
            f"{cls.__name__}: {len(payload)}-byte body, a valid one is at most {bounds.max_bytes}",
        )


def _reference(cls: type[Message], payload: bytes) -> Message:
    bounds = wire_bounds(cls)
    try:
        raw = cbor.decode(payload, max_items=bounds.max_items + SLACK_ITEMS)
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, f"{cls.__name__}: {exc.detail}") from exc
    return structure(raw, cls)
