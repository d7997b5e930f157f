"""`hive-bans`, `hive-ban` and `hive-unban`: the fleet's signed bans on this node.

A fleet ban or lift goes through the decision engine (a ``ban-peer`` / ``unban-peer``
proposal: the operator approves it in advisor mode); ``hive-unban local=true`` is the
operator's local override, which needs no one and wins on this node whatever the fleet says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive.actors.bans import PROPOSER, Bans
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.governance.api import Refused
from hive.governance.kinds import BAN_PEER, UNBAN_PEER
from hive.governance.proposal import Cost, Draft


async def bans_command(bans: Bans, params: Mapping[str, Any]) -> JsonDict:
    p = Params("hive-bans", params, ("peer",))
    peer = p.node_id("peer", required=False)
    out = bans.listing()
    if peer is not None:
        out["bans"] = [row for row in out["bans"] if row["peer"] == peer]
        out["banned"] = bans.is_banned(peer)
    return out


async def ban_command(bans: Bans, params: Mapping[str, Any]) -> JsonDict:
    p = Params("hive-ban", params, ("peer", "reason", "ttl_hours", "permanent"))
    peer = p.node_id("peer", required=True)
    assert peer is not None
    reason = p.text("reason", "banned by the operator") or "banned by the operator"
    draft_params: dict[str, Any] = {"peer": peer, "reason": reason, "rule": "operator"}
    if "ttl_hours" in p.values:
        hours = p.integer("ttl_hours", 0, low=1, high=int(bans.config.max_ttl_s // 3600))
        draft_params["ttl_s"] = hours * 3600
    if p.flag("permanent"):
        draft_params["permanent"] = True
    return await _submit(bans, BAN_PEER.name, draft_params, f"operator: {reason}")


async def unban_command(bans: Bans, params: Mapping[str, Any]) -> JsonDict:
    p = Params("hive-unban", params, ("peer", "local", "undo"))
    peer = p.node_id("peer", required=True)
    assert peer is not None
    if p.flag("local"):
        undo = p.flag("undo")
        await bans.set_override(peer, not undo, "hive-unban local")
        return {"peer": peer, "local_override": not undo, "banned": bans.is_banned(peer)}
    return await _submit(bans, UNBAN_PEER.name, {"peer": peer}, "operator: lift the ban")


async def _submit(bans: Bans, kind: str, params: dict[str, Any], reason: str) -> JsonDict:
    if not bans.membership.is_member:
        raise CommandError(CommandError.NOT_FOUND, f"{kind}: this node is in no hive")
    try:
        status = await bans.engine.submit(
            Draft(
                kind=kind,
                params=params,
                reason=reason,
                cost=Cost(),
                proposer=f"{PROPOSER}:operator",
                evidence={"rule": "operator"},
                target=params["peer"],
            )
        )
    except Refused as exc:
        raise CommandError(CommandError.REFUSED, f"{kind}: {exc}") from None
    return {"proposal": status.id, "state": status.state.value, "kind": kind}
