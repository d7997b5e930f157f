"""The planner actor and the fleet's channel opener.

**Planner.** Every ``interval_s`` (and on ``hive-plan``) it reads the public graph from the node
(``list_graph``), the fleet state map (each member's public channels and on-chain funds; our
own from the node itself), the saturation-ignored targets and the intent locks others hold,
computes the plan (:func:`hive.fleet.planner.plan`, in a worker thread: it is CPU work of about
a second on mainnet) and submits each open assigned to *this* member as an ``open-channel``
proposal to the decision engine. The engine decides (advisor: the operator approves;
autonomous: within the hard limits; oracle: the agent) and calls the opener.

**Opener** (:class:`FleetOpener`, the engine's executor for every ``open-channel`` proposal,
the planner's or the operator's): takes the intent lock for the target, re-checks at execution
time and fails closed (our own channels and pending opens to the target, the fleet state, our
on-chain funds, the lock still ours), tells CLBOSS to leave the target alone
(``clboss-unmanage TARGET open`` through ``node.set_open_ignored``), connects, opens at the
node's estimate within the engine's feerate limit, broadcasts the lock's outcome and tracks the
channel to confirmation, then gives the target back to CLBOSS unless saturation keeps it
ignored. Every step goes into the decision ledger under the proposal (``hive-why ID``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from hive.actors.gossip.fleetstate import FleetState
from hive.actors.governance.engine import Engine
from hive.actors.governance.executors import OpenChannelExecutor
from hive.actors.membership.roster import Membership
from hive.actors.opens.locks import LockRefused, Locks
from hive.actors.wire.transport import Transport
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.errors import HiveError, NodeError, TransientError
from hive.fleet.plantypes import Plan, PlanMember, PlannerConfig
from hive.governance.api import ExecutionFailed, Refused
from hive.governance.kinds import OPEN_CHANNEL
from hive.governance.proposal import Cost, Draft, ExecutionResult, Proposal
from hive.node.port import (
    ChannelState,
    ChannelStateChanged,
    NodeEvent,
    NodeId,
    NodePort,
    PublicChannel,
)
from hive.store import Store
from hive.store import governance as ledger_sql
from hive.store import intents as sql
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

ACTOR = "planner"
OPEN_REASON = "hive: the fleet is opening to it"
IGNORE_HOLDER = "open"  # our hold on a target while opening to it (hive/node/ignores.py)
LIVE_STATES = ("proposed", "executing", "opening")


@attrs.frozen
class PlannerSettings:
    enabled: bool = True  # submit the plan's opens (False: hive-plan only)
    warmup_s: float = 300.0  # first plan after this long, so members' states have arrived
    interval_s: float = 3600.0
    max_live: int = 2  # our planned opens proposed or opening at once
    ttl_s: float = 3600.0  # a proposal not decided within this expires
    planner: PlannerConfig = attrs.Factory(PlannerConfig)


class FleetOpener:
    """The engine's executor for ``open-channel``: lock, re-check, open, track (see module)."""

    def __init__(
        self,
        *,
        node: NodePort,
        locks: Locks,
        fleet: FleetState,
        store: Store,
        node_id: NodeId,
        now_ms: Callable[[], int],
        max_feerate_perkw: int,
    ) -> None:
        self.node = node
        self.locks = locks
        self.fleet = fleet
        self.store = store
        self.node_id = node_id
        self.now_ms = now_ms
        self.max_feerate_perkw = max_feerate_perkw
        self._plain = OpenChannelExecutor(node)
        # Signed bans (hive/actors/bans.py): the runtime sets this to Bans.is_banned.
        self.is_banned: Callable[[NodeId], bool] = lambda _peer: False

    async def _step(self, proposal: Proposal, entry: str, story: str, **detail: Any) -> None:
        now = self.now_ms()
        body = {"story": story, **detail}
        await self.store.run(
            "ledger",
            lambda c: ledger_sql.append_ledger(
                c, now, entry, ACTOR, body, proposal_id=proposal.id, kind=proposal.kind
            ),
        )

    async def _recheck(
        self, target: NodeId, amount_sat: int, intent_id: bytes, *, served_by: set[str] | None
    ) -> str | None:
        """Why the open must not happen now, or None. Fails closed: any doubt is a reason.
        ``served_by``: for the planner's own proposals, the members that had a channel to the
        target when it planned; another member's channel since then voids the plan's premise.
        (An operator may open beside other members on purpose: None skips that check.)"""
        if not self.locks.holds(intent_id):
            return "the intent lock is no longer ours"
        if self.is_banned(target):
            return f"{target} is banned by the fleet"
        for channel in await self.node.list_channels():
            if channel.peer_id == target and channel.state in (
                ChannelState.OPENING,
                ChannelState.NORMAL,
            ):
                return f"we already have a channel to {target} ({channel.state.value})"
        for member in self.fleet.statemap.members() if served_by is not None else ():
            entry = self.fleet.statemap.entry(member)
            if member == self.node_id or entry is None or member in (served_by or ()):
                continue
            if any(edge.peer.hex() == target for edge in entry.effective.topology):
                return f"member {member} already has a channel to {target}"
        funds = await self.node.onchain_balance_sat()
        if funds < amount_sat:
            return f"on-chain funds {funds} sat are below the {amount_sat} sat to open"
        return None

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        p = proposal.params
        target, amount = p["peer"], p["amount_sat"]
        score = proposal.evidence.get("score_milli_ppm", 0)
        score = score if isinstance(score, int) and not isinstance(score, bool) else 0
        # An explicit feerate in the proposal (checked by the engine against its limit) is
        # used as it is; otherwise the node's estimate, refused above the engine's limit.
        explicit = p.get("feerate_perkw")
        feerate = self.max_feerate_perkw if explicit is None else explicit
        calls: list[str] = []
        try:
            intent_id = await self.locks.acquire(target, amount, score)
        except LockRefused as exc:
            await self._step(proposal, "lock-refused", f"intent lock not taken: {exc.reason}")
            raise ExecutionFailed(f"intent lock not taken: {exc.reason}", calls=calls) from exc
        calls.append(f"intent lock {intent_id.hex()}")
        await self._step(
            proposal, "locked", "intent lock taken: a majority promised", intent_id=intent_id.hex()
        )
        budget_s = (self.locks.timers.exec_budget_ms - 5_000) / 1000
        unmanaged = False
        try:
            with trio.fail_after(budget_s):
                served = proposal.evidence.get("served_by")
                refusal = await self._recheck(
                    target,
                    amount,
                    intent_id,
                    served_by=set(served)
                    if proposal.proposer == ACTOR and isinstance(served, list)
                    else None,
                )
                if refusal is not None:
                    raise ExecutionFailed(f"re-check failed: {refusal}", calls=calls)
                await self._step(proposal, "rechecked", "re-checked at execution: still wanted")
                await self.node.set_open_ignored(target, True, OPEN_REASON, holder=IGNORE_HOLDER)
                unmanaged = True
                calls.append(f"clboss-unmanage {target} open")
                await self._save(target, proposal, "executing", "", unmanaged)
                await self.node.connect(target, p.get("host"), p.get("port"))
                calls.append(f"connect {target}")
                if explicit is None:
                    result = await self.node.open_channel(target, amount, max_feerate_perkw=feerate)
                else:
                    result = await self.node.open_channel(target, amount, feerate_perkw=feerate)
                calls.append(f"fundchannel {target} {amount} sat, feerate <= {feerate} perkw")
        except (ExecutionFailed, HiveError, trio.TooSlowError) as exc:
            reason = str(exc) if not isinstance(exc, trio.TooSlowError) else "timed out"
            opened = await self._opened_anyway(target) if isinstance(exc, TransientError) else None
            if opened is None:
                await self.locks.finish(intent_id, opened=False, result="", reason=reason[:64])
                if unmanaged:
                    await self._release(target)
                await self._save(target, proposal, "failed", "", False)
                await self._step(proposal, "open-failed", f"failed closed: {reason}")
                if isinstance(exc, ExecutionFailed):
                    raise ExecutionFailed(str(exc), calls=calls) from exc
                raise ExecutionFailed(reason, calls=calls) from exc
            await self.locks.finish(intent_id, opened=True, result=opened, reason="")
            await self._save(target, proposal, "opening", opened, unmanaged)
            return await self._plain.reconcile(proposal) or ExecutionResult(
                cost=proposal.cost, calls=tuple(calls), detail={"reconciled": True}
            )
        await self.locks.finish(intent_id, opened=True, result=result.txid, reason="")
        await self._save(target, proposal, "opening", result.txid, unmanaged)
        await self._step(
            proposal,
            "funded",
            f"funding transaction {result.txid} broadcast; waiting for confirmation",
            txid=result.txid,
        )
        return ExecutionResult(
            cost=Cost(onchain_fee_sat=result.onchain_fee_sat, capital_sat=result.amount_sat),
            calls=tuple(calls),
            detail={"txid": result.txid, "intent_id": intent_id.hex()},
        )

    async def _opened_anyway(self, target: NodeId) -> str | None:
        """After a transient failure: did the open happen after all? (The node's channels.)"""
        try:
            for channel in await self.node.list_channels():
                if channel.peer_id == target and channel.state is ChannelState.OPENING:
                    return channel.short_channel_id or "opening"
        except TransientError:
            return "unknown"  # cannot tell: count it as opened, so nobody opens a duplicate
        return None

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        return await self._plain.reconcile(proposal)

    async def _save(
        self, target: NodeId, proposal: Proposal, state: str, txid: str, unmanaged: bool
    ) -> None:
        row = sql.PlannedOpenRow(
            target,
            proposal.id,
            proposal.params["amount_sat"],
            state,
            txid,
            unmanaged,
            self.now_ms(),
        )
        await self.store.run("save_open", lambda c: sql.save_open(c, row))

    async def _release(self, target: NodeId) -> None:
        """Drop our hold on the target; CLBOSS gets it back once no other holder (saturation,
        a ban) keeps it ignored (hive/node/ignores.py)."""
        await self.node.set_open_ignored(
            target, False, "hive: the fleet's open is done", holder=IGNORE_HOLDER
        )


