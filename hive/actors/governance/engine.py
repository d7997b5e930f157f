"""The decision engine actor: every action passes through here before it touches the node.

It implements :class:`hive.governance.api.EngineApi` (read that module's docstring for how
producers, deciders and subscribers use it). What it does:

* records each submitted proposal (``proposals`` row + ``proposed`` ledger entry, one
  transaction) and routes it by the governance mode (:func:`hive.governance.modes.route`):
  advisor waits for the operator, autonomous tries to execute at once, oracle asks the
  :class:`~hive.actors.governance.deciders.DeciderPanel` (timeout -> DENY);
* executes approved proposals through the kind's :class:`~hive.governance.api.Executor`
  (which calls the node port), at most ``max_concurrent`` at once, never while paused: budget is
  reserved first (:func:`hive.store.governance.reserve`, the hard limits checked in the same
  transaction) and settled with the real cost after;
* holds a proposal a limit (or the kill switch) stops, naming the limit, and tries it again
  every ``retry_s``, when a settlement frees budget and on resume, until it expires;
* expires undecided proposals at their ``expires_ms``;
* at every (re)start, reconciles executions left ``executing`` by a crash from the node's own
  records (:meth:`Executor.reconcile`) before executing anything new;
* publishes an :class:`~hive.governance.events.EngineEvent` per step to its subscribers.

Every state change is one SQLite transaction guarded by the expected previous state, taken
under one lock, so concurrent approvals, expiry and oracle answers cannot both win.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from hive.actors.governance.deciders import DeciderPanel
from hive.actors.governance.hub import EventHub
from hive.config import DecisionConfig, Governance
from hive.errors import NodeError, TransientError
from hive.governance.api import ExecutionFailed, Executor, Refused
from hive.governance.events import EngineEvent, EventKind
from hive.governance.kinds import KindRegistry, KindSpec
from hive.governance.limits import DESCRIPTIONS, OPERATOR_DECIDES
from hive.governance.modes import Route, Step, is_expired, route, step
from hive.governance.packet import build_packet
from hive.governance.proposal import (
    Cost,
    Decision,
    Draft,
    ExecutionResult,
    Outcome,
    Proposal,
    ProposalInvalid,
    ProposalState,
    ProposalStatus,
    check_draft_shape,
)
from hive.node.port import NodePort
from hive.store import Store
from hive.store import governance as sql
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
S = ProposalState
RECENT_KEPT = 256
MAX_OPEN = 1_000


class Engine:
    def __init__(
        self,
        *,
        node: NodePort,
        store: Store,
        config: DecisionConfig,
        mode: Governance,
        node_id: str,
        alias: str,
        now_ms: Callable[[], int],
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.store = store
        self.config = config
        self.mode = mode
        self.node_id = node_id
        self.alias = alias
        self.now_ms = now_ms
        self._rng = rng or random.Random()
        self.kinds = KindRegistry()
        self._executors: dict[str, Executor] = {}
        self._deciders = DeciderPanel(now_ms=now_ms)
        self._open: dict[str, ProposalStatus] = {}
        self._recent: collections.OrderedDict[str, ProposalStatus] = collections.OrderedDict()
        self._finals: dict[str, trio.Event] = {}
        self._busy: set[str] = set()  # ids with an execution or an oracle question in flight
        self._lock = trio.Lock()
        self.inbox: Inbox[str] = Inbox(512)  # ids to look at again
        self.hub: EventHub[EngineEvent] = EventHub()
        self._paused: JsonDict | None = None
        self._limiter = trio.CapacityLimiter(config.max_concurrent)
        self._wake = trio.Event()
        self.counters: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------------------------------
    # EngineApi: registration, reading

    @property
    def deciders(self) -> DeciderPanel:
        return self._deciders

    @property
    def paused(self) -> bool:
        return self._paused is not None

    @property
    def pause_info(self) -> JsonDict | None:
        return None if self._paused is None else dict(self._paused)

    def register_kind(self, spec: KindSpec, executor: Executor, *, replace: bool = False) -> None:
        self.kinds.register(spec, replace=replace)
        self._executors[spec.name] = executor

    def pending(self) -> list[ProposalStatus]:
        return sorted(self._open.values(), key=lambda s: (s.proposal.created_ms, s.id))

    def recent(self) -> list[ProposalStatus]:
        """Proposals that became final in this run, most recent last (at most 256)."""
        return list(self._recent.values())

    def get(self, proposal_id: str) -> ProposalStatus | None:
        return self._open.get(proposal_id) or self._recent.get(proposal_id)

    async def lookup(self, proposal_id: str) -> ProposalStatus | None:
        """Like :meth:`get`, falling back to the store for older proposals."""
        found = self.get(proposal_id)
        if found is None:
            found = await self.store.run("proposal", lambda c: sql.load_status(c, proposal_id))
        return found

    async def wait_final(self, proposal_id: str) -> ProposalStatus:
        status = self.get(proposal_id)
        if status is None:
            status = await self.lookup(proposal_id)
            if status is None:
                raise Refused("unknown-id", f"no proposal {proposal_id}")
            return status  # not open in this run: final
        if status.state.final:
            return status
        await self._finals.setdefault(proposal_id, trio.Event()).wait()
        final = self.get(proposal_id)
        assert final is not None
        return final

    @asynccontextmanager
    async def subscribe(
        self, capacity: int = 64
    ) -> AsyncIterator[trio.MemoryReceiveChannel[EngineEvent]]:
        async with self.hub.subscribe(capacity) as receive:
            yield receive

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def load(self) -> None:
        """Read open proposals and the kill switch from the store; note the limits in effect."""
        now = self.now_ms()
        opened = await self.store.run("open_proposals", sql.open_proposals)
        self._open = {s.id: s for s in opened}
        self._paused = await self.store.run(
            "paused", lambda c: sql.get_json_meta(c, sql.META_PAUSED)
        )
        limits = self.config.limits.to_json()
        await self.store.run("note_limits", lambda c: sql.note_limits(c, limits, now))
        if self._paused is not None:
            log.warning("governance is paused (%s): nothing executes", self._paused["reason"])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            await self._reconcile_all()
            nursery.start_soon(self._expiry_loop)
            nursery.start_soon(self._retry_loop)
            for status in self.pending():
                self._kick(status.id)
            async for proposal_id in self.inbox.receive:
                self._dispatch(nursery, proposal_id)

    def _kick(self, proposal_id: str) -> None:
        try:
            self.inbox.send_nowait(proposal_id)
        except trio.WouldBlock:
            # The retry loop looks at every open proposal anyway; nothing is lost.
            self.counters["kick-dropped"] += 1

    def _dispatch(self, nursery: trio.Nursery, proposal_id: str) -> None:
        status = self._open.get(proposal_id)
        if status is None or proposal_id in self._busy:
            return
        spec = self.kinds.get(status.proposal.kind)
        if (
            status.state is S.PENDING
            and spec is not None
            and spec.operator_decides
            and route(self.mode) is not Route.WAIT
        ):
            # Neither autonomous mode nor an oracle decides this kind: say so and wait.
            if status.held_by != OPERATOR_DECIDES:
                nursery.start_soon(self._hold, status, OPERATOR_DECIDES)
            return
        if status.state is S.APPROVED or (
            status.state is S.PENDING and route(self.mode) is Route.TRY
        ):
            self._busy.add(proposal_id)
            nursery.start_soon(self._execute, proposal_id)
        elif (
            status.state is S.PENDING
            and route(self.mode) is Route.ASK
            and status.decision is None
            and status.held_by is None
        ):
            self._busy.add(proposal_id)
            nursery.start_soon(self._ask, proposal_id)

    # ------------------------------------------------------------------------------------------
    # EngineApi: submitting and deciding

    async def submit(self, draft: Draft) -> ProposalStatus:
        spec = self.kinds.get(draft.kind) if isinstance(draft.kind, str) else None
        if spec is None:
            raise Refused(
                "unknown-kind",
                f"unknown kind {draft.kind!r}; known: {', '.join(self.kinds.names())}",
            )
        if draft.kind not in self._executors:
            raise Refused("no-executor", f"no executor is registered for {draft.kind}")
        try:
            check_draft_shape(draft)
            params = spec.validate(draft.params)
        except ProposalInvalid as exc:
            self.counters["submit-invalid"] += 1
            raise Refused("invalid", str(exc)) from None
        if len(self._open) >= MAX_OPEN:
            raise Refused("invalid", f"{MAX_OPEN} proposals are already open; decide some first")
        now = self.now_ms()
        ttl_s = self.config.proposal_ttl_s
        if draft.ttl_s is not None:
            ttl_s = min(ttl_s, draft.ttl_s)
        proposal = Proposal(
            id="p-" + self._rng.randbytes(5).hex(),
            kind=draft.kind,
            params=params,
            reason=draft.reason,
            evidence=dict(draft.evidence),
            cost=draft.cost,
            expected_value_sat=draft.expected_value_sat,
            confidence=float(draft.confidence),
            proposer=draft.proposer,
            target=draft.target,
            created_ms=now,
            expires_ms=now + int(ttl_s * 1000),
        )
        status = ProposalStatus(proposal, S.PENDING)
        async with self._lock:
            await self.store.run("insert_proposal", lambda c: sql.insert_proposal(c, status, now))
            self._open[proposal.id] = status
        self.counters["submitted"] += 1
        log.info(
            "proposal %s: %s (%s) by %s",
            proposal.id,
            proposal.kind,
            proposal.reason,
            proposal.proposer,
        )
        self._publish(EventKind.NEW, status)
        self._wake.set()
        self._kick(proposal.id)
        return status

    async def approve(
        self, proposal_id: str, *, by: str = "operator", reason: str = ""
    ) -> ProposalStatus:
        decision = Decision(True, by, reason or f"approved by {by}", self.now_ms())
        status = await self._decide(proposal_id, decision, allowed=(S.PENDING,))
        self._kick(proposal_id)
        return status

    async def approve_all(self, *, by: str = "operator", reason: str = "") -> list[ProposalStatus]:
        done = []
        for status in self.pending():
            if status.state is S.PENDING:
                try:
                    done.append(await self.approve(status.id, by=by, reason=reason))
                except Refused:
                    continue  # decided or expired meanwhile
        return done

    async def reject(
        self, proposal_id: str, *, by: str = "operator", reason: str = ""
    ) -> ProposalStatus:
        decision = Decision(False, by, reason or f"rejected by {by}", self.now_ms())
        return await self._decide(proposal_id, decision, allowed=(S.PENDING, S.APPROVED))

    async def _decide(
        self, proposal_id: str, decision: Decision, *, allowed: tuple[ProposalState, ...]
    ) -> ProposalStatus:
        async with self._lock:
            status = self._open.get(proposal_id)
            if status is None:
                old = await self.lookup(proposal_id)
                if old is None:
                    raise Refused("unknown-id", f"no proposal {proposal_id}")
                raise Refused("not-pending", f"{proposal_id} is already {old.state.value}")
            if is_expired(status.state, status.proposal.expires_ms, decision.at_ms):
                await self._expire_locked(status)
                raise Refused("expired", f"{proposal_id} expired before it was decided")
            if status.state not in allowed:
                raise Refused("not-pending", f"{proposal_id} is {status.state.value}")
            event = Step.APPROVE if decision.approve else Step.REJECT
            new = attrs.evolve(
                status, state=step(status.state, event), decision=decision, held_by=None
            )
            await self._store_transition(
                new, status.state, "decided", decision.by, decision.to_json()
            )
        self._publish(EventKind.DECIDED, new)
        return new

    async def record_measurement(self, proposal_id: str, measured: JsonDict, *, by: str) -> None:
        """Append a measured result of a finished action to the ledger (e.g. the fees a new
        channel earned in its first week); ``hive-why`` shows it. Raises Refused(unknown-id)."""
        status = await self.lookup(proposal_id)
        if status is None:
            raise Refused("unknown-id", f"no proposal {proposal_id}")
        kind = status.proposal.kind
        now = self.now_ms()
        await self.store.run(
            "measured",
            lambda c: sql.append_ledger(
                c, now, "measured", by, measured, proposal_id=proposal_id, kind=kind
            ),
        )

    async def pause(self, reason: str, *, by: str = "operator") -> None:
        now = self.now_ms()
        why = reason or "paused by the operator"
        info: JsonDict = {"reason": why, "by": by, "at_ms": now}
        await self.store.run("pause", lambda c: sql.set_paused(c, info, by, now))
        self._paused = info
        log.warning("governance paused by %s: %s", by, why)
        self._publish(EventKind.PAUSED, None, why)

    async def resume(self, *, by: str = "operator") -> None:
        now = self.now_ms()
        await self.store.run("resume", lambda c: sql.set_paused(c, None, by, now))
        self._paused = None
        log.warning("governance resumed by %s", by)
        self._publish(EventKind.RESUMED, None)
        for status in self.pending():
            self._kick(status.id)

    # ------------------------------------------------------------------------------------------
    # Oracle

    async def _ask(self, proposal_id: str) -> None:
        try:
            status = self._open.get(proposal_id)
            if status is None:
                return
            now = self.now_ms()
            timeout = self.config.oracle_timeout_s
            budget = await self.budget_json()
            packet = build_packet(
                status,
                node_id=self.node_id,
                alias=self.alias,
                mode=self.mode.value,
                limits=self.config.limits.to_json(),
                budget=budget,
                sent_ms=now,
                deadline_ms=now + int(timeout * 1000),
            )
            decision = await self.deciders.ask(packet, timeout)
            try:
                await self._decide(proposal_id, decision, allowed=(S.PENDING,))
            except Refused as exc:
                log.info("oracle answer for %s came too late: %s", proposal_id, exc)
        finally:
            self._busy.discard(proposal_id)
        self._kick(proposal_id)

    # ------------------------------------------------------------------------------------------
    # Execution

    async def _execute(self, proposal_id: str) -> None:
        try:
            async with self._limiter:
                executing = await self._reserve(proposal_id)
                if executing is not None:
                    await self._perform(executing)
        finally:
            self._busy.discard(proposal_id)

    async def _reserve(self, proposal_id: str) -> ProposalStatus | None:
        """Reserve budget and move to EXECUTING; None when held, expired or changed."""
        status = self._open.get(proposal_id)
        if status is None or status.state not in (S.PENDING, S.APPROVED):
            return None
        if self._paused is not None:
            await self._hold(status, "paused")
            return None
        spec = self.kinds.get(status.proposal.kind)
        assert spec is not None
        balance: int | None = None
        if spec.spends_onchain:
            try:
                balance = await self.node.onchain_balance_sat()
            except TransientError as exc:
                log.warning("cannot read the on-chain balance for %s: %s", proposal_id, exc)
                await self._hold(status, "node-unavailable")
                return None
        async with self._lock:
            status = self._open.get(proposal_id)
            if status is None or status.state not in (S.PENDING, S.APPROVED):
                return None
            now = self.now_ms()
            if is_expired(status.state, status.proposal.expires_ms, now):
                await self._expire_locked(status)
                return None
            decided = None
            decision = status.decision
            if status.state is S.PENDING:  # autonomous: this step is the decision
                decided = Decision(True, "autonomous", "within every hard limit", now)
                decision = decided
            executing = attrs.evolve(
                status, state=step(status.state, Step.RESERVE), decision=decision, held_by=None
            )
            limits = self.config.limits
            before = status.state
            refused = await self.store.run(
                "reserve",
                lambda c: sql.reserve(
                    c, executing, before, limits, spec, balance, "engine", now, decided=decided
                ),
            )
            if refused is None:
                self._open[proposal_id] = executing
        if refused == "state-changed":
            return None
        if refused is not None:
            await self._hold(status, refused)
            return None
        self.counters["executions"] += 1
        if decided is not None:
            self._publish(EventKind.DECIDED, executing)
        self._publish(EventKind.EXECUTING, executing)
        return executing

    async def _perform(self, status: ProposalStatus) -> None:
        proposal = status.proposal
        executor = self._executors[proposal.kind]
        log.info("executing %s (%s)", proposal.id, proposal.kind)
        try:
            result = await executor.execute(proposal)
        except ExecutionFailed as exc:
            await self._settle(status, None, str(exc), exc.cost, exc.calls)
        except NodeError as exc:
            await self._settle(status, None, f"{type(exc).__name__}: {exc}", Cost(), ())
        except TransientError as exc:
            # Did it happen? Only the node's records can tell.
            log.warning("execution of %s interrupted (%s); reconciling", proposal.id, exc)
            await self._reconcile_one(status, f"interrupted: {exc}")
        else:
            await self._settle(status, result, None, result.cost, result.calls)

    async def _settle(
        self,
        status: ProposalStatus,
        result: ExecutionResult | None,
        error: str | None,
        cost: Cost,
        calls: tuple[str, ...],
        actor: str = "engine",
    ) -> None:
        now = self.now_ms()
        outcome = Outcome(
            ok=result is not None,
            cost=cost,
            error=error,
            calls=calls,
            detail={} if result is None else dict(result.detail),
            at_ms=now,
        )
        final = attrs.evolve(
            status,
            state=step(status.state, Step.SUCCEED if result is not None else Step.FAIL),
            outcome=outcome,
        )
        over = [
            c
            for c in ("onchain_fee_sat", "capital_sat", "routing_fee_sat")
            if getattr(cost, c) > getattr(status.proposal.cost, c)
        ]
        detail = {**outcome.to_json(), "overrun": over}
        if over:
            log.warning("%s cost more than it reserved in %s", status.id, ", ".join(over))
        async with self._lock:
            settled = await self.store.run(
                "settle", lambda c: sql.settle(c, final, cost, actor, detail, now)
            )
            if settled:
                self._finish(final)
        if settled:
            self.counters["succeeded" if outcome.ok else "failed"] += 1
            log.info("%s %s%s", status.id, final.state.value, f": {error}" if error else "")
            self._publish(EventKind.OUTCOME, final)
            self._kick_held()

    async def _reconcile_one(
        self, status: ProposalStatus, why: str, *, transient_raises: bool = False
    ) -> bool:
        """Settle an execution whose outcome is unknown from the node's records; False when the
        node cannot tell yet (the reservation stays, tried again every ``retry_s`` and at the
        next start). With ``transient_raises`` a TransientError propagates instead."""
        executor = self._executors.get(status.proposal.kind)
        if executor is None:
            log.warning(
                "no executor for %s to reconcile %s; reservation kept",
                status.proposal.kind,
                status.id,
            )
            return False
        try:
            result = await executor.reconcile(status.proposal)
        except TransientError as exc:
            if transient_raises:
                raise
            log.warning("cannot reconcile %s yet (%s); reservation kept", status.id, exc)
            return False
        if result is None:
            error = f"did not take effect ({why})"
            await self._settle(status, None, error, Cost(), (), "reconcile")
        else:
            await self._settle(status, result, None, result.cost, result.calls, "reconcile")
        self.counters["reconciled"] += 1
        return True

    async def _reconcile_all(self) -> None:
        """At (re)start: every execution left open by a crash is settled from the node's records
        before anything new executes. A node that does not answer fails the actor transiently
        (the supervisor restarts it with backoff)."""
        for status in self.pending():
            if status.state is S.EXECUTING and status.id not in self._busy:
                await self._reconcile_one(status, "found after a restart", transient_raises=True)

    # ------------------------------------------------------------------------------------------
    # Holding, expiry, retries

    async def _hold(self, status: ProposalStatus, limit: str) -> None:
        if status.held_by == limit:
            return
        async with self._lock:
            current = self._open.get(status.id)
            if current is None or current.state not in (S.PENDING, S.APPROVED):
                return
            if current.held_by == limit:
                return  # another task held it meanwhile: one "held" entry per hold
            held = attrs.evolve(current, held_by=limit)
            detail = {"limit": limit, "means": DESCRIPTIONS.get(limit, limit)}
            await self._store_transition(held, current.state, "held", "engine", detail)
        self.counters[f"held:{limit}"] += 1
        log.info("%s held by %s", status.id, limit)
        self._publish(EventKind.HELD, held, limit)

    def _kick_held(self) -> None:
        for status in self.pending():
            if status.held_by is not None:
                self._kick(status.id)

    async def _retry_loop(self) -> None:
        while True:
            await trio.sleep(self.config.retry_s)
            self._kick_held()
            for status in self.pending():
                if status.state is S.EXECUTING and status.id not in self._busy:
                    self._busy.add(status.id)
                    try:
                        await self._reconcile_one(status, "left executing")
                    finally:
                        self._busy.discard(status.id)

    async def _expiry_loop(self) -> None:
        while True:
            now = self.now_ms()
            waiting = [s for s in self._open.values() if s.state in (S.PENDING, S.APPROVED)]
            for status in waiting:
                if is_expired(status.state, status.proposal.expires_ms, now):
                    async with self._lock:
                        current = self._open.get(status.id)
                        if current is not None and is_expired(
                            current.state, current.proposal.expires_ms, now
                        ):
                            await self._expire_locked(current)
            upcoming = [s.proposal.expires_ms for s in waiting if s.proposal.expires_ms > now]
            delay = min(60.0, (min(upcoming) - now) / 1000) if upcoming else 60.0
            self._wake = trio.Event()
            with trio.move_on_after(max(delay, 0.001)):
                await self._wake.wait()

    async def _expire_locked(self, status: ProposalStatus) -> None:
        """Expire ``status``; the caller holds the lock."""
        expired = attrs.evolve(status, state=step(status.state, Step.EXPIRE))
        detail = {"expires_ms": status.proposal.expires_ms, "held_by": status.held_by}
        if await self._store_transition(expired, status.state, "expired", "expiry", detail):
            self.counters["expired"] += 1
            self._publish(EventKind.EXPIRED, expired)

    # ------------------------------------------------------------------------------------------
    # Plumbing

    async def _store_transition(
        self, new: ProposalStatus, expect: ProposalState, entry: str, actor: str, detail: JsonDict
    ) -> bool:
        now = self.now_ms()
        done = await self.store.run(
            "transition", lambda c: sql.transition(c, new, expect, entry, actor, detail, now)
        )
        if done:
            if new.state.final:
                self._finish(new)
            else:
                self._open[new.id] = new
        return bool(done)

    def _finish(self, final: ProposalStatus) -> None:
        self._open.pop(final.id, None)
        self._recent[final.id] = final
        while len(self._recent) > RECENT_KEPT:
            self._recent.popitem(last=False)
        event = self._finals.pop(final.id, None)
        if event is not None:
            event.set()

    def _publish(self, kind: EventKind, status: ProposalStatus | None, detail: str = "") -> None:
        self.hub.publish(EngineEvent(kind, self.now_ms(), status, detail))

    # ------------------------------------------------------------------------------------------
    # Views for commands and hive-status

    async def budget_json(self) -> JsonDict:
        now = self.now_ms()
        used = await self.store.run("usage", lambda c: sql.current_usage(c, now))
        return used.to_json(self.config.limits)

    def status(self) -> JsonDict:
        return {
            "mode": self.mode.value,
            "paused": self.pause_info,
            "open": len(self._open),
            "pending": sum(1 for s in self._open.values() if s.state is S.PENDING),
            "executing": sum(1 for s in self._open.values() if s.state is S.EXECUTING),
            "counters": dict(sorted(self.counters.items())),
            "deciders": self.deciders.status(),
            "events": {
                "published": self.hub.published,
                "dropped": self.hub.dropped,
                "subscribers": self.hub.subscribers,
            },
        }
