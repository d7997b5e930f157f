"""The strategy actor's own bookkeeping with stand-ins for the node, transport and membership
(real SQLite): which hours count as observed, what a report says, when it is withdrawn."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import nacl.signing
import pytest

from hive.actors.strategy import HOUR_MS, Strategy
from hive.config import StrategyConfig
from hive.node.port import ChannelState, Forwarded
from hive.store import open_store
from hive.store import strategy as sql
from strategy.stand_ins import Membership, Node, Roster, Transport, channel, make_strategy

KEY = nacl.signing.SigningKey(hashlib.sha256(b"observer").digest())
HIVE = hashlib.sha256(b"observe hive").digest()
ME = "03" + "11" * 32
MEMBER = "03" + "22" * 32
PEER = "02" + "33" * 32
OUTSIDER = "02" + "44" * 32
T0 = 1_000 * HOUR_MS


def fresh_node() -> Node:
    return Node([channel(MEMBER, "1x1x0"), channel(PEER, "2x1x0"), channel(OUTSIDER, "3x1x0")])


@attrs.define
class Clock:
    now: int = T0 + HOUR_MS // 2  # started mid-hour: that hour is not ours

    def __call__(self) -> int:
        return self.now


@attrs.define
class Rig:
    strategy: Strategy
    node: Node
    transport: Transport
    clock: Clock
    store: Any


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_store(tmp_path, run_inline=True) as store:
        node, transport, clock = fresh_node(), Transport(), Clock()
        roster = Roster(HIVE, {bytes(KEY.verify_key): ME}, (ME, MEMBER))
        strategy = make_strategy(
            store=store,
            key=KEY,
            membership=Membership(roster, bytes.fromhex(ME)),
            node=node,
            transport=transport,
            now_ms=clock,
            config=StrategyConfig(delay_s=600.0, min_yield_ppm=100, min_forwards=3),
        )
        await strategy.load()
        strategy._running_since_ms = clock.now  # what run() does
        strategy._last_covered = -(-clock.now // HOUR_MS) - 1
        yield Rig(strategy, node, transport, clock, store)


async def covered_hours(rig: Rig) -> list[int]:
    rows = await rig.store.run(
        "q", lambda c: c.execute("SELECT hour FROM strategy_coverage ORDER BY hour").fetchall()
    )
    return [int(r[0]) for r in rows]


async def test_only_whole_hours_without_dropped_events_count(rig: Rig) -> None:
    s, clock = rig.strategy, rig.clock
    clock.now = T0 + 3 * HOUR_MS + 10
    await s._flush(clock.now)
    assert await covered_hours(rig) == [1001, 1002]  # not hour 1000: we started in it
    rig.transport.stats.dropped["event-subscriber-full"] += 1  # a drop during hour 1003
    clock.now = T0 + 5 * HOUR_MS + 10
    await s._flush(clock.now)
    assert await covered_hours(rig) == [1001, 1002]  # 1003 and 1004 may have lost forwards
    clock.now = T0 + 7 * HOUR_MS
    await s._flush(clock.now)
    assert await covered_hours(rig) == [1001, 1002, 1006]


async def test_a_report_on_a_high_yield_peer_and_its_withdrawal(rig: Rig) -> None:
    s, clock = rig.strategy, rig.clock
    clock.now = T0 + 2 * HOUR_MS + 60  # hour 1001 observed throughout
    await s._flush(clock.now)
    for _ in range(4):  # from a member to PEER: 150 ppm of 1 000 000 sat in all
        await s._observe(Forwarded("1x1x0", "2x1x0", 10_037_500, 10_000_000, settled=True))
        # from an outsider to OUTSIDER: too little earned
        await s._observe(Forwarded("2x1x0", "3x1x0", 10_001_000, 10_000_000, settled=True))
    await s._observe(Forwarded("3x1x0", MEMBER_SCID, 10_100_000, 10_000_000, settled=True))
    await s._flush(clock.now)
    (row,) = await s.discover(clock.now)
    body = row.body
    assert row.peer == PEER
    assert body.window_start_ms == T0 + HOUR_MS  # where our observation starts
    assert (body.forwards, body.forwarded_msat, body.earned_msat) == (4, 40_000_000, 150_000)
    assert body.yield_ppm == 150
    assert [(c.short_channel_id, c.capacity_sat, c.base_msat, c.ppm) for c in body.channels] == [
        ("2x1x0", 1_000_000, 1000, 100)
    ]
    (share,) = body.inbound
    assert (share.member.hex(), share.forwarded_msat, share.forwards) == (MEMBER, 40_150_000, 4)
    assert await s.discover(clock.now) == []  # one report per peer per repeat_s
    assert s.status()["ours"] == {"pending": 1}
    assert s.status()["commitments_held"] == 1
    own = await rig.store.run("own", sql.load_own)
    assert [(r.commitment, r.salt, r.state) for r in own] == [(row.commitment, row.salt, "pending")]

    # The channel closes before the reveal: the report is withdrawn, never revealed.
    rig.node.channels = [channel(PEER, "2x1x0", ChannelState.CLOSING)]
    clock.now = row.reveal_ms
    await s._reveal_due(clock.now)
    assert s.own[row.commitment].state == "withdrawn"
    assert s.status()["ours"] == {"withdrawn": 1}
    assert "2x1x0" in s.own[row.commitment].note
    assert s.book is not None
    assert s.book.reports() == []


MEMBER_SCID = "1x1x0"  # forwards out to a member are never reported on
