"""Hypothesis strategies derived from message classes' attrs fields and validators.

A newly registered kind is covered without writing a strategy by hand: every field is declared
with one of the validators in :mod:`hive.protocol.wire.fields`, and :func:`for_class` turns each
into the matching strategy (bounds included). A field it cannot handle raises :class:`NoStrategy`.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from hive.protocol.messages import REGISTRY, Message
from hive.protocol.wire.fields import BytesLen, IntRange, IsBool, IsRecord, Nullable, Seq, TextLen

# Tuples are generated up to this many items (their validators may allow far more; the bounds
# themselves are tested separately), to keep examples small and fast.
MAX_GENERATED_ITEMS = 24


class NoStrategy(TypeError):
    """A field's type/validator has no strategy here: extend this module."""


def _utf8_prefix(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")[:max_bytes]
    return raw.decode("utf-8", errors="ignore")


def for_validator(validator: Any, where: str) -> st.SearchStrategy[Any]:
    """The strategy of values ``validator`` accepts."""
    if isinstance(validator, Nullable):
        return st.none() | for_validator(validator.inner, where)
    if isinstance(validator, IntRange):
        return st.integers(min_value=validator.lo, max_value=validator.hi)
    if isinstance(validator, IsBool):
        return st.booleans()
    if isinstance(validator, BytesLen):
        return st.binary(min_size=validator.min_len, max_size=validator.max_len)
    if isinstance(validator, TextLen):
        low, high = validator.min_bytes, validator.max_bytes
        return (
            st.text(min_size=low, max_size=max(high, low))
            .map(lambda text: _utf8_prefix(text, high))
            .filter(lambda text: len(text.encode("utf-8")) >= low)
        )
    if isinstance(validator, IsRecord):
        return for_class(validator.cls)
    if isinstance(validator, Seq):
        return st.lists(
            for_validator(validator.each, f"{where}[]"),
            min_size=validator.min_len,
            max_size=max(validator.min_len, min(validator.max_len, MAX_GENERATED_ITEMS)),
        ).map(tuple)
    raise NoStrategy(f"{where}: no strategy for validator {validator!r}")


def for_class(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of the attrs message or record class ``cls``."""
    if not attrs.has(cls):
        raise NoStrategy(f"{cls!r} is not an attrs class")
    fields = {
        field.name: for_validator(field.validator, f"{cls.__name__}.{field.name}")
        for field in attrs.fields(cls)
    }
    return st.builds(cls, **fields)


def any_message() -> st.SearchStrategy[Message]:
    """An instance of any registered kind."""
    return st.sampled_from(list(REGISTRY)).flatmap(for_class)
