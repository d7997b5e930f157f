"""`hive-reputation [member]`: every member's contribution score with its inputs
(hive/fleet/reputation.py; definition and treatment of new members in docs/REPUTATION.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive.actors.gossip.fleetstate import FleetState
from hive.actors.membership.roster import Membership
from hive.actors.rebalancing.rebalancer import Rebalancer
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.fleet.reputation import Inputs, score
from hive.store import rebalance as rb


async def reputation_command(
    membership: Membership,
    fleet: FleetState,
    rebalancer: Rebalancer,
    params: Mapping[str, Any],
) -> JsonDict:
    p = Params("hive-reputation", params, ("member",))
    wanted = p.node_id("member", required=False)
    roster = membership.roster
    if roster is None or not membership.is_member:
        raise CommandError(CommandError.NOT_FOUND, "hive-reputation: this node is in no hive")
    observed = {
        t.member: t.provided_msat
        for t in await rebalancer.store.run("liquidity_totals", rb.liquidity_totals)
    }
    now = rebalancer.now_ms()
    me = membership.node_id
    scores = []
    for node, record in sorted(roster.active().items()):
        member = node.hex()
        if wanted is not None and member != wanted:
            continue
        claimed_p: int | None
        claimed_c: int | None
        if member == me.hex():
            totals = rebalancer.totals
            claimed_p, claimed_c = totals.provided_msat, totals.consumed_msat
        else:
            entry = fleet.statemap.entry(member)
            held = None if entry is None else entry.state.rebalancing
            claimed_p = None if held is None else held.provided_msat
            claimed_c = None if held is None else held.consumed_msat
        inputs = Inputs(
            member=member,
            admitted_ms=record.body.admitted_ms,
            claimed_provided_msat=claimed_p,
            claimed_consumed_msat=claimed_c,
            observed_provided_msat=observed.get(member, 0),
        )
        scores.append(score(inputs, now).to_json())
    if wanted is not None and not scores:
        raise CommandError(CommandError.NOT_FOUND, f"hive-reputation: {wanted} is not a member")
    return {"members": scores}
