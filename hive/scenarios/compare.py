"""The scenario driver: the same graph, demand, capital and seeds for every scenario.

Per seed the channel balances of the public graph are drawn afresh (uniform 20..80 % on the
node1 side) and the demand (:mod:`hive.scenarios.demand`) is drawn once; then each scenario adds
its nodes to its own copy, and a simulated period runs in time order on one clock
(:mod:`hive.scenarios.events`): the payments (:mod:`hive.scenarios.flow`), the nodes' decisions
to open and close channels (:mod:`hive.scenarios.deciders`, over the channel book of
:mod:`hive.scenarios.channels`) and, every ``rebalance_every_s``, each scenario node's real
rebalancing rules (:mod:`hive.fleet.forecast` forecasts from its settled forwards,
:func:`hive.fleet.rebalance.needs`, :func:`~hive.fleet.rebalance.sources` and the
expected-value gate :func:`~hive.fleet.rebalance.justify`), sending the circular payments the
gate lets through over the same balances, paying whatever the hops charge: zero between Hive
members, market fees everywhere else.
"""

from __future__ import annotations

import multiprocessing as mp
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from hive.fleet.forecast import FlowEstimator
from hive.fleet.plangraph import node_medians
from hive.fleet.planner import PlannerConfig
from hive.fleet.rebalance import RebalancePolicy, balance, justify, needs, sources
from hive.node.port import ChannelState, ChannelView, FeePolicy
from hive.node.sim.graph import Graph
from hive.scenarios.channels import ChannelBook
from hive.scenarios.deciders import DecisionConfig, Fleet, Solo
from hive.scenarios.demand import DemandConfig, Payments, generate
from hive.scenarios.events import Clock
from hive.scenarios.flow import Flow, RoutingConfig
from hive.scenarios.placement import Autopilot, Planner, scenario_node_id

SCENARIOS = ("hive", "uncoordinated", "independent", "whale", "hive-down", "whale-down")
DAY_S = 86400.0


@attrs.frozen
class StudyConfig:
    nodes: int = 5
    capital_sat: int = 10_000_000  # per node; the whale holds nodes x capital
    seeds: int = 5
    scenarios: tuple[str, ...] = SCENARIOS
    demand: DemandConfig = attrs.field(factory=DemandConfig)
    routing: RoutingConfig = attrs.field(factory=RoutingConfig)
    planner: PlannerConfig = attrs.field(factory=PlannerConfig)
    rebalance: RebalancePolicy = attrs.field(factory=RebalancePolicy)
    decisions: DecisionConfig = attrs.field(factory=DecisionConfig)
    rebalance_every_s: float = 3600.0
    down_at: float = 0.5  # the "-down" scenarios lose their node at this share of the period
    first_seed: int = 1


@attrs.define
class Run:
    """What one scenario did with one seed (every figure from the payments that flowed)."""

    scenario: str
    seed: int
    figures: dict[str, float]
    daily_share: list[float]
    # Where the fee income left the scenario's nodes: the busiest exit targets, each with
    # ``target`` (node id, or "member" for an internal hop), ``fee_sat``, ``forwarded_sat``
    # and ``channels`` (the scenario's channels to it over the period, closed ones included).
    exits: list[dict[str, Any]] = attrs.Factory(list)


class _Base:
    """The public graph as arrays, shared by every run (and the planner's memo)."""

    def __init__(self, graph: Graph, config: StudyConfig) -> None:
        self.graph = graph
        self.template = Flow.from_graph(graph, config.routing)
        self.node_ids = list(graph.node_ids)
        self.blocks = np.array(
            [int(s.split("x", 1)[0]) if s.split("x", 1)[0].isdigit() else 0 for s in graph.scids],
            dtype=np.int64,
        )
        t = self.template
        self.degree = np.bincount(t.node1, minlength=t.n) + np.bincount(t.node2, minlength=t.n)
        routable_nodes = np.zeros(t.n, dtype=bool)
        routable_nodes[t.src[t.routable]] = True
        self.degree = np.where(routable_nodes, self.degree, 0)
        self.capacity = np.zeros(t.n, dtype=np.int64)
        np.add.at(self.capacity, t.node1, t.cap_msat // 1000)
        np.add.at(self.capacity, t.node2, t.cap_msat // 1000)
        live = t.routable
        self.fee = (int(np.median(t.base[live])), int(np.median(t.ppm[live])))
        self.node_fee = _usual_fees(t.src[live], t.base[live], t.ppm[live], t.n, self.fee)
        self.planner = Planner(self.node_ids, self.blocks)
        self.autopilot: Autopilot | None = None

    def fresh(self, seed: int) -> Flow:
        t = self.template
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBA1]))
        split = rng.uniform(0.2, 0.8, size=len(t.node1))
        return Flow(
            t.n,
            t.node1,
            t.node2,
            t.cap_msat // 1000,
            (t.cap_msat * split).astype(np.int64),
            t.base,
            t.ppm,
            t.routable,
            t.config,
        )


