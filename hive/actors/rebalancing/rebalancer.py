"""The rebalancer actor: forecast, plan, justify, execute and account circular rebalances.

Every ``check_s`` (see docs/REBALANCING.md for the whole story):

1. **Forecast.** Settled forwards (node events) feed a :class:`~hive.fleet.forecast.FlowEstimator`
   per channel; each usable channel gets a forecast (drain and refill rates, time to its floor,
   confidence) and a surplus/deficit per direction, which the gossip actor publishes in our
   state record (:meth:`balances`).
2. **Plan.** For each channel forecast to run dry within the horizon (most urgent first; our
   channels to leech members last, see docs/REPUTATION.md), the source channels that can spare
   the amount are ranked (channels to members first, leech members last, members that publish
   a surplus first, see :func:`hive.fleet.rebalance.sources`) and the node's pathfinder is
   asked for a circular route out through each and back through the needy channel, with every
   fleet channel marked free and the fee bounded by what the gate allows; the cheapest route
   not crossing a leech wins (one crossing a leech only when no other was found).
3. **Justify.** :func:`hive.fleet.rebalance.justify`: weighted expected income over the horizon
   against the route's cost, the ppm cap and the rolling budget. Both figures are kept with
   the decision.
4. **Decide.** ``decide`` (the decision engine when it is wired; otherwise governance:
   autonomous executes within the caps, advisor and oracle only record the plan).
5. **Execute.** The rebalance is stored as ``paying`` under a fresh label *before*
   ``node.pay_route(route, label=...)``; the outcome closes it. A start finds every ``paying``
   row and asks the node (``payment_status``) what became of it: complete is accounted,
   failed or never sent is closed as failed, pending is watched until it resolves. Nothing is
   ever paid twice. A failure is recorded with the failing node and reason, and the needy
   channel backs off (doubling from ``backoff_s``).
6. **Account.** Each settled rebalance stores who provided the liquidity (every member that
   forwarded, with the amount) and who consumed it (us) in ``liquidity_shares``; our own
   totals (consumed by our moves; provided by our zero-fee forwards on fleet channels) go into
   our state record.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from hive.actors.membership.roster import Membership
from hive.actors.rebalancing.feepolicy import FeePolicyActor
from hive.actors.reputation import Standings
from hive.actors.wire.transport import Transport
from hive.config import Governance, RebalanceConfig
from hive.errors import NodeError, PaymentFailed, RouteNotFound
from hive.fleet import rebalance as rules
from hive.fleet.forecast import ChannelForecast, FlowEstimator
from hive.fleet.statemap import StateMap
from hive.governance.api import EngineApi, ExecutionFailed, Refused
from hive.governance.kinds import REBALANCE
from hive.governance.proposal import (
    MAX_REASON_CHARS,
    Cost,
    Draft,
    ExecutionResult,
    msat_to_sat_up,
)
from hive.governance.proposal import Proposal as GovProposal
from hive.node.port import (
    ChannelView,
    Forwarded,
    NodeEvent,
    NodeId,
    NodePort,
    PaymentState,
    Route,
)
from hive.protocol.gossip.state import MAX_NOTES, RebalanceTotals, ReputationNote
from hive.store import Store
from hive.store import rebalance as rb
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

META_FLOWS = "rebalance-flows"
META_TOTALS = "rebalance-totals"
SURPLUS_NOTE = "surplus-contradicted"
MAX_DECISIONS = 200


@attrs.frozen
class Plan:
    """A rebalance as planned: the move, the route found and both figures of the gate."""

    need_scid: str
    in_peer: NodeId
    out_peer: NodeId
    amount_msat: int
    route: Route
    justification: rules.Justification

    def to_json(self) -> dict[str, Any]:
        return {
            "need_scid": self.need_scid,
            "in_peer": self.in_peer,
            "out_peer": self.out_peer,
            "amount_msat": self.amount_msat,
            "route": [h.node_id for h in self.route.hops],
            **self.justification.to_json(),
        }


Decide = Callable[[Plan], Awaitable[tuple[bool, str]]]


@attrs.define
class Totals:
    provided_msat: int = 0
    consumed_msat: int = 0
    fees_paid_msat: int = 0
    rebalances: int = 0

    def record(self) -> RebalanceTotals:
        cap = (1 << 64) - 1
        return RebalanceTotals(
            provided_msat=min(self.provided_msat, cap),
            consumed_msat=min(self.consumed_msat, cap),
            fees_paid_msat=min(self.fees_paid_msat, cap),
            rebalances=min(self.rebalances, (1 << 32) - 1),
        )


class Rebalancer:
    def __init__(
        self,
        *,
        node: NodePort,
        transport: Transport,
        membership: Membership,
        statemap: StateMap,
        store: Store,
        node_id: NodeId,
        now_ms: Callable[[], int],
        governance: Governance = Governance.ADVISOR,
        config: RebalanceConfig | None = None,
        decide: Decide | None = None,
        engine: EngineApi | None = None,
    ) -> None:
        self.node = node
        self.membership = membership
        self.statemap = statemap
        self.store = store
        self.node_id = node_id
        self.now_ms = now_ms
        self.governance = governance
        self.config = config or RebalanceConfig()
        self.policy = self.config.policy
        self.decide = decide or self._by_governance
        self.engine: EngineApi | None = None
        self._proposed: dict[str, str] = {}  # need channel -> open proposal id
        if engine is not None:
            self.attach_engine(engine)
        self.estimator = FlowEstimator()
        self.backoff = rules.Backoff()
        self.totals = Totals()
        self.events: Inbox[NodeEvent] = Inbox(512)
        self.forecasts: dict[str, ChannelForecast] = {}
        self._balances: dict[str, rules.Balance] = {}
        self._scid_peer: dict[str, NodeId] = {}
        self._pending: dict[int, rb.RebalanceRow] = {}
        self._distrust: collections.Counter[NodeId] = collections.Counter()
        self.decisions: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_DECISIONS)
        self._saved_totals = b""
        # Set by the runtime: the fee policy actor's notes ride in our record too.
        self.fee_policy: FeePolicyActor | None = None
        # Signed bans (hive/actors/bans.py): a route through a banned node is never used.
        self.is_banned: Callable[[NodeId], bool] = lambda _peer: False
        # Contribution scores (hive/actors/reputation.py): leeches get lower priority.
        self.standings = Standings(
            membership=membership,
            statemap=statemap,
            store=store,
            own_totals=self.totals_record,
            now_ms=now_ms,
        )
        transport.subscribe_events(self.events)

    def attach_engine(self, engine: EngineApi) -> None:
        """Submit every rebalance to ``engine`` and execute the approved ones ourselves."""
        self.engine = engine
        engine.register_kind(REBALANCE, ProposalExecutor(self), replace=True)

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def load(self) -> None:
        flows = _json_object(await self.store.get_meta(META_FLOWS))
        self.estimator.restore(flows)
        totals = _json_object(await self.store.get_meta(META_TOTALS))
        self.totals = Totals(
            **{k: v for k, v in totals.items() if k in _TOTAL_KEYS and type(v) is int and v >= 0}
        )
        self._saved_totals = json.dumps(attrs.asdict(self.totals), sort_keys=True).encode()
        for row in await self.store.run("rebalances", lambda c: rb.rebalances(c, status="paying")):
            self._pending[row.id] = row

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._node_events)
            await self.resolve_interrupted()
            self._refresh(await self.node.list_channels(), self.now_ms())
            task_status.started()
            while True:
                await trio.sleep(self.config.check_s)
                if self._pending:
                    await self.resolve_interrupted()
                if self.membership.is_member:
                    await self.step()
                await self._save()

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, Forwarded) and event.settled:
                self.estimator.forwarded(
                    event.in_channel,
                    event.out_channel,
                    event.in_msat,
                    event.out_msat,
                    self.now_ms(),
                )
                self._count_provided(event)

    def _count_provided(self, event: Forwarded) -> None:
        """A forward out through our channel with a member spends our side of a fleet
        channel (at the member fee): liquidity we provided to the fleet."""
        if self._scid_peer.get(event.out_channel) in self.membership.fleet_peers():
            self.totals.provided_msat += event.out_msat

    async def _save(self) -> None:
        await self.store.set_meta(META_FLOWS, json.dumps(self.estimator.export()).encode())
        raw = json.dumps(attrs.asdict(self.totals), sort_keys=True).encode()
        if raw != self._saved_totals:
            await self.store.set_meta(META_TOTALS, raw)
            self._saved_totals = raw

    # ------------------------------------------------------------------------------------------
    # Restart: resolve what was paying when we stopped

    async def resolve_interrupted(self) -> list[tuple[int, str]]:
        """Close every ``paying`` rebalance from the node's payment status; never re-pay."""
        resolved: list[tuple[int, str]] = []
        for row_id, row in sorted(self._pending.items()):
            status = await self.node.payment_status(row.label)
            if status.state is PaymentState.PENDING:
                log.info("rebalance %d (%s) still in flight; watching it", row_id, row.label)
                continue
            now = self.now_ms()
            if status.state is PaymentState.COMPLETE:
                fee = status.fee_msat if status.fee_msat is not None else row.route.fee_msat
                await self._settled(row_id, row.route, fee, now, why="resolved at start")
                resolved.append((row_id, "succeeded"))
            else:
                reason = f"interrupted by a restart; the node reports it {status.state.value}"
                await self.store.run(
                    "finish_rebalance",
                    functools.partial(
                        rb.finish_rebalance,
                        rebalance_id=row_id,
                        succeeded=False,
                        now_ms=now,
                        reason=reason,
                    ),
                )
                self._decision("failed", row.need_scid, reason, rebalance=row_id)
                resolved.append((row_id, "failed"))
            del self._pending[row_id]
        return resolved

    # ------------------------------------------------------------------------------------------
    # One planning pass

    def _refresh(self, channels: Sequence[ChannelView], now: int) -> None:
        self.forecasts = {}
        self._balances = {}
        self._scid_peer = {}
        for c in channels:
            if not rules.usable(c):
                continue
            assert c.short_channel_id is not None
            self._scid_peer[c.short_channel_id] = c.peer_id
            floor = self.policy.floor_msat(c.capacity_msat)
            fc = self.estimator.forecast(
                c.short_channel_id, c.local_msat, floor, now, capacity_msat=c.capacity_msat
            )
            self.forecasts[c.short_channel_id] = fc
            self._balances[c.short_channel_id] = rules.balance(c, fc, self.policy)
        self.estimator.forget(self._scid_peer)

    def member_surplus(self) -> dict[NodeId, int]:
        """Outbound surplus each member publishes, clamped to its public capacity per peer and
        ignored for members whose claims failed routes contradicted."""
        out: dict[NodeId, int] = {}
        for member in self.membership.fleet_peers():
            entry = self.statemap.entry(member)
            if entry is None or self._distrust[member] >= 2:
                continue
            capacity = entry.effective.capacity_by_peer()
            total = 0
            for b in entry.state.balances:
                total += min(b.surplus_out_msat, capacity.get(b.peer, 0) * 1000)
            out[member] = total
        return out

    async def _fleet_channels(self, channels: Sequence[ChannelView]) -> list[str]:
        """Our channels with members and members' public channels to each other."""
        members = set(self.membership.fleet_peers())
        scids = set(rules.fleet_channels(channels, members))
        for member in sorted(members):
            try:
                public = await self.node.list_public_channels(member)
            except NodeError:
                continue
            scids.update(
                p.short_channel_id for p in public if p.destination in members | {self.node_id}
            )
        return sorted(scids)

    async def step(self) -> list[dict[str, Any]]:
        """Forecast, plan, justify, decide and execute; returns this pass's decisions."""
        now = self.now_ms()
        channels = await self.node.list_channels()
        self._refresh(channels, now)
        members = self.membership.fleet_peers()
        outcomes: list[dict[str, Any]] = []
        needs = rules.needs(channels, self.forecasts, self.policy)
        if not needs:
            return outcomes
        await self.standings.refresh()
        leeches = self.standings.leeches()
        needs = rules.serve_last(needs, leeches)
        free = await self._fleet_channels(channels)
        published = self.member_surplus()
        window_start = now - int(self.policy.budget_window_s * 1000)
        spent = await self.store.run("fees_spent", lambda c: rb.fees_spent_since(c, window_start))
        moves = 0
        for need in needs:
            if moves >= self.config.max_moves_per_check:
                break
            if not self.backoff.ready(need.scid, now):
                continue
            if any(row.need_scid == need.scid for row in self._pending.values()):
                continue
            if self._open_proposal(need.scid):
                continue
            outcome = await self._plan_one(need, channels, members, published, free, spent)
            outcomes.append(outcome)
            if outcome["decision"] in ("succeeded", "failed"):
                moves += 1
                spent += int(outcome.get("fee_msat", 0))
        return outcomes

    async def _plan_one(
        self,
        need: rules.Need,
        channels: Sequence[ChannelView],
        members: Sequence[NodeId],
        published: dict[NodeId, int],
        free: Sequence[str],
        spent: int,
    ) -> dict[str, Any]:
        now = self.now_ms()
        fee = need.channel.our_fee
        max_fee = rules.max_fee_msat(need, fee, self.policy)
        leeches = self.standings.leeches()
        candidates = rules.sources(need, channels, self._balances, members, published, leeches)
        best: tuple[Route, ChannelView] | None = None
        tried = 0
        for source in candidates[: self.config.sources_per_need]:
            tried += 1
            try:
                route = await self.node.find_circular_route(
                    source.peer_id,
                    need.peer,
                    need.amount_msat,
                    free_channels=free,
                    max_fee_msat=max_fee,
                )
            except RouteNotFound as exc:
                log.debug("rebalance %s via %s: no route: %s", need.scid, source.peer_id, exc)
                continue
            if any(self.is_banned(h.node_id) for h in route.hops):
                log.info(
                    "rebalance %s via %s: route crosses a banned node", need.scid, source.peer_id
                )
                continue
            # Routes through leech members only when no other was found, then the cheapest.
            if best is None or rules.route_rank(route, leeches) < rules.route_rank(
                best[0], leeches
            ):
                best = (route, source)
        if best is None:
            wait = self.backoff.failed(need.scid, now, self.policy)
            reason = (
                f"no circular route within {max_fee} msat through {tried} source channel(s)"
                if candidates
                else "no channel can spare the amount"
            )
            return self._decision("no-route", need.scid, f"{reason}; retry in {wait:.0f} s")
        route, source = best
        justification = rules.justify(
            need, fee, route.fee_msat, self.policy, spent_in_window_msat=spent
        )
        planned = Plan(
            need_scid=need.scid,
            in_peer=need.peer,
            out_peer=source.peer_id,
            amount_msat=need.amount_msat,
            route=route,
            justification=justification,
        )
        if not justification.ok:
            return self._decision("rejected", need.scid, justification.reason, plan=planned)
        if self.engine is not None:
            return await self._submit(planned, need)
        approved, why = await self.decide(planned)
        if not approved:
            return self._decision("not-approved", need.scid, why, plan=planned)
        return await self.execute(planned)

    def _open_proposal(self, scid: str) -> bool:
        """True while a proposal for this channel waits or executes in the engine."""
        pid = self._proposed.get(scid)
        if pid is None or self.engine is None:
            return False
        status = self.engine.get(pid)
        if status is None or status.state.final:
            del self._proposed[scid]
            return False
        return True

    async def _submit(self, planned: Plan, need: rules.Need) -> dict[str, Any]:
        """Submit ``planned`` to the decision engine as a ``rebalance`` proposal."""
        assert self.engine is not None
        j = planned.justification
        fee_sat = msat_to_sat_up(planned.route.fee_msat)
        amount_sat = planned.amount_msat // 1000
        draft = Draft(
            kind=REBALANCE.name,
            params={
                "out_peer": planned.out_peer,
                "in_peer": planned.in_peer,
                "amount_sat": amount_sat,
            },
            reason=(f"refill {planned.need_scid} before it runs dry: {j.reason}")[
                :MAX_REASON_CHARS
            ],
            cost=Cost(
                routing_fee_sat=fee_sat,
                ppm=planned.route.fee_msat * 1_000_000 // max(1, planned.amount_msat),
            ),
            proposer="rebalancer",
            evidence={
                "need_scid": planned.need_scid,
                "expected_income_msat": j.expected_income_msat,
                "cost_msat": j.cost_msat,
                "confidence": round(j.confidence, 3),
                "horizon_s": j.horizon_s,
                "depletion_s": None
                if need.forecast.depletion_s is None
                else round(need.forecast.depletion_s),
                "out_rate_msat_per_h": round(need.forecast.out_rate_msat_s * 3600),
                "route": [h.node_id for h in planned.route.hops],
                "fleet_hops": [
                    h.node_id
                    for h in planned.route.hops[:-1]
                    if h.node_id in self.membership.fleet_peers()
                ],
            },
            expected_value_sat=(j.expected_income_msat - j.cost_msat) // 1000,
            confidence=j.confidence,
            target=planned.in_peer,
            ttl_s=self.policy.horizon_s,
        )
        try:
            status = await self.engine.submit(draft)
        except Refused as exc:
            return self._decision("refused", planned.need_scid, f"{exc.code}: {exc}", plan=planned)
        self._proposed[planned.need_scid] = status.id
        return self._decision(
            "proposed",
            planned.need_scid,
            f"proposal {status.id} ({status.state.value})",
            plan=planned,
            proposal=status.id,
        )

    async def propose(self, out_peer: NodeId, in_peer: NodeId, amount_msat: int) -> dict[str, Any]:
        """An operator's move (``hive-rebalance OUT IN AMOUNT``): routed like ours, submitted
        to the engine as a proposal the governance mode decides (no EV gate: the operator
        asked; the forecast's figures still go into the evidence)."""
        if self.engine is None:
            raise RouteNotFound("no decision engine to submit the proposal to")
        channels = await self.node.list_channels()
        self._refresh(channels, self.now_ms())
        into = [c for c in channels if rules.usable(c) and c.peer_id == in_peer]
        if not into or not any(rules.usable(c) and c.peer_id == out_peer for c in channels):
            raise RouteNotFound("we have no usable channel with one of the two peers")
        need_channel = min(into, key=lambda c: c.local_msat)
        assert need_channel.short_channel_id is not None
        forecast = self.forecasts[need_channel.short_channel_id]
        need = rules.Need(channel=need_channel, forecast=forecast, amount_msat=amount_msat)
        route = await self.node.find_circular_route(
            out_peer,
            in_peer,
            amount_msat,
            free_channels=await self._fleet_channels(channels),
            max_fee_msat=amount_msat * self.policy.max_fee_ppm // 1_000_000,
        )
        income = rules.expected_income_msat(need, need_channel.our_fee, self.policy)
        planned = Plan(
            need_scid=need.scid,
            in_peer=in_peer,
            out_peer=out_peer,
            amount_msat=amount_msat,
            route=route,
            justification=rules.Justification(
                amount_msat=amount_msat,
                expected_income_msat=income,
                cost_msat=route.fee_msat,
                confidence=1.0,  # the operator's own judgement, not our forecast's
                horizon_s=self.policy.horizon_s,
                ok=True,
                reason="asked by the operator",
            ),
        )
        return await self._submit(planned, need)

    async def _by_governance(self, plan: Plan) -> tuple[bool, str]:
        """Without the decision engine: autonomous executes within the policy's caps; advisor
        and oracle modes only record the plan (nobody is there to approve it)."""
        del plan
        if self.governance is Governance.AUTONOMOUS:
            return True, "autonomous: within the fee cap and budget"
        return False, f"{self.governance.value} mode: recorded as a plan, not executed"

    # ------------------------------------------------------------------------------------------
    # Execution and accounting

    async def execute(self, plan: Plan, *, label: str | None = None) -> dict[str, Any]:
        """Store, pay and account ``plan``; returns the decision entry ("succeeded" with
        ``fee_msat`` and ``payment_hash``, or "failed" with ``failing_node``)."""
        label = label or f"hive-rb-{secrets.token_hex(8)}"
        now = self.now_ms()
        route = plan.route
        row_id = await self.store.run(
            "start_rebalance",
            lambda c: rb.start_rebalance(
                c,
                label=label,
                now_ms=now,
                need_scid=plan.need_scid,
                in_peer=plan.in_peer,
                out_peer=plan.out_peer,
                amount_msat=plan.amount_msat,
                expected_income_msat=plan.justification.expected_income_msat,
                route=route,
            ),
        )
        try:
            result = await self.node.pay_route(route, label=label)
        except PaymentFailed as exc:
            done = self.now_ms()
            reason = str(exc)
            await self.store.run(
                "finish_rebalance",
                functools.partial(
                    rb.finish_rebalance,
                    rebalance_id=row_id,
                    succeeded=False,
                    now_ms=done,
                    failing_node=exc.failing_node,
                    reason=reason,
                ),
            )
            wait = self.backoff.failed(plan.need_scid, done, self.policy)
            if exc.failing_node in self.membership.fleet_peers():
                self._distrust[exc.failing_node] += 1
            return self._decision(
                "failed",
                plan.need_scid,
                f"failed at {exc.failing_node}: {reason}; retry in {wait:.0f} s",
                plan=plan,
                rebalance=row_id,
                failing_node=exc.failing_node,
            )
        await self._settled(row_id, route, result.fee_msat, self.now_ms(), why="paid")
        self.backoff.succeeded(plan.need_scid)
        return self._decision(
            "succeeded",
            plan.need_scid,
            f"moved {result.amount_msat} msat for {result.fee_msat} msat",
            plan=plan,
            rebalance=row_id,
            fee_msat=result.fee_msat,
            payment_hash=result.payment_hash,
        )

    async def _settled(self, row_id: int, route: Route, fee_msat: int, now: int, why: str) -> None:
        members = self.membership.fleet_peers()
        shares = rules.shares(route, self.node_id, members)
        await self.store.run(
            "finish_rebalance",
            lambda c: rb.finish_rebalance(
                c, row_id, succeeded=True, now_ms=now, fee_paid_msat=fee_msat, shares=shares
            ),
        )
        self.totals.consumed_msat += route.amount_msat
        self.totals.fees_paid_msat += fee_msat
        self.totals.rebalances += 1
        for share in shares:
            if share.role == "provided":
                self._distrust.pop(share.member, None)
        log.info(
            "rebalance %d settled (%s): %d msat, fee %d", row_id, why, route.amount_msat, fee_msat
        )

    def _decision(self, decision: str, scid: str, reason: str, **extra: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at_ms": self.now_ms(),
            "decision": decision,
            "channel": scid,
            "reason": reason,
        }
        planned = extra.pop("plan", None)
        if planned is not None:
            entry["plan"] = planned.to_json()
        entry.update(extra)
        self.decisions.append(entry)
        log.info("rebalance %s on %s: %s", decision, scid, reason)
        return entry

    # ------------------------------------------------------------------------------------------
    # For the gossip actor and the commands

    def balances(self) -> list[rules.Balance]:
        return list(self._balances.values())

    def totals_record(self) -> RebalanceTotals:
        return self.totals.record()

    def reputation(self) -> tuple[ReputationNote, ...]:
        """Members whose surplus claims failed routes contradicted, and (from the fee policy
        actor) members charging us above the member fee."""
        notes = [
            ReputationNote(peer=bytes.fromhex(m), reason=SURPLUS_NOTE, count=min(n, 2**32 - 1))
            for m, n in sorted(self._distrust.items())
            if n >= 2
        ]
        if self.fee_policy is not None:
            notes.extend(self.fee_policy.reputation())
        return tuple(notes[:MAX_NOTES])

    def status(self) -> dict[str, Any]:
        return {
            "governance": self.governance.value,
            "forecasts": {
                scid: {
                    "peer": self._scid_peer.get(scid),
                    "out_msat_per_h": round(fc.out_rate_msat_s * 3600),
                    "in_msat_per_h": round(fc.in_rate_msat_s * 3600),
                    "depletion_h": None
                    if fc.depletion_s is None
                    else round(fc.depletion_s / 3600, 1),
                    "confidence": round(fc.confidence, 3),
                }
                for scid, fc in sorted(self.forecasts.items())
            },
            "totals": attrs.asdict(self.totals),
            "pending": sorted(self._pending),
            "decisions": list(self.decisions)[-20:],
        }


