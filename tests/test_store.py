"""The SQLite store: a real database file in tmp_path, driven from trio."""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.errors import HiveError, TransientError
from hive.store import (
    DB_FILE,
    META_GENESIS,
    MIGRATIONS,
    PeerSeen,
    RecordKind,
    Redeem,
    Store,
    StoredRecord,
    StoreError,
    StoreUnavailable,
    TicketRow,
    TicketUse,
    open_store,
    write_transaction,
)
from hive.store.errors import translate
from hive.store.schema import split_statements

T0 = 1_761_350_400_000
HOUR = 3_600_000
NODE_A = "02" + "aa" * 32
NODE_B = "03" + "bb" * 32

V2_BANS = """
-- a later issue's migration: a new table and a new column on an old one
CREATE TABLE bans (
    node_id TEXT PRIMARY KEY,
    reason  TEXT NOT NULL DEFAULT 'unspecified; see log'
);
ALTER TABLE peers ADD COLUMN alias TEXT;
CREATE TRIGGER bans_forget_peer AFTER INSERT ON bans BEGIN
    DELETE FROM peers WHERE node_id = new.node_id;
END;
"""


def raw_pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def set_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()


def table_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "data") as s:
        yield s


# ----------------------------------------------------------------------------------------------
# The file


async def test_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with trio.fail_after(10):
        async with open_store(data_dir, busy_timeout_ms=1234) as store:
            await store.set_meta("k", b"v")  # a write creates the -wal file
            assert store.path == data_dir / DB_FILE
            pragmas = await store.run(
                "pragmas",
                lambda c: [
                    c.execute(f"PRAGMA {p}").fetchone()[0]
                    for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
                ],
            )
            assert pragmas == ["wal", 1, 1, 1234]  # synchronous 1 = NORMAL
            wal = data_dir / (DB_FILE + "-wal")
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    path = data_dir / DB_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert raw_pragma(path, "journal_mode") == "wal"  # WAL is persistent in the file


async def test_existing_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    path.touch()
    os.chmod(path, 0o644)
    with trio.fail_after(10):
        store = await Store.open(path)
        await store.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path) as store:
            await store.set_meta("genesis", b"\x00genesis")
            assert await store.add_record(b"h1", "member", NODE_A, b"body1", T0)
            assert await store.add_record(b"h2", "exit", NODE_A, b"body2", T0 + 1)
            await store.add_ticket(b"t" * 16, b"ticket", T0, T0 + HOUR, 2)
            assert (await store.redeem_ticket(b"t" * 16, NODE_B, T0 + 5)).granted
            await store.touch_peer(NODE_B, T0 + 9)
        assert store.closed
        async with open_store(tmp_path) as again:
            assert await again.get_meta("genesis") == b"\x00genesis"
            assert await again.records() == [
                StoredRecord(b"h1", "member", NODE_A, b"body1", T0),
                StoredRecord(b"h2", "exit", NODE_A, b"body2", T0 + 1),
            ]
            assert await again.tickets() == [TicketRow(b"t" * 16, b"ticket", T0, T0 + HOUR, 2, 1)]
            assert await again.ticket_uses(b"t" * 16) == [TicketUse(b"t" * 16, NODE_B, T0 + 5)]
            assert await again.last_seen(NODE_B) == T0 + 9
            # the redemption survived: the same node is idempotent, the count did not reset
            assert await again.redeem_ticket(b"t" * 16, NODE_B, T0 + 6) == Redeem(
                True, 1, "already-redeemed-by-this-node", use=1
            )


async def test_rows_are_typed_and_frozen(store: Store) -> None:
    with trio.fail_after(10):
        await store.add_record(b"h", "member", NODE_A, b"b", T0)
        await store.add_ticket(b"t", b"body", T0, T0 + 1, 1)
        redeem = await store.redeem_ticket(b"t", NODE_A, T0)
        await store.touch_peer(NODE_A, T0)
        rows: list[attrs.AttrsInstance | None] = [
            *(await store.records()),
            *(await store.tickets()),
            await store.ticket(b"t"),
            *(await store.ticket_uses(b"t")),
            redeem,
            *(await store.peers()),
        ]
    kinds = [type(r) for r in rows]
    assert kinds == [StoredRecord, TicketRow, TicketRow, TicketUse, Redeem, PeerSeen]
    for row in rows:
        assert row is not None
        assert attrs.has(type(row))
        first = attrs.fields(type(row))[0].name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(row, first, None)
    record = rows[0]
    assert isinstance(record, StoredRecord)
    assert type(record.hash) is bytes
    assert type(record.body) is bytes


