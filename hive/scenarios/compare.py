"""The scenario driver: the same graph, demand, capital and seeds for every scenario.

Per seed the channel balances of the public graph are drawn afresh (uniform 20..80 % on the
node1 side) and the demand (:mod:`hive.scenarios.demand`) is drawn once; then each scenario adds
its nodes and channels (:mod:`hive.scenarios.placement`) to its own copy and the payments flow
in time order (:mod:`hive.scenarios.flow`). Every ``rebalance_every_s`` each scenario node runs
the real rebalancing rules (:mod:`hive.fleet.forecast` forecasts from its settled forwards,
:func:`hive.fleet.rebalance.needs`, :func:`~hive.fleet.rebalance.sources` and the
expected-value gate :func:`~hive.fleet.rebalance.justify`) and sends the circular payments the
gate lets through, over the same balances, paying whatever the hops charge: zero between Hive
members, market fees everywhere else.

New channels are dual-funded: a node commits ``amount`` and its peer matches it, so the node
holds half of a channel of twice its commitment from the start (the same rule for every
scenario; a one-sided channel cannot forward anything until it has inbound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from hive.fleet.forecast import FlowEstimator
from hive.fleet.planner import PlannerConfig
from hive.fleet.rebalance import RebalancePolicy, balance, justify, needs, sources
from hive.node.port import ChannelState, ChannelView, FeePolicy
from hive.node.sim.graph import Graph
from hive.scenarios.demand import DemandConfig, Payments, generate
from hive.scenarios.flow import Flow, RoutingConfig
from hive.scenarios.placement import (
    Placement,
    autopilot_opens,
    fleet_opens,
    scenario_node_id,
)

SCENARIOS = ("hive", "uncoordinated", "whale", "hive-down", "whale-down")
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
    rebalance_every_s: float = 3600.0
    first_seed: int = 1


@attrs.define
class Run:
    """What one scenario did with one seed (every figure from the payments that flowed)."""

    scenario: str
    seed: int
    figures: dict[str, float]
    daily_share: list[float]


class _Base:
    """The public graph as arrays, shared by every run."""

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
        self.placements: dict[str, Placement] = {}

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


def _members(flow: Flow, ids: list[str], label: str, count: int) -> list[int]:
    out = []
    for i in range(count):
        out.append(flow.add_node())
        ids.append(scenario_node_id(label, i))
    return out


def _setup(
    base: _Base, scenario: str, seed: int, config: StudyConfig
) -> tuple[Flow, list[str], list[int], Placement, bool]:
    flow = base.fresh(seed)
    ids = list(base.node_ids)
    kind = scenario.removesuffix("-down")
    whale = kind == "whale"
    count = 1 if whale else config.nodes
    capital = config.capital_sat * (config.nodes if whale else 1)
    members = _members(flow, ids, kind, count)
    if kind == "uncoordinated":
        placement = autopilot_opens(flow, members, capital, config.planner, seed, base.template.n)
    else:
        cached = base.placements.get(kind)
        if cached is not None:
            placement = cached
        else:
            scratch = base.fresh(seed)
            _members(scratch, [], kind, count)
            placement = fleet_opens(scratch, ids, base.blocks, members, capital, config.planner)
            base.placements[kind] = placement
    coordinated = kind == "hive"
    member_set = set(members)
    for o in placement.opens:
        internal = coordinated and o.b in member_set
        fee_a = (0, 0) if internal else base.fee
        fee_b = (0, 0) if internal else base.fee
        flow.add_channel(o.a, o.b, 2 * o.capacity_sat, o.capacity_sat * 1000, fee_a, fee_b)
    return flow, ids, members, placement, coordinated


def _views(flow: Flow, node: int, ids: list[str]) -> list[ChannelView]:
    views = []
    for c, peer, local, cap in flow.local(node):
        e = flow.edge_from(c, node)
        views.append(
            ChannelView(
                peer_id=ids[peer],
                short_channel_id=str(c),
                state=ChannelState.NORMAL,
                capacity_msat=cap,
                local_msat=local,
                remote_msat=cap - local,
                our_fee=FeePolicy(int(flow.base[e]), int(flow.ppm[e])),
            )
        )
    return views


class _Rebalancer:
    """One scenario node's rebalancing: the real forecast and rules, over the run's balances."""

    def __init__(self, node: int, members: Sequence[str], policy: RebalancePolicy) -> None:
        self.node = node
        self.members = list(members)  # fleet members (empty when uncoordinated)
        self.policy = policy
        self.estimator = FlowEstimator()
        self.spent: list[tuple[float, int]] = []
        self.fees_msat = 0
        self.moves = 0

    def tick(self, flow: Flow, ids: list[str], now_s: float, on_forward: Any) -> None:
        now_ms = int(now_s * 1000)
        policy = self.policy
        views = _views(flow, self.node, ids)
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
        self.spent = [(t, f) for t, f in self.spent if now_s - t < policy.budget_window_s]
        index = {ids[p]: p for _, p, _, _ in flow.local(self.node)}
        for need in needs(views, forecasts, policy)[:2]:
            found = sources(need, views, balances, self.members)
            if not found:
                continue
            src_view = found[0]
            assert src_view.short_channel_id is not None
            c_src, c_need = int(src_view.short_channel_id), int(need.scid)
            p_src, p_need = index[src_view.peer_id], index[need.peer]
            mid = flow.route(p_src, p_need, need.amount_msat, avoid=self.node)
            if mid is None:
                continue
            path = [flow.edge_from(c_src, self.node), *mid, flow.edge_from(c_need, p_need)]
            cost = flow.hop_amounts(path, need.amount_msat)[0] - need.amount_msat
            spent = sum(f for _, f in self.spent)
            verdict = justify(need, need.channel.our_fee, cost, policy, spent_in_window_msat=spent)
            if not verdict.ok:
                continue
            done = flow.send_along(self.node, self.node, path, need.amount_msat, on_forward)
            if done.ok:
                self.spent.append((now_s, done.fee_msat))
                self.fees_msat += done.fee_msat
                self.moves += 1


def run_one(
    base: _Base,
    scenario: str,
    seed: int,
    payments: Payments,
    config: StudyConfig,
    advance: Callable[[int], None] = lambda _n: None,
) -> Run:
    flow, ids, members, placement, coordinated = _setup(base, scenario, seed, config)
    member_set = set(members)
    if scenario.endswith("-down"):
        importance = placement.plan.importance_ppm if placement.plan is not None else {}
        down = max(members, key=lambda m: (importance.get(ids[m], 0.0), -m))
        flow.set_offline(down)
    fleet_ids = [ids[m] for m in members] if coordinated else []
    rebalancers = {m: _Rebalancer(m, fleet_ids, config.rebalance) for m in members}
    now_box = [0.0]

    def on_forward(node: int, in_e: int, out_e: int, in_msat: int, out_msat: int) -> None:
        if node in member_set:
            rebalancers[node].estimator.forwarded(
                str(in_e // 2), str(out_e // 2), in_msat, out_msat, int(now_box[0] * 1000)
            )
            routed_box[0] = True

    routed_box = [False]
    for r in rebalancers.values():
        for c, _, _, _ in flow.local(r.node):
            r.estimator.observe_channel(str(c), 0)
    days = max(1, int(np.ceil(config.demand.period_s / DAY_S)))
    ok_day = np.zeros(days)
    routed_day = np.zeros(days)
    next_tick = config.rebalance_every_s
    ok_total = routed_total = 0
    start_holdings = flow.holdings()
    for k in range(len(payments)):
        t = float(payments.at_s[k])
        now_box[0] = t
        while t >= next_tick:
            for r in rebalancers.values():
                r.tick(flow, ids, next_tick, on_forward)
            next_tick += config.rebalance_every_s
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
            if routed_box[0]:
                routed_total += 1
                routed_day[day] += 1
        if k % 200 == 199:
            advance(200)
    advance(len(payments) % 200)
    m = np.array(members, dtype=np.int64)
    capital_btc = config.capital_sat * config.nodes / 1e8
    opened = [o for o in placement.opens if not (coordinated and o.b in member_set)]
    targets = [o.b for o in opened]
    onchain = len(placement.opens) * config.planner.open_fee_sat
    rebalance_fees = sum(r.fees_msat for r in rebalancers.values()) / 1000
    income = float(flow.earned[m].sum()) / 1000
    # Conservation: every msat a node gained or lost is in the ledger.
    delta = flow.holdings() - start_holdings
    ledger = flow.received - flow.paid + flow.earned
    if not np.array_equal(delta, ledger):
        raise RuntimeError(f"{scenario} seed {seed}: balances moved without a ledger entry")
    figures = {
        "routing_share": routed_total / ok_total if ok_total else 0.0,
        "forwarded_sat": float(flow.forwarded[m].sum()) / 1000,
        "fee_income_sat": income,
        "income_per_btc_sat": income / capital_btc,
        "rebalance_fees_sat": rebalance_fees,
        "rebalances": float(sum(r.moves for r in rebalancers.values())),
        "net_income_sat": income - rebalance_fees - onchain,
        "success_rate": ok_total / len(payments) if len(payments) else 0.0,
        "failed_no_liquidity": float(flow.no_liquidity[m].sum()),
        "onchain_fees_sat": float(onchain),
        "channels": float(len(opened)),
        "overlapping_channels": float(len(targets) - len(set(targets))),
        "reach_2_hops": float(_reach2(flow, members)),
    }
    share_day = np.divide(routed_day, ok_day, out=np.zeros(days), where=ok_day > 0)
    return Run(scenario, seed, figures, [float(x) for x in share_day])


def _reach2(flow: Flow, members: Sequence[int]) -> int:
    """Distinct non-member nodes within two hops of a member, over any channel."""
    adj_src = np.concatenate([flow.node1, flow.node2])
    adj_dst = np.concatenate([flow.node2, flow.node1])
    mine = np.isin(adj_src, members)
    first = set(adj_dst[mine].tolist())
    second = set(adj_dst[np.isin(adj_src, list(first))].tolist())
    return len((first | second) - set(members))


def run_study(
    graph: Graph,
    config: StudyConfig,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Run]:
    """Every scenario for every seed; ``on_progress(done, total)`` in payments."""
    base = _Base(graph, config)
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    total = config.demand.payments * len(seeds) * len(config.scenarios)
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(done[0], total)

    runs = []
    for seed in seeds:
        payments = generate(base.degree, base.capacity, config.demand, seed)
        for scenario in config.scenarios:
            runs.append(run_one(base, scenario, seed, payments, config, advance))
    return runs
