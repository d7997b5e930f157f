"""Which channels each scenario's nodes open, from the same public graph and the same capital.

* **Hive fleet** (:func:`fleet_opens`): the members first open a ring of ``min_channel_sat``
  channels between them (the zero-fee internal hops the planner's cost model assumes), then the
  real coverage planner (:func:`hive.fleet.planner.plan`) assigns every member's remaining
  capital, in one plan, as the companions would compute it.
* **Whale** (:func:`fleet_opens` with one member): the same planner for one node holding the
  fleet's whole capital; it is the best channel-choice rule we have.
* **Uncoordinated** (:func:`autopilot_opens`): each node alone, the way CLBOSS's candidate
  finders choose (CLBOSS documents them as finding "popular" nodes and their peers, and
  nodes far from us by distance, then rank candidates by their earned-fee track record). Here:
  candidates are the 100 nodes with the most channels ("popular") and their peers; the first
  channel goes to a popular node, each next one to a candidate that is not already a peer of
  the node's peers (distance), ranked by its number of distinct peers times the square root of
  (1 + the mean fee its channels announce, ppm; the visible part of a fee track record) times
  the node's own seeded draw (uniform 0..1). No node
  knows what the others chose, so they can overlap.

Channel sizes follow the planner's budget rule for everyone: the capital minus a reserve, split
evenly across the channels, at most ``max_channel_sat`` each; every open costs
``open_fee_sat`` on chain.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Sequence

import attrs
import numpy as np

from hive.fleet.plangraph import PlanGraph
from hive.fleet.planner import Plan, PlanMember, PlannerConfig, plan
from hive.scenarios.flow import Flow


@attrs.frozen
class Open:
    a: int  # the scenario node (node1 of the new channel)
    b: int
    capacity_sat: int


@attrs.frozen
class Placement:
    opens: tuple[Open, ...]
    plan: Plan | None  # the planner's figures (fleet and whale)


def scenario_node_id(label: str, i: int) -> str:
    """A stable, made-up compressed-key-shaped id for scenario node ``i``."""
    return "02" + hashlib.sha256(f"hive-scenarios/{label}/{i}".encode()).hexdigest()


def _plan_graph(
    flow: Flow, node_ids: Sequence[str], scid_blocks: np.ndarray, amount_msat: int
) -> PlanGraph:
    blocks = np.zeros(len(flow.node1), dtype=np.int64)
    blocks[: len(scid_blocks)] = scid_blocks
    blocks[len(scid_blocks) :] = int(scid_blocks.max(initial=0))
    return PlanGraph.from_arrays(
        node_ids,
        flow.node1,
        flow.node2,
        flow.cap_msat // 1000,
        blocks,
        flow.base,
        flow.ppm,
        np.ones(len(flow.routable), dtype=bool),
        flow.routable,
        amount_msat=amount_msat,
    )


def opens_count(spare_sat: int, cfg: PlannerConfig) -> int:
    """How many channels of at most ``max_channel_sat`` the spare capital funds."""
    per = cfg.max_channel_sat + cfg.open_fee_sat
    return max(1, -(-max(0, spare_sat - cfg.reserve_sat) // per))


def fleet_opens(
    flow: Flow,
    node_ids: Sequence[str],
    scid_blocks: np.ndarray,
    members: Sequence[int],
    capital_sat: int,
    cfg: PlannerConfig,
) -> Placement:
    """The ring (when more than one member) and the planner's opens, in that order."""
    ring: list[Open] = []
    if len(members) > 1:
        for k, m in enumerate(members):
            nxt = members[(k + 1) % len(members)]
            if len(members) == 2 and k == 1:
                break
            ring.append(Open(m, nxt, cfg.min_channel_sat))
    spent = dict.fromkeys(members, 0)
    for o in ring:
        spent[o.a] += o.capacity_sat + cfg.open_fee_sat
    peers: dict[int, set[int]] = {m: set() for m in members}
    for o in ring:
        peers[o.a].add(o.b)
        peers[o.b].add(o.a)
    spare = {m: capital_sat - spent[m] for m in members}
    per_member = max(opens_count(spare[m], cfg) for m in members)
    config = attrs.evolve(cfg, max_opens_per_member=per_member)
    for o in ring:  # the ring exists when the planner runs, at zero fee between members
        flow.add_channel(o.a, o.b, o.capacity_sat, o.capacity_sat * 500, (0, 0), (0, 0))
    graph = _plan_graph(flow, node_ids, scid_blocks, cfg.amount_msat)
    plan_members = [
        PlanMember(
            node_id=node_ids[m],
            peers=frozenset(node_ids[p] for p in peers[m]),
            onchain_sat=spare[m],
        )
        for m in members
    ]
    result = plan(graph, plan_members, config=config)
    index = {node_ids[m]: m for m in members}
    target_index = graph.index
    chosen = [Open(index[o.member], target_index[o.target], o.amount_sat) for o in result.opens]
    return Placement(tuple(ring) + tuple(chosen), result)


