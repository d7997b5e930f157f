"""Lightning signmessage format: published vectors, round trips, hostile input."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.protocol import lnsig

# Core Lightning's own documentation example (doc/schemas/lightning-checkmessage.json, example 1):
# checkmessage answers verified=true for this pubkey.
CLN_TEXT = "testcase to check new rpc error"
CLN_ZBASE = (
    "d66bqz3qsku5fxtqsi37j11pci47ydxa95iusphutggz9ezaxt56neh77kxe5hyr41kwgkncgiu94p9ecxiexgpgsz8"
    "daoq4tw8kj8yx"
)
CLN_PUBKEY = "03be3b0e9992153b1d5a6e1623670b6c3663f72ce6cf2e0dd39c0a373a7de5a3b7"

# The README example of the ln-crypto package, which states it signs "exactly what LND does".
LND_TEXT = "The quick brown fox jumps over the lazy dog."
LND_ZBASE = (
    "d1q3e5fdy96zp3syrhq8zphqnaa5fqbbh9rinozegr1bjr99hssq6hbhstm3pqbh7sfu4hnsyfjjkoewum1ay85gm"
    "em98u8wxshyxs5k"
)
LND_PUBKEY = "0280f375eafb209d0255a3139f1013042d55d69005a935da46bea7279d598c366a"

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(
    lambda n: n.to_bytes(32, "big")
)


def _secret(tag: str) -> bytes:
    return hashlib.sha256(tag.encode()).digest()


@pytest.mark.parametrize(
    ("text", "zbase", "pubkey"),
    [(CLN_TEXT, CLN_ZBASE, CLN_PUBKEY), (LND_TEXT, LND_ZBASE, LND_PUBKEY)],
)
def test_published_vectors_recover_and_check(text: str, zbase: str, pubkey: str) -> None:
    assert lnsig.recover_node_id(text, zbase) == pubkey
    assert lnsig.check_message(text, zbase, pubkey)
    assert lnsig.check_message(text, zbase, pubkey.upper())
    assert not lnsig.check_message(text + ".", zbase, pubkey)
    assert not lnsig.check_message(text, zbase, LND_PUBKEY if pubkey == CLN_PUBKEY else CLN_PUBKEY)


def test_signature_shape_is_65_bytes_with_compressed_header() -> None:
    zbase = lnsig.sign_message(_secret("a"), "hello")
    assert len(zbase) == 104
    raw = lnsig.zbase32_decode(zbase)
    assert len(raw) == 65
    assert 31 <= raw[0] <= 34


def test_sign_is_deterministic_rfc6979() -> None:
    assert lnsig.sign_message(_secret("a"), "x") == lnsig.sign_message(_secret("a"), "x")


def test_key_mismatch_fails() -> None:
    zbase = lnsig.sign_message(_secret("a"), "hello")
    assert lnsig.check_message("hello", zbase, lnsig.node_id_from_secret(_secret("a")))
    assert not lnsig.check_message("hello", zbase, lnsig.node_id_from_secret(_secret("b")))


def test_uncompressed_header_names_the_same_key() -> None:
    raw = bytearray(lnsig.zbase32_decode(lnsig.sign_message(_secret("a"), "t")))
    raw[0] -= 4  # 31+r -> 27+r
    node_id = lnsig.node_id_from_secret(_secret("a"))
    assert lnsig.recover_node_id("t", lnsig.zbase32_encode(bytes(raw))) == node_id


@pytest.mark.parametrize(
    "zbase",
    [
        "",
        "y",
        CLN_ZBASE[:-1],
        CLN_ZBASE + "y",
        CLN_ZBASE.upper(),
        CLN_ZBASE[:10] + "0" + CLN_ZBASE[11:],  # '0' is not in the alphabet
        lnsig.zbase32_encode(b"\x1a" + b"\x01" * 64),  # header below 27
        lnsig.zbase32_encode(b"\x23" + b"\x01" * 64),  # header above 34
        lnsig.zbase32_encode(b"\x1f" + b"\x00" * 64),  # r = s = 0
        lnsig.zbase32_encode(b"\x1f" + b"\xff" * 64),  # r, s above the group order
    ],
)
def test_malformed_signatures_give_none(zbase: str) -> None:
    assert lnsig.recover_node_id(CLN_TEXT, zbase) is None
    assert not lnsig.check_message(CLN_TEXT, zbase, CLN_PUBKEY)


def test_lone_surrogate_text_gives_none() -> None:
    assert lnsig.recover_node_id("\ud800", CLN_ZBASE) is None


def test_zbase32_known_encoding() -> None:
    # 0xF0 = 11110|000(00): 30 -> "6", 0 -> "y"; 0x0001 = 00000|00000|00000|1(0000): "yyyo".
    assert lnsig.zbase32_encode(b"\xf0") == "6y"
    assert lnsig.zbase32_encode(b"\x00\x01") == "yyyo"
    assert lnsig.zbase32_encode(b"") == ""
    assert lnsig.zbase32_decode("6y") == b"\xf0"


@pytest.mark.parametrize("text", ["6n", "6yy", "y"])
def test_zbase32_rejects_non_canonical(text: str) -> None:
    # "6n" leaves a non-zero padding bit; "6yy" and "y" have a character beyond the last byte.
    with pytest.raises(ValueError, match="z-base-32"):
        lnsig.zbase32_decode(text)


@given(st.binary(max_size=100))
def test_zbase32_round_trip(data: bytes) -> None:
    encoded = lnsig.zbase32_encode(data)
    assert len(encoded) == (len(data) * 8 + 4) // 5
    assert set(encoded) <= set(lnsig.ZBASE32_ALPHABET)
    assert lnsig.zbase32_decode(encoded) == data


@given(secrets, st.text(max_size=300))
def test_sign_recover_round_trip(secret: bytes, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    zbase = lnsig.sign_message(secret, text)
    node_id = lnsig.node_id_from_secret(secret)
    assert lnsig.recover_node_id(text, zbase) == node_id
    assert lnsig.check_message(text, zbase, node_id)


@given(st.text(max_size=200), st.text(max_size=200), st.text(max_size=70))
def test_random_strings_never_raise(text: str, zbase: str, node_id: str) -> None:
    result = lnsig.recover_node_id(text, zbase)
    assert result is None or (len(result) == 66 and result[:2] in ("02", "03"))
    assert isinstance(lnsig.check_message(text, zbase, node_id), bool)


@given(st.text(max_size=50), st.text(alphabet=lnsig.ZBASE32_ALPHABET, min_size=104, max_size=104))
def test_random_well_formed_zbase_never_raises(text: str, zbase: str) -> None:
    result = lnsig.recover_node_id(text, zbase)
    assert result is None or len(result) == 66
