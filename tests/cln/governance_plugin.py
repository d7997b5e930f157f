"""The production runtime plus one test producer command, for governance tests through the
lightningd double (there is no producer of proposals under CLN until the planner lands).

Run as ``python tests/cln/governance_plugin.py``: the same :func:`hive.cln.plugin.main`, bridge,
ClnNode, gateway and :class:`hive.runtime.Runtime`, with ``hive-test-propose`` added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hive.cln.plugin import main
from hive.commands import CATALOGUE, Command, CommandError, CommandSpec, JsonDict
from hive.governance import Cost, Draft, Refused
from hive.runtime import Runtime

PROPOSE = CommandSpec(
    "hive-test-propose",
    "peer amount_sat host port [feerate_perkw]",
    "Submit an open-channel proposal (test).",
)


class GovernanceTestRuntime(Runtime):
    def commands(self) -> Sequence[Command]:
        return [*super().commands(), Command(PROPOSE, self._propose)]

    async def _propose(self, params: Mapping[str, Any]) -> JsonDict:
        if self.engine is None:
            raise CommandError(CommandError.NOT_READY, "starting")
        amount = int(params["amount_sat"])
        open_params: dict[str, Any] = {
            "peer": params["peer"],
            "amount_sat": amount,
            "host": params["host"],
            "port": int(params["port"]),
        }
        if params.get("feerate_perkw") is not None:
            open_params["feerate_perkw"] = int(params["feerate_perkw"])
        draft = Draft(
            kind="open-channel",
            params=open_params,
            reason="test producer: open to a well-connected peer",
            cost=Cost(capital_sat=amount, onchain_fee_sat=2_000),
            proposer="test-producer",
            evidence={"why": "a test"},
            expected_value_sat=1_200,
            confidence=0.8,
            target=params["peer"],
        )
        try:
            status = await self.engine.submit(draft)
        except Refused as exc:
            raise CommandError(CommandError.REFUSED, str(exc)) from None
        return status.to_json()


if __name__ == "__main__":
    main(GovernanceTestRuntime, (*CATALOGUE, PROPOSE))
