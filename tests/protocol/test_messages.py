"""The message registry and the bounded field validators."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.messages import (
    REGISTRY,
    ChannelSummary,
    Message,
    MessageRegistry,
    Ping,
    Pong,
    Record,
    StateAnnounce,
)
from hive.protocol.wire import cbor, codec
from hive.protocol.wire.fields import (
    between,
    boolean,
    byte_len,
    exact_bytes,
    nullable,
    record_of,
    seq_of,
    text_len,
    u,
)

from . import strategies

# --- test-only classes covering every field shape the registry allows ----------------------


@attrs.frozen
class Inner(Record):
    flag: bool = attrs.field(validator=boolean())
    label: str | None = attrs.field(validator=nullable(text_len(12, min_bytes=1)))


@attrs.frozen
class Everything(Message):
    small: int = attrs.field(validator=between(-5, 5))
    maybe_int: int | None = attrs.field(validator=nullable(u(16)))
    blob: bytes = attrs.field(validator=byte_len(0, 4))
    note: str = attrs.field(validator=text_len(40))
    flags: tuple[bool, ...] = attrs.field(validator=seq_of(3, boolean()))
    names: tuple[str, ...] = attrs.field(validator=seq_of(2, text_len(5), min_len=1))
    ids: tuple[int, ...] = attrs.field(validator=seq_of(4, u(8)))
    keys: tuple[bytes, ...] | None = attrs.field(validator=nullable(seq_of(2, exact_bytes(2))))
    inner: Inner = attrs.field(validator=record_of(Inner))
    maybe_inner: Inner | None = attrs.field(validator=nullable(record_of(Inner)))
    inners: tuple[Inner, ...] = attrs.field(validator=seq_of(3, record_of(Inner)))


def test_registry_maps_both_ways() -> None:
    assert REGISTRY.by_kind(0x0001) is Ping
    assert REGISTRY.by_kind(0x0002) is Pong
    assert REGISTRY.by_kind(0x0010) is StateAnnounce
    assert REGISTRY.by_kind(0x7777) is None
    for kind, cls in REGISTRY.kinds().items():
        assert REGISTRY.kind_of(cls) == kind
        assert REGISTRY.by_name(cls.__name__) is cls
    assert len(REGISTRY) == len(set(REGISTRY)) >= 3


def test_registering_a_test_class_works_in_a_fresh_registry() -> None:
    registry = MessageRegistry()
    assert registry.register(Everything, 0x7001) is Everything
    assert registry.kind_of(Everything) == 0x7001


def test_duplicate_kind_refused() -> None:
    registry = MessageRegistry()
    registry.register(Ping, 1)
    with pytest.raises(ValueError, match="already Ping"):
        registry.register(Pong, 1)


def test_duplicate_name_refused() -> None:
    registry = MessageRegistry()
    registry.register(Ping, 1)
    with pytest.raises(ValueError, match="named Ping"):
        registry.register(Ping, 2)


@pytest.mark.parametrize("kind", [0, -1, 0x10000, True])
def test_kind_out_of_range_refused(kind: int) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        MessageRegistry().register(Ping, kind)


def test_decorator_registers() -> None:
    registry = MessageRegistry()

    @registry.message(kind=9)
    @attrs.frozen
    class Hello(Message):
        n: int = attrs.field(validator=u(8))

    assert registry.by_kind(9) is Hello


def test_non_message_refused() -> None:
    with pytest.raises(TypeError, match="must subclass Message"):
        MessageRegistry().register(ChannelSummary, 5)  # type: ignore[type-var]


def test_mutable_class_refused() -> None:
    @attrs.define
    class Loose(Message):
        n: int = attrs.field(validator=u(8))

    with pytest.raises(TypeError, match="frozen"):
        MessageRegistry().register(Loose, 5)


def test_field_without_validator_refused() -> None:
    @attrs.frozen
    class Unbounded(Message):
        n: int

    with pytest.raises(TypeError, match=r"Unbounded\.n: int field needs a IntRange"):
        MessageRegistry().register(Unbounded, 5)


def test_mismatched_validator_refused() -> None:
    @attrs.frozen
    class Wrong(Message):
        n: int = attrs.field(validator=byte_len(0, 3))

    with pytest.raises(TypeError, match=r"Wrong\.n"):
        MessageRegistry().register(Wrong, 5)


def test_float_field_refused() -> None:
    @attrs.frozen
    class Floaty(Message):
        x: float = attrs.field(validator=u(8))

    with pytest.raises(TypeError, match="cannot go on the wire"):
        MessageRegistry().register(Floaty, 5)


def test_optional_needs_nullable_validator() -> None:
    @attrs.frozen
    class Opt(Message):
        x: int | None = attrs.field(validator=u(8))

    with pytest.raises(TypeError, match="nullable"):
        MessageRegistry().register(Opt, 5)


def test_fixed_tuple_refused() -> None:
    @attrs.frozen
    class Pair(Message):
        x: tuple[int, int] = attrs.field(validator=seq_of(2, u(8)))

    with pytest.raises(TypeError, match="homogeneous"):
        MessageRegistry().register(Pair, 5)


@attrs.frozen
class BadRecord(Record):
    n: int


def test_unbounded_field_in_nested_record_refused() -> None:
    @attrs.frozen
    class Outer(Message):
        r: BadRecord = attrs.field(validator=record_of(BadRecord))

    with pytest.raises(TypeError, match=r"BadRecord\.n"):
        MessageRegistry().register(Outer, 5)


def test_unresolvable_annotation_refused_clearly() -> None:
    @attrs.frozen
    class Local(Record):
        n: int = attrs.field(validator=u(8))

    @attrs.frozen
    class Outer(Message):
        r: Local = attrs.field(validator=record_of(Local))

    with pytest.raises(TypeError, match="module level"):
        MessageRegistry().register(Outer, 5)


def test_message_as_field_refused() -> None:
    @attrs.frozen
    class Outer(Message):
        p: Ping = attrs.field(validator=record_of(Ping))

    with pytest.raises(TypeError, match="cannot go on the wire"):
        MessageRegistry().register(Outer, 5)


@pytest.mark.parametrize("size", [0, 7, 33])
def test_ping_nonce_bounds(size: int) -> None:
    with pytest.raises(ValueError, match="nonce"):
        Ping(nonce=bytes(size))


def test_ping_nonce_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="nonce"):
        Ping(nonce=bytearray(8))  # type: ignore[arg-type]


@pytest.mark.parametrize("ppm", [-1, 1_000_001])
def test_channel_share_bounds(ppm: int) -> None:
    with pytest.raises(ValueError, match="local_share_ppm"):
        ChannelSummary(peer=bytes(33), capacity_sat=1, local_share_ppm=ppm)


def test_bool_is_not_an_int() -> None:
    with pytest.raises(TypeError, match="capacity_sat"):
        ChannelSummary(peer=bytes(33), capacity_sat=True, local_share_ppm=0)


def test_state_announce_channel_bound() -> None:
    channel = ChannelSummary(peer=bytes(33), capacity_sat=1, local_share_ppm=0)
    StateAnnounce(
        version=0, channels=(channel,) * 1000, outbound_msat=0, inbound_msat=0, onchain_sat=0
    )
    with pytest.raises(ValueError, match="channels: 1001 items"):
        StateAnnounce(
            version=0, channels=(channel,) * 1001, outbound_msat=0, inbound_msat=0, onchain_sat=0
        )


def _everything() -> Everything:
    return Everything(
        small=0,
        maybe_int=None,
        blob=b"",
        note="",
        flags=(),
        names=("a",),
        ids=(),
        keys=None,
        inner=Inner(flag=False, label="x"),
        maybe_inner=None,
        inners=(),
    )


def test_text_bound_counts_utf8_bytes() -> None:
    assert attrs.evolve(_everything(), note="\u00fc" * 20).note == "\u00fc" * 20  # 40 bytes
    with pytest.raises(ValueError, match="note: 42 UTF-8 bytes"):
        attrs.evolve(_everything(), note="\u00fc" * 21)


def test_every_registered_kind_has_a_strategy() -> None:
    missing = []
    for cls in REGISTRY:
        try:
            strategies.for_class(cls)
        except strategies.NoStrategy as exc:
            missing.append(f"{cls.__name__}: {exc}")
    assert not missing, "kinds without a Hypothesis strategy: " + "; ".join(missing)


def test_strategy_builder_fails_loudly_on_unknown_validators() -> None:
    @attrs.frozen
    class Odd(Message):
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(strategies.NoStrategy, match=r"Odd\.x"):
        strategies.for_class(Odd)


@settings(max_examples=200)
@given(strategies.for_class(Everything))
def test_every_field_shape_round_trips(value: Everything) -> None:
    encoded = cbor.encode(codec.unstructure(value))
    assert codec.structure(cbor.decode(encoded), Everything) == value
    assert (
        cbor.encode(codec.unstructure(codec.structure(cbor.decode(encoded), Everything))) == encoded
    )


@given(strategies.for_class(Everything), st.sampled_from(["names", "inners", "flags"]))
def test_tuples_come_back_as_tuples(value: Everything, name: str) -> None:
    decoded = codec.structure(cbor.decode(cbor.encode(codec.unstructure(value))), Everything)
    assert type(getattr(decoded, name)) is tuple


def test_structure_refuses_wrong_shapes_in_test_class() -> None:
    good = codec.unstructure(_everything())
    cases = {
        "names": [],  # below min_len
        "keys": [b"\x00"],  # wrong item length
        "flags": [1],  # int where bool is due
        "maybe_int": 1 << 16,
        "inner": {"flag": 0, "label": None},
        "note": b"x",
        "small": 6,
    }
    for name, bad in cases.items():
        raw = dict(good)
        raw[name] = bad
        with pytest.raises(ProtocolError) as info:
            codec.structure(raw, Everything)
        assert info.value.reason == "bad-field"
        assert name in info.value.detail
