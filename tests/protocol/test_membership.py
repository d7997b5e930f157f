"""Membership PKI: signed texts, genesis, certificates, tickets and their string, records."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.protocol import errors, lnsig
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    ROLE_ADMIN,
    Certificate,
    ExitBody,
    Genesis,
    MemberBody,
    Ticket,
    TicketBody,
    cert_text,
    challenge_text,
    check_requirements,
    decode_ticket,
    encode_ticket,
    genesis_text,
    hive_id_of,
    sign_exit,
    sign_member,
    sign_ticket,
    verify_certificate,
    verify_exit_record,
    verify_genesis,
    verify_member_record,
    verify_ticket,
    version_key,
)
from hive.protocol.membership.tickets import PREFIX

from . import strategies
from .membership_helpers import (
    DAY_MS,
    admission,
    cert_of,
    genesis_of,
    leave,
    manifest,
    node,
    ticket_of,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
FOUNDER = node("founder")
ALICE = node("alice")
MALLORY = node("mallory")
GENESIS = genesis_of(FOUNDER)
HIVE_ID = hive_id_of(GENESIS)
OTHER_HIVE_ID = hive_id_of(genesis_of(FOUNDER, name="another hive"))


def _reason(info: pytest.ExceptionInfo[ProtocolError]) -> str:
    return info.value.reason


# --- signed texts -------------------------------------------------------------------------------


def test_texts_are_exact_ascii_with_lowercase_hex() -> None:
    node_id = bytes([2]) + bytes(range(32))
    key = bytes(range(32, 64))
    hive_id = bytes(range(64, 96))
    nonce = bytes(range(96, 128))
    assert genesis_text(node_id, key, 1700000000000, "My Hive: one") == (
        f"hive-genesis:v1:{node_id.hex()}:{key.hex()}:1700000000000:My Hive: one"
    )
    assert (
        cert_text(hive_id, node_id, key)
        == f"hive-cert:v1:{hive_id.hex()}:{node_id.hex()}:{key.hex()}"
    )
    assert challenge_text(hive_id, node_id, nonce) == (
        f"hive-challenge:v1:{hive_id.hex()}:{node_id.hex()}:{nonce.hex()}"
    )
    assert cert_text(hive_id, node_id, key) == cert_text(hive_id, node_id, key).lower()


@pytest.mark.parametrize(
    "call",
    [
        lambda: cert_text(bytes(31), bytes(33), bytes(32)),
        lambda: cert_text(bytes(32), bytes(32), bytes(32)),
        lambda: challenge_text(bytes(32), bytes(33), bytes(16)),
        lambda: genesis_text(bytes(33), bytes(32), -1, "x"),
    ],
)
def test_text_builders_refuse_wrong_sizes(call: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        call()  # type: ignore[operator]


# --- genesis and certificates ------------------------------------------------------------------


def test_genesis_verifies_and_gives_a_stable_hive_id() -> None:
    assert verify_genesis(GENESIS) == HIVE_ID == hive_id_of(genesis_of(FOUNDER))
    assert len(HIVE_ID) == 32
    assert hive_id_of(attrs.evolve(GENESIS, created_ms=1_001)) != HIVE_ID


@pytest.mark.parametrize(
    "forged",
    [
        attrs.evolve(GENESIS, name="renamed"),  # signature no longer covers the text
        attrs.evolve(GENESIS, hive_key=MALLORY.hive_key),
        attrs.evolve(GENESIS, node_sig=MALLORY.sign_text("anything")),
        attrs.evolve(GENESIS, node_sig="not zbase32!"),
    ],
)
def test_forged_genesis_refused(forged: Genesis) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_genesis(forged)
    assert _reason(info) == errors.BAD_GENESIS


def test_certificate_verifies() -> None:
    cert = cert_of(ALICE, HIVE_ID)
    assert verify_certificate(cert, HIVE_ID) is cert
    assert lnsig.check_message(
        cert_text(HIVE_ID, ALICE.node_id, ALICE.hive_key), cert.node_sig, ALICE.node_id.hex()
    )


@pytest.mark.parametrize(
    ("cert", "reason"),
    [
        (cert_of(ALICE, OTHER_HIVE_ID), errors.OTHER_HIVE),
        # Mallory's node key signs a certificate claiming Alice's node id.
        (attrs.evolve(cert_of(MALLORY, HIVE_ID), node_id=ALICE.node_id), errors.BAD_CERTIFICATE),
        # Alice certified her own key; someone swaps in another hive key.
        (attrs.evolve(cert_of(ALICE, HIVE_ID), hive_key=MALLORY.hive_key), errors.BAD_CERTIFICATE),
        (attrs.evolve(cert_of(ALICE, HIVE_ID), node_sig=""), errors.BAD_CERTIFICATE),
    ],
)
def test_bad_certificates_refused(cert: Certificate, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_certificate(cert, HIVE_ID)
    assert _reason(info) == reason


# --- tickets -------------------------------------------------------------------------------------


def test_ticket_signs_and_verifies() -> None:
    ticket = ticket_of(FOUNDER, HIVE_ID)
    assert verify_ticket(ticket, HIVE_ID, now_ms=DAY_MS - 1) is ticket


def test_sign_ticket_refuses_a_key_that_is_not_the_issuer() -> None:
    body = ticket_of(FOUNDER, HIVE_ID).body
    with pytest.raises(ValueError, match="issuer_key"):
        sign_ticket(MALLORY.key, body)


def _forged_ticket() -> Ticket:
    """Mallory signs a body that names the founder as issuer."""
    body = ticket_of(FOUNDER, HIVE_ID).body
    honest = sign_ticket(MALLORY.key, attrs.evolve(body, issuer_key=MALLORY.hive_key))
    return Ticket(body=body, signature=honest.signature)


@pytest.mark.parametrize(
    ("ticket", "now_ms", "reason"),
    [
        (_forged_ticket(), 1, errors.BAD_TICKET),
        (attrs.evolve(ticket_of(FOUNDER, HIVE_ID), signature=bytes(64)), 1, errors.BAD_TICKET),
        (  # body altered after signing: more uses
            Ticket(
                body=attrs.evolve(ticket_of(FOUNDER, HIVE_ID).body, max_uses=1000),
                signature=ticket_of(FOUNDER, HIVE_ID).signature,
            ),
            1,
            errors.BAD_TICKET,
        ),
        (ticket_of(FOUNDER, OTHER_HIVE_ID), 1, errors.OTHER_HIVE),
        (ticket_of(FOUNDER, HIVE_ID), DAY_MS, errors.TICKET_EXPIRED),
        (ticket_of(FOUNDER, HIVE_ID), DAY_MS * 2, errors.TICKET_EXPIRED),
        (ticket_of(FOUNDER, HIVE_ID, issued_ms=DAY_MS), 1, errors.BAD_TICKET),
    ],
)
def test_bad_tickets_refused(ticket: Ticket, now_ms: int, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_ticket(ticket, HIVE_ID, now_ms)
    assert _reason(info) == reason


@pytest.mark.parametrize("uses", [0, 1001])
def test_ticket_use_bound(uses: int) -> None:
    with pytest.raises(ValueError, match="max_uses"):
        attrs.evolve(ticket_of(FOUNDER, HIVE_ID).body, max_uses=uses)


# --- requirements -------------------------------------------------------------------------------


def test_requirements_met() -> None:
    ticket = ticket_of(
        FOUNDER, HIVE_ID, req_splice=True, min_version="v25.05", for_node=ALICE.node_id
    )
    check_requirements(ticket, manifest(node_version="v25.09.1"), ALICE.node_id)


@pytest.mark.parametrize(
    ("changes", "offered", "needle"),
    [
        ({"for_node": ALICE.node_id}, {}, "for-node"),
        ({"req_splice": True}, {"splicing": False}, "splicing"),
        ({"min_version": "25.12"}, {"node_version": "v25.09"}, "min-version"),
        ({"min_version": "v25.09"}, {"node_version": "v25.09rc3"}, "min-version"),
        ({"min_version": "25.09"}, {"node_version": "lightningd (unknown)"}, "min-version"),
        ({"min_version": "latest"}, {"node_version": "v25.09"}, "min-version"),
    ],
)
def test_requirements_refused(
    changes: dict[str, object], offered: dict[str, object], needle: str
) -> None:
    ticket = ticket_of(FOUNDER, HIVE_ID, **changes)
    with pytest.raises(ProtocolError) as info:
        check_requirements(ticket, manifest(**offered), MALLORY.node_id)
    assert _reason(info) == errors.REQUIREMENT
    assert info.value.detail.startswith(needle)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("25.09", "v25.09.1"),
        ("v24.11.1", "v25.02"),
        ("v25.09rc2", "v25.09"),
        ("v25.09-rc1", "25.09"),
        ("0.9", "0.10"),
        ("v25.05", "v25.09-12-gabc123-modded"),
    ],
)
def test_version_order(lower: str, higher: str) -> None:
    assert version_key(lower) < version_key(higher)


@pytest.mark.parametrize(
    ("a", "b"), [("25.09", "v25.09"), ("25.9", "25.09.0"), ("v1", "1.0.0-modded")]
)
def test_versions_equal(a: str, b: str) -> None:
    assert version_key(a) == version_key(b)


@given(st.text(max_size=64))
def test_version_key_raises_only_value_error(text: str) -> None:
    try:
        key = version_key(text)
    except ValueError:
        return
    assert all(type(part) is int for part in key)


# --- the ticket string ---------------------------------------------------------------------------


@settings(max_examples=200)
@given(strategies.for_class(Ticket))
def test_ticket_string_round_trips(ticket: Ticket) -> None:
    text = encode_ticket(ticket)
    assert text.startswith(PREFIX)
    assert re.fullmatch(r"hive1[a-z2-7]+", text)
    assert decode_ticket(text) == ticket


def test_ticket_string_tolerates_pasting() -> None:
    ticket = ticket_of(FOUNDER, HIVE_ID, for_node=ALICE.node_id, min_version="v25.09")
    text = encode_ticket(ticket)
    wrapped = "  " + "\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\r\n\t"
    assert decode_ticket(wrapped) == ticket
    assert decode_ticket(text.upper()) == ticket


@settings(max_examples=300)
@given(st.data())
def test_any_single_typo_is_a_checksum_mismatch(data: st.DataObject) -> None:
    text = encode_ticket(ticket_of(FOUNDER, HIVE_ID))
    index = data.draw(st.integers(min_value=len(PREFIX), max_value=len(text) - 1))
    char = data.draw(
        st.sampled_from("abcdefghijklmnopqrstuvwxyz234567").filter(lambda c: c != text[index])
    )
    typo = text[:index] + char + text[index + 1 :]
    with pytest.raises(ProtocolError) as info:
        decode_ticket(typo)
    assert _reason(info) == errors.BAD_TICKET
    assert info.value.detail.startswith("checksum mismatch")


@pytest.mark.parametrize(
    ("mangle", "needle"),
    [
        (lambda t: "hive2" + t[5:], "must start with 'hive1'"),
        (lambda t: t[5:], "must start with 'hive1'"),
        (lambda t: t[:20] + "1" + t[21:], "invalid character '1' at position 20"),
        (lambda t: t[:20] + "=" + t[21:], "invalid character '='"),
        (lambda t: t[:-1], "checksum mismatch"),  # or a length no ticket has
        (lambda t: t[:12], "truncated or damaged"),
        (lambda t: t + "a" * 2000, "too long"),
    ],
)
def test_malformed_ticket_strings(mangle: object, needle: str) -> None:
    text = encode_ticket(ticket_of(FOUNDER, HIVE_ID))
    with pytest.raises(ProtocolError) as info:
        decode_ticket(mangle(text))  # type: ignore[operator]
    assert _reason(info) == errors.BAD_TICKET
    assert needle in info.value.detail or (
        needle == "checksum mismatch" and "truncated or damaged" in info.value.detail
    )


def test_valid_checksum_over_a_non_ticket_is_refused_by_the_decoder() -> None:
    import base64
    import hashlib

    from hive.protocol.wire import cbor

    raw = cbor.encode({"body": 1, "signature": b"x"})
    data = raw + hashlib.sha256(raw).digest()[:4]
    text = PREFIX + base64.b32encode(data).decode().rstrip("=").lower()
    with pytest.raises(ProtocolError) as info:
        decode_ticket(text)
    assert _reason(info) == errors.BAD_TICKET
    assert "body" in info.value.detail


@given(st.text(max_size=300))
def test_random_text_raises_only_bad_ticket(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_ticket(PREFIX + text)
    assert _reason(info) == errors.BAD_TICKET


# --- records -------------------------------------------------------------------------------------


def test_member_and_exit_records_sign_and_verify() -> None:
    record = admission(FOUNDER, ALICE, HIVE_ID, at_ms=5_000)
    assert verify_member_record(record, HIVE_ID) is record
    exit_record = leave(ALICE, HIVE_ID, at_ms=6_000)
    assert verify_exit_record(exit_record, HIVE_ID) is exit_record


def test_sign_refuses_a_key_that_is_not_the_named_signer() -> None:
    body = admission(FOUNDER, ALICE, HIVE_ID, at_ms=5_000).body
    with pytest.raises(ValueError, match="admitted_by"):
        sign_member(MALLORY.key, body)
    exit_body = leave(ALICE, HIVE_ID, at_ms=6_000).body
    with pytest.raises(ValueError, match="by_key"):
        sign_exit(MALLORY.key, exit_body)


def test_bad_member_records_refused() -> None:
    good = admission(FOUNDER, ALICE, HIVE_ID, at_ms=5_000)
    promoted = attrs.evolve(good, body=attrs.evolve(good.body, role=ROLE_ADMIN))
    cases = [
        (admission(FOUNDER, ALICE, OTHER_HIVE_ID, at_ms=5_000), errors.OTHER_HIVE),
        (promoted, errors.BAD_RECORD),  # body changed after signing
        (
            sign_member(
                FOUNDER.key,
                attrs.evolve(
                    good.body, cert=attrs.evolve(good.body.cert, hive_key=MALLORY.hive_key)
                ),
            ),
            errors.BAD_CERTIFICATE,
        ),
    ]
    for record, reason in cases:
        with pytest.raises(ProtocolError) as info:
            verify_member_record(record, HIVE_ID)
        assert _reason(info) == reason


def test_bad_exit_records_refused() -> None:
    good = leave(ALICE, HIVE_ID, at_ms=6_000)
    with pytest.raises(ProtocolError) as info:
        verify_exit_record(attrs.evolve(good, body=attrs.evolve(good.body, at_ms=7_000)), HIVE_ID)
    assert _reason(info) == errors.BAD_RECORD
    with pytest.raises(ProtocolError) as info:
        verify_exit_record(leave(ALICE, OTHER_HIVE_ID, at_ms=6_000), HIVE_ID)
    assert _reason(info) == errors.OTHER_HIVE


def test_record_bounds() -> None:
    body = admission(FOUNDER, ALICE, HIVE_ID, at_ms=5_000).body
    with pytest.raises(ValueError, match="role"):
        attrs.evolve(body, role=2)
    with pytest.raises(ValueError, match="kind"):
        ExitBody(
            hive_id=HIVE_ID,
            node_id=ALICE.node_id,
            by_key=ALICE.hive_key,
            at_ms=0,
            kind=2,
            reason="",
            kept=(),
        )
    with pytest.raises(ValueError, match="reason"):
        ExitBody(
            hive_id=HIVE_ID,
            node_id=ALICE.node_id,
            by_key=ALICE.hive_key,
            at_ms=0,
            kind=0,
            reason="x" * 201,
            kept=(),
        )
    with pytest.raises(ValueError, match="kept"):
        ExitBody(
            hive_id=HIVE_ID,
            node_id=ALICE.node_id,
            by_key=ALICE.hive_key,
            at_ms=0,
            kind=1,
            reason="",
            kept=(b"short",),
        )
    with pytest.raises(TypeError, match="grant"):
        MemberBody(
            hive_id=HIVE_ID,
            cert=body.cert,
            role=0,
            admitted_by=bytes(32),
            admitted_ms=0,
            grant=b"1",  # type: ignore[arg-type]
        )
    assert body.grant is not None
    with pytest.raises(ValueError, match="use"):
        attrs.evolve(body.grant.body, use=0)
    with pytest.raises(ValueError, match="name"):
        attrs.evolve(GENESIS, name="n" * 65)
    with pytest.raises(TypeError, match="for_node"):
        TicketBody(**{**attrs.asdict(ticket_of(FOUNDER, HIVE_ID).body), "for_node": "02ab"})


# --- docs/PROTOCOL.md ---------------------------------------------------------------------------


def example_ticket() -> Ticket:
    """The ticket of the worked example in docs/PROTOCOL.md (deterministic keys, signatures)."""
    founder = node("example-founder")
    genesis = genesis_of(founder, name="example", created_ms=1_700_000_000_000)
    return ticket_of(
        founder,
        hive_id_of(genesis),
        ticket_id=bytes(range(16)),
        issued_ms=1_700_000_000_000,
        expires_ms=1_700_086_400_000,
        req_splice=True,
        min_version="v25.09",
    )


def _doc_block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(
        rf"<!-- {name}:begin -->\s*```\s*(.*?)```\s*<!-- {name}:end -->", text, re.DOTALL
    )
    assert block is not None, f"{name} block markers missing from docs/PROTOCOL.md"
    return block.group(1)


def test_doc_shows_the_example_ticket() -> None:
    shown = _doc_block("example-ticket")
    ticket = example_ticket()
    assert "".join(shown.split()) == encode_ticket(ticket)
    assert decode_ticket(shown) == ticket
    text = DOC.read_text(encoding="utf-8")
    assert (
        hive_id_of(
            genesis_of(node("example-founder"), name="example", created_ms=1_700_000_000_000)
        ).hex()
        in text
    )


def test_doc_names_every_membership_reason() -> None:
    text = DOC.read_text(encoding="utf-8")
    codes = [
        errors.BAD_GENESIS, errors.BAD_TICKET, errors.TICKET_EXPIRED, errors.OTHER_HIVE,
        errors.BAD_CERTIFICATE, errors.BAD_RECORD, errors.NOT_ADMIN, errors.NOT_MEMBER,
        errors.REVOKED, errors.ALREADY_MEMBER, errors.REQUIREMENT, errors.MANIFEST_LIE,
        errors.BAD_ANSWER, errors.ROSTER_LIMIT, errors.BUSY, errors.TIMEOUT,
        errors.ISSUER_UNREACHABLE, errors.TICKET_EXHAUSTED, errors.TICKET_UNKNOWN,
        errors.NOT_ISSUER,
    ]  # fmt: skip
    missing = [code for code in codes if f"`{code}`" not in text]
    assert not missing, f"reason codes missing from docs/PROTOCOL.md: {missing}"