_TOTAL_KEYS = frozenset(attrs.fields_dict(Totals))


def _json_object(raw: bytes | None) -> dict[str, Any]:
    """A JSON object we stored, or {} when absent or unreadable (a loss of estimates only)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("rebalancer: unreadable saved state ignored")
        return {}
    return value if isinstance(value, dict) else {}


class ProposalExecutor:
    """The engine's executor for ``rebalance`` proposals: routes again at execution time (an
    approval can come hours after the plan) within the reserved fee, pays under the label
    ``hive-rb-<proposal id>`` and accounts through the rebalancer; reconciles an interrupted
    execution from the node's payment status under that label."""

    def __init__(self, rebalancer: Rebalancer) -> None:
        self.rebalancer = rebalancer

    @staticmethod
    def label(proposal: GovProposal) -> str:
        return f"hive-rb-{proposal.id}"

    async def execute(self, proposal: GovProposal) -> ExecutionResult:
        r = self.rebalancer
        p, evidence = proposal.params, proposal.evidence
        amount_msat = int(p["amount_sat"]) * 1000
        max_fee_msat = proposal.cost.routing_fee_sat * 1000
        channels = await r.node.list_channels()
        free = await r._fleet_channels(channels)
        calls = [f"find_circular_route {p['out_peer']} {p['in_peer']} {amount_msat}"]
        try:
            route = await r.node.find_circular_route(
                p["out_peer"],
                p["in_peer"],
                amount_msat,
                free_channels=free,
                max_fee_msat=max_fee_msat,
            )
        except RouteNotFound as exc:
            raise ExecutionFailed(f"no circular route within the reserved fee: {exc}") from exc
        if any(r.is_banned(h.node_id) for h in route.hops):
            raise ExecutionFailed("the only route found crosses a node banned by the fleet")
        scid = evidence.get("need_scid")
        planned = Plan(
            need_scid=scid if isinstance(scid, str) else "unknown",
            in_peer=p["in_peer"],
            out_peer=p["out_peer"],
            amount_msat=amount_msat,
            route=route,
            justification=rules.Justification(
                amount_msat=amount_msat,
                expected_income_msat=int(evidence.get("expected_income_msat", 0)),
                cost_msat=route.fee_msat,
                confidence=proposal.confidence,
                horizon_s=r.policy.horizon_s,
                ok=True,
                reason=proposal.reason,
            ),
        )
        calls.append(f"pay_route {len(route.hops)} hops label {self.label(proposal)}")
        outcome = await r.execute(planned, label=self.label(proposal))
        if outcome["decision"] != "succeeded":
            raise ExecutionFailed(outcome["reason"], calls=calls)
        fee = int(outcome["fee_msat"])
        return ExecutionResult(
            cost=Cost(routing_fee_sat=msat_to_sat_up(fee), ppm=fee * 1_000_000 // amount_msat),
            calls=tuple(calls),
            detail={
                "payment_hash": outcome["payment_hash"],
                "fee_msat": fee,
                "rebalance": outcome["rebalance"],
                "route": [h.node_id for h in route.hops],
            },
        )

    async def reconcile(self, proposal: GovProposal) -> ExecutionResult | None:
        status = await self.rebalancer.node.payment_status(self.label(proposal))
        if status.state is PaymentState.COMPLETE:
            fee = status.fee_msat if status.fee_msat is not None else 0
            cost = (
                Cost(routing_fee_sat=msat_to_sat_up(fee))
                if status.fee_msat is not None
                else (proposal.cost)
            )
            return ExecutionResult(cost=cost, calls=("payment_status",), detail={"settled": True})
        if status.state is PaymentState.PENDING:
            # Not known yet: counted at the reserved cost, so the budget is never under-counted.
            return ExecutionResult(
                cost=proposal.cost, calls=("payment_status",), detail={"pending": True}
            )
        return None


__all__ = ["Decide", "Plan", "ProposalExecutor", "Rebalancer"]
