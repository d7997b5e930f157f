"""`hive-rebalance`: what the rebalancer forecasts and decided, the member fee policy, and the
liquidity each member provided and consumed over a period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hive.actors.feepolicy import FeePolicyActor
from hive.actors.rebalancer import Rebalancer
from hive.commands import CommandError, JsonDict
from hive.store import rebalance as rb

MAX_SINCE_HOURS = 24 * 366


async def rebalance_command(
    rebalancer: Rebalancer, feepolicy: FeePolicyActor, params: Mapping[str, Any]
) -> JsonDict:
    unknown = sorted(set(params) - {"since_hours", "run"})
    if unknown:
        raise CommandError(CommandError.INVALID_PARAMS, f"hive-rebalance: unknown {unknown}")
    since_hours = _hours(params.get("since_hours", 168))
    run = _flag(params.get("run", False))
    ran: list[dict[str, Any]] | None = None
    if run:
        if not rebalancer.membership.is_member:
            raise CommandError(CommandError.NOT_FOUND, "hive-rebalance: this node is in no hive")
        ran = await rebalancer.step()
    now = rebalancer.now_ms()
    since = now - int(since_hours * 3_600_000)
    totals = await rebalancer.store.run(
        "liquidity_totals", lambda c: rb.liquidity_totals(c, since_ms=since)
    )
    recent = await rebalancer.store.run("rebalances", lambda c: rb.rebalances(c, limit=20))
    out: JsonDict = {
        **rebalancer.status(),
        "member_fees": feepolicy.status(),
        "since_hours": since_hours,
        "liquidity_by_member": [attrs.asdict(t) for t in totals],
        "rebalances": [r.to_json() for r in recent],
    }
    if ran is not None:
        out["ran"] = ran
    return out


def _hours(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise CommandError(
            CommandError.INVALID_PARAMS, f"since_hours must be a number, got {raw!r}"
        )
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(
            CommandError.INVALID_PARAMS, f"since_hours must be a number, got {raw!r}"
        ) from None
    if not 0 < value <= MAX_SINCE_HOURS:
        raise CommandError(
            CommandError.INVALID_PARAMS, f"since_hours must be in (0, {MAX_SINCE_HOURS}]"
        )
    return value


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "1", 1):
        return True
    if raw in ("false", "0", 0):
        return False
    raise CommandError(CommandError.INVALID_PARAMS, f"run must be true or false, got {raw!r}")