def _usual_fees(
    src: np.ndarray, base: np.ndarray, ppm: np.ndarray, n: int, default: tuple[int, int]
) -> list[tuple[int, int]]:
    """Each node's usual fee: the median base and the median ppm of the directions it
    forwards on (``default`` for a node that forwards on none)."""
    bases = node_medians(src, base, n, default[0])
    ppms = node_medians(src, ppm, n, default[1])
    return [(int(b), int(p)) for b, p in zip(bases.tolist(), ppms.tolist(), strict=True)]


class _Rebalancer:
    """One scenario node's rebalancing: the real forecast and rules, over the run's balances."""

    def __init__(
        self, node: int, members: Sequence[str], policy: RebalancePolicy, book: ChannelBook
    ) -> None:
        self.node = node
        self.members = list(members)  # fleet members (empty when uncoordinated)
        self.policy = policy
        self.book = book
        self.estimator = FlowEstimator()
        self.seen: set[int] = set()
        self.spent: list[tuple[float, int]] = []
        self.fees_msat = 0
        self.market_msat = 0  # what the same moves would have cost at market fees
        self.moves = 0
        # Why the gate did not act (the figures behind "rebalancing never fired").
        self.needs = 0  # channels forecast to run dry within the horizon, confidently
        self.no_source = 0
        self.no_route = 0
        self.refused = 0  # the expected-value gate said no
        self.refused_cap = 0  # ... because the route's fee was above the ppm cap
        self.gate_income_msat = 0  # the gate's weighted expected income, over every verdict
        self.gate_cost_msat = 0  # ... and the routes' cost
        self.closest = float("inf")  # least forecast time to the floor / horizon, any channel
        self.best_confidence = 0.0

    def views(self, flow: Flow, ids: list[str], now_ms: int) -> list[ChannelView]:
        views = []
        for chan in self.book.of(self.node, live_only=True):
            if chan.index not in self.seen:
                self.seen.add(chan.index)
                self.estimator.observe_channel(str(chan.index), now_ms)
            peer = chan.peer if chan.owner == self.node else chan.owner
            e = flow.edge_from(chan.index, self.node)
            cap = int(flow.cap_msat[chan.index])
            local = int(flow.outbound(e))
            views.append(
                ChannelView(
                    peer_id=ids[peer],
                    short_channel_id=str(chan.index),
                    state=ChannelState.NORMAL,
                    capacity_msat=cap,
                    local_msat=local,
                    remote_msat=cap - local,
                    our_fee=FeePolicy(int(flow.base[e]), int(flow.ppm[e])),
                )
            )
        return views

    def tick(self, flow: Flow, ids: list[str], now_s: float, on_forward: Any) -> None:
        if self.node in self.book.down:
            return
        now_ms = int(now_s * 1000)
        policy = self.policy
        views = self.views(flow, ids, now_ms)
        self.estimator.forget(v.short_channel_id or "" for v in views)
        forecasts = {}
        balances = {}
        for v in views:
            assert v.short_channel_id is not None
            fc = self.estimator.forecast(
                v.short_channel_id,
                v.local_msat,
                policy.floor_msat(v.capacity_msat),
                now_ms,
                capacity_msat=v.capacity_msat,
            )
            forecasts[v.short_channel_id] = fc
            balances[v.short_channel_id] = balance(v, fc, policy)
            self.best_confidence = max(self.best_confidence, fc.confidence)
            if fc.depletion_s is not None:
                self.closest = min(self.closest, fc.depletion_s / policy.horizon_s)
        self.spent = [(t, f) for t, f in self.spent if now_s - t < policy.budget_window_s]
        index = {
            ids[c.peer if c.owner == self.node else c.owner]: (
                c.peer if c.owner == self.node else c.owner
            )
            for c in self.book.of(self.node, live_only=True)
        }
        for need in needs(views, forecasts, policy)[:2]:
            self.needs += 1
            found = sources(need, views, balances, self.members)
            if not found:
                self.no_source += 1
                continue
            src_view = found[0]
            assert src_view.short_channel_id is not None
            c_src, c_need = int(src_view.short_channel_id), int(need.scid)
            p_src, p_need = index[src_view.peer_id], index[need.peer]
            mid = flow.route(p_src, p_need, need.amount_msat, avoid=self.node)
            if mid is None:
                self.no_route += 1
                continue
            path = [flow.edge_from(c_src, self.node), *mid, flow.edge_from(c_need, p_need)]
            cost = flow.hop_amounts(path, need.amount_msat)[0] - need.amount_msat
            spent = sum(f for _, f in self.spent)
            verdict = justify(need, need.channel.our_fee, cost, policy, spent_in_window_msat=spent)
            self.gate_income_msat += verdict.expected_income_msat
            self.gate_cost_msat += verdict.cost_msat
            if not verdict.ok:
                self.refused += 1
                self.refused_cap += verdict.reason.startswith("fee ")
                continue
            done = flow.send_along(self.node, self.node, path, need.amount_msat, on_forward)
            if done.ok:
                self.spent.append((now_s, done.fee_msat))
                self.fees_msat += done.fee_msat
                self.market_msat += done.fee_msat + self._free_hops(flow, path, need.amount_msat)
                self.moves += 1

    def _free_hops(self, flow: Flow, path: Sequence[int], amount_msat: int) -> int:
        """What the zero-fee hops of ``path`` would have charged at the market's median fee."""
        base, ppm = self.book.fee
        extra = 0
        for e in path[1:]:
            if flow.base[e] == 0 and flow.ppm[e] == 0:
                extra += base + amount_msat * ppm // 1_000_000
        return extra


