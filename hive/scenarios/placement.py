"""Which channels the scenarios' nodes open: the real planner, and a CLBOSS-like autopilot.

* **Planner** (:class:`Planner`): :func:`hive.fleet.planner.plan` over the run's public graph,
  memoised on its inputs. The fleet's members, the ``independent`` nodes and the whale call it
  (see :mod:`hive.scenarios.deciders` for who calls it with which view).
* **Autopilot** (:class:`Autopilot`, the ``uncoordinated`` nodes): each node alone, one open at
  a time, with CLBOSS's documented channel finders. *By popularity*: a popular node (the 100
  with the most distinct peers, drawn weighted by that count) is the patron and one of **its
  peers** is proposed (CLBOSS does not propose the popular node itself). *By distance*: the
  node farthest from ours by the fee-and-hop cost of reaching it over the public graph (the more
  distant, the more desirable). *By earned fee*: a peer of our peer that earned us the most
  fees so far. Each finder that has a proposal offers one; the node draws one of them. Every
  proposal must pass the planner's own target thresholds (``min_target_channels``,
  ``min_target_capacity_sat``). Not modelled: CLBOSS's investigation of candidates (connect
  and uptime checks), its ranking by the capacity it can reach through the candidate, and its
  fee adjustments. No node knows what the others chose, so they can overlap.

Channel sizes follow the planner's budget rule for everyone: the spare capital minus a reserve,
split evenly across the channels it funds, at most ``max_channel_sat`` each.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from hive.fleet.plangraph import PlanGraph, distances
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


class Autopilot:
    """The uncoordinated nodes' channel choice, one open at a time (see the module docstring)."""

    def __init__(
        self,
        flow: Flow,
        node_ids: Sequence[str],
        scid_blocks: np.ndarray,
        cfg: PlannerConfig,
        base_nodes: int,
    ) -> None:
        self.node_ids, self.scid_blocks, self.cfg = node_ids, scid_blocks, cfg
        self.peers_count = np.diff(flow.indptr)
        capacity = np.zeros(flow.n, dtype=np.int64)
        np.add.at(capacity, flow.node1, flow.cap_msat // 1000)
        np.add.at(capacity, flow.node2, flow.cap_msat // 1000)
        eligible = (self.peers_count >= cfg.min_target_channels) & (
            capacity >= cfg.min_target_capacity_sat
        )
        eligible[base_nodes:] = False
        self.eligible = eligible
        # Popular: the most distinct peers reachable over a routable channel (not the most
        # channels: the snapshot has clusters of nodes with hundreds of parallel channels).
        self.popular = np.argsort(-self.peers_count[:base_nodes], kind="stable")[:100]

    def _peer_of(self, flow: Flow, patron: int, mine: set[int], rng: random.Random) -> int | None:
        peers = flow.pair_dst[flow.indptr[patron] : flow.indptr[patron + 1]]
        ok = [int(v) for v in peers if self.eligible[v] and int(v) not in mine]
        return rng.choice(ok) if ok else None

    def candidates(
        self,
        flow: Flow,
        node_peers: set[int],
        rng: random.Random,
        exclude: set[int],
        earned: dict[int, int],
    ) -> dict[str, int]:
        """One proposal per finder that has one: by popularity, by distance, by earned fee."""
        skip = node_peers | exclude
        out: dict[str, int] = {}
        weights = self.peers_count[self.popular].astype(np.float64)
        patron = int(rng.choices(list(self.popular), weights=list(weights))[0])
        found = self._peer_of(flow, patron, skip, rng)
        if found is not None:
            out["popularity"] = found
        if node_peers:
            graph = _plan_graph(flow, self.node_ids, self.scid_blocks, self.cfg.amount_msat)
            matrix = graph.matrix(
                hop_cost_msat=self.cfg.hop_cost_msat, excluded=np.zeros(graph.n, dtype=bool)
            )
            peers = [p for p in sorted(node_peers) if p < graph.n]
            dist = distances(matrix, peers, min_only=True)[0]
            ok = self.eligible[: graph.n] & np.isfinite(dist)
            ok[list(skip)] = False
            if ok.any():
                far = np.where(ok, dist, -1.0)
                best = np.flatnonzero(far == far.max())
                out["distance"] = int(best[rng.randrange(len(best))])
        if earned and max(earned.values()) > 0:
            lucrative = max(earned, key=lambda p: (earned[p], -p))
            found = self._peer_of(flow, lucrative, skip, rng)
            if found is not None:
                out["earned-fee"] = found
        return out

    def choose(
        self,
        flow: Flow,
        node_peers: set[int],
        rng: random.Random,
        exclude: set[int],
        earned: dict[int, int] | None = None,
    ) -> int | None:
        """The next peer: one finder's proposal, drawn with the node's own seed."""
        found = self.candidates(flow, node_peers, rng, exclude, earned or {})
        if not found:
            return None
        return found[rng.choice(sorted(found))]


def scenario_node_id(label: str, i: int) -> str:
    """A stable, made-up compressed-key-shaped id for scenario node ``i``."""
    return "02" + hashlib.sha256(f"hive-scenarios/{label}/{i}".encode()).hexdigest()
