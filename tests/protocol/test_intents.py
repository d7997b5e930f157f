"""Intent locks: the messages, the holder table, and a Hypothesis state machine of 3 to 5
members on a lossy, duplicating, reordering network with crashes, checking the invariant
"at most one member executes an open to one target per lock epoch"."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from hive.protocol.intents.locks import (
    HOLDER_TABLE,
    Broadcast,
    Ended,
    Execute,
    HolderEvent,
    HolderState,
    LockBook,
    LockTimers,
    Send,
)
from hive.protocol.intents.messages import Intent, IntentAck, IntentOutcome
from hive.protocol.messages import REGISTRY, Message
from hive.protocol.wire.codec import decode_message, encode_message

TARGETS = [bytes([2]) + bytes([t]) * 32 for t in range(3)]
TIMERS = LockTimers(hold_ms=1_000, exec_budget_ms=20_000, retransmit_ms=500)
LEASE = 40_000


def key(i: int) -> bytes:
    return bytes([i + 1]) * 32


def intent(n: int, target: bytes, score: int = 0, lease: int = LEASE) -> Intent:
    return Intent(n.to_bytes(16, "big"), "open-channel", target, 1_000_000, score, lease)


def test_kinds_are_registered_in_their_range() -> None:
    for name in ("Intent", "IntentAck", "IntentNack", "IntentAbort", "IntentOutcome"):
        cls = REGISTRY.by_name(name)
        assert cls is not None
        assert 0x0060 <= REGISTRY.kind_of(cls) <= 0x006F


def test_intent_round_trips_and_bounds() -> None:
    msg = intent(1, TARGETS[0], score=7)
    assert decode_message(*encode_message(msg)) == msg
    with pytest.raises(ValueError, match="lease_ms"):
        intent(1, TARGETS[0], lease=10**9)


def test_every_table_entry_starts_live() -> None:
    assert all(state in (HolderState.HOLDING, HolderState.EXECUTING) for state, _ in HOLDER_TABLE)


def route(books: list[LockBook], sender: int, actions: list[object], now: int) -> list[object]:
    """Deliver every message at once (a perfect network); return what the holders must do."""
    out: list[object] = []
    queue = [(sender, a) for a in actions]
    while queue:
        src, action = queue.pop(0)
        if isinstance(action, Broadcast | Send):
            dests = (
                [i for i in range(len(books)) if i != src]
                if isinstance(action, Broadcast)
                else [i for i in range(len(books)) if key(i) == action.to]
            )
            for d in dests:
                queue += [(d, a) for a in books[d].receive(key(src), action.message, now)]
        else:
            out.append(action)
    return out


def fleet(n: int) -> list[LockBook]:
    return [LockBook(key(i), [key(j) for j in range(n)], timers=TIMERS) for i in range(n)]


def test_a_lone_intent_executes_after_the_hold_period() -> None:
    books = fleet(3)
    actions, refused = books[0].propose(intent(1, TARGETS[0]), 0)
    assert refused is None
    assert route(books, 0, actions, 0) == []  # promised by all, but the hold is not over
    assert route(books, 0, books[0].tick(999), 999) == []
    done = route(books, 0, books[0].tick(1_000), 1_000)
    assert done == [Execute(intent(1, TARGETS[0]))]


def test_two_intents_for_one_target_the_stronger_wins() -> None:
    books = fleet(3)
    weak, _ = books[0].propose(intent(1, TARGETS[0], score=1), 0)
    strong, _ = books[1].propose(intent(2, TARGETS[0], score=9), 0)
    # Both announced before either arrived; now they cross.
    ended = route(books, 0, weak, 0) + route(books, 1, strong, 0)
    assert [a.reason for a in ended if isinstance(a, Ended)] == ["yielded"]
    for i in (0, 1, 2):
        route(books, i, books[i].tick(600), 600)  # retransmits gather the freed promises
    done = [a for i in (0, 1) for a in route(books, i, books[i].tick(1_000), 1_000)]
    assert done == [Execute(intent(2, TARGETS[0], score=9))]


def test_an_outcome_ends_the_lock_and_the_epoch() -> None:
    books = fleet(2)
    route(books, 0, books[0].propose(intent(1, TARGETS[0]), 0)[0], 0)
    route(books, 0, books[0].tick(1_000), 1_000)
    route(
        books,
        0,
        books[0].executed(
            intent(1, TARGETS[0]).intent_id, opened=True, result="tx", reason="", now_ms=1_100
        ),
        1_100,
    )
    assert books[1].epochs[TARGETS[0]] == 1
    assert TARGETS[0] not in books[1].promises
    # Just opened: nobody takes a new lock for it until the fleet state shows the channel.
    assert books[1].propose(intent(5, TARGETS[0]), 1_200)[1] == "target-taken"
    assert books[1].propose(intent(5, TARGETS[0]), 1_100 + TIMERS.taken_ms)[1] is None


def test_a_restarted_member_promises_nothing_during_its_quiet_period() -> None:
    books = fleet(3)
    books[2] = LockBook(key(2), [key(j) for j in range(3)], timers=TIMERS, now_ms=0, restarted=True)
    actions, _ = books[0].propose(intent(1, TARGETS[0]), 0)
    route(books, 0, actions, 0)
    own = books[0].own[intent(1, TARGETS[0]).intent_id]
    assert own.promised == {key(0), key(1)}  # still a majority of three


def test_no_majority_no_execution_and_the_lease_runs_out() -> None:
    books = fleet(3)
    books[0].propose(intent(1, TARGETS[0]), 0)
    # Every message is lost: the holder never gets a majority and gives up in time.
    assert not any(isinstance(a, Execute) for a in books[0].tick(1_000))
    ended = [a for a in books[0].tick(LEASE - TIMERS.exec_budget_ms + 1) if isinstance(a, Ended)]
    assert [e.reason for e in ended] == ["lease-short"]


@attrs.define
class InFlight:
    src: int
    dst: int
    message: Message


class LockMachine(RuleBasedStateMachine):
    """Members propose, the network loses, duplicates and reorders, members crash and restart;
    at no time do two members execute for the same target."""

    @initialize(n=st.integers(min_value=3, max_value=5))
    def setup(self, n: int) -> None:
        self.n = n
        self.now = 0
        self.books = fleet(n)
        self.flight: list[InFlight] = []
        self.running: dict[bytes, tuple[int, Intent, int]] = {}  # intent id -> (member, ., start)
        self.next_id = 1
        self.executions: list[tuple[bytes, bytes]] = []
        self.cut: set[frozenset[int]] = set()  # severed links (a partition)

    def _apply(self, member: int, actions: list[object]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                self.flight += [
                    InFlight(member, d, action.message) for d in range(self.n) if d != member
                ]
            elif isinstance(action, Send):
                dst = next(i for i in range(self.n) if key(i) == action.to)
                self.flight.append(InFlight(member, dst, action.message))
            elif isinstance(action, Execute) and action.intent.intent_id not in self.running:
                self.running[action.intent.intent_id] = (member, action.intent, self.now)
                self.executions.append((action.intent.target, action.intent.intent_id))

    @rule(member=st.integers(0, 4), which=st.sampled_from(TARGETS), score=st.integers(0, 3))
    def propose(self, member: int, which: bytes, score: int) -> None:
        member %= self.n
        msg = intent(self.next_id, which, score)
        self.next_id += 1
        actions, _ = self.books[member].propose(msg, self.now)
        self._apply(member, list(actions))

    @precondition(lambda self: self.flight)
    @rule(pick=st.integers(0, 10_000), fate=st.sampled_from(["deliver", "drop", "dup"]))
    def network(self, pick: int, fate: str) -> None:
        item = self.flight[pick % len(self.flight)]
        if fate != "dup":
            self.flight.remove(item)
        if fate != "drop" and frozenset((item.src, item.dst)) not in self.cut:
            actions = self.books[item.dst].receive(key(item.src), item.message, self.now)
            self._apply(item.dst, list(actions))

    @rule()
    def flush(self) -> None:
        """Deliver everything in flight (and what it causes) over the links that work."""
        for _ in range(200):
            if not self.flight:
                return
            item = self.flight.pop(0)
            if frozenset((item.src, item.dst)) not in self.cut:
                actions = self.books[item.dst].receive(key(item.src), item.message, self.now)
                self._apply(item.dst, list(actions))

    @rule(a=st.integers(0, 4), b=st.integers(0, 4))
    def sever(self, a: int, b: int) -> None:
        """Cut (or heal) the link between two members: a partition, possibly a partial one."""
        link = frozenset((a % self.n, b % self.n))
        self.cut ^= {link}

    @rule(ms=st.one_of(st.integers(1, 2_000), st.integers(1, 30_000)))
    def advance(self, ms: int) -> None:
        end = self.now + ms
        while True:
            # An execution is bounded by the actor's timeout (exec_budget).
            due = [
                (start + TIMERS.exec_budget_ms, iid) for iid, (_, _, start) in self.running.items()
            ]
            due = [d for d in due if d[0] <= end]
            if not due:
                break
            when, iid = min(due)
            self.now = max(self.now, when)
            self._finish(iid, opened=False)
        self.now = end
        for i in range(self.n):
            self._apply(i, list(self.books[i].tick(self.now)))

    def _finish(self, iid: bytes, *, opened: bool) -> None:
        member, _, _ = self.running.pop(iid)
        result = "txid" if opened else ""
        self._apply(
            member,
            list(
                self.books[member].executed(
                    iid, opened=opened, result=result, reason="", now_ms=self.now
                )
            ),
        )

    @precondition(lambda self: self.running)
    @rule(pick=st.integers(0, 100), opened=st.booleans())
    def finish(self, pick: int, opened: bool) -> None:
        self._finish(sorted(self.running)[pick % len(self.running)], opened=opened)

    @rule(member=st.integers(0, 4))
    def crash(self, member: int) -> None:
        member %= self.n
        old = self.books[member]
        book = LockBook(
            key(member),
            [key(j) for j in range(self.n)],
            timers=TIMERS,
            now_ms=self.now,
            restarted=True,
            max_lease_ms=LEASE,
        )
        self.books[member] = book
        # What SQLite kept: our own live intents and their states.
        for own in old.own.values():
            if own.state in (HolderState.HOLDING, HolderState.EXECUTING):
                self._apply(member, list(book.restore(own.intent, own.state, own.created_ms)))

    @invariant()
    def one_executor_per_target(self) -> None:
        targets = [i.target for _, i, _ in self.running.values()]
        assert len(targets) == len(set(targets)), f"two members execute for one target: {targets}"
        for book in self.books:
            mine = [i.target for i in book.executing()]
            assert len(mine) == len(set(mine))


LockMachine.TestCase.settings = settings(max_examples=400, stateful_step_count=40)
test_lock_machine = LockMachine.TestCase


def test_lock_machine_finds_a_broken_quorum() -> None:
    """The state machine test can fail: with a quorum of one, two members execute at once."""

    class Broken(LockBook):
        @property
        def quorum(self) -> int:
            return 1

    books: list[LockBook] = [
        Broken(key(i), [key(j) for j in range(3)], timers=TIMERS) for i in range(3)
    ]
    for i in (0, 1):
        books[i].propose(intent(10 + i, TARGETS[0]), 0)  # messages lost
    running = [a for i in (0, 1) for a in books[i].tick(1_000) if isinstance(a, Execute)]
    assert len(running) == 2


def test_outcome_from_another_member_makes_our_holding_intent_yield() -> None:
    books = fleet(3)
    books[1].propose(intent(2, TARGETS[1]), 0)
    outcome = IntentOutcome(intent(1, TARGETS[1]).intent_id, TARGETS[1], True, "tx", "")
    ended = books[1].receive(key(0), outcome, 10)
    assert [a.reason for a in ended if isinstance(a, Ended)] == ["target-taken"]
    assert HolderEvent.YIELD in {e for _, e in HOLDER_TABLE}


def test_acks_for_unknown_intents_are_ignored() -> None:
    books = fleet(3)
    assert books[0].receive(key(1), IntentAck(bytes(16), TARGETS[0]), 0) == []
    assert books[0].ignored == 1
