"""The built-in executors: open a channel, set a fee, rebalance, through the node port only.

Each implements :class:`hive.governance.api.Executor` for one kind of
:mod:`hive.governance.kinds`, so the simulator and Core Lightning execute alike. Each keeps its
real cost within what the proposal reserved where it can choose (a rebalance route dearer than
its reserved fee is refused before paying), and reconciles an interrupted execution from what
the node itself reports:

* ``open-channel``: happened when the node has a channel with the peer of exactly the proposed
  capacity (opening or normal); its cost is then the capital plus the reserved on-chain fee
  (the real fee of a transaction we did not see finish is unknown: counting the estimate keeps
  the budget from being under-counted). A pre-existing channel of the same size also matches,
  which errs the safe way (spent, not released).
* ``set-fee``: happened when the channel's fee equals the proposed one; costs nothing either way.
* ``rebalance``: the port has no payment history, so an interrupted rebalance is counted as
  spent at its reserved cost (safe: never under-counts).
"""

from __future__ import annotations

from hive.errors import RouteNotFound
from hive.governance.api import EngineApi, ExecutionFailed
from hive.governance.kinds import OPEN_CHANNEL, REBALANCE, SET_FEE
from hive.governance.proposal import Cost, ExecutionResult, Proposal, msat_to_sat_up
from hive.node.port import ChannelState, FeePolicy, NodePort

_LIVE = (ChannelState.OPENING, ChannelState.NORMAL)


class OpenChannelExecutor:
    def __init__(self, node: NodePort) -> None:
        self.node = node

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        p = proposal.params
        calls = []
        if "host" in p:
            await self.node.connect(p["peer"], p["host"], p.get("port"))
            calls.append(f"connect {p['peer']}@{p['host']}:{p.get('port')}")
        feerate = p.get("feerate_perkw")
        result = await self.node.open_channel(p["peer"], p["amount_sat"], feerate_perkw=feerate)
        at = "" if feerate is None else f" at {feerate} perkw"
        calls.append(f"open_channel {p['peer']} {p['amount_sat']}{at}")
        return ExecutionResult(
            cost=Cost(onchain_fee_sat=result.onchain_fee_sat, capital_sat=result.amount_sat),
            calls=tuple(calls),
            detail={"txid": result.txid},
        )

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        p = proposal.params
        for channel in await self.node.list_channels():
            if (
                channel.peer_id == p["peer"]
                and channel.capacity_msat == p["amount_sat"] * 1000
                and channel.state in _LIVE
            ):
                return ExecutionResult(
                    cost=Cost(
                        onchain_fee_sat=proposal.cost.onchain_fee_sat, capital_sat=p["amount_sat"]
                    ),
                    calls=("list_channels",),
                    detail={"short_channel_id": channel.short_channel_id, "reconciled": True},
                )
        return None


class SetFeeExecutor:
    def __init__(self, node: NodePort) -> None:
        self.node = node

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        p = proposal.params
        await self.node.set_fee_policy(p["peer"], FeePolicy(p["base_msat"], p["ppm"]))
        return ExecutionResult(
            cost=Cost(), calls=(f"set_fee_policy {p['peer']} {p['base_msat']}/{p['ppm']}",)
        )

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        p = proposal.params
        want = FeePolicy(p["base_msat"], p["ppm"])
        for channel in await self.node.list_channels():
            if channel.peer_id == p["peer"] and channel.our_fee == want:
                return ExecutionResult(cost=Cost(), calls=("list_channels",))
        return None


class RebalanceExecutor:
    def __init__(self, node: NodePort) -> None:
        self.node = node

    async def execute(self, proposal: Proposal) -> ExecutionResult:
        p = proposal.params
        amount_msat = p["amount_sat"] * 1000
        calls = [f"find_circular_route {p['out_peer']} {p['in_peer']} {amount_msat}"]
        try:
            route = await self.node.find_circular_route(p["out_peer"], p["in_peer"], amount_msat)
        except RouteNotFound as exc:
            raise ExecutionFailed(f"no circular route: {exc}", calls=calls) from exc
        fee_sat = msat_to_sat_up(route.fee_msat)
        if fee_sat > proposal.cost.routing_fee_sat:
            raise ExecutionFailed(
                f"cheapest route costs {fee_sat} sat, more than the {proposal.cost.routing_fee_sat}"
                " sat reserved",
                calls=calls,
            )
        result = await self.node.pay_route(route)
        calls.append(f"pay_route {len(route.hops)} hops")
        fee_sat = msat_to_sat_up(result.fee_msat)
        return ExecutionResult(
            cost=Cost(routing_fee_sat=fee_sat, ppm=result.fee_msat * 1000 // amount_msat),
            calls=tuple(calls),
            detail={"payment_hash": result.payment_hash, "fee_msat": result.fee_msat},
        )

    async def reconcile(self, proposal: Proposal) -> ExecutionResult | None:
        # No payment history in the port: count it as spent at the reserved cost.
        return ExecutionResult(
            cost=proposal.cost, calls=(), detail={"reconciled": "assumed spent (no history)"}
        )


def register_builtin(engine: EngineApi, node: NodePort) -> None:
    """Register the node-port executors for open-channel, set-fee and rebalance."""
    engine.register_kind(OPEN_CHANNEL, OpenChannelExecutor(node))
    engine.register_kind(SET_FEE, SetFeeExecutor(node))
    engine.register_kind(REBALANCE, RebalanceExecutor(node))
