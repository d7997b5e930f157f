"""An independent judge of the CBOR subset, built on cbor2 (not on the code under test).

Input is in the subset, in deterministic encoding, exactly when cbor2 decodes it (with its
defaults: tags interpreted, duplicates collapsed, indefinite lengths allowed), every decoded
value is of a subset type with at most 16 levels of nesting, and cbor2's canonical encoding of
that value is the input, byte for byte. Whatever a tag, a duplicate key, an indefinite length or
a longer head did, the canonical re-encoding differs, so the verdict does not depend on how
cbor2 chose to interpret it.
"""

from __future__ import annotations

from typing import Any

import cbor2

_INT_MIN = -(1 << 64)
_INT_MAX = (1 << 64) - 1
# What cbor2 may raise on hostile input (its own errors, and what interpreted tags can raise
# while building their objects).
DECODE_ERRORS = (
    cbor2.CBORError,
    ValueError,
    TypeError,
    OverflowError,
    KeyError,
    IndexError,
    RecursionError,
)


def in_subset(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind in (bytes, str, bool) or value is None:
        return True
    if kind is list:
        return depth < 16 and all(in_subset(item, depth + 1) for item in value)
    if kind is dict:
        return depth < 16 and all(
            type(key) is str and in_subset(item, depth + 1) for key, item in value.items()
        )
    return False


def canonical_value(data: bytes) -> tuple[bool, Any]:
    """(True, value) when ``data`` is the deterministic encoding of a subset value."""
    try:
        value = cbor2.loads(data)
    except DECODE_ERRORS:
        return False, None
    if not in_subset(value):
        return False, None
    try:
        again = cbor2.dumps(value, canonical=True)
    except DECODE_ERRORS:
        return False, None
    return (again == data), value