def _members(flow: Flow, ids: list[str], label: str, count: int) -> list[int]:
    out = []
    for i in range(count):
        out.append(flow.add_node())
        ids.append(scenario_node_id(label, i))
    return out


def _decider(
    base: _Base, scenario: str, seed: int, config: StudyConfig
) -> tuple[Flow, list[str], list[int], ChannelBook, Fleet | Solo, Clock]:
    flow = base.fresh(seed)
    ids = list(base.node_ids)
    kind = scenario.removesuffix("-down")
    count = 1 if kind == "whale" else config.nodes
    capital = config.capital_sat * (config.nodes if kind == "whale" else 1)
    members = _members(flow, ids, kind, count)
    book = ChannelBook(
        flow,
        dict.fromkeys(members, capital),
        base.fee,
        config.planner.open_fee_sat,
        config.decisions.close_fee_sat,
        peer_fee=lambda node: base.node_fee[node] if node < len(base.node_fee) else base.fee,
    )
    clock = Clock()
    rng = random.Random(f"hive-scenarios/{scenario.removesuffix('-down')}/{seed}")
    kw: dict[str, Any] = {
        "clock": clock,
        "flow": flow,
        "book": book,
        "ids": ids,
        "nodes": members,
        "planner": base.planner,
        "planner_cfg": config.planner,
        "config": config.decisions,
        "rng": rng,
        "label": kind,
    }
    decider: Fleet | Solo
    if kind == "hive":
        # The members' own channels exist before the study: a ring at zero fee both ways
        # (the internal hops the planner's cost model assumes).
        for k, m in enumerate(members):
            if len(members) < 2 or (len(members) == 2 and k == 1):
                break
            peer = members[(k + 1) % len(members)]
            chan = book.open(m, peer, config.planner.min_channel_sat, 0.0, internal=True)
            book.confirm(chan, 0.0)
        decider = Fleet(**kw)
    elif kind == "uncoordinated":
        if base.autopilot is None:
            base.autopilot = Autopilot(flow, ids, base.blocks, config.planner, base.template.n)
        decider = Solo(autopilot=base.autopilot, **kw)
    else:
        decider = Solo(**kw)
    return flow, ids, members, book, decider, clock


