"""Proposals and the ledger on the feeds, the browser's Approve / Reject over the feed socket,
and oracle agents over websocket deciding real proposals of a real engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url

from hive.config import DecisionConfig, Governance
from hive.governance.packet import answer
from hive.governance.proposal import ProposalState
from hive.web import feeds

from .helpers import TOKEN, rejected_status, web_fleet

AUTH = [("Authorization", f"Bearer {TOKEN}")]


async def until(ws: Any, predicate: Any) -> Any:
    while True:
        message = json.loads(await ws.get_message())
        if predicate(message):
            return message


async def test_approve_from_the_feed_executes_through_the_engine(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with web_fleet(tmp_path, size=1, channels=0) as fleet:
            engine = fleet.companions[0].runtime.engine
            assert engine is not None
            first = await engine.submit(fleet.draft(2))
            async with open_websocket_url(fleet.ws_url, extra_headers=AUTH) as ws:
                hello = json.loads(await ws.get_message())
                assert hello["topics"] == ["state", "events", "proposals", "ledger"]
                await ws.send_message(
                    feeds.encode({"v": 1, "type": "subscribe", "topics": hello["topics"]})
                )
                snap = await until(ws, lambda m: m.get("topic") == "proposals")
                assert snap["type"] == "snapshot"
                assert [p["id"] for p in snap["data"]] == [first.id]
                assert snap["data"][0]["state"] == "pending"
                assert snap["data"][0]["summary"].startswith("1,000,000 sat to ")
                second = await engine.submit(fleet.draft(3))
                new = await until(ws, lambda m: m.get("topic") == "proposals")
                assert (new["type"], new["data"]["id"]) == ("new", second.id)
                # Approve the first, reject the second, as the page's buttons do.
                await ws.send_message(
                    feeds.encode({"v": 1, "type": "approve", "proposal": first.id})
                )
                decided = await until(ws, lambda m: m.get("type") == "decided")
                assert decided == {
                    "v": 1,
                    "type": "decided",
                    "proposal": first.id,
                    "state": "approved",
                }
                outcome = await until(
                    ws, lambda m: m.get("topic") == "proposals" and m["type"] == "outcome"
                )
                assert outcome["data"]["state"] == "succeeded"
                assert outcome["data"]["decision"]["by"] == "operator:web"
                await ws.send_message(
                    feeds.encode(
                        {"v": 1, "type": "reject", "proposal": second.id, "reason": "not now"}
                    )
                )
                await until(ws, lambda m: m.get("type") == "decided")
                final = await engine.wait_final(second.id)
                assert final.state is ProposalState.REJECTED
                assert final.decision is not None
                assert final.decision.reason == "not now"
                # Deciding again is refused with the engine's reason.
                await ws.send_message(
                    feeds.encode({"v": 1, "type": "approve", "proposal": first.id})
                )
                refused = await until(ws, lambda m: m.get("type") == "error")
                assert refused["reason"].startswith("not-pending:")
            # The ledger topic: a new subscriber's snapshot holds the rows the engine wrote.
            async with open_websocket_url(fleet.ws_url, extra_headers=AUTH) as ws:
                await ws.send_message(
                    feeds.encode({"v": 1, "type": "subscribe", "topics": ["ledger"]})
                )
                snap = await until(ws, lambda m: m.get("topic") == "ledger")
                rows = [(r["proposal_id"], r["entry"], r["actor"]) for r in snap["data"]]
                assert (second.id, "decided", "operator:web") in rows
                assert (first.id, "decided", "operator:web") in rows
            node = fleet.companions[0].node
            peers = {c.peer_id for c in await node.list_channels()}
            assert fleet.hub_ids[2] in peers
            assert fleet.hub_ids[3] not in peers


async def test_oracle_agents_approve_and_deny_real_proposals(tmp_path: Path) -> None:
    decisions = DecisionConfig(oracle_timeout_s=10.0)
    with trio.fail_after(40):
        async with web_fleet(
            tmp_path, size=1, channels=0, governance=Governance.ORACLE, decisions=decisions
        ) as fleet:
            engine = fleet.companions[0].runtime.engine
            assert engine is not None
            web = fleet.web
            oracle_url = fleet.url.replace("http://", "ws://") + "/oracle"
            assert await rejected_status(oracle_url) == 401
            async with open_websocket_url(f"{oracle_url}?name=policy", extra_headers=AUTH) as agent:
                hello = json.loads(await agent.get_message())
                assert hello == {
                    "type": "hive.agent-hello",
                    "version": 1,
                    "name": "agent:policy",
                    "mode": "oracle",
                }
                assert await rejected_status(f"{oracle_url}?name=policy", AUTH) == 409
                small = await engine.submit(fleet.draft(2, 500_000))
                packet = json.loads(await agent.get_message())
                assert packet["type"] == "hive.decision-request"
                assert packet["proposal_id"] == small.id
                await agent.send_message(json.dumps(answer(small.id, True, "small enough")))
                final = await engine.wait_final(small.id)
                assert final.state is ProposalState.SUCCEEDED
                assert final.decision is not None
                assert final.decision.by == "agent:policy"
                big = await engine.submit(fleet.draft(3, 4_000_000))
                packet = json.loads(await agent.get_message())
                await agent.send_message(json.dumps(answer(big.id, False, "too large")))
                final = await engine.wait_final(big.id)
                assert final.state is ProposalState.REJECTED
                assert final.decision is not None
                assert (final.decision.by, final.decision.reason) == ("agent:policy", "too large")
                # A malformed answer is refused with a reason, counted, and is a DENY.
                odd = await engine.submit(fleet.draft(4))
                packet = json.loads(await agent.get_message())
                await agent.send_message(
                    json.dumps({**answer(odd.id, True, "x"), "decision": "MAYBE"})
                )
                refused = json.loads(await agent.get_message())
                assert refused["type"] == "hive.answer-refused"
                assert refused["proposal_id"] == odd.id
                assert "APPROVE or DENY" in refused["reason"]
                final = await engine.wait_final(odd.id)
                assert final.state is ProposalState.REJECTED
                assert web.status()["oracle"]["answers_refused"] == {"malformed": 1}
                assert engine.deciders.refused == {"agent:policy:malformed": 1}
                # An agent that leaves with a question open denies it.
                last = await engine.submit(fleet.draft(5))
                packet = json.loads(await agent.get_message())
                assert packet["proposal_id"] == last.id
            final = await engine.wait_final(last.id)
            assert final.state is ProposalState.REJECTED
            assert final.decision is not None
            assert "left before answering" in final.decision.reason
            assert engine.deciders.names == []
            # With no agent attached, oracle mode fails closed.
            alone = await engine.submit(fleet.draft(6))
            final = await engine.wait_final(alone.id)
            assert final.state is ProposalState.REJECTED
