"""Member addresses: parsing untrusted ones, and the book kept in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from hive.actors.membership.contact import AddressBook, clean, parse_address
from hive.errors import PeerUnreachable
from hive.store import open_store

NODE = "02" + "11" * 32


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:9735", ("127.0.0.1", 9735)),
        ("[::1]:9735", ("::1", 9735)),
        ("node.example:1", ("node.example", 1)),
        ("127.0.0.1", None),
        ("127.0.0.1:0", None),
        ("127.0.0.1:65536", None),
        ("127.0.0.1:²", None),
        ("127.0.0.1:" + "9" * 5000, None),
        (":9735", None),
        ("a b:9735", None),
        ("x@y:9735", None),
        ("h\udcff:9735", None),
        ("h" * 200 + ":1", None),
    ],
)
def test_parse_address(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_address(text) == parsed


def test_clean_keeps_four_well_formed_without_repeats() -> None:
    raw = ["bad", "a:1", "a:1", "b:2", "c:3", "d:4", "e:5"]
    assert clean(raw) == ("a:1", "b:2", "c:3", "d:4")


class Dialer:
    def __init__(self, works: str | None) -> None:
        self.works = works
        self.tried: list[tuple[str | None, int | None]] = []

    async def connect(self, node_id: str, host: str | None = None, port: int | None = None) -> None:
        self.tried.append((host, port))
        if host is None or f"{host}:{port}" != self.works:
            raise PeerUnreachable("no address known for peer")


async def test_the_book_survives_a_restart_and_tries_join_then_record(tmp_path: Path) -> None:
    async with open_store(tmp_path, run_inline=True) as store:
        book = AddressBook(store, lambda: 5)
        await book.learn(NODE, ["10.0.0.2:9735", "junk"], "record")
        await book.learn(NODE, ["10.0.0.1:9735"], "join")
    async with open_store(tmp_path, run_inline=True) as store:
        book = AddressBook(store, lambda: 6)
        await book.load()
        assert book.of(NODE) == ["10.0.0.1:9735", "10.0.0.2:9735"]
        dialer = Dialer("10.0.0.2:9735")
        await book.connect(dialer, NODE)  # type: ignore[arg-type]
        assert dialer.tried == [(None, None), ("10.0.0.1", 9735), ("10.0.0.2", 9735)]
        with pytest.raises(PeerUnreachable):
            await book.connect(Dialer(None), NODE)  # type: ignore[arg-type]
        await book.forget(NODE)
    async with open_store(tmp_path, run_inline=True) as store:
        book = AddressBook(store, lambda: 7)
        await book.load()
        assert book.of(NODE) == []
