"""Every active member's contribution score, gathered in one place (issue 12).

:class:`Standings` collects the inputs of :func:`hive.fleet.reputation.score` (the roster's
admission times, each member's signed ``RebalanceTotals`` from its state record, our own totals,
and the ``provided`` rows of our ``liquidity_shares``), scores every active member and keeps the
result. ``hive-reputation`` shows it; the rebalancer refreshes it at each planning pass and reads
:meth:`leeches` to lower their priority, and the planner reads :meth:`leeches` to weigh their
channels less (docs/REPUTATION.md, "The score's effect"). :meth:`leeches` is a plain read of the
last result, so a caller on any task may use it without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hive.fleet.reputation import LEECH, Inputs, ReputationRules, Score, score
from hive.fleet.statemap import StateMap
from hive.node.port import NodeId
from hive.protocol.gossip.state import RebalanceTotals
from hive.store import Store
from hive.store import rebalance as rb


class Standings:
    def __init__(
        self,
        *,
        membership: Any,
        statemap: StateMap,
        store: Store,
        own_totals: Callable[[], RebalanceTotals],
        now_ms: Callable[[], int],
        rules: ReputationRules | None = None,
    ) -> None:
        self.rules = rules or ReputationRules()
        self.membership = membership
        self.statemap = statemap
        self.store = store
        self.own_totals = own_totals
        self.now_ms = now_ms
        self._scores: dict[NodeId, Score] = {}
        self._leeches: frozenset[NodeId] = frozenset()

    async def refresh(self) -> list[Score]:
        """Score every active member now (sorted by node id) and keep the result."""
        roster = self.membership.roster
        if roster is None or not self.membership.is_member:
            self._scores, self._leeches = {}, frozenset()
            return []
        observed = {
            t.member: t.provided_msat
            for t in await self.store.run("liquidity_totals", rb.liquidity_totals)
        }
        now = self.now_ms()
        me = self.membership.node_id.hex()
        scores: dict[NodeId, Score] = {}
        for node, record in sorted(roster.active().items()):
            member = node.hex()
            claimed: RebalanceTotals | None
            if member == me:
                claimed = self.own_totals()
            else:
                entry = self.statemap.entry(member)
                claimed = None if entry is None else entry.state.rebalancing
            inputs = Inputs(
                member=member,
                admitted_ms=record.body.admitted_ms,
                claimed_provided_msat=None if claimed is None else claimed.provided_msat,
                claimed_consumed_msat=None if claimed is None else claimed.consumed_msat,
                observed_provided_msat=observed.get(member, 0),
            )
            scores[member] = score(inputs, now, self.rules)
        self._scores = scores
        self._leeches = frozenset(m for m, s in scores.items() if s.standing == LEECH)
        return list(scores.values())

    def leeches(self) -> frozenset[NodeId]:
        """Members whose standing was ``leech`` at the last refresh (``new`` never is)."""
        return self._leeches

    def standing(self, member: NodeId) -> str | None:
        found = self._scores.get(member)
        return None if found is None else found.standing
