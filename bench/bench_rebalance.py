"""A simulated week of forwards through a 5-member fleet on the mainnet graph, three ways:
no rebalancing, Hive rebalancing, and a plain uncoordinated rebalancer paying market fees.

Usage: .venv/bin/python bench/bench_rebalance.py [--days 7] [--seed 1] [--rate 3]

Setup (the same for every mode, rebuilt from the snapshot each time): five members added to the
simulated mainnet network, in a ring of 2M sat fleet channels, each with channels of 2M sat to
four real nodes (drawn from those ranked 50..500 by public capacity), every channel split 50/50,
members charging 300 ppm outward to outsiders.

Demand model (forwards *through* the fleet, the member's view): each member sees forwards
arriving as a Poisson process (``--rate`` per hour), amounts log-normal with a 100k sat median
(capped at 1M). A forward enters from one of the member's outside peers (uniform) and leaves
to another (skewed: the member's first peer takes half of the outflow, so that channel
drains), or with
probability 0.3 crosses the fleet channel to the next member and leaves there. A forward needs
the sender's side of the incoming channel and the member's side of each outgoing channel; it
fails "for lack of local balance" when a member's outgoing side is short. Balances move on
success and the forwarding members earn their fee. Forwards are synthetic (no pathfinding for
them); rebalances are real circular payments through the simulator's pathfinder on the whole
mainnet graph and move balances on every hop.

Modes, each hour:

* ``none``: no rebalancing; fleet channels charge 300 ppm like any other.
* ``hive``: fleet channels at 0/0 (the member fee policy); each member runs the real rules of
  ``hive.fleet.forecast`` / ``hive.fleet.rebalance`` (forecast, needs, sources preferring
  members, the EV gate with the default policy) and pays the cheapest of the first two source
  routes, within the gate's fee bound.
* ``market``: fleet channels at 300 ppm; each member refills any channel below 20 % local to
  50 %, from its channel with the most local, accepting any route up to 1000 ppm (no forecast,
  no EV gate): the common rebalancer behaviour.

Reports per mode: forwards, forwards failed for lack of local balance, routing income,
rebalancing cost, net, moves, and the share of rebalancing hop-volume that moved at zero fee.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter
from collections.abc import Sequence

import attrs
import trio

from hive.errors import PaymentFailed, RouteNotFound
from hive.fleet import rebalance as rules
from hive.fleet.forecast import FlowEstimator
from hive.node.port import ChannelState, ChannelView, Route
from hive.node.sim import SimNetwork, load_mainnet
from hive.node.sim.graph import DirectionPolicy, Graph

MEMBERS = 5
PEERS_PER_MEMBER = 4
CAP_SAT = 2_000_000
MEMBER_PPM = 300
H_MS = 3_600_000
CROSS_P = 0.3


@attrs.define
class Member:
    idx: int
    node_id: str
    peers: list[int]  # outside peers (graph indices)
    chan: dict[int, int]  # peer index -> channel index (outside and fleet)
    estimator: FlowEstimator = attrs.Factory(FlowEstimator)
    backoff: rules.Backoff = attrs.Factory(rules.Backoff)
    spent: list[tuple[int, int]] = attrs.Factory(list)  # (at_ms, fee) for the budget window


@attrs.define
class Result:
    forwards: int = 0
    failed_local: int = 0
    failed_remote: int = 0
    income_msat: int = 0
    cost_msat: int = 0
    moves: int = 0
    moved_msat: int = 0
    hop_volume: int = 0
    free_hop_volume: int = 0
    route_calls: int = 0
    reasons: Counter[str] = attrs.Factory(Counter)


def build(seed: int, mode: str) -> tuple[SimNetwork, list[Member]]:
    graph = load_mainnet(seed=seed)
    net = SimNetwork(graph, seed=seed)
    rng = random.Random(seed)
    totals = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        totals[graph.node1[c]] += graph.capacity_sat[c]
        totals[graph.node2[c]] += graph.capacity_sat[c]
    ranked = sorted(range(graph.n_nodes), key=lambda n: -totals[n])[50:500]
    picks = rng.sample(ranked, MEMBERS * PEERS_PER_MEMBER)
    members: list[Member] = []
    for i in range(MEMBERS):
        node = net.add_node(f"member{i}")
        members.append(Member(node.index, node.node_id, [], {}))
    ppm_out = DirectionPolicy(base_msat=0, ppm=MEMBER_PPM, cltv_delta=40)
    fleet_fee = ppm_out if mode != "hive" else DirectionPolicy(base_msat=0, ppm=0, cltv_delta=40)
    scid = iter(range(1, 1_000_000))
    for i, m in enumerate(members):
        for k in range(PEERS_PER_MEMBER):
            peer = picks[i * PEERS_PER_MEMBER + k]
            c = graph.add_channel(
                m.idx,
                peer,
                CAP_SAT,
                scid=f"900000x{next(scid)}x0",
                a_msat=CAP_SAT * 500,
                policy_a=ppm_out,
                policy_b=DirectionPolicy(base_msat=1000, ppm=100, cltv_delta=40),
            )
            m.peers.append(peer)
            m.chan[peer] = c
    for i, m in enumerate(members):
        other = members[(i + 1) % MEMBERS]
        c = graph.add_channel(
            m.idx,
            other.idx,
            CAP_SAT,
            scid=f"900000x{next(scid)}x0",
            a_msat=CAP_SAT * 500,
            policy_a=fleet_fee,
            policy_b=fleet_fee,
        )
        m.chan[other.idx] = c
        other.chan[m.idx] = c
    return net, members


def channel_view(graph: Graph, m: Member, peer: int) -> ChannelView:
    c = m.chan[peer]
    local = graph.outbound_msat(c, m.idx)
    cap = graph.capacity_sat[c] * 1000
    return ChannelView(
        peer_id=graph.node_ids[peer],
        short_channel_id=graph.scids[c],
        state=ChannelState.NORMAL,
        capacity_msat=cap,
        local_msat=local,
        remote_msat=cap - local,
        our_fee=graph.fee_policy(c, m.idx),
    )


def forward(
    graph: Graph, members: list[Member], m: Member, rng: random.Random, now: int, res: Result
) -> None:
    """One forward arriving at ``m`` from an outside peer (see the module docstring)."""
    amount = min(1_000_000_000, int(math.exp(rng.gauss(math.log(100_000_000), 0.8))))
    src = rng.choice(m.peers)
    hops: list[tuple[Member, int, int]] = []  # (member, in peer, out peer)
    if rng.random() < CROSS_P:
        nxt = members[(members.index(m) + 1) % MEMBERS]
        out = nxt.peers[0] if rng.random() < 0.5 else rng.choice(nxt.peers)
        hops = [(m, src, nxt.idx), (nxt, m.idx, out)]
    else:
        choices = [p for p in m.peers if p != src]
        out = m.peers[0] if rng.random() < 0.5 and m.peers[0] != src else rng.choice(choices)
        hops = [(m, src, out)]
    res.forwards += 1
    # amounts from the end: each member adds its fee on its outgoing channel
    plan: list[tuple[Member, int, int, int, int]] = []  # member, in ch, out ch, in amt, out amt
    carried = amount
    for member, into, out in reversed(hops):
        ch_out = member.chan[out]
        fee = graph.fee_policy(ch_out, member.idx).fee_msat(carried)
        plan.append((member, member.chan[into], ch_out, carried + fee, carried))
        carried += fee
    plan.reverse()
    if graph.outbound_msat(plan[0][1], src) < plan[0][3]:
        res.failed_remote += 1  # the sender's side of our incoming channel is short
        return
    for member, _ci, ch_out, _in_amt, out_amt in plan:
        if graph.outbound_msat(ch_out, member.idx) < out_amt:
            res.failed_local += 1
            return
    graph.move(plan[0][1], src, plan[0][3])
    for member, ch_in, ch_out, in_amt, out_amt in plan:
        graph.move(ch_out, member.idx, out_amt)  # a fleet hop's out is the next member's in
        member.estimator.forwarded(graph.scids[ch_in], graph.scids[ch_out], in_amt, out_amt, now)
        res.income_msat += in_amt - out_amt


def account(route: Route, members: set[str], res: Result) -> None:
    hops = route.hops
    for i in range(len(hops) - 1):
        forwarded = hops[i + 1].amount_msat
        res.hop_volume += forwarded
        if hops[i].amount_msat == forwarded:
            res.free_hop_volume += forwarded


def pay(net: SimNetwork, m: Member, route: Route, res: Result, fleet: set[str], now: int) -> bool:
    try:
        result = net.pay(m.idx, route)
    except PaymentFailed as exc:
        res.reasons["payment failed"] += 1
        del exc
        return False
    res.cost_msat += result.fee_msat
    res.moves += 1
    res.moved_msat += route.amount_msat
    m.spent.append((now, result.fee_msat))
    account(route, fleet, res)
    return True


def hive_step(net: SimNetwork, members: list[Member], now: int, res: Result) -> None:
    graph = net.graph
    policy = rules.RebalancePolicy()
    fleet_ids = {m.node_id for m in members}
    for m in members:
        peers = list(m.chan)
        channels = [channel_view(graph, m, p) for p in peers]
        forecasts = {}
        balances = {}
        for c in channels:
            assert c.short_channel_id is not None
            fc = m.estimator.forecast(
                c.short_channel_id,
                c.local_msat,
                policy.floor_msat(c.capacity_msat),
                now,
                capacity_msat=c.capacity_msat,
            )
            forecasts[c.short_channel_id] = fc
            balances[c.short_channel_id] = rules.balance(c, fc, policy)
        window = now - int(policy.budget_window_s * 1000)
        spent = sum(f for at, f in m.spent if at >= window)
        for need in rules.needs(channels, forecasts, policy)[:2]:
            if not m.backoff.ready(need.scid, now):
                continue
            max_fee = rules.max_fee_msat(need, need.channel.our_fee, policy)
            best: Route | None = None
            for source in rules.sources(need, channels, balances, fleet_ids - {m.node_id})[:2]:
                res.route_calls += 1
                try:
                    route = net.find_circular_route(
                        m.idx, source.peer_id, need.peer, need.amount_msat
                    )
                except RouteNotFound:
                    continue
                if route.fee_msat <= max_fee and (best is None or route.fee_msat < best.fee_msat):
                    best = route
            if best is None:
                m.backoff.failed(need.scid, now, policy)
                res.reasons["no route within the gate"] += 1
                continue
            verdict = rules.justify(
                need, need.channel.our_fee, best.fee_msat, policy, spent_in_window_msat=spent
            )
            if not verdict.ok:
                res.reasons["gate: " + verdict.reason.split(" ")[0]] += 1
                continue
            if pay(net, m, best, res, fleet_ids, now):
                m.backoff.succeeded(need.scid)
                spent += best.fee_msat
            else:
                m.backoff.failed(need.scid, now, policy)


def market_step(net: SimNetwork, members: list[Member], now: int, res: Result) -> None:
    graph = net.graph
    fleet_ids = {m.node_id for m in members}
    for m in members:
        channels = [channel_view(graph, m, p) for p in m.chan]
        for c in channels:
            if c.local_msat >= c.capacity_msat // 5:
                continue
            amount = c.capacity_msat // 2 - c.local_msat
            source = max(
                (s for s in channels if s.peer_id != c.peer_id), key=lambda s: s.local_msat
            )
            if source.local_msat - amount < source.capacity_msat // 5:
                res.reasons["no source"] += 1
                continue
            res.route_calls += 1
            try:
                route = net.find_circular_route(m.idx, source.peer_id, c.peer_id, amount)
            except RouteNotFound:
                res.reasons["no route"] += 1
                continue
            if route.fee_msat * 1_000_000 > amount * 1000:
                res.reasons["above 1000 ppm"] += 1
                continue
            pay(net, m, route, res, fleet_ids, now)


def run_mode(mode: str, days: int, seed: int, rate: float) -> tuple[Result, float]:
    start = time.perf_counter()
    net, members = build(seed, mode)
    graph = net.graph
    rng = random.Random(seed * 7 + 1)  # the same demand in every mode
    res = Result()
    for m in members:
        for c in m.chan.values():
            m.estimator.observe_channel(graph.scids[c], 0)
    for hour in range(days * 24):
        base = hour * H_MS
        for m in members:
            n = _poisson(rng, rate)
            for k in range(n):
                forward(graph, members, m, rng, base + (k + 1) * H_MS // (n + 1), res)
        now = base + H_MS
        if mode == "hive":
            hive_step(net, members, now, res)
        elif mode == "market":
            market_step(net, members, now, res)
    return res, time.perf_counter() - start


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=3.0, help="forwards per member per hour")
    parser.add_argument("--modes", default="none,hive,market")
    args = parser.parse_args()
    rows: list[tuple[str, Result, float]] = []
    for mode in args.modes.split(","):
        res, wall = trio.run(_in_trio, mode, args.days, args.seed, args.rate)
        rows.append((mode, res, wall))
        print(f"{mode}: done in {wall:.1f} s", flush=True)
    _table(rows, args)


async def _in_trio(mode: str, days: int, seed: int, rate: float) -> tuple[Result, float]:
    return run_mode(mode, days, seed, rate)


def _table(rows: Sequence[tuple[str, Result, float]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.days} simulated days, {MEMBERS} members, {args.rate} forwards/member/hour, "
        f"seed {args.seed}\n"
    )
    header = (
        "mode",
        "forwards",
        "failed: no local",
        "failed: no remote",
        "income sat",
        "rebal. cost sat",
        "net sat",
        "moves",
        "moved sat",
        "zero-fee share",
        "route queries",
        "wall s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for mode, r, wall in rows:
        share = r.free_hop_volume / r.hop_volume if r.hop_volume else 0.0
        cells = (
            mode,
            f"{r.forwards:,}",
            f"{r.failed_local:,} ({r.failed_local / max(1, r.forwards):.1%})",
            f"{r.failed_remote:,}",
            f"{r.income_msat // 1000:,}",
            f"{r.cost_msat // 1000:,}",
            f"{(r.income_msat - r.cost_msat) // 1000:,}",
            f"{r.moves:,}",
            f"{r.moved_msat // 1000:,}",
            f"{share:.1%}" if r.hop_volume else "-",
            f"{r.route_calls:,}",
            f"{wall:.0f}",
        )
        print("| " + " | ".join(cells) + " |")
    for mode, r, _wall in rows:
        if r.reasons:
            print(f"{mode} skipped moves: {dict(r.reasons)}")


if __name__ == "__main__":
    main()
