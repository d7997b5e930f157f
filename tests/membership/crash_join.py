"""A founder and a candidate on the simulated network, with their stores on disk, run in a
process that a crash test kills with SIGKILL at one point of a join (see test_crash_join.py).

Usage: ``python crash_join.py DATA_DIR first POINT`` starts both, creates the hive, issues a
ticket and joins, killing the process at POINT:

- ``grant-unadmitted``: the founder (the issuer) counted the ticket use, and has not stored
  the admission yet;
- ``welcome-unsent``: the founder stored the admission; the Welcome is not sent yet;
- ``adopt-start``: the candidate verified the Welcome and is about to store it;
- ``adopt-records``: the candidate is writing the Welcome's records;
- ``none``: no kill (the join completes; the report is printed).

``python crash_join.py DATA_DIR again`` starts both again on the same stores two hours later
(simulated time), retries the join with the same ticket and prints what each side knows, as
JSON, on stdout.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import nacl.signing
import trio
import trio.testing

from hive.actors.membership.roster import Membership
from hive.commands import CommandError
from hive.config import HiveConfig
from hive.node.sim import SimNetwork, SimNode, generate_graph
from hive.protocol.membership import Welcome
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000


def _die(*_args: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def _start(nursery: trio.Nursery, node: SimNode, data: Path, offset_ms: int) -> Runtime:
    seed = int(node.node_id[2:10], 16)
    runtime = Runtime(
        node,
        HiveConfig(data_dir=data / node.alias),
        now_ms=lambda: EPOCH_MS + offset_ms + int(trio.current_time() * 1000),
        rng=random.Random(seed),
        signing_key=nacl.signing.SigningKey(random.Random(seed).randbytes(32)),
        store_inline=True,
    )
    await nursery.start(runtime.run)
    return runtime


def _kill_at(point: str, founder: Runtime, candidate: Runtime) -> None:
    if point == "welcome-unsent":
        transport = founder.transport
        assert transport is not None
        real_send = transport.send

        async def send(peer: str, message: Any) -> None:
            if isinstance(message, Welcome):
                _die()
            await real_send(peer, message)

        transport.send = send  # type: ignore[method-assign]
    elif point == "grant-unadmitted":
        membership = founder.membership
        assert membership is not None
        membership._admit = _die  # type: ignore[method-assign,assignment]
    elif point == "adopt-start":
        membership = candidate.membership
        assert membership is not None
        membership.adopt = _die  # type: ignore[method-assign,assignment]
    elif point not in ("adopt-records", "none"):
        raise SystemExit(f"unknown kill point {point!r}")


def _trace_kills_on_record_insert(sql: str) -> None:
    if sql.lstrip().upper().startswith("INSERT INTO RECORDS"):
        _die()


async def _main(data: Path, phase: str, point: str | None) -> dict[str, Any]:
    offset = 0 if phase == "first" else 2 * 3_600_000
    network = SimNetwork(generate_graph(30, seed=7), seed=7, latency=(0.05, 0.25))
    report: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        founder = await _start(nursery, network.add_node("founder", 5_000_000), data, offset)
        candidate = await _start(nursery, network.add_node("candidate", 5_000_000), data, offset)
        ticket_file = data / "ticket"
        if phase == "first":
            assert point is not None
            await founder.command("hive-genesis")({})
            ticket = (await founder.command("hive-invite")({"valid_hours": 24}))["ticket"]
            ticket_file.write_text(ticket)
            _kill_at(point, founder, candidate)
            if point == "adopt-records":
                cm = candidate.membership
                assert isinstance(cm, Membership)

                def trace(conn: sqlite3.Connection) -> None:
                    conn.set_trace_callback(_trace_kills_on_record_insert)

                await cm.store.run("trace", trace)
        else:
            ticket = ticket_file.read_text()
        try:
            joined = await candidate.command("hive-join")({"ticket": ticket})
            report["join"] = "joined"
            report["members_in_answer"] = joined["members"]
        except CommandError as exc:
            report["join"] = exc.message
        await trio.sleep(5)
        for name, runtime in (("founder", founder), ("candidate", candidate)):
            hive = runtime.status()["hive"]
            report[name] = {"member": hive["member"], "members": hive["members"]}
        nursery.cancel_scope.cancel()
    return report


def main() -> None:
    data, phase = Path(sys.argv[1]), sys.argv[2]
    point = sys.argv[3] if len(sys.argv) > 3 else None
    clock = trio.testing.MockClock(autojump_threshold=0)
    report = trio.run(_main, data, phase, point, clock=clock)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
