"""hive-web-bind parsing and the token a request presents (pure)."""

from __future__ import annotations

import re

import pytest

from hive.cln.plugin import OptionError, config_from_init
from hive.web.access import Bind, BindError, parse_bind, presented_token, token_matches

CONFIGURATION = {"lightning-dir": "/tmp/ln", "rpc-file": "lightning-rpc"}


@pytest.mark.parametrize(
    ("text", "bind", "loopback"),
    [
        ("127.0.0.1:8484", Bind("127.0.0.1", 8484), True),
        ("localhost:9000", Bind("localhost", 9000), True),
        ("[::1]:8484", Bind("::1", 8484), True),
        ("0.0.0.0:8484", Bind("0.0.0.0", 8484), False),
        ("192.0.2.7:80", Bind("192.0.2.7", 80), False),
    ],
)
def test_bind_forms(text: str, bind: Bind, loopback: bool) -> None:
    assert parse_bind(text) == bind
    assert bind.loopback is loopback


@pytest.mark.parametrize("text", ["off", "OFF", "none", ""])
def test_bind_off(text: str) -> None:
    assert parse_bind(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("8484", "expected HOST:PORT"),
        ("example.org:80", "not an IP address"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1:70000", "out of range"),
        ("[::1]8484", "expected [IPv6]:PORT"),
    ],
)
def test_bind_refusals(text: str, reason: str) -> None:
    with pytest.raises(BindError, match=re.escape(reason)):
        parse_bind(text)


def test_plugin_default_is_loopback_and_off_is_honoured() -> None:
    assert config_from_init({}, CONFIGURATION).web.bind == Bind("127.0.0.1", 8484)
    assert config_from_init({"hive-web-bind": "off"}, CONFIGURATION).web.bind is None
    with pytest.raises(OptionError, match="hive-web-bind"):
        config_from_init({"hive-web-bind": "nowhere"}, CONFIGURATION)


def test_presented_token() -> None:
    assert presented_token([(b"Authorization", b"Bearer abc")], b"") == "abc"
    assert presented_token([], b"x=1&token=a%2Bb") == "a+b"
    assert presented_token([(b"authorization", b"Basic xyz")], b"") is None
    assert not token_matches("secret", None)
    assert not token_matches("secret", "secreT")
    assert token_matches("secret", "secret")