def _node_facts(channels: Sequence[PublicChannel]) -> dict[NodeId, tuple[int, int]]:
    """Per node: its public channels and their total capacity in sat (each channel once,
    though the graph lists both directions)."""
    seen: dict[NodeId, dict[str, int]] = {}
    for channel in channels:
        for end in (channel.source, channel.destination):
            seen.setdefault(end, {})[channel.short_channel_id] = channel.capacity_msat // 1000
    return {node: (len(scids), sum(scids.values())) for node, scids in seen.items()}


class Planner:
    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        membership: Membership,
        fleet: FleetState,
        engine: Engine,
        locks: Locks,
        store: Store,
        node_id: NodeId,
        now_ms: Callable[[], int],
        settings: PlannerSettings | None = None,
        run_inline: bool = False,
    ) -> None:
        self.node = node
        self.membership = membership
        self.fleet = fleet
        self.engine = engine
        self.locks = locks
        self.store = store
        self.node_id = node_id
        self.now_ms = now_ms
        self.settings = settings or PlannerSettings()
        self._inline = run_inline  # tests under autojump clocks: no worker thread
        self.inbox: Inbox[NodeEvent] = Inbox(256)
        transport.subscribe_events(self.inbox)
        self.last: Plan | None = None
        self.last_ms: int | None = None
        self.last_error: str | None = None
        self._served: dict[NodeId, list[NodeId]] = {}  # target -> members with a channel to it
        # target -> (public channels, capacity sat) in the graph of the last plan: evidence an
        # operator or an oracle can judge a proposed open by (examples/oracle_agent.py does).
        self._target_facts: dict[NodeId, tuple[int, int]] = {}
        # Signed bans (hive/actors/bans.py): the runtime sets this to Bans.banned_peers.
        self.banned_peers: Callable[[], list[NodeId]] = list
        # Contribution standings (hive/actors/reputation.py): the runtime sets this to the
        # rebalancer's Standings.leeches; a leech's channels weigh less in the plan.
        self.leeches: Callable[[], frozenset[NodeId]] = frozenset
        # Strategy gossip (hive/actors/strategy.py): peers of verified reports, a planner bonus.
        self.strategy_peers: Callable[[], list[NodeId]] = list
        self.opener = FleetOpener(
            node=node,
            locks=locks,
            fleet=fleet,
            store=store,
            node_id=node_id,
            now_ms=now_ms,
            max_feerate_perkw=engine.config.limits.max_open_feerate_perkw,
        )
        engine.register_kind(OPEN_CHANNEL, self.opener, replace=True)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._events)
            nursery.start_soon(self._loop)
            task_status.started()
            await self._catch_up()

    # --- planning -------------------------------------------------------------------------------

    async def _members(self) -> list[PlanMember]:
        rows = await self.store.run("planned_opens", sql.planned_opens)
        pending = frozenset(r.target for r in rows if r.state in LIVE_STATES)
        own = frozenset(c.peer_id for c in await self.node.list_channels() if not c.private)
        members = [
            PlanMember(
                self.node_id, own, await self.node.onchain_balance_sat(), pending=pending - own
            )
        ]
        stale = self.fleet.statemap.stale(self.now_ms())
        leeches = self.leeches()
        penalty = self.settings.planner.leech_penalty_msat
        if self.node_id in leeches:
            members[0] = attrs.evolve(members[0], penalty_msat=penalty)
        for member in self.fleet.statemap.members():
            entry = self.fleet.statemap.entry(member)
            if member == self.node_id or entry is None:
                continue
            state = entry.effective
            # A stale (silent) member keeps its channels in the plan, with no funds to open
            # more: the opener's re-check counts its channels too, so leaving them out made
            # the fleet re-plan and fail the same opens every interval while it was down.
            members.append(
                PlanMember(
                    member,
                    frozenset(edge.peer.hex() for edge in state.topology),
                    0 if member in stale else state.liquidity.onchain_sat,
                    penalty_msat=penalty if member in leeches else 0,
                )
            )
        return members

    def _locked(self) -> dict[NodeId, NodeId]:
        book = self.locks.book
        if book is None:
            return {}
        keys = self.locks.member_keys()
        return {
            target.hex(): keys.get(p.holder, p.holder.hex())
            for target, p in book.promises.items()
            if p.holder != book.me
        }

    async def compute(self) -> Plan:
        """A fresh plan from the node's graph and the fleet state (also ``hive-plan``)."""
        await self._settle()
        channels = await self.node.list_graph()
        self._target_facts = _node_facts(channels)
        members = await self._members()
        self._served = {}
        for member in members:
            for peer in member.peers:
                self._served.setdefault(peer, []).append(member.node_id)
        cfg = self.settings.planner
        saturated = list(self.fleet.ignore_reasons)
        banned = self.banned_peers()
        boosted = self.strategy_peers()
        locked = self._locked()

        def work() -> Plan:
            # numpy and scipy load on first use, not with the companion.
            from hive.fleet.plangraph import PlanGraph
            from hive.fleet.planner import plan

            graph = PlanGraph.from_channels(channels, amount_msat=cfg.amount_msat)
            return plan(
                graph,
                members,
                config=cfg,
                saturated=saturated,
                banned=banned,
                locked=locked,
                boosted=boosted,
            )

        # Pure CPU work on copies: safe to abandon when cancelled (shutdown stays prompt).
        result = (
            work() if self._inline else await trio.to_thread.run_sync(work, abandon_on_cancel=True)
        )
        self.last, self.last_ms, self.last_error = result, self.now_ms(), None
        return result

    async def _loop(self) -> None:
        await trio.sleep(self.settings.warmup_s)
        while True:
            try:
                result = await self.compute()
                if self.settings.enabled and self.membership.is_member:
                    await self.submit(result)
            except (NodeError, TransientError, Refused) as exc:
                # The node or the engine said no this time (an RPC error, a timeout, a refused
                # draft): say why in hive-status and try again next interval.
                self.last_error = str(exc)
                log.warning("planning failed: %s", exc)
            await trio.sleep(self.settings.interval_s)

    async def submit(self, result: Plan) -> list[str]:
        """Submit our opens of ``result`` not already in flight; return the proposal ids."""
        rows = {r.target: r for r in await self.store.run("planned_opens", sql.planned_opens)}
        live = sum(1 for r in rows.values() if r.state in LIVE_STATES)
        submitted: list[str] = []
        for planned in result.for_member(self.node_id):
            if live >= self.settings.max_live:
                break
            row = rows.get(planned.target)
            if row is not None and row.state in LIVE_STATES:
                continue
            draft = Draft(
                kind=OPEN_CHANNEL.name,
                params={"peer": planned.target, "amount_sat": planned.amount_sat},
                reason=(
                    f"planner: +{planned.routed_gain_ppm:.0f} ppm routed demand, "
                    f"+{planned.reach_gain_ppm:.0f} ppm reach; {planned.why}"
                ),
                cost=Cost(
                    capital_sat=planned.amount_sat,
                    onchain_fee_sat=self.settings.planner.open_fee_sat,
                ),
                proposer=ACTOR,
                evidence={
                    "score_milli_ppm": int(max(0.0, planned.score_ppm) * 1000),
                    "routed_gain_ppm": round(planned.routed_gain_ppm, 2),
                    "reach_gain_ppm": round(planned.reach_gain_ppm, 2),
                    "next_targets": [a.target for a in planned.next_targets],
                    "served_by": sorted(self._served.get(planned.target, [])),
                    "target_channels": self._target_facts.get(planned.target, (0, 0))[0],
                    "target_capacity_sat": self._target_facts.get(planned.target, (0, 0))[1],
                },
                target=planned.target,
                ttl_s=self.settings.ttl_s,
            )
            status = await self.engine.submit(draft)
            row = sql.PlannedOpenRow(
                planned.target, status.id, planned.amount_sat, "proposed", "", False, self.now_ms()
            )
            await self._save_row(row)
            submitted.append(status.id)
            live += 1
            log.info("proposed open to %s (%s): %s", planned.target, status.id, draft.reason)
        return submitted

    # --- confirmations --------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        """At start: settle rows whose proposals ended while we were away, and confirmations
        we missed (a channel already normal)."""
        channels = {c.peer_id: c for c in await self.node.list_channels()}
        for row in await self.store.run("planned_opens", sql.planned_opens):
            channel = channels.get(row.target)
            if row.state == "opening" and channel and channel.state is ChannelState.NORMAL:
                await self._confirmed(row, channel.short_channel_id)
        await self._settle()

    async def _settle(self) -> None:
        """Mark ``ended`` our proposals that ended without an open (expired undecided, rejected,
        refused by the limits): they are no longer in flight, so the next plan may propose the
        target again instead of counting it as opened and its slot as taken."""
        for row in await self.store.run("planned_opens", sql.planned_opens):
            if row.state == "proposed":
                status = await self.engine.lookup(row.proposal_id)
                if status is None or status.state.final:
                    await self._mark(row, "ended")

    async def _events(self) -> None:
        async for event in self.inbox.receive:
            if isinstance(event, ChannelStateChanged) and event.new_state is ChannelState.NORMAL:
                rows = await self.store.run("planned_opens", sql.planned_opens)
                for row in rows:
                    if row.target == event.peer_id and row.state == "opening":
                        await self._confirmed(row, event.short_channel_id)

    async def _save_row(self, row: sql.PlannedOpenRow) -> None:
        await self.store.run("save_open", lambda c: sql.save_open(c, row))

    async def _mark(self, row: sql.PlannedOpenRow, state: str) -> None:
        await self._save_row(attrs.evolve(row, state=state, updated_ms=self.now_ms()))

    async def _confirmed(self, row: sql.PlannedOpenRow, scid: str | None) -> None:
        now = self.now_ms()
        body = {"story": f"channel {scid} to {row.target} confirmed", "short_channel_id": scid}
        await self.store.run(
            "ledger",
            lambda c: ledger_sql.append_ledger(
                c, now, "confirmed", ACTOR, body, proposal_id=row.proposal_id, kind="open-channel"
            ),
        )
        if row.unmanaged:  # our hold only: saturation's or a ban's stays (hive/node/ignores.py)
            await self.node.set_open_ignored(
                row.target, False, "hive: the fleet's open is done", holder=IGNORE_HOLDER
            )
        await self._mark(attrs.evolve(row, unmanaged=False), "confirmed")
        log.info("open to %s confirmed as %s", row.target, scid)

    # --- hive-plan ------------------------------------------------------------------------------

    async def open_command(self, raw: Mapping[str, Any]) -> JsonDict:
        """``hive-open peer amount_sat [host] [port]``: an operator's open, as a proposal: the
        engine decides, and the opener takes the fleet's intent lock like any other."""
        params = Params("hive-open", raw, ("peer", "amount_sat", "host", "port"))
        peer = params.node_id("peer", required=True)
        assert peer is not None
        amount = params.integer("amount_sat", 0, low=20_000, high=21_000_000 * 100_000_000)
        host = params.text("host", max_len=255)
        extra: dict[str, Any] = {} if host is None else {"host": host}
        if host is not None and "port" in params.values:
            extra["port"] = params.integer("port", 9735, low=1, high=65535)
        draft = Draft(
            kind=OPEN_CHANNEL.name,
            params={"peer": peer, "amount_sat": amount, **extra},
            reason="operator: hive-open",
            cost=Cost(capital_sat=amount, onchain_fee_sat=self.settings.planner.open_fee_sat),
            proposer="operator",
            target=peer,
        )
        try:
            status = await self.engine.submit(draft)
        except Refused as exc:
            raise CommandError(CommandError.REFUSED, f"hive-open: {exc.message}") from exc
        return status.to_json()

    async def command(self, raw: Mapping[str, Any]) -> JsonDict:
        """``hive-plan [member]``: a fresh plan, our proposals in flight, the locks."""
        member = Params("hive-plan", raw, ("member",)).node_id("member", required=False)
        try:
            result = await self.compute()
        except TransientError as exc:
            raise CommandError(CommandError.NODE_ERROR, f"hive-plan: {exc}") from exc
        except NodeError as exc:
            raise CommandError(CommandError.NODE_ERROR, f"hive-plan: {exc}") from exc
        rows = await self.store.run("planned_opens", sql.planned_opens)
        return {
            "member": member or "all",
            "plan": result.to_json(member),
            "ours_in_flight": [
                {
                    "target": r.target,
                    "proposal_id": r.proposal_id,
                    "amount_sat": r.amount_sat,
                    "state": r.state,
                    "txid": r.txid,
                }
                for r in rows
            ],
            "locks": self.locks.status(),
            "recent_intents": await self.locks.history(10),
        }

    def status(self) -> JsonDict:
        last = self.last
        return {
            "enabled": self.settings.enabled,
            "last_plan_ms": self.last_ms,
            "last_error": self.last_error,
            "opens_planned": None if last is None else len(last.opens),
            "ours_planned": None if last is None else len(last.for_member(self.node_id)),
            "routed_demand_ppm": None if last is None else round(last.routed_after_ppm, 1),
            "reach_ppm": None if last is None else round(last.reach_after_ppm, 1),
            "why_nothing": None if last is None else last.why_nothing(),
        }
