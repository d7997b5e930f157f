"""The ``revoke-member`` action: its kind and its executor, which revokes through the
``hive-revoke`` path when this node is an admin of the hive and is refused otherwise.

Strategy gossip proposes it when a member's report is shown false (hive/actors/strategy.py,
docs/REPUTATION.md "A report shown false"). Only the operator decides it, in every mode
(``operator_decides``): the evidence can be wrong in ways no hard limit bounds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from hive.governance.api import ExecutionFailed
from hive.governance.kinds import KindSpec, _only, node_id_param, text_param
from hive.governance.proposal import Cost, ExecutionResult, Proposal
from hive.node.port import NodeId
from hive.protocol.membership.roster import MemberStatus

Revoke = Callable[[NodeId, str], Awaitable[Any]]


REVOKE_MEMBER = "revoke-member"


def _revoke_params(params: Mapping[str, Any]) -> dict[str, Any]:
    _only(params, REVOKE_MEMBER, {"member"}, {"reason"})
    return {
        "member": node_id_param(params, "member", REVOKE_MEMBER),
        "reason": text_param(params, "reason", REVOKE_MEMBER),
    }


REVOKE_MEMBER_SPEC = KindSpec(
    REVOKE_MEMBER,
    _revoke_params,
    "Revoke member from the hive (hive-revoke) for reason; only an admin's node can execute it.",
    # A report can look false for reasons no limit bounds (our own payments outside Hive
    # through the issuer, docs/REPUTATION.md): a person decides, in every mode.
    operator_decides=True,
)


class RevokeHost(Protocol):
    """What the executor needs: our membership, and the hive-revoke path the runtime sets."""

    membership: Any
    revoke: Revoke | None


class RevokeMemberExecutor:
    """Revokes through the hive-revoke path when this node is an admin; refused otherwise."""

    def __init__(self, strategy: RevokeHost) -> None:
        self.strategy = strategy

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        m = self.strategy.membership
        roster = m.roster
        member = proposal.params["member"]
        if roster is None or not roster.is_admin(m.node_id):
            raise ExecutionFailed(
                "this node is not an admin of the hive: only an admin's node can revoke "
                f"{member}; show an admin the evidence (hive-why {proposal.id})"
            )
        revoke = self.strategy.revoke
        if revoke is None:
            raise ExecutionFailed("the hive-revoke path is not wired on this node")
        # The runtime's hive-revoke path raises ExecutionFailed with the command's refusal.
        await revoke(member, proposal.params.get("reason", "") or "revoked")
        return ExecutionResult(cost=Cost(), calls=(f"hive-revoke {member}",), detail={})

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        roster = self.strategy.membership.roster
        member = bytes.fromhex(proposal.params["member"])
        if roster is not None and roster.status(member) is MemberStatus.REVOKED:
            return ExecutionResult(cost=Cost(), calls=(), detail={"reconciled": True})
        return None
