"""Operator parameters are untrusted input (issue 8 item 11): every bad value is a clear
INVALID_PARAMS error naming the parameter, never an internal error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.actors.membership.liveness import Liveness
from hive.actors.membership.roster import Membership
from hive.commands import CommandError
from hive.commands.membership import MembershipCommands, Params, parse_member_address

NODE = "02" + "ab" * 32
SURROGATE = "v25.\ud800"


def _commands() -> MembershipCommands:
    # Parameters are checked before the membership is consulted: nothing else is needed.
    return MembershipCommands(cast(Membership, object()), cast(Liveness, object()))


Handler = Callable[[MembershipCommands, Mapping[str, Any]], Awaitable[Any]]

BAD_CALLS: list[tuple[Handler, dict[str, Any], str]] = [
    (MembershipCommands.invite, {"valid_hours": "--5"}, "valid_hours"),
    (MembershipCommands.invite, {"valid_hours": "²"}, "valid_hours"),
    (MembershipCommands.invite, {"valid_hours": "9" * 5000}, "valid_hours"),
    (MembershipCommands.invite, {"max_uses": "\u0661\u0662"}, "max_uses"),  # Arabic-Indic 12
    (MembershipCommands.invite, {"valid_hours": 2.5}, "valid_hours"),
    (MembershipCommands.invite, {"min_version": SURROGATE}, "min_version"),
    (MembershipCommands.invite, {"min_version": "é" * 20}, "min_version"),  # 40 bytes
    (MembershipCommands.invite, {"min_version": "latest"}, "min_version"),
    (MembershipCommands.invite, {"for_node": "02" + "²" * 64}, "for_node"),
    (MembershipCommands.revoke, {"node": NODE, "reason": "bad\udfff"}, "reason"),
    (MembershipCommands.genesis, {"name": "\ud83d"}, "name"),
    (MembershipCommands.genesis, {"name": "a\x00b"}, "name"),
    (MembershipCommands.join, {"ticket": "hive1", "member": f"{NODE}@host:²"}, "not a port"),
    (MembershipCommands.join, {"ticket": "hive1", "member": f"{NODE}@host:99999"}, "port"),
    (MembershipCommands.join, {"ticket": "hive1", "member": f"{NODE}@ho st:9735"}, "host"),
    (MembershipCommands.join, {"ticket": "hive1", "member": f"{NODE}@\ud800:9735"}, "member"),
    (MembershipCommands.join, {"ticket": "hive1\ud800"}, "ticket"),
    (MembershipCommands.join, {"ticket": "hive1", "member": "03" + "0" * 63 + "²"}, "node id"),
]


@pytest.mark.parametrize(("handler", "params", "named"), BAD_CALLS)
async def test_bad_parameters_are_parameter_errors(
    handler: Handler, params: dict[str, Any], named: str
) -> None:
    with pytest.raises(CommandError) as info:
        await handler(_commands(), params)
    assert info.value.code == CommandError.INVALID_PARAMS
    assert named in info.value.message
    info.value.message.encode("ascii")  # quotable anywhere: no surrogates, no odd characters
    assert len(info.value.message) < 300


def test_member_addresses() -> None:
    assert parse_member_address(NODE) == (NODE, None, None)
    assert parse_member_address(f"{NODE}@example.org") == (NODE, "example.org", None)
    assert parse_member_address(f"{NODE}@10.0.0.1:9735") == (NODE, "10.0.0.1", 9735)
    assert parse_member_address(f"{NODE}@[::1]:9736") == (NODE, "::1", 9736)
    assert parse_member_address(f"{NODE}@[fe80::1]") == (NODE, "fe80::1", None)


def test_good_values_still_pass() -> None:
    params = Params("t", {"n": " 42 ", "m": -3, "s": "ok é", "f": "TRUE"}, ("n", "m", "s", "f"))
    assert params.integer("n", 1, low=1, high=100) == 42
    assert params.integer("m", 1, low=-5, high=5) == -3
    assert params.text("s", max_len=5) == "ok é"
    assert params.flag("f") is True
    ticket = Params("t", {"ticket": "hive1abc\n  def"}, ("ticket",))
    assert ticket.text("ticket", max_len=100) == "hive1abc\n  def"  # pasted across lines


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(codec=None, categories=None)),  # surrogates included
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
DIGITISH = "\\A[ \\-+0-9\u00b2\u00b3\u00b9\u0660-\u0669]{0,30}\\Z"  # with "²", Arabic-Indic
NUMERIC_TEXT = st.from_regex(DIGITISH) | st.text(max_size=40)


def _is_parameter_error(exc: CommandError) -> None:
    assert exc.code == CommandError.INVALID_PARAMS
    exc.message.encode("ascii")


@given(value=JSON | NUMERIC_TEXT)
def test_the_params_parser_only_ever_raises_parameter_errors(value: object) -> None:
    params = Params("hive-x", {"v": value}, ("v",))
    for read in (
        lambda: params.text("v", max_len=32),
        lambda: params.integer("v", 1, low=-(2**63), high=2**63),
        lambda: params.flag("v"),
        lambda: params.node_id("v", required=True),
    ):
        try:
            got = read()
        except CommandError as exc:
            _is_parameter_error(exc)
            continue
        if isinstance(got, str):
            got.encode("utf-8")  # what passes can be signed


@given(text=st.text(alphabet=st.characters(codec=None, categories=None), max_size=120))
def test_member_address_parser_only_raises_parameter_errors(text: str) -> None:
    try:
        node, host, port = parse_member_address(NODE + "@" + text)
    except CommandError as exc:
        _is_parameter_error(exc)
        return
    assert node == NODE
    assert host is None or host.isascii()
    assert port is None or 0 < port < 65536