def _hops_from(flow: Flow, starts: set[int], limit: int = 6) -> dict[int, int]:
    dist = dict.fromkeys(starts, 0)
    queue = deque(starts)
    adj_ptr, adj = flow.indptr, flow.pair_dst
    while queue:
        u = queue.popleft()
        if dist[u] >= limit:
            continue
        for v in adj[adj_ptr[u] : adj_ptr[u + 1]]:
            vi = int(v)
            if vi not in dist:
                dist[vi] = dist[u] + 1
                queue.append(vi)
    return dist


def autopilot_opens(
    flow: Flow,
    members: Sequence[int],
    capital_sat: int,
    cfg: PlannerConfig,
    seed: int,
    base_nodes: int,
) -> Placement:
    """Each member chooses alone (see the module docstring)."""
    degree = np.bincount(flow.node1, minlength=flow.n) + np.bincount(flow.node2, minlength=flow.n)
    capacity = np.zeros(flow.n, dtype=np.int64)
    np.add.at(capacity, flow.node1, flow.cap_msat // 1000)
    np.add.at(capacity, flow.node2, flow.cap_msat // 1000)
    fee_sum = np.zeros(flow.n, dtype=np.float64)
    np.add.at(fee_sum, flow.src, np.where(flow.routable, flow.ppm, 0))
    mean_ppm = fee_sum / np.maximum(degree, 1)
    # Popular: the most distinct peers reachable over a routable channel (not the most
    # channels: the snapshot has clusters of nodes with hundreds of parallel channels).
    peers_count = np.diff(flow.indptr)
    popular = np.argsort(-peers_count[:base_nodes], kind="stable")[:100]
    pool: set[int] = {int(p) for p in popular}
    for p in popular:
        pool.update(int(v) for v in flow.pair_dst[flow.indptr[p] : flow.indptr[p + 1]])
    ok = [
        v
        for v in sorted(pool)
        if v < base_nodes
        and peers_count[v] >= cfg.min_target_channels
        and capacity[v] >= cfg.min_target_capacity_sat
    ]
    popular_set = {int(p) for p in popular}
    popular_ok = [v for v in ok if v in popular_set]
    opens: list[Open] = []
    count = opens_count(capital_sat, cfg)
    for m in members:
        rng = random.Random(f"autopilot/{seed}/{m}")
        size = min(cfg.max_channel_sat, (capital_sat - cfg.reserve_sat) // count - cfg.open_fee_sat)
        mine: set[int] = set()
        for k in range(count):
            draw = {v: rng.random() for v in ok}
            # the first channel to a popular node, the next ones to candidates that are not
            # already our peers' peers; ranked by peers x sqrt(fees announced), with our own draw
            among = popular_ok if k == 0 else ok
            dist = _hops_from(flow, mine, limit=2) if mine else {}
            best = max(
                (v for v in among if v not in mine),
                key=lambda v: (
                    min(dist.get(v, 2), 2),
                    float(peers_count[v]) * np.sqrt(1 + mean_ppm[v]) * draw[v],
                ),
            )
            mine.add(best)
            opens.append(Open(m, best, int(size)))
    return Placement(tuple(opens), None)