# ----------------------------------------------------------------------------------------------
# Migrations


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path) as store:
            assert store.schema_version == len(MIGRATIONS)
    assert raw_pragma(tmp_path / DB_FILE, "user_version") == len(MIGRATIONS)
    assert {"meta", "records", "tickets", "ticket_uses", "peers"} <= table_names(tmp_path / DB_FILE)


async def test_migration_from_older_version_keeps_data(tmp_path: Path) -> None:
    v1 = MIGRATIONS[:1]
    v2 = (*v1, V2_BANS)
    with trio.fail_after(10):
        async with open_store(tmp_path, migrations=v1) as old:
            await old.touch_peer(NODE_A, T0)
            await old.touch_peer(NODE_B, T0)
            await old.add_record(b"h", "member", NODE_A, b"b", T0)
        assert raw_pragma(tmp_path / DB_FILE, "user_version") == 1
        async with open_store(tmp_path, migrations=v2) as new:
            assert new.schema_version == 2
            assert await new.records() == [StoredRecord(b"h", "member", NODE_A, b"b", T0)]

            def ban(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
                with write_transaction(conn):
                    conn.execute("UPDATE peers SET alias = 'b' WHERE node_id = ?", (NODE_B,))
                    conn.execute("INSERT INTO bans (node_id) VALUES (?)", (NODE_A,))
                rows: list[tuple[str, str | None]] = conn.execute(
                    "SELECT node_id, alias FROM peers"
                ).fetchall()
                return rows

            assert await new.run("ban", ban) == [(NODE_B, "b")]  # the trigger ran
            reason = await new.run(
                "reason", lambda c: c.execute("SELECT reason FROM bans").fetchone()[0]
            )
            assert reason == "unspecified; see log"
    assert raw_pragma(tmp_path / DB_FILE, "user_version") == 2


async def test_failing_migration_rolls_back_whole(tmp_path: Path) -> None:
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    with trio.fail_after(10):
        async with open_store(tmp_path) as store:
            await store.set_meta("k", b"v")
        with pytest.raises(StoreError, match="no_such_table") as info:
            await Store.open(tmp_path / DB_FILE, migrations=(*MIGRATIONS, broken))
        assert info.value.operation == "migrate"
        assert not isinstance(info.value, StoreUnavailable)
        assert raw_pragma(tmp_path / DB_FILE, "user_version") == len(MIGRATIONS)
        assert "half" not in table_names(tmp_path / DB_FILE)
        async with open_store(tmp_path) as store:  # still usable by the current code
            assert await store.get_meta("k") == b"v"


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path) as store:
            await store.set_meta("k", b"v")
        newer = len(MIGRATIONS) + 1
        set_user_version(tmp_path / DB_FILE, newer)
        with pytest.raises(StoreError, match=f"version {newer} is newer") as info:
            await Store.open(tmp_path / DB_FILE)
    assert info.value.operation == "migrate"
    assert raw_pragma(tmp_path / DB_FILE, "user_version") == newer


async def test_two_stores_opening_a_fresh_file_at_once_migrate_once(tmp_path: Path) -> None:
    stores: list[Store] = []

    async def open_one() -> None:
        stores.append(await Store.open(tmp_path / DB_FILE))

    with trio.fail_after(10):
        for _ in range(5):  # several rounds: the race is real but not forced
            (tmp_path / DB_FILE).unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                (tmp_path / (DB_FILE + suffix)).unlink(missing_ok=True)
            stores.clear()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(open_one)
                nursery.start_soon(open_one)
            for s in stores:
                assert s.schema_version == len(MIGRATIONS)
                await s.aclose()
            assert raw_pragma(tmp_path / DB_FILE, "user_version") == len(MIGRATIONS)


def test_split_statements_respects_sqlite_syntax() -> None:
    assert split_statements(V2_BANS) == [
        "-- a later issue's migration: a new table and a new column on an old one\n"
        "CREATE TABLE bans (\n    node_id TEXT PRIMARY KEY,\n"
        "    reason  TEXT NOT NULL DEFAULT 'unspecified; see log'\n);",
        "ALTER TABLE peers ADD COLUMN alias TEXT;",
        "CREATE TRIGGER bans_forget_peer AFTER INSERT ON bans BEGIN\n"
        "    DELETE FROM peers WHERE node_id = new.node_id;\nEND;",
    ]
    assert split_statements("SELECT 1;;\n-- trailing; comment\n") == ["SELECT 1;"]
    assert split_statements("SELECT 2") == ["SELECT 2;"]
    with pytest.raises(ValueError, match="incomplete statement"):
        split_statements("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;")


