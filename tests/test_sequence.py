"""What must survive a restart: sequence numbers never repeat (even with the clock set back),
and frames accepted before the restart stay replays after it."""

from __future__ import annotations

import functools
from pathlib import Path

import nacl.signing
import pytest
import trio
import trio.testing

from hive.actors.wire.replaystate import keep_replay_saved, load_replay
from hive.actors.wire.sequence import CHECK_S, RESERVE, keep_reserved, starting_seq
from hive.protocol.errors import ProtocolError
from hive.protocol.messages import Ping
from hive.protocol.wire.facade import HiveWire
from hive.store import META_LAST_SEQ, META_REPLAY_SNAPSHOT, open_store

NOW_MS = 1_761_350_400_000
KEY = nacl.signing.SigningKey(b"\x31" * 32)


async def test_restart_with_the_clock_set_back_continues_above_every_used_seq(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    reserve = 10
    async with open_store(tmp_path, run_inline=True) as store:
        first = await starting_seq(store, NOW_MS, reserve=reserve)
        assert first == NOW_MS * 1000
        wire = HiveWire(KEY, first_seq=first)
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(keep_reserved, wire, store, reserve=reserve))
            # Send three reservations' worth, checking in between: the keeper keeps ahead.
            for _ in range(6):
                for i in range(reserve // 2):
                    wire.sign(Ping(nonce=i.to_bytes(8, "big")), NOW_MS)
                await trio.sleep(CHECK_S + 1)
            nursery.cancel_scope.cancel()
        used = wire.next_seq - 1
        reserved = int.from_bytes(await store.get_meta(META_LAST_SEQ) or b"", "big")
        assert reserved > used
    # The next run's clock is an hour behind: it still starts above everything used.
    async with open_store(tmp_path, run_inline=True) as store:
        again = await starting_seq(store, NOW_MS - 3_600_000)
    assert again > used


async def test_first_start_reserves_ahead_of_the_clock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_store(tmp_path, run_inline=True) as store:
        seq = await starting_seq(store, NOW_MS)
        reserved = int.from_bytes(await store.get_meta(META_LAST_SEQ) or b"", "big")
    assert reserved == seq + RESERVE


async def test_a_frame_accepted_before_a_restart_is_a_replay_after_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sender = HiveWire(nacl.signing.SigningKey(b"\x41" * 32), first_seq=5)
    (frame,) = sender.pack(Ping(nonce=b"r" * 8), NOW_MS, msg_id=1)
    peer = "02" + "cd" * 32
    async with open_store(tmp_path, run_inline=True) as store:
        assert len(await load_replay(store, now_ms=NOW_MS)) == 0
        receiver = HiveWire(KEY, first_seq=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(keep_replay_saved, receiver, store)
            assert receiver.unpack(peer, frame, NOW_MS) is not None
            nursery.cancel_scope.cancel()  # shutdown: the state is saved on the way out
    async with open_store(tmp_path, run_inline=True) as store:
        restarted = HiveWire(KEY, first_seq=2, replay=await load_replay(store, now_ms=NOW_MS))
    with pytest.raises(ProtocolError) as info:
        restarted.unpack(peer, frame, NOW_MS + 60_000)
    assert info.value.reason == "replay"


async def test_an_unreadable_saved_state_starts_empty(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_store(tmp_path, run_inline=True) as store:
        await store.set_meta(META_REPLAY_SNAPSHOT, b"{not json")
        guard = await load_replay(store, now_ms=NOW_MS)
    assert len(guard) == 0
    assert guard.eviction_floor_ms == NOW_MS - 1  # still refuses what predates the restart
