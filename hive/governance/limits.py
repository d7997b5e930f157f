"""Hard limits: what no decider (operator, autonomous rule, oracle) can make the node exceed.

Each field of :class:`Limits` is one limit; its name is what a refusal names (``held_by``,
``hive-budget``), and its option is ``hive-limit-<field with - for _>`` (see
:data:`LIMIT_OPTIONS`). Values are validated by :func:`parse_limit` (pure, for ``init``):
whole, non-negative and below an absurdity bound, so a typo cannot open the floodgates.

Daily caps are over a rolling 24 hours of reservations; per-action caps bound one proposal's
cost; action counts are per kind, over a rolling hour and day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hive.governance.proposal import MAX_SAT


@attrs.frozen
class Limits:
    # sats paid to miners
    daily_onchain_fee_sat: int = 50_000
    action_onchain_fee_sat: int = 20_000
    # sats moved into channels by opens
    daily_capital_sat: int = 10_000_000
    action_capital_sat: int = 5_000_000
    # sats paid to forwarding nodes (rebalances)
    daily_routing_fee_sat: int = 10_000
    action_routing_fee_sat: int = 2_000
    # fee rate cap of one rebalance, parts per million of the amount moved
    max_rebalance_ppm: int = 1_000
    # actions of one kind started per rolling hour / day
    actions_per_hour: int = 6
    actions_per_day: int = 24
    # proposals less sure than this never execute (percent, 0-100)
    min_confidence_pct: int = 50
    # on-chain sats opens may never touch
    onchain_reserve_sat: int = 100_000
    # highest feerate an open may be proposed at (sat per 1000 weight units)
    max_open_feerate_perkw: int = 12_500

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


# Absurdity bounds: a limit above these is a typo, refused at init.
_BOUNDS: dict[str, int] = {
    "daily_onchain_fee_sat": 10_000_000,
    "action_onchain_fee_sat": 10_000_000,
    "daily_capital_sat": MAX_SAT,
    "action_capital_sat": MAX_SAT,
    "daily_routing_fee_sat": 10_000_000,
    "action_routing_fee_sat": 10_000_000,
    "max_rebalance_ppm": 100_000,
    "actions_per_hour": 1_000,
    "actions_per_day": 10_000,
    "min_confidence_pct": 100,
    "onchain_reserve_sat": MAX_SAT,
    "max_open_feerate_perkw": 1_000_000,
}

LIMIT_OPTIONS: dict[str, str] = {
    "hive-limit-" + field.name.replace("_", "-"): field.name for field in attrs.fields(Limits)
}
"""Option name -> Limits field."""

OPERATOR_DECIDES = "operator_decides"

DESCRIPTIONS: dict[str, str] = {
    "daily_onchain_fee_sat": "on-chain fees per rolling 24 h",
    "action_onchain_fee_sat": "on-chain fee of one action",
    "daily_capital_sat": "channel capital opened per rolling 24 h",
    "action_capital_sat": "capital of one open",
    "daily_routing_fee_sat": "routing fees paid per rolling 24 h",
    "action_routing_fee_sat": "routing fee of one rebalance",
    "max_rebalance_ppm": "fee rate of one rebalance (ppm of the amount)",
    "actions_per_hour": "actions of one kind per rolling hour",
    "actions_per_day": "actions of one kind per rolling 24 h",
    "min_confidence_pct": "lowest proposal confidence that may execute (percent)",
    "onchain_reserve_sat": "on-chain sats that opens never touch",
    "max_open_feerate_perkw": "highest open feerate (sat per 1000 weight)",
    # Not a budget: the kind waits for the operator in every mode (KindSpec.operator_decides).
    OPERATOR_DECIDES: "this kind is decided by the operator only (hive-approve), in every mode",
}


class LimitInvalid(ValueError):
    pass


def parse_limit(field: str, raw: Any) -> int:
    """One limit's value from an option (an int, or text of one); raises LimitInvalid."""
    high = _BOUNDS[field]
    value = raw
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text.isdigit():
            raise LimitInvalid(f"must be a whole number from 0 to {high}, got {raw!r}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise LimitInvalid(f"must be a whole number from 0 to {high}, got {raw!r}")
    return value


def limits_from_options(options: Mapping[str, Any]) -> Limits:
    """Limits from ``hive-limit-*`` options (absent or empty: the default); raises LimitInvalid
    naming the option."""
    values: dict[str, int] = {}
    for option, field in LIMIT_OPTIONS.items():
        raw = options.get(option)
        if raw is None or raw == "":
            continue
        try:
            values[field] = parse_limit(field, raw)
        except LimitInvalid as exc:
            raise LimitInvalid(f"{option} {exc}") from None
    limits = Limits(**values)
    for daily, action in (
        ("daily_onchain_fee_sat", "action_onchain_fee_sat"),
        ("daily_capital_sat", "action_capital_sat"),
        ("daily_routing_fee_sat", "action_routing_fee_sat"),
    ):
        if getattr(limits, action) > getattr(limits, daily):
            raise LimitInvalid(
                f"hive-limit-{action.replace('_', '-')} ({getattr(limits, action)}) is above "
                f"hive-limit-{daily.replace('_', '-')} ({getattr(limits, daily)})"
            )
    if limits.actions_per_hour > limits.actions_per_day:
        raise LimitInvalid(
            f"hive-limit-actions-per-hour ({limits.actions_per_hour}) is above "
            f"hive-limit-actions-per-day ({limits.actions_per_day})"
        )
    return limits