# ----------------------------------------------------------------------------------------------
# meta, records, peers


async def test_meta_set_replace_delete(store: Store) -> None:
    with trio.fail_after(10):
        assert await store.get_meta("seq") is None
        await store.set_meta("seq", (7).to_bytes(8, "big"))
        await store.set_meta("seq", (8).to_bytes(8, "big"))
        assert await store.get_meta("seq") == (8).to_bytes(8, "big")
        assert await store.delete_meta("seq")
        assert not await store.delete_meta("seq")
        assert await store.get_meta("seq") is None


async def test_duplicate_record_is_not_stored_again(store: Store) -> None:
    with trio.fail_after(10):
        assert await store.add_record(b"h", "member", NODE_A, b"first", T0)
        assert not await store.add_record(b"h", "exit", NODE_B, b"second", T0 + 1)
        assert await store.records() == [StoredRecord(b"h", "member", NODE_A, b"first", T0)]


async def test_unknown_record_kind_is_a_value_error(store: Store) -> None:
    with trio.fail_after(10):
        with pytest.raises(ValueError, match="'ban'"):
            await store.add_record(b"h", "ban", NODE_A, b"b", T0)
        assert await store.records() == []


KINDS: list[RecordKind] = ["member", "exit"]

record_calls = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=3),  # small hashes: duplicates are frequent
        st.sampled_from(KINDS),
        st.sampled_from([NODE_A, NODE_B]),
        st.binary(max_size=20),
        st.integers(0, 2**62),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(calls=record_calls)
def test_records_are_the_deduplicated_insertion_sequence(
    calls: list[tuple[bytes, RecordKind, str, bytes, int]],
) -> None:
    expected: dict[bytes, StoredRecord] = {}
    for h, kind, subject, body, ms in calls:
        if h not in expected:
            expected[h] = StoredRecord(h, kind, subject, body, ms)

    async def main(data_dir: Path) -> tuple[list[bool], list[StoredRecord]]:
        with trio.fail_after(30):
            async with open_store(data_dir) as store:
                added = [await store.add_record(*call) for call in calls]
                return added, await store.records()

    with tempfile.TemporaryDirectory() as tmp:
        added, stored = trio.run(main, Path(tmp))
    assert stored == list(expected.values())
    assert sum(added) == len(expected)


async def test_last_seen_never_moves_backwards(store: Store) -> None:
    with trio.fail_after(10):
        assert await store.last_seen(NODE_A) is None
        await store.touch_peer(NODE_A, T0 + 10)
        await store.touch_peer(NODE_A, T0 + 5)  # a late, older observation
        await store.touch_peer(NODE_B, T0)
        assert await store.last_seen(NODE_A) == T0 + 10
        assert await store.peers() == [PeerSeen(NODE_A, T0 + 10), PeerSeen(NODE_B, T0)]


# ----------------------------------------------------------------------------------------------
# Tickets


async def test_redeem_reasons(store: Store) -> None:
    one, two = b"1" * 16, b"2" * 16
    with trio.fail_after(10):
        await store.add_ticket(one, b"one", T0, T0 + HOUR, 1)
        await store.add_ticket(two, b"two", T0, T0 + HOUR, 2)
        assert await store.redeem_ticket(b"x" * 16, NODE_A, T0) == Redeem(
            False, 0, "unknown-ticket"
        )
        assert await store.redeem_ticket(one, NODE_A, T0) == Redeem(True, 1, "granted", use=1)
        assert await store.redeem_ticket(one, NODE_A, T0 + 1) == Redeem(
            True, 1, "already-redeemed-by-this-node", use=1
        )
        assert await store.redeem_ticket(one, NODE_B, T0 + 1) == Redeem(False, 1, "exhausted")
        # the grant stays idempotent for its node after expiry; others see "expired"
        assert await store.redeem_ticket(one, NODE_A, T0 + HOUR) == Redeem(
            True, 1, "already-redeemed-by-this-node", use=1
        )
        assert await store.redeem_ticket(two, NODE_A, T0 + HOUR - 1) == Redeem(
            True, 1, "granted", use=1
        )
        assert await store.redeem_ticket(two, NODE_B, T0 + HOUR) == Redeem(False, 1, "expired")
        assert await store.ticket(two) == TicketRow(two, b"two", T0, T0 + HOUR, 2, 1)
        assert await store.ticket(b"x" * 16) is None


async def _redeem_into(
    answers: dict[str, Redeem], store: Store, ticket_id: bytes, node: str
) -> None:
    answers[node] = await store.redeem_ticket(ticket_id, node, T0 + 1)


