"""An engine on the simulated network, with its store on disk, for governance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from hive.actors.governance.engine import Engine
from hive.actors.governance.executors import register_builtin
from hive.config import DecisionConfig, Governance
from hive.governance import Cost, Draft, EngineEvent
from hive.governance.limits import Limits
from hive.node.sim import SimNetwork, SimNode
from hive.node.sim.testing import line_graph
from hive.store import Store, open_store

EPOCH_MS = 1_761_350_400_000


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class Rig:
    net: SimNetwork
    me: SimNode
    peers: list[str]
    store: Store
    engine: Engine
    nursery: trio.Nursery

    async def restart(self, **changes: Any) -> Engine:
        """A new engine on the same store (the old one must be stopped first)."""
        engine = make_engine(self.me, self.store, **changes)
        await engine.load()
        await self.nursery.start(engine.run)
        self.engine = engine
        return engine


def make_engine(
    me: SimNode,
    store: Store,
    *,
    mode: Governance = Governance.ADVISOR,
    limits: Limits | None = None,
    **config: Any,
) -> Engine:
    engine = Engine(
        node=me,
        store=store,
        config=DecisionConfig(limits=limits or Limits(), **config),
        mode=mode,
        node_id=me.node_id,
        alias=me.alias,
        now_ms=sim_ms,
    )
    register_builtin(engine, me)
    return engine


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    mode: Governance = Governance.ADVISOR,
    limits: Limits | None = None,
    onchain_sat: int = 20_000_000,
    **config: Any,
) -> AsyncIterator[Rig]:
    net = SimNetwork(line_graph(4), seed=7, confirmation_delay_s=60.0)
    me = net.add_node("me", onchain_sat=onchain_sat)
    peers = list(net.graph.node_ids[:4])
    async with open_store(tmp_path, run_inline=True) as store, trio.open_nursery() as nursery:
        await nursery.start(net.run)
        engine = make_engine(me, store, mode=mode, limits=limits, **config)
        await engine.load()
        await nursery.start(engine.run)
        yield Rig(net, me, peers, store, engine, nursery)
        nursery.cancel_scope.cancel()


def open_draft(peer: str, amount_sat: int = 1_000_000, **changes: Any) -> Draft:
    fields: dict[str, Any] = {
        "kind": "open-channel",
        "params": {"peer": peer, "amount_sat": amount_sat},
        "reason": f"reach {peer[:8]}",
        "cost": Cost(capital_sat=amount_sat, onchain_fee_sat=2_000),
        "proposer": "test",
        "confidence": 0.9,
        "target": peer,
    }
    fields.update(changes)
    return Draft(**fields)


def fee_draft(peer: str, ppm: int = 100, **changes: Any) -> Draft:
    fields: dict[str, Any] = {
        "kind": "set-fee",
        "params": {"peer": peer, "base_msat": 0, "ppm": ppm},
        "reason": "test fee",
        "cost": Cost(),
        "proposer": "test",
    }
    fields.update(changes)
    return Draft(**fields)


def drain(receive: trio.MemoryReceiveChannel[EngineEvent]) -> list[EngineEvent]:
    out: list[EngineEvent] = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except trio.WouldBlock:
            return out
