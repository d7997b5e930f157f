"""`hive-reputation [member]`: every member's contribution score with its inputs
(hive/fleet/reputation.py, gathered by hive/actors/reputation.py; definition, treatment of new
members and the score's effect in docs/REPUTATION.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive.actors.membership.roster import Membership
from hive.actors.rebalancing.rebalancer import Rebalancer
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params


async def reputation_command(
    membership: Membership, rebalancer: Rebalancer, params: Mapping[str, Any]
) -> JsonDict:
    p = Params("hive-reputation", params, ("member",))
    wanted = p.node_id("member", required=False)
    if membership.roster is None or not membership.is_member:
        raise CommandError(CommandError.NOT_FOUND, "hive-reputation: this node is in no hive")
    scores = [
        s.to_json()
        for s in await rebalancer.standings.refresh()
        if wanted is None or s.member == wanted
    ]
    if wanted is not None and not scores:
        raise CommandError(CommandError.NOT_FOUND, f"hive-reputation: {wanted} is not a member")
    return {"members": scores}
