"""The worked example in docs/PROTOCOL.md stays true: the encoder produces exactly its bytes."""

from __future__ import annotations

import re
from pathlib import Path

import nacl.signing

from hive.protocol.messages import REGISTRY, Ping, StateAnnounce
from hive.protocol.wire.codec import wire_bounds
from hive.protocol.wire.envelope import SIGN_DOMAIN, verify_frame
from hive.protocol.wire.facade import HiveWire

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"

EXAMPLE_SEED = bytes(range(32))
EXAMPLE_PUBLIC_KEY = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
EXAMPLE_HEX = (
    "b1e548560100000103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f"
    "1ddc8664125531b800000000000000010000018bcfe5680000000010a1656e6f"
    "6e636548000102030405060783fac72f92a5e0aa7b3881cbe790fdef405f0811"
    "50d86e2bc1ea7726765627abf1e5e8ed34f20086c1661003472218fc9b90d910"
    "c45a6414d529fb95810ca004"
)


def _example() -> bytes:
    wire = HiveWire(nacl.signing.SigningKey(EXAMPLE_SEED), first_seq=1)
    (message,) = wire.pack(
        Ping(nonce=bytes.fromhex("0001020304050607")), 1_700_000_000_000, msg_id=0
    )
    return message


def test_encoder_produces_the_example() -> None:
    assert _example().hex() == EXAMPLE_HEX
    assert bytes(nacl.signing.SigningKey(EXAMPLE_SEED).verify_key).hex() == EXAMPLE_PUBLIC_KEY


def test_doc_shows_the_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- example-frame:begin -->\s*```\s*(.*?)```\s*<!-- example-frame:end -->",
        text,
        re.DOTALL,
    )
    assert block is not None, "example block markers missing from docs/PROTOCOL.md"
    assert "".join(block.group(1).split()) == EXAMPLE_HEX
    assert EXAMPLE_PUBLIC_KEY in text


def test_example_verifies_as_documented() -> None:
    raw = bytes.fromhex(EXAMPLE_HEX)
    envelope = verify_frame(raw[2:])
    assert (envelope.kind, envelope.seq, envelope.timestamp_ms) == (1, 1, 1_700_000_000_000)
    assert envelope.payload.hex() == "a1656e6f6e63654800010203040506" + "07"
    signed = SIGN_DOMAIN + raw[2:-64]
    assert len(signed) == len(b"hive/v1/frame") + 74
    nacl.signing.VerifyKey(bytes.fromhex(EXAMPLE_PUBLIC_KEY)).verify(signed, raw[-64:])


def test_doc_lists_every_kind_and_its_number() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        f"{cls.__name__} ({kind:#06x})"
        for kind, cls in REGISTRY.kinds().items()
        if f"| `{kind:#06x}` | `{cls.__name__}`" not in text
    ]
    assert not missing, f"kinds missing from the table in docs/PROTOCOL.md: {missing}"


def test_doc_states_the_state_announce_bounds() -> None:
    bounds = wire_bounds(StateAnnounce)
    text = DOC.read_text(encoding="utf-8")
    assert f"{bounds.max_bytes} bytes and {bounds.max_items} items" in text