async def test_concurrent_redeems_on_one_store_grant_exactly_max_uses(store: Store) -> None:
    for max_uses in (1, 3):
        ticket_id = bytes([max_uses]) * 16
        await store.add_ticket(ticket_id, b"body", T0, T0 + HOUR, max_uses)
        answers: dict[str, Redeem] = {}
        nodes = [f"02{i:064x}" for i in range(12)]
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for node in nodes:
                    nursery.start_soon(_redeem_into, answers, store, ticket_id, node)
            uses = await store.ticket_uses(ticket_id)
        granted = sorted(n for n, a in answers.items() if a.granted)
        assert len(granted) == max_uses
        assert sorted(u.node_id for u in uses) == granted
        assert all(a.reason == "exhausted" for n, a in answers.items() if n not in granted)
        assert (await store.ticket(ticket_id)) == TicketRow(
            ticket_id, b"body", T0, T0 + HOUR, max_uses, max_uses
        )


async def test_concurrent_redeems_from_two_connections_grant_exactly_once(
    tmp_path: Path,
) -> None:
    """Two stores on one file: two connections, each used from its own worker thread."""
    rounds = 40
    with trio.fail_after(30):
        async with open_store(tmp_path) as a, open_store(tmp_path) as b:
            for r in range(rounds):
                await a.add_ticket(r.to_bytes(16, "big"), b"body", T0, T0 + HOUR, 1)
            results: list[tuple[int, str, Redeem]] = []

            async def hammer(store: Store, prefix: str) -> None:
                for r in range(rounds):
                    node = f"{prefix}{r:064x}"
                    answer = await store.redeem_ticket(r.to_bytes(16, "big"), node, T0 + 1)
                    results.append((r, node, answer))

            async with trio.open_nursery() as nursery:
                for prefix in ("02", "03"):
                    nursery.start_soon(hammer, a if prefix == "02" else b, prefix)
                    nursery.start_soon(hammer, b if prefix == "02" else a, prefix + "f")
            tickets = await b.tickets()
            winners = {r: await a.ticket_uses(r.to_bytes(16, "big")) for r in range(rounds)}
    assert len(results) == 4 * rounds
    for r in range(rounds):
        granted = [node for rr, node, ans in results if rr == r and ans.granted]
        assert len(granted) == 1, (r, granted)
        assert [u.node_id for u in winners[r]] == granted
    assert all(t.uses == 1 for t in tickets)
    assert all(ans.reason in ("granted", "exhausted") for _, _, ans in results)


# ----------------------------------------------------------------------------------------------
# Errors


async def test_locked_database_is_store_unavailable(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path, busy_timeout_ms=50) as store:
            await store.set_meta("k", b"before")
            other = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
                with pytest.raises(StoreUnavailable, match="locked") as info:
                    await store.set_meta("k", b"after")
                assert info.value.operation == "set_meta"
                assert isinstance(info.value, TransientError)
                assert isinstance(info.value, StoreError)
                assert await store.get_meta("k") == b"before"  # WAL: readers still read
                other.execute("ROLLBACK")
            finally:
                other.close()
            await store.set_meta("k", b"after")  # the failed transaction left nothing open
            assert await store.get_meta("k") == b"after"


async def test_not_a_database_is_store_error(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    path.write_bytes(b"this is not an SQLite file, it is just text " * 100)
    with trio.fail_after(10), pytest.raises(StoreError, match="not a database") as info:
        await Store.open(path)
    assert info.value.operation == "open"
    assert not isinstance(info.value, TransientError)


async def test_constraint_violations_are_store_errors_naming_the_operation(store: Store) -> None:
    with trio.fail_after(10):
        await store.add_ticket(b"t", b"body", T0, T0 + 1, 1)
        for args, text in [
            ((b"t", b"again", T0, T0 + 1, 1), "UNIQUE"),
            ((b"u", b"body", T0, T0 + 1, 0), "CHECK"),
            ((b"v", b"body", T0, T0, 1), "CHECK"),
        ]:
            with pytest.raises(StoreError, match=text) as info:
                await store.add_ticket(*args)
            assert info.value.operation == "add_ticket"
            assert "store add_ticket:" in str(info.value)
            assert isinstance(info.value, HiveError)
            assert not isinstance(info.value, TransientError)
        assert [t.ticket_id for t in await store.tickets()] == [b"t"]


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    with trio.fail_after(10):
        store = await Store.open(tmp_path / DB_FILE)
        await store.aclose()
        await store.aclose()  # idempotent
        with pytest.raises(StoreError, match="closed") as info:
            await store.get_meta("k")
    assert info.value.operation == "get_meta"


def _error(message: str, code: int | None) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    if code is not None:
        exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("message", "code", "transient"),
    [
        ("database is locked", 5, True),  # SQLITE_BUSY
        ("database table is locked", 6, True),  # SQLITE_LOCKED
        ("disk I/O error", 10, True),  # SQLITE_IOERR
        ("disk I/O error", 266, True),  # SQLITE_IOERR_READ (extended code)
        ("disk I/O error", None, True),  # no code: the text decides
        ("database is locked", None, True),
        ("no such table: x", 1, False),  # SQLITE_ERROR
        ("database or disk is full", 13, False),  # SQLITE_FULL: needs the operator
        ("file is not a database", 26, False),
    ],
)
def test_translate_maps_transient_errors(message: str, code: int | None, transient: bool) -> None:
    error = translate("op", _error(message, code))
    assert type(error) is (StoreUnavailable if transient else StoreError)
    assert error.operation == "op"
    assert str(error).startswith(f"store op: {message}")


