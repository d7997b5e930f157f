"""`hive-rebalance`: what the rebalancer forecasts and decided, the member fee policy, and the
liquidity each member provided and consumed over a period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hive.actors.rebalancing.feepolicy import FeePolicyActor
from hive.actors.rebalancing.rebalancer import Rebalancer
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.errors import RouteNotFound
from hive.store import rebalance as rb

MAX_SINCE_HOURS = 24 * 366
MAX_MOVE_SAT = 16_777_215  # one channel's worth without wumbo


async def rebalance_command(
    rebalancer: Rebalancer, feepolicy: FeePolicyActor, params: Mapping[str, Any]
) -> JsonDict:
    unknown = sorted(set(params) - {"since_hours", "run", "out_peer", "in_peer", "amount_sat"})
    if unknown:
        raise CommandError(CommandError.INVALID_PARAMS, f"hive-rebalance: unknown {unknown}")
    move = [params.get(k) for k in ("out_peer", "in_peer", "amount_sat")]
    if any(v is not None for v in move):
        return await _propose(rebalancer, params)
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


async def _propose(rebalancer: Rebalancer, params: Mapping[str, Any]) -> JsonDict:
    """``hive-rebalance out_peer=.. in_peer=.. amount_sat=..``: an operator's move."""
    p = Params("hive-rebalance", params, ("out_peer", "in_peer", "amount_sat"))
    out_peer = p.node_id("out_peer", required=True)
    in_peer = p.node_id("in_peer", required=True)
    if "amount_sat" not in p.values:
        raise CommandError(CommandError.INVALID_PARAMS, "hive-rebalance: amount_sat is needed")
    amount_sat = p.integer("amount_sat", 0, low=1_000, high=MAX_MOVE_SAT)
    assert out_peer is not None
    assert in_peer is not None
    if out_peer == in_peer:
        raise CommandError(CommandError.INVALID_PARAMS, "out_peer and in_peer must differ")
    if not rebalancer.membership.is_member:
        raise CommandError(CommandError.NOT_FOUND, "hive-rebalance: this node is in no hive")
    try:
        return await rebalancer.propose(out_peer, in_peer, amount_sat * 1000)
    except RouteNotFound as exc:
        raise CommandError(CommandError.REFUSED, f"hive-rebalance: {exc}") from None


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
