"""examples/oracle_agent.py against a real companion: its policy approves and denies real
proposals over the /oracle websocket."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import trio

from hive.config import DecisionConfig, Governance
from hive.governance.proposal import ProposalState

from .helpers import TOKEN, web_fleet

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oracle_agent.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oracle_agent", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_agent_applies_its_policy(tmp_path: Path) -> None:
    agent = load_example()
    policy = functools.partial(agent.decide, max_open_sat=2_000_000, min_target_channels=10)
    with trio.fail_after(40):
        async with web_fleet(
            tmp_path,
            size=1,
            channels=0,
            governance=Governance.ORACLE,
            decisions=DecisionConfig(oracle_timeout_s=10.0),
        ) as fleet:
            engine = fleet.companions[0].runtime.engine
            assert engine is not None
            url = fleet.url.replace("http://", "ws://") + "/oracle"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(agent.run_agent, url, TOKEN, "rules", policy)
                assert fleet.web.agents is not None
                while "agent:rules" not in engine.deciders.names:
                    await fleet.web.agents.wait_changed()
                small = await engine.submit(fleet.draft(2, 1_000_000))  # target_channels 12
                large = await engine.submit(fleet.draft(3, 3_000_000))
                done_small = await engine.wait_final(small.id)
                done_large = await engine.wait_final(large.id)
                nursery.cancel_scope.cancel()
    assert done_small.state is ProposalState.SUCCEEDED
    assert done_small.decision is not None
    assert done_small.decision.by == "agent:rules"
    assert "12 channels fits the policy" in done_small.decision.reason
    assert done_large.state is ProposalState.REJECTED
    assert done_large.decision is not None
    assert "more than the 2,000,000 sat" in done_large.decision.reason


def test_policy_denies_what_it_cannot_judge() -> None:
    agent = load_example()
    packet = {"proposal": {"kind": "open-channel", "params": {"amount_sat": 10}, "evidence": {}}}
    approve, reason = agent.decide(packet, max_open_sat=100, min_target_channels=1)
    assert not approve
    assert "does not say how many channels" in reason
    packet = {"proposal": {"kind": "rebalance", "params": {}, "evidence": {}}}
    assert agent.decide(packet, max_open_sat=100, min_target_channels=1)[0] is False
