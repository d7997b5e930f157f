"""Intent locks as a table-driven state machine (sans-I/O; time comes in as ``now_ms``).

One :class:`LockBook` per member holds both sides of the protocol:

* **Promises** (every member): per target, at most one live intent has this member's promise
  (its own or another member's). A promise lasts until the intent's abort or outcome, or
  until ``lease_ms`` after this member first received it, by its own clock.
* **Own intents** (the holder): an intent may execute only with promises from a majority of
  the roster (its own included) and after the hold period; it must still have
  ``exec_budget_ms`` of its lease left when it starts, so every promise it relies on outlives
  the execution. Two intents for one target can never both hold a majority of promises, which
  is the safety argument: at most one member executes an open to one target per lock epoch.

Holder transitions (:data:`HOLDER_TABLE`; anything else is ignored and counted)::

    HOLDING   --ready (majority promised, hold elapsed)------> EXECUTING  Execute
    HOLDING   --yield (stronger intent / target taken)--------> ABORTED   Broadcast(Abort), Ended
    HOLDING   --deadline (too little lease left to start)----> ABORTED    Broadcast(Abort), Ended
    HOLDING   --cancel (asked by the actor / restart)--------> ABORTED    Broadcast(Abort), Ended
    EXECUTING --succeeded----------------------------------> OPENED     Broadcast(Outcome), Ended
    EXECUTING --failed-------------------------------------> FAILED     Broadcast(Outcome), Ended

Promise rules, on an :class:`Intent` X for target T: restarting (within the quiet period,
which is as long as the longest lease we accept, so promises lost in a crash have expired) ->
Nack "restarting"; a live promise for X already -> Ack again; our own HOLDING intent for T that
X beats -> our intent yields, then X is promised; any other live promise -> Nack naming it;
none -> promise X and Ack. Strength (the tie-break): higher planner score, then the lower hive
key, then the lower intent id: the planner's best placed member wins, and the order is total.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from hive.protocol.intents.messages import (
    MAX_LEASE_MS,
    Intent,
    IntentAbort,
    IntentAck,
    IntentNack,
    IntentOutcome,
)
from hive.protocol.messages import Message

ZERO_ID = bytes(16)
ENDED_KEPT = 256
ZERO_KEY = bytes(32)

# Reasons (Abort, Nack, Ended).
YIELDED = "yielded"  # a stronger intent for the target
TARGET_TAKEN = "target-taken"  # another member opened to it
DEADLINE = "lease-short"  # too little lease left to start executing
RESTARTED = "restarted"
HELD = "held"  # Nack: another intent holds our promise
RESTARTING = "restarting"  # Nack: within our quiet period
BUSY = "busy"  # Nack: too many live intents of this holder, or promises overall
CANCELLED = "cancelled"


class HolderState(enum.Enum):
    HOLDING = "holding"
    EXECUTING = "executing"
    OPENED = "opened"
    FAILED = "failed"
    ABORTED = "aborted"


class HolderEvent(enum.Enum):
    READY = "ready"
    YIELD = "yield"
    DEADLINE = "deadline"
    CANCEL = "cancel"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen
class Broadcast:
    """Send ``message`` to every active member."""

    message: Message


@attrs.frozen
class Send:
    """Send ``message`` to the member with hive key ``to``."""

    to: bytes
    message: Message


@attrs.frozen
class Execute:
    """The lock is ours: re-check, then do the work and report with :meth:`LockBook.executed`."""

    intent: Intent


@attrs.frozen
class Ended:
    """Our intent ended (``state`` is terminal) for ``reason``."""

    intent: Intent
    state: HolderState
    reason: str


Action = Broadcast | Send | Execute | Ended

_H, _E = HolderState, HolderEvent
HOLDER_TABLE: dict[tuple[HolderState, HolderEvent], tuple[HolderState, tuple[type, ...]]] = {
    (_H.HOLDING, _E.READY): (_H.EXECUTING, (Execute,)),
    (_H.HOLDING, _E.YIELD): (_H.ABORTED, (Broadcast, Ended)),
    (_H.HOLDING, _E.DEADLINE): (_H.ABORTED, (Broadcast, Ended)),
    (_H.HOLDING, _E.CANCEL): (_H.ABORTED, (Broadcast, Ended)),
    (_H.EXECUTING, _E.SUCCEEDED): (_H.OPENED, (Broadcast, Ended)),
    (_H.EXECUTING, _E.FAILED): (_H.FAILED, (Broadcast, Ended)),
}
TERMINAL = frozenset({_H.OPENED, _H.FAILED, _H.ABORTED})


def strength(score: int, holder: bytes, intent_id: bytes) -> tuple[int, bytes, bytes]:
    """Sort key: the *smallest* key is the strongest intent."""
    return (-score, holder, intent_id)


@attrs.frozen
class LockTimers:
    hold_ms: int = 5_000  # wait at least this long after announcing, so conflicts surface
    exec_budget_ms: int = 130_000  # the longest an execution may take (fundchannel: 120 s)
    retransmit_ms: int = 2_000  # resend the intent to members whose promise is missing
    max_intents_per_holder: int = 8
    max_promises: int = 2_000
    # After an outcome "opened", refuse intents for the target this long: until gossip can show
    # the channel, which takes the funding's confirmations (6 blocks, about 1 h), its
    # announcement and the propagation to every member. 1 h let a duplicate through in the
    # value study (docs/VALUE.md); 6 h leaves margin for slow blocks.
    taken_ms: int = 6 * 3_600_000


@attrs.define
class OwnIntent:
    intent: Intent
    state: HolderState
    created_ms: int
    promised: set[bytes]
    last_sent_ms: int

    @property
    def deadline_ms(self) -> int:
        return self.created_ms + self.intent.lease_ms


@attrs.frozen
class Promise:
    intent_id: bytes
    holder: bytes
    score: int
    expires_ms: int
    executing: bool = False


class LockBook:
    """One member's view of the intent locks (see the module docstring)."""

    def __init__(
        self,
        me: bytes,
        members: Iterable[bytes],
        *,
        timers: LockTimers | None = None,
        now_ms: int = 0,
        restarted: bool = False,
        max_lease_ms: int = MAX_LEASE_MS,
        quiet_until_ms: int | None = None,
    ) -> None:
        self.me = me
        self.timers = timers or LockTimers()
        self.max_lease_ms = max_lease_ms
        self.members: frozenset[bytes] = frozenset(members) | {me}
        self.own: dict[bytes, OwnIntent] = {}
        self.promises: dict[bytes, Promise] = {}  # target -> promise
        self.epochs: dict[bytes, int] = {}  # target -> locks ended by an outcome
        self.taken: dict[bytes, int] = {}  # target -> until when it counts as just opened
        # The last word (Abort or Outcome) of our recently ended intents, to repeat to a member
        # that still holds a promise for one (its copy was lost).
        self.ended: dict[bytes, Message] = {}
        # After a restart no promises until every promise given before it has lapsed: by
        # default a whole lease from now, or ``quiet_until_ms`` when the caller knows when it
        # last ran (its last-alive mark plus the mark's interval plus the longest lease).
        if quiet_until_ms is not None:
            self.quiet_until_ms = quiet_until_ms
        else:
            self.quiet_until_ms = now_ms + max_lease_ms if restarted else now_ms
        self.ignored = 0

    # --- membership ---------------------------------------------------------------------------

    def set_members(self, members: Iterable[bytes]) -> None:
        self.members = frozenset(members) | {self.me}

    @property
    def quorum(self) -> int:
        return len(self.members) // 2 + 1

    # --- holder side ----------------------------------------------------------------------------

    def _fire(
        self,
        own: OwnIntent,
        event: HolderEvent,
        reason: str,
        outcome: IntentOutcome | None = None,
    ) -> list[Action]:
        entry = HOLDER_TABLE.get((own.state, event))
        if entry is None:
            self.ignored += 1
            return []
        own.state, kinds = entry
        intent = own.intent
        actions: list[Action] = []
        for kind in kinds:
            if kind is Execute:
                actions.append(Execute(intent))
            elif kind is Ended:
                actions.append(Ended(intent, own.state, reason))
            elif outcome is not None:
                actions.append(Broadcast(outcome))
            else:
                actions.append(Broadcast(IntentAbort(intent.intent_id, intent.target, reason)))
        if own.state is HolderState.EXECUTING:
            self.promises[intent.target] = attrs.evolve(
                self.promises[intent.target], executing=True
            )
        if own.state in TERMINAL:
            for action in actions:
                if isinstance(action, Broadcast):
                    self.ended[intent.intent_id] = action.message
            while len(self.ended) > ENDED_KEPT:
                del self.ended[next(iter(self.ended))]
            promise = self.promises.get(intent.target)
            if promise is not None and promise.intent_id == intent.intent_id:
                del self.promises[intent.target]
        return actions

    def propose(self, intent: Intent, now_ms: int) -> tuple[list[Action], str | None]:
        """Announce our ``intent``; returns the actions and None, or no actions and the reason
        it cannot be proposed (another intent holds our promise for the target)."""
        self._expire(now_ms)
        if intent.intent_id in self.own:
            return [], "duplicate-id"
        if intent.lease_ms - self.timers.exec_budget_ms <= self.timers.hold_ms:
            return [], "lease-too-short"
        if self.taken.get(intent.target, 0) > now_ms:
            return [], TARGET_TAKEN
        held = self.promises.get(intent.target)
        if held is not None:
            whose = "ours" if held.holder == self.me else held.holder.hex()
            return [], f"{HELD}: intent {held.intent_id.hex()} ({whose})"
        self.own[intent.intent_id] = OwnIntent(
            intent, HolderState.HOLDING, now_ms, {self.me}, now_ms
        )
        self.promises[intent.target] = Promise(
            intent.intent_id, self.me, intent.score, now_ms + intent.lease_ms
        )
        return [Broadcast(intent)], None

    def cancel(self, intent_id: bytes, reason: str = CANCELLED) -> list[Action]:
        own = self.own.get(intent_id)
        return [] if own is None else self._fire(own, HolderEvent.CANCEL, reason)

    def executed(
        self, intent_id: bytes, *, opened: bool, result: str, reason: str, now_ms: int
    ) -> list[Action]:
        """Report how an :class:`Execute` ended (a failed re-check is ``opened=False``)."""
        own = self.own.get(intent_id)
        if own is None:
            return []
        event = HolderEvent.SUCCEEDED if opened else HolderEvent.FAILED
        intent = own.intent
        outcome = IntentOutcome(intent.intent_id, intent.target, opened, result, reason)
        actions = self._fire(own, event, reason or ("opened" if opened else "failed"), outcome)
        if actions:
            self.epochs[intent.target] = self.epochs.get(intent.target, 0) + 1
            if opened:
                self.taken[intent.target] = now_ms + self.timers.taken_ms
        return actions

    def restore(self, intent: Intent, state: HolderState, created_ms: int) -> list[Action]:
        """Our intent as stored before a restart: HOLDING is released (its promises may be
        gone); EXECUTING is handed back (Execute) for the actor to find out what happened."""
        own = OwnIntent(intent, state, created_ms, {self.me}, created_ms)
        self.own[intent.intent_id] = own
        if state is HolderState.HOLDING:
            self.promises[intent.target] = Promise(
                intent.intent_id, self.me, intent.score, created_ms + intent.lease_ms
            )
            return self._fire(own, HolderEvent.CANCEL, RESTARTED)
        if state is HolderState.EXECUTING:
            self.promises[intent.target] = Promise(
                intent.intent_id, self.me, intent.score, created_ms + intent.lease_ms, True
            )
            return [Execute(intent)]
        return []

    # --- messages -------------------------------------------------------------------------------

    def receive(self, sender: bytes, message: Message, now_ms: int) -> list[Action]:
        """A verified message from member ``sender`` (hive key)."""
        self._expire(now_ms)
        if sender == self.me or sender not in self.members:
            self.ignored += 1
            return []
        if isinstance(message, Intent):
            return self._on_intent(sender, message, now_ms)
        if isinstance(message, IntentAck):
            own = self.own.get(message.intent_id)
            if own is None or own.intent.target != message.target:
                last = self.ended.get(message.intent_id)
                if last is not None:
                    return [Send(sender, last)]  # it still holds a promise for an ended intent
                self.ignored += 1
                return []
            own.promised.add(sender)
            return self._maybe_ready(own, now_ms)
        if isinstance(message, IntentNack):
            own = self.own.get(message.intent_id)
            if own is None or own.state is not HolderState.HOLDING:
                return []
            if message.reason == TARGET_TAKEN:
                return self._fire(own, HolderEvent.YIELD, TARGET_TAKEN)
            if message.held_by == ZERO_ID or message.held_by == own.intent.intent_id:
                return []
            other = strength(message.held_score, message.held_holder, message.held_by)
            if message.held_executing or other < self._strength(own):
                return self._fire(own, HolderEvent.YIELD, YIELDED)
            return []
        if isinstance(message, IntentAbort | IntentOutcome):
            promise = self.promises.get(message.target)
            if (
                promise is not None
                and promise.intent_id == message.intent_id
                and promise.holder == sender
            ):
                del self.promises[message.target]
            actions: list[Action] = []
            if isinstance(message, IntentOutcome):
                self.epochs[message.target] = self.epochs.get(message.target, 0) + 1
                if message.opened:
                    if len(self.taken) >= self.timers.max_promises:
                        del self.taken[min(self.taken, key=lambda t: self.taken[t])]
                    self.taken[message.target] = now_ms + self.timers.taken_ms
                    for own in list(self.own.values()):
                        if own.intent.target == message.target:
                            actions += self._fire(own, HolderEvent.YIELD, TARGET_TAKEN)
            return actions
        self.ignored += 1
        return []

    def _strength(self, own: OwnIntent) -> tuple[int, bytes, bytes]:
        return strength(own.intent.score, self.me, own.intent.intent_id)

    def _nack(self, to: bytes, intent: Intent, reason: str, held: Promise | None) -> Send:
        return Send(
            to,
            IntentNack(
                intent.intent_id,
                intent.target,
                reason,
                held.intent_id if held else ZERO_ID,
                held.holder if held else ZERO_KEY,
                held.score if held else 0,
                held.executing if held else False,
            ),
        )

    def _on_intent(self, sender: bytes, intent: Intent, now_ms: int) -> list[Action]:
        if now_ms < self.quiet_until_ms:
            return [self._nack(sender, intent, RESTARTING, None)]
        if intent.lease_ms > self.max_lease_ms:
            return [self._nack(sender, intent, BUSY, None)]
        if self.taken.get(intent.target, 0) > now_ms:
            return [self._nack(sender, intent, TARGET_TAKEN, None)]
        held = self.promises.get(intent.target)
        if held is not None and held.intent_id == intent.intent_id:
            return [Send(sender, IntentAck(intent.intent_id, intent.target))]
        actions: list[Action] = []
        if held is not None and held.holder == self.me:
            own = self.own[held.intent_id]
            theirs = strength(intent.score, sender, intent.intent_id)
            if own.state is HolderState.HOLDING and theirs < self._strength(own):
                actions += self._fire(own, HolderEvent.YIELD, YIELDED)
                held = None
        if held is not None:
            nack = self._nack(sender, intent, HELD, held)
            if held.holder == self.me:
                return [*actions, nack]
            # Remind the holder of our promise: if its intent ended and we missed the word,
            # it repeats its Abort or Outcome and the promise is released.
            return [*actions, nack, Send(held.holder, IntentAck(held.intent_id, intent.target))]
        live = sum(1 for p in self.promises.values() if p.holder == sender)
        if (
            live >= self.timers.max_intents_per_holder
            or len(self.promises) >= self.timers.max_promises
        ):
            return [*actions, self._nack(sender, intent, BUSY, None)]
        self.promises[intent.target] = Promise(
            intent.intent_id, sender, intent.score, now_ms + intent.lease_ms
        )
        return [*actions, Send(sender, IntentAck(intent.intent_id, intent.target))]

    # --- time -----------------------------------------------------------------------------------

    def _expire(self, now_ms: int) -> None:
        for target, promise in list(self.promises.items()):
            if promise.holder != self.me and promise.expires_ms <= now_ms:
                del self.promises[target]
        for target, until in list(self.taken.items()):
            if until <= now_ms:
                del self.taken[target]

    def _maybe_ready(self, own: OwnIntent, now_ms: int) -> list[Action]:
        if own.state is not HolderState.HOLDING:
            return []
        if now_ms + self.timers.exec_budget_ms > own.deadline_ms:
            return self._fire(own, HolderEvent.DEADLINE, DEADLINE)
        promised = len(own.promised & self.members)
        if promised >= self.quorum and now_ms >= own.created_ms + self.timers.hold_ms:
            return self._fire(own, HolderEvent.READY, "promised")
        return []

    def tick(self, now_ms: int) -> list[Action]:
        """Fire timers: expire promises, start or give up holding intents, retransmit."""
        self._expire(now_ms)
        actions: list[Action] = []
        for own in list(self.own.values()):
            if own.state is not HolderState.HOLDING:
                continue
            fired = self._maybe_ready(own, now_ms)
            actions += fired
            if not fired and now_ms - own.last_sent_ms >= self.timers.retransmit_ms:
                own.last_sent_ms = now_ms
                for member in sorted(self.members - own.promised):
                    actions.append(Send(member, own.intent))
        for intent_id in [i for i, o in self.own.items() if o.state in TERMINAL]:
            del self.own[intent_id]
        return actions

    def next_deadline(self, now_ms: int) -> int | None:
        """When, after ``now_ms``, :meth:`tick` next has something to do (None: nothing)."""
        times: list[int] = []
        for own in self.own.values():
            if own.state is HolderState.HOLDING:
                times += [
                    own.created_ms + self.timers.hold_ms,
                    own.last_sent_ms + self.timers.retransmit_ms,
                    own.deadline_ms - self.timers.exec_budget_ms,
                ]
        times += [p.expires_ms for p in self.promises.values() if p.holder != self.me]
        future = [t for t in times if t > now_ms]
        return min(future) if future else None

    def executing(self) -> list[Intent]:
        return [o.intent for o in self.own.values() if o.state is HolderState.EXECUTING]


__all__ = [
    "HOLDER_TABLE",
    "Broadcast",
    "Ended",
    "Execute",
    "HolderEvent",
    "HolderState",
    "LockBook",
    "LockTimers",
    "Promise",
    "Send",
    "strength",
]
