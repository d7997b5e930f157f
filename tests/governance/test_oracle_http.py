"""The HTTP oracle and webhooks against a real HTTP server on loopback (real clock)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from hive.actors.governance.oracle import HttpOracle
from hive.actors.governance.webhooks import Webhooks
from hive.config import Governance
from hive.governance import EventKind, ProposalState
from hive.governance.limits import Limits
from hive.governance.packet import MAX_ANSWER_BYTES, answer

from .helpers import Rig, fee_draft, open_draft, rig
from .httpserver import Behaviour, Reply, Request, Server, http_server

S = ProposalState
SECRET = "a-test-secret-of-some-length"


def verdict(approve: bool, reason: str = "looks fine") -> Behaviour:
    def reply(request: Request, _: int) -> Reply:
        pid = json.loads(request.body)["proposal_id"]
        return Reply(200, json.dumps(answer(pid, approve, reason)).encode())

    return reply


def signed_ok(request: Request) -> bool:
    want = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("X-Hive-Signature", ""), want)


@asynccontextmanager
async def oracle_rig(
    tmp_path: Path, server: Server, *, timeout_s: float = 2.0, limits: Limits | None = None
) -> AsyncIterator[Rig]:
    async with (
        httpx.AsyncClient(trust_env=False) as client,
        rig(tmp_path, mode=Governance.ORACLE, oracle_timeout_s=timeout_s, limits=limits) as r,
    ):
        r.engine.deciders.add(HttpOracle(server.url, client, secret=SECRET, backoff_s=0.05))
        yield r


async def test_oracle_approves_over_http_and_the_packet_is_signed(tmp_path: Path) -> None:
    async with http_server(verdict(True)) as server, oracle_rig(tmp_path, server) as r:
        status = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(10):
            final = await r.engine.wait_final(status.id)
    assert final.state is S.SUCCEEDED
    assert final.decision is not None
    assert final.decision.by == f"oracle:{server.url}"
    assert final.decision.reason == "looks fine"
    [request] = server.requests
    assert signed_ok(request)
    packet = json.loads(request.body)
    assert packet["type"] == "hive.decision-request"
    assert packet["proposal"]["id"] == status.id


async def test_oracle_denies(tmp_path: Path) -> None:
    async with http_server(verdict(False, "too big")) as server, oracle_rig(tmp_path, server) as r:
        status = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(10):
            final = await r.engine.wait_final(status.id)
        assert await r.me.list_channels() == []
    assert final.state is S.REJECTED
    assert final.decision is not None
    assert final.decision.reason == "too big"


async def test_oracle_is_retried_after_a_500(tmp_path: Path) -> None:
    approve = verdict(True)

    def flaky(request: Request, before: int) -> Reply:
        return Reply(500, b"oops") if before == 0 else approve(request, before)

    async with http_server(flaky) as server, oracle_rig(tmp_path, server) as r:
        status = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(10):
            final = await r.engine.wait_final(status.id)
    assert final.state is S.SUCCEEDED
    assert len(server.requests) == 2


async def test_no_answer_in_time_is_deny(tmp_path: Path) -> None:
    approve = verdict(True)

    def slow(request: Request, before: int) -> Reply:
        reply = approve(request, before)
        return Reply(reply.status, reply.body, delay_s=1.5)

    async with http_server(slow) as server, oracle_rig(tmp_path, server, timeout_s=0.3) as r:
        status = await r.engine.submit(open_draft(r.peers[1]))
        with trio.fail_after(5):
            final = await r.engine.wait_final(status.id)
        assert r.engine.deciders.timeouts == 1
    assert final.state is S.REJECTED
    assert final.decision is not None
    assert final.decision.by.startswith("timeout:")


async def test_malformed_and_oversized_answers_are_refused_counted_and_deny(
    tmp_path: Path,
) -> None:
    answers = [
        b"not json at all",
        b'{"type": "hive.decision-answer"}',
        b"x" * (MAX_ANSWER_BYTES + 1),
    ]

    def bad(request: Request, before: int) -> Reply:
        if before == 3:  # no Content-Length: refused while reading
            return Reply(200, b"y" * (4 * MAX_ANSWER_BYTES), chunked=4096)
        return Reply(200, answers[before % len(answers)])

    async with http_server(bad) as server, oracle_rig(tmp_path, server) as r:
        finals = []
        for peer in (*r.peers[1:4], r.peers[1]):
            status = await r.engine.submit(fee_draft(peer))
            with trio.fail_after(10):
                finals.append(await r.engine.wait_final(status.id))
        refused = r.engine.deciders.refused
    assert [f.state for f in finals] == [S.REJECTED] * 4
    name = f"oracle:{server.url}"
    assert refused == {
        f"{name}:malformed": 1,
        f"{name}:unsupported-version": 1,
        f"{name}:oversized": 2,
    }
    assert finals[2].decision is not None
    assert "oversized" in finals[2].decision.reason


async def test_oracle_approval_is_still_bound_by_the_hard_limits(tmp_path: Path) -> None:
    limits = Limits(daily_capital_sat=500_000, action_capital_sat=500_000)
    async with (
        http_server(verdict(True)) as server,
        oracle_rig(tmp_path, server, limits=limits) as r,
    ):
        async with r.engine.subscribe() as events:
            status = await r.engine.submit(open_draft(r.peers[1], 1_000_000))
            with trio.fail_after(5):
                async for event in events:
                    if event.kind is EventKind.HELD:
                        break
        held = r.engine.get(status.id)
        assert held is not None
        assert held.state is S.APPROVED
        assert held.held_by == "action_capital_sat"
        assert await r.me.list_channels() == []


async def test_webhooks_arrive_signed_and_a_dead_one_does_not_slow_decisions(
    tmp_path: Path,
) -> None:
    def ok(request: Request, before: int) -> Reply:
        return Reply(500) if before == 0 else Reply(204)

    def dead(request: Request, before: int) -> Reply:
        return Reply(200, delay_s=5.0)

    async with (
        http_server(ok) as good,
        http_server(dead) as hung,
        httpx.AsyncClient(trust_env=False, timeout=10.0) as client,
        rig(tmp_path) as r,
    ):
        hooks = Webhooks(
            r.engine.hub,
            [good.url, hung.url],
            SECRET,
            client,
            node_id=r.me.node_id,
            alias=r.me.alias,
            backoff_s=0.05,
        )
        await r.nursery.start(hooks.run)
        start = trio.current_time()
        status = await r.engine.submit(fee_draft(r.peers[1]))
        await r.engine.approve(status.id)
        with trio.fail_after(2):
            await r.engine.wait_final(status.id)
        assert trio.current_time() - start < 1.0
        with trio.fail_after(5):
            for _ in range(500):
                if hooks.stats[good.url].delivered >= 4:
                    break
                await trio.sleep(0.01)
        stats = hooks.stats[good.url]
    assert stats.retries == 1
    assert stats.results["500"] == 1
    bodies = [json.loads(q.body) for q in good.requests[1:]]
    assert [b["event"] for b in bodies] == ["new", "decided", "executing", "outcome"]
    assert all(signed_ok(q) for q in good.requests)
    assert [q.headers["X-Hive-Event"] for q in good.requests[1:]] == [
        "new",
        "decided",
        "executing",
        "outcome",
    ]
    assert bodies[0]["proposal"]["id"] == status.id
