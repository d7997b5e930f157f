"""The coverage planner: which member should open a channel to which target. Pure and
deterministic (no I/O, no clock, no randomness): every member computing a plan from the same
graph and fleet state gets the same assignment. The objective and its reasons are in
docs/PLANNER.md; in short:

* Payers are modelled by ``sources`` capacity-weighted nodes (a hashed, reproducible sample).
  ``b(v)``, the *baseline*, is the median cost for them to reach ``v`` through the network
  without the fleet (fees for the reference amount plus a per-hop charge).
* A member ``m`` is entered through one of its peers ``p`` at ``a_m = min_p b(p) + f(p) + hop``
  (``f(p)``: ``p``'s usual fee, the median of its own fees for the reference amount)
  and reaches ``d`` at ``E_m(d) = fleet_fee + hop + dist(peer, d)`` (nearest peer). A payment to
  ``d`` entering at member ``i`` and leaving at member ``j`` costs ``a_i + E_j(d)``, plus one
  hop when ``i != j`` (the internal hop: zero fee, but pathfinders charge it).
* Destination ``d`` is *routed by the fleet* when the fleet's cheapest way to it undercuts the
  baseline: ``C(d) < b(d)``. The objective is the demand-weighted count of such destinations
  (weight: the destination's public capacity), counted once however many members reach it.
  Reach (shown beside it) is the weight of destinations within ``reach_fee_msat`` of a member.
* A channel's score is its marginal routed demand (ppm of the network's demand) plus
  ``robustness`` times its marginal routed demand in the fleet without its currently most
  important member (so importance is spread), minus its on-chain fee at ``cost_ppm_per_ksat``.
* Greedy with lazy re-evaluation (CELF); all scores are recomputed whenever the fleet's best
  entry changes, because a cheap way in makes every exit worth more (the objective is not
  submodular there). Ties break on member id, then target id.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hive.fleet.plangraph import BoolArray, FloatArray, PlanGraph, distances, hashed_sample
from hive.fleet.plantypes import PPM, Alternative, Plan, PlanMember, PlannedOpen, PlannerConfig
from hive.node.port import NodeId

INF = np.inf


class _Cover:
    """Entry costs ``a`` (M) and exit costs ``E`` (M x N) of a member set, with the best and
    second best per destination so one member's change is evaluated in O(N)."""

    def __init__(self, a: FloatArray, e: FloatArray, q: FloatArray, w: FloatArray, hop: float):
        # q: Q x N, the payers' costs to each destination at Q quantiles (ascending).
        self.a, self.e, self.hop = a.copy(), e.copy(), hop
        self.qt = np.ascontiguousarray(q.T)  # N x Q: one destination's quantiles in a row
        self.wq = w / q.shape[0]
        self.refresh()

    def refresh(self) -> None:
        m = len(self.a)
        same = self.a[:, None] + self.e  # entering and leaving at the same member
        if m == 0:
            n = self.qt.shape[0]
            self.s1 = self.s2 = self.x1 = self.x2 = np.full(n, INF)
            self.s_arg = self.x_arg = np.full(n, -1)
            self.a1 = self.a2 = INF
            self.a_arg = -1
            self.value = 0.0
            self.contrib = np.zeros(n)
            self.cost = np.full(n, INF)
            return
        order = np.argsort(same, axis=0, kind="stable")
        cols = np.arange(same.shape[1])
        self.s_arg = order[0]
        self.s1 = same[order[0], cols]
        self.s2 = same[order[1], cols] if m > 1 else np.full(same.shape[1], INF)
        xo = np.argsort(self.e, axis=0, kind="stable")
        self.x_arg = xo[0]
        self.x1 = self.e[xo[0], cols]
        self.x2 = self.e[xo[1], cols] if m > 1 else np.full(same.shape[1], INF)
        ao = np.argsort(self.a, kind="stable")
        self.a_arg = int(ao[0])
        self.a1 = float(self.a[ao[0]])
        self.a2 = float(self.a[ao[1]]) if m > 1 else INF
        cost = np.minimum(self.s1, self.a1 + self.hop + self.x1)
        # Each destination's cost and routed demand now, so a change is evaluated only where
        # it lowers the cost.
        self.cost = cost
        self.contrib = self.wq * (cost[:, None] < self.qt).sum(axis=1)
        self.value = float(self.contrib.sum())

    def _value(self, cost: FloatArray, cols: Any = slice(None)) -> float:
        """Demand routed at fleet cost ``cost``: each destination's weight times the share of
        payer quantiles the fleet undercuts."""
        beaten = (cost[:, None] < self.qt[cols]).sum(axis=1)
        return float(self.wq[cols] @ beaten)

    def without(self, m: int) -> FloatArray:
        """Cheapest fleet cost per destination with member ``m`` down."""
        s = np.where(self.s_arg == m, self.s2, self.s1)
        x = np.where(self.x_arg == m, self.x2, self.x1)
        a = self.a2 if self.a_arg == m else self.a1
        return np.minimum(s, a + self.hop + x)

    def value_with(self, m: int, entry: float, exit_row: FloatArray) -> float:
        """The objective if member ``m`` gained entry cost ``entry`` and exits ``exit_row``."""
        a_new = min(float(self.a[m]), entry)
        if a_new == self.a[m]:
            # Only the destinations this exit improves change (the common case): O(changed).
            cols = np.flatnonzero(exit_row < self.e[m])
            if len(cols) == 0:
                return self.value
            e_new = exit_row[cols]
            s1, s2, sa = self.s1[cols], self.s2[cols], self.s_arg[cols]
            x1, x2, xa = self.x1[cols], self.x2[cols], self.x_arg[cols]
            s = np.minimum(np.where(sa == m, s2, s1), a_new + e_new)
            x = np.minimum(np.where(xa == m, x2, x1), e_new)
            a_best = min(self.a2 if self.a_arg == m else self.a1, a_new)
            new = np.minimum(s, a_best + self.hop + x)
            lower = new < self.cost[cols]
            cols, new = cols[lower], new[lower]
            return self.value - float(self.contrib[cols].sum()) + self._value(new, cols)
        e_full = np.minimum(self.e[m], exit_row)
        s = np.minimum(np.where(self.s_arg == m, self.s2, self.s1), a_new + e_full)
        x = np.minimum(np.where(self.x_arg == m, self.x2, self.x1), e_full)
        a_best = min(self.a2 if self.a_arg == m else self.a1, a_new)
        return self._value(np.minimum(s, a_best + self.hop + x))

    def add(self, m: int, entry: float, exit_row: FloatArray) -> None:
        self.a[m] = min(float(self.a[m]), entry)
        self.e[m] = np.minimum(self.e[m], exit_row)
        self.refresh()


