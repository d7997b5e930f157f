"""Reservation arithmetic: may this proposal start now, and what is spent, reserved and left.

The store keeps one :class:`BudgetEntry` per execution: ``reserved`` when it starts (its
estimated cost), then ``spent`` (with the real cost) or ``released`` (it failed; with what it
still cost, usually nothing). :func:`check` is the one rule deciding whether a proposal may
reserve; the store runs it inside the same ``BEGIN IMMEDIATE`` transaction that inserts the
reservation, so two executions can never both pass against the same budget.

Invariant (tested by a ``RuleBasedStateMachine`` over the real store): for every category,
``spent in the window + reserved <= daily cap``, provided no execution costs more than it
reserved (executors refuse to; an overrun is recorded truthfully and then blocks further
reservations until the window moves on).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from hive.governance.kinds import KindSpec
from hive.governance.limits import Limits
from hive.governance.proposal import Cost, Proposal

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CATEGORIES = ("onchain_fee_sat", "capital_sat", "routing_fee_sat")
_DAILY = {c: "daily_" + c for c in CATEGORIES}
_ACTION = {c: "action_" + c for c in CATEGORIES}


class EntryState(enum.Enum):
    RESERVED = "reserved"
    SPENT = "spent"
    RELEASED = "released"


@attrs.frozen
class BudgetEntry:
    proposal_id: str
    kind: str
    at_ms: int  # when it was reserved
    state: EntryState
    cost: Cost  # reserved: the estimate; spent/released: what it really cost


@attrs.frozen
class Usage:
    """Totals over the rolling window ending at ``now_ms``."""

    spent: Mapping[str, int]  # per category, settled in the last 24 h
    reserved: Mapping[str, int]  # per category, every open reservation (whatever its age)
    actions_hour: Mapping[str, int]  # per kind, executions started in the last hour
    actions_day: Mapping[str, int]  # per kind, in the last 24 h
    reserved_count: int

    def used(self, category: str) -> int:
        return self.spent.get(category, 0) + self.reserved.get(category, 0)

    def to_json(self, limits: Limits) -> dict[str, Any]:
        categories = {}
        for c in CATEGORIES:
            cap = getattr(limits, _DAILY[c])
            categories[c] = {
                "spent_24h": self.spent.get(c, 0),
                "reserved": self.reserved.get(c, 0),
                "daily_cap": cap,
                "left": max(cap - self.used(c), 0),
            }
        return {
            **categories,
            "reservations_open": self.reserved_count,
            "actions_last_hour": dict(sorted(self.actions_hour.items())),
            "actions_last_24h": dict(sorted(self.actions_day.items())),
        }


def usage(entries: Iterable[BudgetEntry], now_ms: int) -> Usage:
    spent: Counter[str] = Counter()
    reserved: Counter[str] = Counter()
    hour: Counter[str] = Counter()
    day: Counter[str] = Counter()
    reserved_count = 0
    for e in entries:
        recent = e.at_ms > now_ms - DAY_MS
        if e.state is EntryState.RESERVED:
            reserved_count += 1
            for c in CATEGORIES:
                reserved[c] += getattr(e.cost, c)
        elif recent:
            for c in CATEGORIES:
                spent[c] += getattr(e.cost, c)
        # Every started action counts against the rate, whether it succeeded or not.
        if recent or e.state is EntryState.RESERVED:
            day[e.kind] += 1
            if e.at_ms > now_ms - HOUR_MS:
                hour[e.kind] += 1
    return Usage(dict(spent), dict(reserved), dict(hour), dict(day), reserved_count)


def check(
    limits: Limits,
    used: Usage,
    proposal: Proposal,
    spec: KindSpec,
    *,
    onchain_balance_sat: int | None,
) -> str | None:
    """The name of the first hard limit ``proposal`` would break, or None if it may start.

    ``onchain_balance_sat`` is the node's confirmed on-chain balance (needed only for kinds that
    spend on chain; None there means unknown, which refuses as ``onchain_reserve_sat``).
    """
    cost = proposal.cost
    if proposal.confidence * 100 < limits.min_confidence_pct:
        return "min_confidence_pct"
    for c in CATEGORIES:
        if getattr(cost, c) > getattr(limits, _ACTION[c]):
            return _ACTION[c]
    for c in CATEGORIES:
        if getattr(cost, c) and used.used(c) + getattr(cost, c) > getattr(limits, _DAILY[c]):
            return _DAILY[c]
    if spec.is_payment and (cost.ppm is None or cost.ppm > limits.max_rebalance_ppm):
        return "max_rebalance_ppm"
    if used.actions_hour.get(proposal.kind, 0) + 1 > limits.actions_per_hour:
        return "actions_per_hour"
    if used.actions_day.get(proposal.kind, 0) + 1 > limits.actions_per_day:
        return "actions_per_day"
    if spec.spends_onchain:
        feerate = proposal.params.get("feerate_perkw")
        if isinstance(feerate, int) and feerate > limits.max_open_feerate_perkw:
            return "max_open_feerate_perkw"
        if onchain_balance_sat is None:
            return "onchain_reserve_sat"
        # Other open reservations have not left the balance yet: count them as gone.
        in_flight = used.reserved.get("capital_sat", 0) + used.reserved.get("onchain_fee_sat", 0)
        after = onchain_balance_sat - in_flight - cost.capital_sat - cost.onchain_fee_sat
        if after < limits.onchain_reserve_sat:
            return "onchain_reserve_sat"
    return None


def overrun(reserved: Cost, actual: Cost) -> list[str]:
    """Categories where an execution cost more than it reserved (recorded in the ledger)."""
    return [c for c in CATEGORIES if getattr(actual, c) > getattr(reserved, c)]
