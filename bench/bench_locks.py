"""Intent lock races: many rounds in which 2 to 5 members of a 5-member fleet decide to open to
the same target within one second, over a network that loses 10 % of messages and delays each
by a random latency. Runs the real lock state machine (hive.protocol.intents.locks) in a
discrete-event simulation; reports duplicate opens (must be 0), rounds that opened nothing, and
the time from decision to execution. Then the same with a partition during the hold period.

    .venv/bin/python bench/bench_locks.py [--rounds 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import time
from collections.abc import Sequence

import attrs

from hive.protocol.intents.locks import Broadcast, Execute, LockBook, LockTimers, Send
from hive.protocol.intents.messages import Intent
from hive.protocol.messages import Message

MEMBERS = 5
TARGET = bytes([3]) * 33
TIMERS = LockTimers()
LEASE_MS = 180_000


def key(i: int) -> bytes:
    return bytes([i + 1]) * 32


@attrs.define
class RoundResult:
    executions: int
    opened_at_ms: list[int]  # decision -> execution start, per execution
    ended_without_open: bool


def latency_ms(rng: random.Random) -> int:
    """Custom-message latency: lognormal around 150 ms, long tail (a slow peer)."""
    return min(10_000, int(rng.lognormvariate(5.0, 0.8)))


def run_round(
    rng: random.Random,
    deciders: Sequence[int],
    *,
    loss: float,
    partition: tuple[frozenset[int], int, int] | None,
) -> RoundResult:
    books = [
        LockBook(key(i), [key(j) for j in range(MEMBERS)], timers=TIMERS) for i in range(MEMBERS)
    ]
    events: list[tuple[int, int, str, int, object]] = []
    seq = 0

    def push(at: int, what: str, member: int, payload: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, what, member, payload))

    decided: dict[bytes, int] = {}
    scheduled: list[set[int]] = [set() for _ in range(MEMBERS)]
    executions: list[int] = []

    def cut(a: int, b: int, now: int) -> bool:
        if partition is None:
            return False
        side, start, end = partition
        return start <= now < end and ((a in side) != (b in side))

    def act(member: int, actions: Sequence[object], now: int) -> None:
        for action in actions:
            if isinstance(action, Broadcast | Send):
                message: Message = action.message
                dests = (
                    [d for d in range(MEMBERS) if d != member]
                    if isinstance(action, Broadcast)
                    else [d for d in range(MEMBERS) if key(d) == action.to]
                )
                for d in dests:
                    if rng.random() < loss or cut(member, d, now):
                        continue
                    push(now + latency_ms(rng), "msg", d, (member, message))
            elif isinstance(action, Execute):
                executions.append(now - decided[action.intent.intent_id])
                # fundchannel: a few seconds, then the outcome.
                push(now + rng.randint(1_000, 8_000), "done", member, action.intent.intent_id)
        nxt = books[member].next_deadline(now)
        if nxt is not None:
            at = max(nxt, now + 1)
            if at not in scheduled[member]:
                scheduled[member].add(at)
                push(at, "tick", member, None)

    for member in deciders:
        at = rng.randint(0, 1_000)
        score = rng.randint(0, 3)  # ties happen: the key breaks them
        intent = Intent(rng.randbytes(16), "open-channel", TARGET, 2_000_000, score, LEASE_MS)
        decided[intent.intent_id] = at
        push(at, "propose", member, intent)
    horizon = 400_000
    while events:
        now, _, what, member, payload = heapq.heappop(events)
        if now > horizon:
            break
        book = books[member]
        if what == "propose":
            assert isinstance(payload, Intent)
            actions, _refused = book.propose(payload, now)
            act(member, actions, now)
        elif what == "msg":
            assert isinstance(payload, tuple)
            sender, message = payload
            act(member, book.receive(key(sender), message, now), now)
        elif what == "tick":
            scheduled[member].discard(now)
            act(member, book.tick(now), now)
        elif what == "done":
            assert isinstance(payload, bytes)
            act(
                member,
                book.executed(payload, opened=True, result="txid", reason="", now_ms=now),
                now,
            )
    return RoundResult(len(executions), executions, not executions)


def report(name: str, results: list[RoundResult], elapsed: float) -> None:
    waits = sorted(w for r in results for w in r.opened_at_ms[:1])
    dupes = sum(1 for r in results if r.executions > 1)
    extra = sum(max(0, r.executions - 1) for r in results)
    none = sum(1 for r in results if r.ended_without_open)
    med = statistics.median(waits) / 1000 if waits else float("nan")
    p99 = waits[int(len(waits) * 0.99) - 1] / 1000 if waits else float("nan")
    print(
        f"{name}: {len(results)} rounds, duplicate opens {extra} (in {dupes} rounds), "
        f"rounds with no open {none}, decision->execution median {med:.2f} s, p99 {p99:.2f} s "
        f"[{elapsed:.1f} s wall]"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loss", type=float, default=0.10)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    for name, partitioned in (("no partition", False), ("partition during hold", True)):
        results = []
        start = time.perf_counter()
        for _ in range(args.rounds):
            deciders = rng.sample(range(MEMBERS), rng.randint(2, MEMBERS))
            part = None
            if partitioned:
                side = frozenset(rng.sample(range(MEMBERS), rng.randint(1, MEMBERS - 1)))
                begin = rng.randint(0, TIMERS.hold_ms)
                part = (side, begin, begin + rng.randint(10_000, 120_000))
            results.append(run_round(rng, deciders, loss=args.loss, partition=part))
        report(name, results, time.perf_counter() - start)


if __name__ == "__main__":
    main()