def _ranked(items: Iterable[tuple[float, NodeId]], limit: int) -> list[NodeId]:
    return [node for _, node in sorted(items, key=lambda it: (-it[0], it[1]))[:limit]]


def plan(
    graph: PlanGraph,
    members: Sequence[PlanMember],
    *,
    config: PlannerConfig | None = None,
    banned: Iterable[NodeId] = (),
    saturated: Iterable[NodeId] = (),
    locked: Mapping[NodeId, NodeId] | None = None,
    boosted: Iterable[NodeId] = (),
) -> Plan:
    """The fleet's plan. ``locked``: target -> the member holding a live intent for it (others
    leave it alone; the holder counts it as opened). ``boosted``: peers of revealed, verified
    strategy reports, whose demand weight grows by ``config.strategy_bonus``. Members are taken
    in node id order."""
    cfg = config or PlannerConfig()
    locked = dict(locked or {})
    members = sorted(members, key=lambda m: m.node_id)
    member_ids = [m.node_id for m in members]
    n, hop = graph.n, float(cfg.hop_cost_msat)
    is_member = np.zeros(n, dtype=bool)
    for mid in member_ids:
        if mid in graph.index:
            is_member[graph.index[mid]] = True
    matrix = graph.matrix(hop_cost_msat=cfg.hop_cost_msat, excluded=is_member)
    median_fee = float(graph.median_fee_msat())
    fleet_fee = (
        median_fee
        if cfg.fleet_fee_ppm is None
        else float(cfg.fleet_fee_ppm * cfg.amount_msat // PPM)
    )
    weight = np.where(is_member, 0, graph.capacity_sat).astype(np.float64)
    total = float(weight.sum()) or 1.0
    sources = hashed_sample(graph.node_ids, weight, cfg.sources, b"hive/v1/plan-sources")
    for node in set(boosted) if cfg.strategy_bonus > 0 else ():  # (payers stay as sampled)
        if node in graph.index and not is_member[graph.index[node]]:
            weight[graph.index[node]] *= 1.0 + cfg.strategy_bonus
    with np.errstate(invalid="ignore"):
        # No payers to sample (a graph with no capacity outside the fleet): one payer that
        # reaches nothing, so every figure below is infinite and nothing is worth opening.
        base_rows = distances(matrix, sources) if len(sources) else np.full((1, n), INF)
        reached = np.isfinite(base_rows).sum(axis=0)
        # Median over sources; a node most sources cannot reach costs infinity.
        baseline = np.where(reached * 2 > len(sources), np.median(base_rows, axis=0), INF).astype(
            np.float64
        )
        levels = np.linspace(0.0, 1.0, cfg.quantiles + 2)[1:-1]
        quant = np.quantile(np.sort(base_rows, axis=0), levels, axis=0, method="lower")
    finite = baseline[np.isfinite(baseline)]
    limit = float(finite.max()) if len(finite) else INF
    # A payer's cost to reach a member through node v: v's own usual fee on its new channel
    # to the member (a node asking 4,000 ppm everywhere asks it of us too).
    entry_of = baseline + graph.usual_fee_msat() + hop
    exit_extra = fleet_fee + hop  # member -> its peer

    # --- which targets may be considered, and why the others are not -------------------------
    banned_set, saturated_set = set(banned), set(saturated)
    reached_by: dict[NodeId, list[NodeId]] = {}
    for member in members:
        for peer in member.peers | member.pending:
            reached_by.setdefault(peer, []).append(member.node_id)
    reasons: dict[str, list[tuple[float, NodeId, str]]] = {}
    eligible = np.zeros(n, dtype=bool)
    newest_block = int(graph.first_block.max(initial=0))
    for i, node in enumerate(graph.node_ids):
        cap = int(graph.capacity_sat[i])
        reason, detail = _exclusion(
            graph, i, node, cfg, is_member, banned_set, saturated_set, newest_block
        )
        if reason is None and node in locked:
            reason, detail = "locked", f"intent held by {locked[node]}"
        if reason is None and node in reached_by and len(reached_by[node]) >= len(members):
            reason, detail = "already-reached", "every member has a channel to it"
        if reason is None:
            eligible[i] = True
        elif reason != "member":
            reasons.setdefault(reason, []).append((cap, node, detail))
    # Candidate pool: exits that have expensive-to-reach demand behind them, and entries.
    behind = weight.copy()
    edge_down = (baseline[graph.dst] >= baseline[graph.src]) & graph.enabled
    np.add.at(behind, graph.src[edge_down], weight[graph.dst[edge_down]])
    spread = np.where(np.isfinite(baseline), baseline - (finite.min() if len(finite) else 0), 0.0)
    prescore = behind * (spread + hop)
    idx = np.flatnonzero(eligible)
    exits = _ranked(((prescore[i], graph.node_ids[i]) for i in idx), cfg.candidates)
    entries = _ranked(
        ((-entry_of[i], graph.node_ids[i]) for i in idx if np.isfinite(entry_of[i])),
        cfg.entry_candidates,
    )
    pool = sorted(set(exits) | set(entries))
    pool_idx = np.array([graph.index[t] for t in pool], dtype=np.int64)
    # An exit that cannot undercut even the dearest payer quantile with the cheapest entry
    # never counts: searches stop there, and such costs are dropped, so evaluating a candidate
    # touches only the destinations where it can matter.
    floor = float(entry_of[np.isfinite(entry_of)].min(initial=0.0))
    dearest = quant[-1][np.isfinite(quant[-1])]
    reach_limit = float(dearest.max()) - floor - exit_extra if len(dearest) else limit
    rows = None
    if len(pool):
        rows = distances(matrix, pool_idx, limit=max(0.0, reach_limit)) + exit_extra
        rows[rows + floor >= quant[-1][None, :]] = INF

    # --- the members' current cover -----------------------------------------------------------
    m_count = len(members)
    a = np.full(m_count, INF)
    e = np.full((m_count, n), INF)
    pen = [float(m.penalty_msat) for m in members]  # a leech's legs cost more
    for k, member in enumerate(members):
        peers = [graph.index[p] for p in sorted(member.peers | member.pending) if p in graph.index]
        if peers:
            a[k] = float(entry_of[peers].min()) + pen[k]
            e[k] = distances(matrix, peers, limit=limit, min_only=True)[0] + exit_extra + pen[k]
    full = _Cover(a, e, quant, weight, hop)
    routed_before = full.value

    # --- budgets ------------------------------------------------------------------------------
    opens_left: list[int] = []
    amount: list[int] = []
    for member in members:
        spare = member.onchain_sat - cfg.reserve_sat
        per = cfg.min_channel_sat + cfg.open_fee_sat
        count = max(0, min(cfg.max_opens_per_member, spare // per if per else 0))
        opens_left.append(int(count))
        amount.append(min(cfg.max_channel_sat, spare // count - cfg.open_fee_sat) if count else 0)
    funded = any(count > 0 for count in opens_left)
    cost_ppm = cfg.open_fee_sat * cfg.cost_ppm_per_ksat / 1000
    taken: list[set[NodeId]] = [set(m.peers | m.pending) for m in members]
    chosen_targets: set[NodeId] = set()

    def top_member() -> int:
        losses = [full.value - full._value(full.without(k)) for k in range(m_count)]
        return int(np.argmax(losses)) if m_count and full.value > 0 else -1

    star = top_member()

    def robust_cover(star: int) -> _Cover:
        ra, re = full.a.copy(), full.e.copy()
        if star >= 0:
            ra[star], re[star] = INF, INF
        return _Cover(ra, re, quant, weight, hop)

    robust = robust_cover(star)

    def score(k: int, j: int) -> tuple[float, float]:
        assert rows is not None
        entry, exit_row = float(entry_of[pool_idx[j]]) + pen[k], rows[j] + pen[k]
        gain = full.value_with(k, entry, exit_row) - full.value
        rgain = 0.0 if k == star else robust.value_with(k, entry, exit_row) - robust.value
        total_score = (gain + cfg.robustness * rgain) / total * PPM - cost_ppm
        return total_score, gain / total * PPM

    def pairs() -> Iterable[tuple[int, int]]:
        for k in range(m_count):
            if opens_left[k] <= 0:
                continue
            for j, target in enumerate(pool):
                if target not in taken[k] and target not in chosen_targets:
                    yield k, j

    def build_heap() -> list[tuple[float, NodeId, NodeId, int, int]]:
        heap = [(-score(k, j)[0], member_ids[k], pool[j], k, j) for k, j in pairs()]
        heapq.heapify(heap)
        return heap

    def two_hop(nodes: Iterable[int]) -> BoolArray:
        mask = np.zeros(n, dtype=bool)
        for v in nodes:
            mask[v] = True
            mask[matrix.indices[matrix.indptr[v] : matrix.indptr[v + 1]]] = True
        return mask

    reach = two_hop(graph.index[p] for t in taken for p in t if p in graph.index)
    reach_before = float(weight[reach].sum())
    opens: list[PlannedOpen] = []

    def accept(k: int, j: int, note: str, shortlist: Sequence[int]) -> None:
        nonlocal star, robust, reach
        assert rows is not None
        target = pool[j]
        total_score, gain_ppm = score(k, j)
        others = [
            Alternative(member_ids[q], target, score(q, j)[0])
            for q in range(m_count)
            if q != k and opens_left[q] > 0 and target not in taken[q]
        ]
        mine = sorted(
            (
                Alternative(member_ids[k], pool[q], score(k, q)[0])
                for q in shortlist
                if q != j and pool[q] not in taken[k] and pool[q] not in chosen_targets
            ),
            key=lambda alt: (-alt.score_ppm, alt.target),
        )[:3]
        entry = float(entry_of[pool_idx[j]]) + pen[k]
        own_entry = full.a_arg == k or entry <= full.a1
        full.add(k, entry, rows[j] + pen[k])
        added = two_hop([int(pool_idx[j])])
        reach_gain = float(weight[added & ~reach].sum())
        reach = reach | added
        why = f"{members[k].onchain_sat} sat on-chain, {len(taken[k])} channels" + note
        if not note and own_entry:
            why += "; payments enter and leave at this member (no internal hop)"
        opens.append(
            PlannedOpen(
                member=member_ids[k],
                target=target,
                amount_sat=amount[k],
                score_ppm=total_score,
                routed_gain_ppm=gain_ppm,
                reach_gain_ppm=reach_gain / total * PPM,
                why=why,
                next_targets=tuple(mine),
                other_members=tuple(sorted(others, key=lambda alt: (-alt.score_ppm, alt.member))),
            )
        )
        taken[k].add(target)
        chosen_targets.add(target)
        opens_left[k] -= 1
        star = top_member()
        robust = robust_cover(star)

    # Entries first: one channel alone routes nothing (a payment needs a cheap way in and a
    # way out), and a member without its own way in adds the internal hop to everything it
    # serves and leaves the fleet with one point of failure. So each member lacking an entry
    # opens the cheapest way in the fleet does not hold yet, richest member first.
    if rows is not None:
        for k in sorted(range(m_count), key=lambda q: (-members[q].onchain_sat, member_ids[q])):
            if full.a[k] < INF or opens_left[k] <= 0:
                continue
            options = [q for q in range(len(pool)) if pool[q] not in taken[k] | chosen_targets]
            if options:
                options.sort(key=lambda q: (float(entry_of[pool_idx[q]]), pool[q]))
                note = "; its own way in: the cheapest entry the fleet does not hold"
                accept(k, options[0], note, options[1:4])
    heap = build_heap() if rows is not None else []
    fresh: set[tuple[int, int]] = set()
    while heap:
        neg, _, target, k, j = heap[0]
        if opens_left[k] <= 0 or target in chosen_targets or target in taken[k]:
            heapq.heappop(heap)
            continue
        if (k, j) not in fresh:
            heapq.heapreplace(heap, (-score(k, j)[0], member_ids[k], target, k, j))
            fresh.add((k, j))
            continue
        if -neg < cfg.min_score_ppm:
            break
        heapq.heappop(heap)
        best_entry = full.a1
        # The member's next best targets: its best remaining bounds, re-scored in accept.
        shortlist = [q for _, _, _, kk, q in heapq.nsmallest(8 * m_count, heap) if kk == k][:4]
        accept(k, j, "", shortlist)
        fresh = set()
        if full.a1 < best_entry:
            heap = build_heap()
    importance = {
        member_ids[k]: (full.value - full._value(full.without(k))) / total * PPM
        for k in range(m_count)
    }
    top = max(importance.values(), default=0.0)
    kept = 1.0 - top / (full.value / total * PPM) if full.value > 0 else 1.0
    # Nothing chosen: say why of each candidate (its best score, what the greedy last saw, is
    # under the minimum; or nobody can pay for an open), not that it lost to other opens.
    best_left: dict[NodeId, float] = {}
    for neg, _, target, _, _ in heap:
        best_left[target] = max(best_left.get(target, -INF), -neg)
    left_reason = "lower-gain" if opens else "no-gain" if funded else "no-funds"
    in_pool_left = [
        (float(graph.capacity_sat[graph.index[t]]), t, _left_detail(left_reason, t, best_left, cfg))
        for t in pool
        if t not in chosen_targets
    ]
    if in_pool_left:
        reasons[left_reason] = in_pool_left
    not_pool = int(eligible.sum()) - len(pool)
    left_out = {
        reason: (len(items), tuple((t, d) for _, t, d in sorted(items, key=lambda x: -x[0])[:5]))
        for reason, items in reasons.items()
    }
    if not_pool > 0:
        left_out["not-a-candidate"] = (not_pool, ())
    reach_after = float(weight[reach].sum())
    return Plan(
        opens=tuple(opens),
        routed_before_ppm=routed_before / total * PPM,
        routed_after_ppm=full.value / total * PPM,
        reach_before_ppm=reach_before / total * PPM,
        reach_after_ppm=reach_after / total * PPM,
        importance_ppm=importance,
        kept_without_top=kept,
        left_out=left_out,
    )


def _left_detail(
    reason: str, target: NodeId, best: Mapping[NodeId, float], cfg: PlannerConfig
) -> str:
    if reason == "lower-gain":
        return "scored below the chosen opens"
    if reason == "no-funds":
        return f"no member has {cfg.min_channel_sat + cfg.open_fee_sat} sat spare for an open"
    score = best.get(target)
    if score is None:
        return "every member with funds already has a channel to it"
    return f"scores at most {score:.1f} ppm, under min_score_ppm {cfg.min_score_ppm:g}"


def _exclusion(
    graph: PlanGraph,
    i: int,
    node: NodeId,
    cfg: PlannerConfig,
    is_member: BoolArray,
    banned: set[NodeId],
    saturated: set[NodeId],
    newest_block: int,
) -> tuple[str | None, str]:
    if is_member[i]:
        return "member", ""
    if node in banned:
        return "banned", "banned by the fleet"
    if node in saturated:
        return "saturated", "the fleet holds its saturation share"
    channels, capacity = int(graph.channels[i]), int(graph.capacity_sat[i])
    if channels < cfg.min_target_channels or capacity < cfg.min_target_capacity_sat:
        return "too-small", f"{channels} channels, {capacity} sat"
    if graph.disabled_ratio[i] > cfg.max_disabled_ratio:
        return "unreliable", f"{graph.disabled_ratio[i]:.0%} of its channels disabled"
    newest = newest_block
    first = int(graph.first_block[i])
    if first and newest - first < cfg.min_age_blocks:
        return "unreliable", f"oldest channel {newest - first} blocks old"
    return None, ""


__all__ = ["Alternative", "Plan", "PlanMember", "PlannedOpen", "PlannerConfig", "plan"]
