"""A receiver in a process of its own, for the SIGKILL test in tests/test_replay_crash.py.

Runs what the runtime runs for the replay guard, on the wall clock: the guard loaded from the
store in ``argv[1]`` (restarted at start), the replay-state actor saving it every ``argv[2]``
seconds, and a HiveWire that unpacks the frames given on stdin, one hex line each, answering
``ok`` or the refusal reason on stdout. The line ``save`` saves the guard at once (what the
actor does every 30 s in production) and answers ``saved``.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import nacl.signing
import trio

from hive.actors.wire.replaystate import _save, keep_replay_saved, load_replay
from hive.protocol.errors import ProtocolError
from hive.protocol.wire.facade import HiveWire
from hive.store import open_store


def now_ms() -> int:
    return int(time.time() * 1000)


async def serve(data_dir: Path, interval_s: float) -> None:
    async with open_store(data_dir) as store:
        wire = HiveWire(
            nacl.signing.SigningKey(b"\x52" * 32),
            first_seq=1,
            replay=await load_replay(store, now_ms=now_ms()),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(keep_replay_saved, wire, store, interval_s=interval_s)
            )
            stdin = trio.lowlevel.FdStream(0)
            pending = b""
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                answers = []
                for line in lines:
                    if line == b"save":
                        await _save(wire, store)
                        answers.append("saved")
                        continue
                    try:
                        wire.unpack("02" + "ab" * 32, bytes.fromhex(line.decode()), now_ms())
                    except ProtocolError as exc:
                        answers.append(exc.reason)
                    else:
                        answers.append("ok")
                sys.stdout.write("".join(f"{answer}\n" for answer in answers))
                sys.stdout.flush()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(serve, Path(sys.argv[1]), float(sys.argv[2]))
