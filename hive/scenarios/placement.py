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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from hive.fleet.plangraph import PlanGraph
from hive.fleet.planner import Plan, PlanMember, PlannerConfig, plan
from hive.scenarios.flow import Flow


def _plan_graph(
    flow: Flow, node_ids: Sequence[str], scid_blocks: np.ndarray, amount_msat: int
) -> PlanGraph:
    """The public graph as a member's node shows it: every channel of the snapshot, and the
    scenario's channels once they forward (pending and closed ones are not announced)."""
    blocks = np.zeros(len(flow.node1), dtype=np.int64)
    blocks[: len(scid_blocks)] = scid_blocks
    blocks[len(scid_blocks) :] = int(scid_blocks.max(initial=0))
    announced = np.ones(len(flow.routable), dtype=bool)
    announced[2 * len(scid_blocks) :] = flow.routable[2 * len(scid_blocks) :]
    return PlanGraph.from_arrays(
        node_ids,
        flow.node1,
        flow.node2,
        flow.cap_msat // 1000,
        blocks,
        flow.base,
        flow.ppm,
        announced,
        flow.routable,
        amount_msat=amount_msat,
    )


def opens_count(spare_sat: int, cfg: PlannerConfig) -> int:
    """How many channels of at most ``max_channel_sat`` the spare capital funds."""
    per = cfg.max_channel_sat + cfg.open_fee_sat
    return max(1, -(-max(0, spare_sat - cfg.reserve_sat) // per))


def can_open(spare_sat: int, cfg: PlannerConfig) -> bool:
    """Whether the planner's budget rule funds at least one channel from ``spare_sat``."""
    return spare_sat - cfg.reserve_sat >= cfg.min_channel_sat + cfg.open_fee_sat


class Planner:
    """The real planner (:func:`hive.fleet.planner.plan`) over a run's graph, memoised on its
    inputs. The planner is pure and deterministic, so equal inputs give the same plan: the
    cache changes nothing but the cost (members with the same view, seeds and scenarios that
    reach the same state share one computation)."""

    def __init__(self, node_ids: Sequence[str], scid_blocks: np.ndarray) -> None:
        self.scid_blocks = scid_blocks
        self.node_ids = node_ids
        self.cache: dict[Any, Plan] = {}
        self.computed = 0
        self.asked = 0

    def plan(
        self,
        flow: Flow,
        ids: Sequence[str],
        graph_key: Any,
        members: Sequence[PlanMember],
        cfg: PlannerConfig,
        *,
        banned: Iterable[str] = (),
        locked: Mapping[str, str] | None = None,
    ) -> Plan:
        """``graph_key`` must identify the announced scenario channels (and who is down)."""
        per_member = max((opens_count(m.onchain_sat, cfg) for m in members), default=1)
        config = attrs.evolve(cfg, max_opens_per_member=per_member)
        lock_items = tuple(sorted((locked or {}).items()))
        ordered = tuple(sorted(members, key=lambda m: m.node_id))
        key = (graph_key, ordered, config, tuple(sorted(set(banned))), lock_items)
        self.asked += 1
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        graph = _plan_graph(flow, ids, self.scid_blocks, cfg.amount_msat)
        result = plan(graph, members, config=config, banned=banned, locked=dict(lock_items))
        self.computed += 1
        self.cache[key] = result
        return result


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


class Autopilot:
    """The uncoordinated nodes' channel choice (see the module docstring), one open at a time."""

    def __init__(self, flow: Flow, base_nodes: int, cfg: PlannerConfig) -> None:
        degree = np.bincount(flow.node1, minlength=flow.n) + np.bincount(
            flow.node2, minlength=flow.n
        )
        capacity = np.zeros(flow.n, dtype=np.int64)
        np.add.at(capacity, flow.node1, flow.cap_msat // 1000)
        np.add.at(capacity, flow.node2, flow.cap_msat // 1000)
        fee_sum = np.zeros(flow.n, dtype=np.float64)
        np.add.at(fee_sum, flow.src, np.where(flow.routable, flow.ppm, 0))
        self.mean_ppm = fee_sum / np.maximum(degree, 1)
        # Popular: the most distinct peers reachable over a routable channel (not the most
        # channels: the snapshot has clusters of nodes with hundreds of parallel channels).
        self.peers_count = np.diff(flow.indptr)
        popular = np.argsort(-self.peers_count[:base_nodes], kind="stable")[:100]
        pool: set[int] = {int(p) for p in popular}
        for p in popular:
            pool.update(int(v) for v in flow.pair_dst[flow.indptr[p] : flow.indptr[p + 1]])
        self.ok = [
            v
            for v in sorted(pool)
            if v < base_nodes
            and self.peers_count[v] >= cfg.min_target_channels
            and capacity[v] >= cfg.min_target_capacity_sat
        ]
        popular_set = {int(p) for p in popular}
        self.popular_ok = [v for v in self.ok if v in popular_set]

    def choose(
        self, flow: Flow, mine: set[int], rng: random.Random, exclude: set[int]
    ) -> int | None:
        """The next peer for a node whose peers are ``mine`` (None: no candidate left)."""
        draw = {v: rng.random() for v in self.ok}
        among = [v for v in (self.ok if mine else self.popular_ok) if v not in mine | exclude]
        if not among:
            return None
        dist = _hops_from(flow, mine, limit=2) if mine else {}
        return max(
            among,
            key=lambda v: (
                min(dist.get(v, 2), 2),
                float(self.peers_count[v]) * np.sqrt(1 + self.mean_ppm[v]) * draw[v],
            ),
        )


def scenario_node_id(label: str, i: int) -> str:
    """A stable, made-up compressed-key-shaped id for scenario node ``i``."""
    return "02" + hashlib.sha256(f"hive-scenarios/{label}/{i}".encode()).hexdigest()