def run_one(
    base: _Base,
    scenario: str,
    seed: int,
    payments: Payments,
    config: StudyConfig,
    advance: Callable[[int], None] = lambda _n: None,
) -> Run:
    flow, ids, members, book, decider, clock = _decider(base, scenario, seed, config)
    member_set = set(members)
    period = config.demand.period_s
    down_at = period * config.down_at
    kept_estimate = [-1.0]  # the planner's kept_without_top when the node went down (-1: none)
    if scenario.endswith("-down"):

        def fail() -> None:
            plan = decider.assess() if isinstance(decider, Fleet) else decider.last_plan
            importance = plan.importance_ppm if plan is not None else {}
            kept_estimate[0] = plan.kept_without_top if plan is not None else -1.0
            down = max(members, key=lambda m: (importance.get(ids[m], 0.0), -m))
            if isinstance(decider, Fleet):
                decider.set_down(down)
            else:
                book.set_down(down)

        clock.at(down_at, fail)
    fleet_ids = [ids[m] for m in members] if isinstance(decider, Fleet) else []
    rebalancers = {m: _Rebalancer(m, fleet_ids, config.rebalance, book) for m in members}
    routed_box = [False]
    exit_fee: dict[int, int] = {}  # exit peer -> fees earned forwarding to it (msat)
    exit_out: dict[int, int] = {}

    def on_forward(node: int, in_e: int, out_e: int, in_msat: int, out_msat: int) -> None:
        if node in member_set:
            now = clock.now_s
            c = out_e // 2
            peer = int(flow.node2[c]) if int(flow.node1[c]) == node else int(flow.node1[c])
            exit_fee[peer] = exit_fee.get(peer, 0) + in_msat - out_msat
            exit_out[peer] = exit_out.get(peer, 0) + out_msat
            book.forwarded(in_e, out_e, in_msat - out_msat, now)
            rebalancers[node].estimator.forwarded(
                str(in_e // 2), str(out_e // 2), in_msat, out_msat, int(now * 1000)
            )
            routed_box[0] = True

    def rebalance() -> None:
        for r in rebalancers.values():
            r.tick(flow, ids, clock.now_s, on_forward)
        clock.at(clock.now_s + config.rebalance_every_s, rebalance)

    clock.at(config.rebalance_every_s, rebalance)
    decider.start()
    days = max(1, int(np.ceil(period / DAY_S)))
    ok_day = np.zeros(days)
    routed_day = np.zeros(days)
    ok_total = routed_total = ok_late = routed_late = 0
    for k in range(len(payments)):
        t = float(payments.at_s[k])
        clock.run_until(t)
        routed_box[0] = False
        done = flow.pay(
            int(payments.sender[k]),
            int(payments.receiver[k]),
            int(payments.amount_msat[k]),
            on_forward,
        )
        if done.ok:
            day = min(days - 1, int(t // DAY_S))
            ok_total += 1
            ok_day[day] += 1
            late = t >= down_at
            ok_late += late
            if routed_box[0]:
                routed_total += 1
                routed_day[day] += 1
                routed_late += late
        if k % 200 == 199:
            advance(200)
    advance(len(payments) % 200)
    book.check()  # conservation: every msat any node gained or lost is in the ledger
    m = np.array(members, dtype=np.int64)
    capital_btc = config.capital_sat * config.nodes / 1e8
    onchain = float(book.onchain_msat[m].sum()) / 1000
    rebalance_fees = sum(r.fees_msat for r in rebalancers.values()) / 1000
    market_fees = sum(r.market_msat for r in rebalancers.values()) / 1000
    income = float(flow.earned[m].sum()) / 1000
    stats = decider.stats
    external = [c for c in book.chans if c.open and not c.internal]
    figures = {
        "routing_share": routed_total / ok_total if ok_total else 0.0,
        "share_after_down_at": routed_late / ok_late if ok_late else 0.0,
        "forwarded_sat": float(flow.forwarded[m].sum()) / 1000,
        "fee_income_sat": income,
        "income_per_btc_sat": income / capital_btc,
        "rebalance_fees_sat": rebalance_fees,
        "rebalance_market_sat": market_fees,
        "rebalances": float(sum(r.moves for r in rebalancers.values())),
        "rebalance_needs": float(sum(r.needs for r in rebalancers.values())),
        "rebalance_no_source": float(sum(r.no_source for r in rebalancers.values())),
        "rebalance_no_route": float(sum(r.no_route for r in rebalancers.values())),
        "rebalance_refused": float(sum(r.refused for r in rebalancers.values())),
        "rebalance_refused_cap": float(sum(r.refused_cap for r in rebalancers.values())),
        "rebalance_gate_income_sat": sum(r.gate_income_msat for r in rebalancers.values()) / 1000,
        "rebalance_gate_cost_sat": sum(r.gate_cost_msat for r in rebalancers.values()) / 1000,
        # Least forecast time for any channel to reach its floor, in days (365: never).
        "rebalance_closest_days": min(
            [365.0, *(r.closest * config.rebalance.horizon_s / DAY_S for r in rebalancers.values())]
        ),
        "rebalance_confidence": max((r.best_confidence for r in rebalancers.values()), default=0),
        "net_income_sat": income - rebalance_fees - onchain,
        "net_income_market_sat": income - market_fees - onchain,
        "success_rate": ok_total / len(payments) if len(payments) else 0.0,
        "failed_no_liquidity": float(flow.no_liquidity[m].sum()),
        "onchain_fees_sat": onchain,
        "opens": float(stats.opened),
        "closes": float(stats.closed),
        "channels": float(len(external)),
        "overlapping_channels": float(book.overlaps),
        "duplicate_channels": float(book.duplicates),
        "lock_conflicts": float(stats.lock_refused + stats.yielded),
        "recheck_failed": float(stats.recheck_failed),
        "plans": float(stats.plans),
        "planner_kept_estimate": kept_estimate[0],
        "reach_2_hops": float(_reach2(flow, members)),
    }
    exits = _exits(book, ids, member_set, exit_fee, exit_out)
    figures["top_exit_fee_share"] = exits[0]["fee_sat"] / income if exits and income else 0.0
    share_day = np.divide(routed_day, ok_day, out=np.zeros(days), where=ok_day > 0)
    return Run(
        scenario,
        seed,
        figures,
        [float(x) for x in share_day],
        exits,
    )


def _exits(
    book: ChannelBook,
    ids: Sequence[str],
    members: set[int],
    fee: dict[int, int],
    out: dict[int, int],
    top: int = 5,
) -> list[dict[str, Any]]:
    """The ``top`` exit targets by the fees the scenario's nodes earned forwarding to them (the
    internal hops to other members merged into one entry, "member")."""
    channels: dict[int, int] = {}
    for chan in book.chans:
        if not chan.internal:
            channels[chan.peer] = channels.get(chan.peer, 0) + 1
    fees: dict[int, int] = {}
    outs: dict[int, int] = {}
    for p in fee:
        key = -1 if p in members else p
        fees[key] = fees.get(key, 0) + fee[p]
        outs[key] = outs.get(key, 0) + out.get(p, 0)
    ranked = sorted(fees, key=lambda p: (-fees[p], -outs[p], p))[:top]
    return [
        {
            "target": "member" if p < 0 else ids[p],
            "fee_sat": fees[p] / 1000,
            "forwarded_sat": outs[p] / 1000,
            "channels": channels.get(p, 0),
        }
        for p in ranked
    ]


def _reach2(flow: Flow, members: Sequence[int]) -> int:
    """Distinct non-member nodes within two hops of a member, over open channels."""
    open_ = flow.cap_msat > 0
    adj_src = np.concatenate([flow.node1[open_], flow.node2[open_]])
    adj_dst = np.concatenate([flow.node2[open_], flow.node1[open_]])
    mine = np.isin(adj_src, members)
    first = set(adj_dst[mine].tolist())
    second = set(adj_dst[np.isin(adj_src, list(first))].tolist())
    return len((first | second) - set(members))


def _seed_runs(
    base: _Base, seed: int, config: StudyConfig, advance: Callable[[int], None]
) -> list[Run]:
    payments = generate(base.degree, base.capacity, config.demand, seed)
    return [run_one(base, s, seed, payments, config, advance) for s in config.scenarios]


_WORKER: dict[str, Any] = {}


def _worker_seed(seed: int) -> list[Run]:
    """One seed in a worker process (forked: the graph and the base are inherited)."""
    counter = _WORKER["counter"]

    def advance(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    return _seed_runs(_WORKER["base"], seed, _WORKER["config"], advance)


def run_study(
    graph: Graph,
    config: StudyConfig,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    jobs: int = 1,
) -> list[Run]:
    """Every scenario for every seed; ``on_progress(done, total)`` in payments. With ``jobs``
    > 1 the seeds run in that many forked worker processes (the figures do not change: each
    seed is computed alone, and the planner's memo only saves time)."""
    base = _Base(graph, config)
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    total = config.demand.payments * len(seeds) * len(config.scenarios)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(done[0], total)

    jobs = max(1, min(jobs, len(seeds)))
    if jobs == 1 or "fork" not in mp.get_all_start_methods():
        return [r for seed in seeds for r in _seed_runs(base, seed, config, advance)]
    ctx = mp.get_context("fork")
    counter = ctx.Value("q", 0)
    _WORKER.update(base=base, config=config, counter=counter)
    try:
        with ctx.Pool(jobs) as pool:
            pending = pool.map_async(_worker_seed, seeds, chunksize=1)
            while not pending.ready():
                pending.wait(0.5)
                if on_progress is not None:
                    on_progress(int(counter.value), total)
            per_seed = pending.get()
    finally:
        _WORKER.clear()
    if on_progress is not None:
        on_progress(total, total)
    return [r for runs in per_seed for r in runs]
