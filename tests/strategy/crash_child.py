"""A strategy actor in a process of its own, for the SIGKILL test in test_crash_reveal.py.

``argv[1]`` is the data directory (a real SQLite store), ``argv[2]`` the mode: ``commit``
commits to one report, prints its commitment and salt as one JSON line and waits to be killed;
``reveal`` loads what the store holds, ticks until the pending report is revealed (the delay
is 1 s) and prints the signed report's canonical bytes in hex. Membership, transport, node and
engine are the stand-ins of tests/strategy/stand_ins.py: what is under test is the store and
the actor's reveal path."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import nacl.signing
import trio

from hive.config import StrategyConfig
from hive.protocol.membership.pki import canonical_bytes
from hive.protocol.strategy import ReportBody, ReportedChannel
from hive.store import open_store
from strategy.stand_ins import Membership, Node, Roster, Transport, channel, make_strategy

KEY = nacl.signing.SigningKey(hashlib.sha256(b"crash child").digest())
HIVE = hashlib.sha256(b"crash hive").digest()
PEER = "02" + hashlib.sha256(b"peer").hexdigest()
SCID = "800000x1x0"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def main(data_dir: Path, mode: str) -> None:
    async with open_store(data_dir) as store:
        me = "03" + "11" * 32
        strategy = make_strategy(
            store=store,
            key=KEY,
            membership=Membership(Roster(HIVE, {bytes(KEY.verify_key): me}), bytes.fromhex(me)),
            node=Node([channel(PEER, SCID)]),
            transport=Transport(),
            now_ms=now_ms,
            config=StrategyConfig(delay_s=1.0),
        )
        await strategy.load()
        if mode == "commit":
            now = now_ms()
            body = ReportBody(HIVE, bytes(KEY.verify_key), bytes.fromhex(PEER),
                              (ReportedChannel(SCID, 1_000_000, 0, 100),), 50_000_000, 5, 5_000,
                              now - 3_600_000, now, ())  # fmt: skip
            row = await strategy.commit(body)
            print(json.dumps({"commitment": row.commitment.hex(), "salt": row.salt.hex()}))
            sys.stdout.flush()
            await trio.sleep_forever()
        pending = [r for r in strategy.own.values() if r.state == "pending"]
        print(json.dumps({"pending": len(pending)}))
        while any(r.state == "pending" for r in strategy.own.values()):
            await trio.sleep(0.2)
            await strategy.tick()
        assert strategy.book is not None
        (report,) = strategy.book.reports()
        print(canonical_bytes(report).hex())


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2])
