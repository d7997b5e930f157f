"""The real web server on loopback, driven by real clients (trio-websocket, httpx)."""

from __future__ import annotations

import gc
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from hive.config import WebConfig
from hive.web import feeds
from hive.web.access import TOKEN_FILE, Bind, load_or_create_token
from hive.web.feeds import Event
from hive.web.hub import CLOSE_SLOW

from .helpers import TOKEN, rejected_status, web_fleet

AUTH = [("Authorization", f"Bearer {TOKEN}")]


async def next_message(ws: Any, *, topic: str | None = None, kind: str | None = None) -> Any:
    while True:
        message = json.loads(await ws.get_message())
        if (topic is None or message.get("topic") == topic) and (
            kind is None or message.get("type") == kind
        ):
            return message


async def next_event(ws: Any, kind: str) -> Any:
    """The next event of ``kind`` (the fleet's own events may come in between)."""
    while True:
        message = await next_message(ws, topic="events", kind="event")
        if message["data"]["kind"] == kind:
            return message


async def drain(ws: Any) -> None:
    while True:
        await ws.get_message()


async def subscribe(ws: Any, *topics: str) -> None:
    await ws.send_message(feeds.encode({"v": 1, "type": "subscribe", "topics": list(topics)}))


async def test_snapshot_then_changes_and_events(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with web_fleet(tmp_path) as fleet:
            members = {c.node.node_id for c in fleet.companions}
            async with open_websocket_url(fleet.ws_url, extra_headers=AUTH) as ws:
                await subscribe(ws, "state", "events")
                snapshot = await next_message(ws, topic="state", kind="snapshot")
                assert snapshot["v"] == 1
                state = snapshot["data"]
                seq = snapshot["seq"]
                # Changes until every member and its first channel is in the view.
                while (
                    set(state["members"]) != members
                    or set(state["channels"]) != members
                    or any(not ch["edges"] for ch in state["channels"].values())
                ):
                    change = await next_message(ws, topic="state", kind="change")
                    assert change["seq"] == seq + 1
                    seq = change["seq"]
                    state = feeds.apply_change(state, change["data"])
                # A new channel of the second member: a change, and a channel-opened event.
                second = fleet.companions[1].node.node_id
                await fleet.open(1, fleet.hub_ids[7], 1_500_000)
                while True:
                    message = await next_message(ws)
                    if message["topic"] == "state":
                        state = feeds.apply_change(state, message["data"])
                    elif (
                        message["data"]["kind"] == "channel-opened"
                        and message["data"]["detail"]["peer"] == fleet.hub_ids[7]
                    ):
                        event = message["data"]
                        break
                assert event["subject"] == second
                assert event["detail"] == {"peer": fleet.hub_ids[7], "capacity_sat": 1_500_000}
                assert "1,500,000 sat" in event["why"]
                # What the client rebuilt from changes is what the server holds.
                while state != fleet.web.hub.state:
                    change = await next_message(ws, topic="state", kind="change")
                    state = feeds.apply_change(state, change["data"])
                peers = {e["peer"] for e in state["channels"][second]["edges"]}
                assert fleet.hub_ids[7] in peers
                # A channel with a fellow member: the fee policy it gets, and since when.
                assert state["members"][second]["fees"] is None
                await fleet.open(0, second)
                while state["members"][second]["fees"] is None:
                    change = await next_message(ws, topic="state", kind="change")
                    state = feeds.apply_change(state, change["data"])
                member_fees = fleet.companions[0].runtime.status()["member_fees"]
                assert state["members"][second]["fees"] == {
                    **member_fees["policy"],
                    "since_ms": member_fees["member_channels"][second]["since_ms"],
                }


async def test_wrong_or_missing_token_is_refused_and_counted(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with web_fleet(tmp_path, size=1, channels=0) as fleet:
            stats = fleet.web.hub.stats
            assert await rejected_status(fleet.ws_url) == 401
            assert await rejected_status(f"{fleet.ws_url}?token=nope") == 401
            async with httpx.AsyncClient(base_url=fleet.url) as http:
                refused = await http.get("/api/state", headers={"Authorization": "Bearer nope"})
                assert refused.status_code == 401
                assert (await http.get("/metrics")).status_code == 401
                # The page itself holds no data and is served to anyone.
                page = await http.get("/")
                assert page.status_code == 200
                assert "content-security-policy" in page.headers
                ok = await http.get("/api/state", params={"token": TOKEN})
                assert ok.status_code == 200
            assert stats.refused == {"no-token": 2, "bad-token": 2}
            assert fleet.web.status()["refused"] == {"no-token": 2, "bad-token": 2}


async def test_token_file_is_private_and_stable(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    os.chmod(path, 0o644)
    assert load_or_create_token(tmp_path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_slow_client_is_dropped_with_its_close_code(tmp_path: Path) -> None:
    config = WebConfig(bind=Bind("127.0.0.1", 0), refresh_s=0.1, queue_size=4, close_timeout_s=30.0)
    with trio.fail_after(60):
        async with web_fleet(tmp_path, size=1, channels=0, web=config) as fleet:
            hub = fleet.web.hub
            async with (
                open_websocket_url(fleet.ws_url, extra_headers=AUTH) as slow,
                open_websocket_url(fleet.ws_url, extra_headers=AUTH) as fast,
            ):
                await subscribe(slow, "events")
                await subscribe(fast, "events")
                await next_message(fast, topic="events", kind="snapshot")
                await next_message(slow, topic="events", kind="snapshot")
                # The slow client reads nothing: once the kernel's buffers are full its
                # queue fills, and it is dropped; the fast one keeps up and stays.
                blob = "x" * 20_000
                sent = 0
                while not any(c.closed for c in hub._clients):
                    hub.publish_event(Event("flood", sent, blob))
                    sent += 1
                    message = await next_event(fast, "flood")
                    assert message["data"]["at_ms"] == sent - 1
                    assert sent < 5_000, "the slow client was never dropped"
                with pytest.raises(ConnectionClosed) as closed:
                    await drain(slow)
                assert closed.value.reason.code == CLOSE_SLOW
                assert "too slow" in closed.value.reason.reason
                assert hub.stats.dropped == {"slow": 1}
                assert hub.clients == 1
                hub.publish_event(Event("after", 0, "still served"))
                message = await next_event(fast, "after")
                assert message["data"]["why"] == "still served"
            # trio-websocket's client leaves its socket to the garbage collector when the
            # server closes first (seen with the slow client's own port): collect it here.
            del slow
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()


async def test_client_count_is_bounded(tmp_path: Path) -> None:
    config = WebConfig(bind=Bind("127.0.0.1", 0), refresh_s=0.1, max_clients=2)
    with trio.fail_after(30):
        async with web_fleet(tmp_path, size=1, channels=0, web=config) as fleet:
            async with (
                open_websocket_url(fleet.ws_url, extra_headers=AUTH),
                open_websocket_url(fleet.ws_url, extra_headers=AUTH),
            ):
                assert await rejected_status(fleet.ws_url, AUTH) == 503
            assert fleet.web.hub.stats.refused == {"too-many-clients": 1}


async def test_malformed_client_messages_get_a_reason(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with web_fleet(tmp_path, size=1, channels=0) as fleet:
            async with open_websocket_url(fleet.ws_url, extra_headers=AUTH) as ws:
                hello = json.loads(await ws.get_message())
                assert hello == {
                    "v": 1,
                    "type": "hello",
                    "topics": ["state", "events", "proposals", "ledger"],
                }
                await ws.send_message("not json")
                assert json.loads(await ws.get_message()) == feeds.error("not JSON")
                await ws.send_message(feeds.encode({"v": 1, "type": "subscribe", "topics": ["x"]}))
                reply = json.loads(await ws.get_message())
                assert reply["type"] == "error"
                assert "unknown topic 'x'" in reply["reason"]
                await ws.send_message(feeds.encode({"v": 2, "type": "subscribe"}))
                assert "unsupported version" in json.loads(await ws.get_message())["reason"]
            assert fleet.web.hub.stats.client_errors == 3


async def test_metrics_carry_the_status_counters(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            web_fleet(tmp_path, size=2) as fleet,
            httpx.AsyncClient(base_url=fleet.url, headers=dict(AUTH)) as http,
        ):
            response = await http.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            status = fleet.companions[0].runtime.status()
            sent = [ln for ln in text.splitlines() if ln.startswith("hive_messages_sent_total")]
            assert len(sent) == 1
            assert float(sent[0].split()[1]) <= status["messages"]["sent"]
            assert 'hive_actor_running{actor="gossip"} 1.0' in text
            assert 'hive_actor_running{actor="web"} 1.0' in text
            assert "hive_hive_members 2.0" in text
            assert "hive_gossip_states_sent_total" in text
            assert "# TYPE hive_web_refused_total counter" in text
            api = (await http.get("/api/status")).json()
            assert api["node_id"] == fleet.companions[0].node.node_id
            assert api["web"]["url"] == fleet.url


async def test_hive_web_token_command(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with web_fleet(tmp_path, size=1, channels=0) as fleet:
            answer = await fleet.companions[0].runtime.command("hive-web-token")({})
            assert answer["token"] == TOKEN
            assert answer["url"] == f"{fleet.url}/#token={TOKEN}"