# ----------------------------------------------------------------------------------------------
# Cancellation and the trio side


async def test_cancelled_caller_waits_for_its_transaction_to_finish(store: Store) -> None:
    started, proceed = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_write(conn: sqlite3.Connection) -> None:
        with write_transaction(conn):
            conn.execute("INSERT INTO meta (key, value) VALUES ('slow', x'01')")
            started.set()
            proceed.wait(10)
            conn.execute("INSERT INTO meta (key, value) VALUES ('slow2', x'02')")
        finished.append("committed")

    async def caller(scope_box: list[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            scope_box.append(scope)
            await store.run("slow", slow_write)
            finished.append("result delivered")
            await trio.lowlevel.checkpoint()  # the pending cancellation lands here
            finished.append("not reached")
        finished.append("caller saw cancel" if scope.cancelled_caught else "caller not cancelled")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            box: list[trio.CancelScope] = []
            nursery.start_soon(caller, box)
            await trio.to_thread.run_sync(started.wait, 10)
            box[0].cancel()
            await trio.sleep(0.05)
            assert finished == []  # cancelled, yet still waiting for the thread
            proceed.set()
        assert finished == ["committed", "result delivered", "caller saw cancel"]
        assert await store.get_meta("slow") == b"\x01"
        assert await store.get_meta("slow2") == b"\x02"


async def test_leaving_by_cancellation_closes_the_store(tmp_path: Path) -> None:
    opened: list[Store] = []
    with trio.fail_after(10), trio.CancelScope() as scope:
        async with open_store(tmp_path) as store:
            opened.append(store)
            await store.set_meta("k", b"v")
            scope.cancel()
            await trio.sleep(1)
    assert scope.cancelled_caught
    assert opened[0].closed
    with trio.fail_after(10):
        async with open_store(tmp_path) as store:
            assert await store.get_meta("k") == b"v"


async def test_inline_mode_keeps_the_autojump_clock_still(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 1000)  # a pending deadline the clock could jump to
        before = trio.current_time()
        with trio.fail_after(10):
            async with open_store(tmp_path, run_inline=True) as store:
                await store.add_ticket(b"t", b"body", T0, T0 + 1, 1)
                assert (await store.redeem_ticket(b"t", NODE_A, T0)).granted
        assert trio.current_time() == before
        nursery.cancel_scope.cancel()


async def test_delete_record_and_clear_hive(store: Store) -> None:
    with trio.fail_after(10):
        await store.add_record(b"a" * 32, "member", "n1", b"body-a", 1)
        await store.add_record(b"b" * 32, "exit", "n1", b"body-b", 2)
        assert await store.delete_record(b"a" * 32) is True
        assert await store.delete_record(b"a" * 32) is False
        assert [r.hash for r in await store.records()] == [b"b" * 32]
        await store.add_ticket(b"t" * 16, b"ticket", 1, 10, 1)
        assert (await store.redeem_ticket(b"t" * 16, "n2", 5)).granted
        await store.set_meta(META_GENESIS, b"genesis")
        await store.set_meta("other", b"kept")
        await store.touch_peer("n3", 7)
        await store.clear_hive((META_GENESIS,))
        assert await store.records() == []
        assert await store.tickets() == []
        assert await store.ticket_uses(b"t" * 16) == []
        assert await store.get_meta(META_GENESIS) is None
        assert await store.get_meta("other") == b"kept"
        assert await store.last_seen("n3") == 7
