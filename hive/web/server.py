"""The companion's web server: the live fleet view, a small JSON API, websocket feeds and
``/metrics``, on one loopback port, run as an actor under the runtime's Supervisor.

Stack: hypercorn serves the ASGI application below under trio (HTTP/1.1 and websockets on one
port, wsproto underneath); the application is plain ASGI because it has a handful of routes.
Routes (every one but the page and its static files needs the token, see ``access.py``):

* ``GET /`` and ``/static/<file>``: the page (plain JS modules shipped as package data; the
  page reads the token from the URL fragment, which browsers never send to the server);
* ``GET /api/state``, ``/api/events``, ``/api/status``: the state topic's value, the recent
  events, ``hive-status``;
* ``GET /metrics``: Prometheus text (``metrics.py``);
* ``/ws`` (websocket): the feeds (``docs/FEEDS.md``); ``/oracle`` when an oracle is served.

The actor reports itself started at once and binds afterwards: a port in use is logged, shown
in ``hive-status`` and retried with backoff, and never keeps the companion from starting.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from hive.commands import CommandError, JsonDict
from hive.config import HiveConfig, WebConfig
from hive.fleet.view import FleetView
from hive.governance.api import EngineApi, Refused
from hive.web import feeds
from hive.web.access import Bind, load_or_create_token, presented_token, token_matches
from hive.web.agents import AgentEndpoint
from hive.web.decisions import ProposalFeed
from hive.web.hub import CLOSE_BAD_MESSAGES, CLOSE_GOING_AWAY, FeedClient, FeedHub
from hive.web.metrics import render_metrics

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# A route that needs more than the hub and the runtime (the oracle endpoint): ASGI websocket.
WebsocketRoute = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        b"style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
# A client sending this many refused messages in a row is closed.
MAX_CLIENT_ERRORS = 8


class FleetSource(Protocol):
    ignore_reasons: dict[str, str]

    def view(self) -> FleetView: ...

    def describe(self, member: str) -> dict[str, Any] | None: ...


class Observed(Protocol):
    """What the web server reads of :class:`hive.runtime.Runtime`."""

    @property
    def fleet(self) -> FleetSource | None: ...

    @property
    def engine(self) -> EngineApi | None: ...

    @property
    def config(self) -> HiveConfig: ...

    def status(self) -> JsonDict: ...

    def command(self, name: str) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]: ...


async def collect_state(runtime: Observed) -> feeds.State:
    """The state topic's value from the runtime's own views."""
    fleet = runtime.fleet
    try:
        roster = await runtime.command("hive-members")({})
    except CommandError:
        roster = {"hive_id": None, "members": []}
    status = runtime.status()
    if fleet is None:
        view: dict[str, Any] = {}
        records: dict[str, dict[str, Any]] = {}
        ignored: dict[str, str] = {}
    else:
        view = fleet.view().to_json()
        records = {}
        for member in [m["member"] for m in view["members"]] + list(view["stale"]):
            record = fleet.describe(member)
            if record is not None:
                records[member] = record
        ignored = dict(fleet.ignore_reasons)
    return feeds.build_state(
        node_id=str(status["node_id"]),
        hive_id=roster.get("hive_id"),
        members=roster.get("members", []),
        view=view,
        records=records,
        ignored=ignored,
        member_fees=status.get("member_fees"),
    )


class WebServer:
    """The actor: the hypercorn server and the loop that refreshes the state topic."""

    def __init__(
        self,
        runtime: Observed,
        config: WebConfig,
        *,
        data_dir: Path,
        now_ms: Callable[[], int],
        token: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.data_dir = data_dir
        self.now_ms = now_ms
        self.token = token
        self.hub = FeedHub(
            max_clients=config.max_clients,
            queue_size=config.queue_size,
            max_message_bytes=config.max_message_bytes,
        )
        self.url: str | None = None  # http://host:port once bound
        self.error: str | None = None  # why we are not listening, while we are not
        self.listening = trio.Event()  # set once bound (``url`` holds the address)
        self._assets: dict[str, bytes] = {}
        self.decisions: ProposalFeed | None = None
        self.agents: AgentEndpoint | None = None
        self.routes: dict[str, WebsocketRoute] = {"/ws": self._feed, "/oracle": self._oracle}
        self.api: dict[str, Callable[[], Awaitable[Any]]] = {
            "/api/state": self._api_state,
            "/api/events": self._api_events,
            "/api/status": self._api_status,
        }

    def status(self) -> dict[str, Any]:
        agents = {} if self.agents is None else {"oracle": self.agents.status()}
        return {"url": self.url, "error": self.error, **self.hub.status(), **agents}

    def view_url(self) -> str | None:
        """The page's address with the token in its fragment (never sent to the server)."""
        if self.url is None or self.token is None:
            return None
        return f"{self.url}/#token={self.token}"

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.token is None:
            self.token = await trio.to_thread.run_sync(load_or_create_token, self.data_dir)
        self._assets = await trio.to_thread.run_sync(_load_assets)
        async with trio.open_nursery() as nursery:
            engine = self.runtime.engine
            if engine is not None:
                self.decisions = ProposalFeed(engine, self.hub, self.runtime.command("hive-ledger"))
                self.agents = AgentEndpoint(engine, self.runtime.config.governance.value)
                await nursery.start(self.decisions.run)
            nursery.start_soon(self._refresh_loop)
            if self.config.bind is not None:
                nursery.start_soon(self._serve_forever, self.config.bind)
            task_status.started()

    async def _serve_forever(self, bind: Bind) -> None:
        if not bind.loopback:
            log.warning(
                "web: listening on %s, which is not a loopback address: anyone who can reach it "
                "and holds the token can read the fleet and decide proposals",
                bind.hypercorn,
            )
        failures = 0
        while True:
            hconfig = self._hypercorn_config(bind)
            try:
                sockets = hconfig.create_sockets()
                for sock in sockets.insecure_sockets:
                    sock.listen(hconfig.backlog)
            except OSError as exc:
                failures += 1
                delay = min(2.0 ** min(failures, 6), 60.0)
                self.error = f"cannot listen on {bind.hypercorn}: {exc.strerror or exc}"
                log.error("web: %s; retrying in %.0fs", self.error, delay)
                await trio.sleep(delay)
                continue
            self.error = None
            try:
                await worker_serve(
                    wrap_app(self, hconfig.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                    hconfig,
                    sockets=sockets,
                    task_status=_Bound(self),
                )
            finally:
                for sock in sockets.insecure_sockets:
                    sock.close()
                self.url = None
                self.hub.close_all(CLOSE_GOING_AWAY, "the companion is stopping")
            return

    def _hypercorn_config(self, bind: Bind) -> HypercornConfig:
        hconfig = HypercornConfig()
        hconfig.bind = [bind.hypercorn]
        hconfig.accesslog = None
        hconfig.errorlog = logging.getLogger("hive.web.http")
        hconfig.include_server_header = False
        hconfig.websocket_max_message_size = feeds.MAX_CLIENT_MESSAGE
        hconfig.graceful_timeout = 1.0
        return hconfig

    async def _refresh_loop(self) -> None:
        while True:
            try:
                state = await collect_state(self.runtime)
            except CommandError as exc:
                if exc.code != CommandError.NOT_READY:
                    raise
            else:
                self.hub.publish_state(state, self.now_ms())
            if self.decisions is not None:
                self.hub.set_snapshot("proposals", self.decisions.snapshot())
            await trio.sleep(self.config.refresh_s)

    # ------------------------------------------------------------------------------------------
    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        presented = presented_token(scope.get("headers", []), scope.get("query_string", b""))
        if self.token is not None and token_matches(self.token, presented):
            return True
        self.hub.stats.refused["no-token" if presented is None else "bad-token"] += 1
        return False

    async def _http(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if method != "GET":
            await _respond(send, 405, b"only GET is served here\n", "text/plain")
            return
        if path == "/" or path.startswith("/static/"):
            name = "index.html" if path == "/" else path.removeprefix("/static/")
            if name not in STATIC:
                await _respond(send, 404, b"not found\n", "text/plain")
                return
            await _respond(send, 200, self._assets[name], STATIC[name])
            return
        if path != "/metrics" and path not in self.api:
            await _respond(send, 404, b"not found\n", "text/plain")
            return
        if not self._authorized(scope):
            await _respond(
                send,
                401,
                b"a valid token is required (see hive-web-token)\n",
                "text/plain",
                [(b"www-authenticate", b'Bearer realm="hive"')],
            )
            return
        if path == "/metrics":
            body, content_type = render_metrics(self.runtime.status(), self.status())
            await _respond(send, 200, body, content_type)
            return
        value = await self.api[path]()
        await _respond(send, 200, _json(value), "application/json")

    async def _api_state(self) -> Any:
        return self.hub.state

    async def _api_events(self) -> Any:
        return list(self.hub.recent)

    async def _api_status(self) -> Any:
        return self.runtime.status()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"])
        if route is None:
            await _reject(send, 404, "no websocket endpoint here")
            return
        if not self._authorized(scope):
            await _reject(send, 401, "a valid token is required (see hive-web-token)")
            return
        await route(scope, receive, send)

    async def _feed(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.hub.connect()
        if client is None:
            await _reject(send, 503, f"at most {self.hub.max_clients} clients; try again later")
            return
        try:
            if (await receive())["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            client.offer(feeds.encode(feeds.hello(self.hub.topics)))
            with client.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._feed_writer, client, send)
                    await self._feed_reader(client, receive)
                    nursery.cancel_scope.cancel()
        finally:
            self.hub.disconnect(client)
        if client.closed is not None:
            code, reason = client.closed
            with trio.move_on_after(self.config.close_timeout_s):
                await send({"type": "websocket.close", "code": code, "reason": reason})

    async def _feed_writer(self, client: FeedClient, send: Send) -> None:
        async for text in client.outgoing:
            await send({"type": "websocket.send", "text": text})

    async def _feed_reader(self, client: FeedClient, receive: Receive) -> None:
        errors = 0
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            try:
                message = feeds.parse_client_message(
                    event["text"] if event.get("text") is not None else event.get("bytes") or b""
                )
                if message["type"] in ("approve", "reject"):
                    client.offer(feeds.encode(await self._decide(message)))
                    errors = 0
                    continue
                if message["type"] != "subscribe":
                    raise feeds.ClientMessageError(
                        f"unknown message type {message['type']!r}; "
                        "send 'subscribe', 'approve' or 'reject'"
                    )
                subscription = feeds.parse_subscribe(message, self.hub.topics)
            except feeds.ClientMessageError as exc:
                errors += 1
                self.hub.stats.client_errors += 1
                client.offer(feeds.encode(feeds.error(str(exc))))
                if errors >= MAX_CLIENT_ERRORS:
                    client.kick(CLOSE_BAD_MESSAGES, "too many refused messages")
                continue
            errors = 0
            self.hub.subscribe(client, subscription.topics)

    async def _decide(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A browser's Approve / Reject, through the engine's own entry points."""
        if self.decisions is None:
            raise feeds.ClientMessageError("this companion serves no proposals")
        approve = message["type"] == "approve"
        try:
            result = await self.decisions.decide(
                message.get("proposal"), approve, message.get("reason")
            )
        except Refused as exc:
            raise feeds.ClientMessageError(f"{exc.code}: {exc.message}") from None
        log.info("web: %s %s", "approved" if approve else "rejected", result["proposal"])
        return {"v": feeds.VERSION, "type": "decided", **result}

    async def _oracle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.agents is None:
            await _reject(send, 404, "this companion has no decision engine")
            return
        checked = self.agents.check(scope)
        if isinstance(checked, tuple):
            await _reject(send, *checked)
            return
        await self.agents.serve(checked, receive, send)


class _Bound:
    """hypercorn's task_status: records the bound address (``http://127.0.0.1:8484``)."""

    def __init__(self, server: WebServer) -> None:
        self._server = server

    def started(self, binds: list[str] | None = None) -> None:
        if binds:
            self._server.url = binds[0]
            self._server.listening.set()
            log.info("web: the live fleet view is at %s/", binds[0])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _load_assets() -> dict[str, bytes]:
    static = importlib.resources.files("hive.web").joinpath("static")
    return {name: static.joinpath(name).read_bytes() for name in STATIC}


def _json(value: Any) -> bytes:
    def finite(obj: Any) -> Any:
        raise TypeError(f"not JSON: {type(obj).__name__}")

    return json.dumps(value, default=finite, allow_nan=False, separators=(",", ":")).encode()


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reject(send: Send, status: int, reason: str) -> None:
    """Refuse a websocket handshake with an HTTP status and a one-line reason."""
    body = (reason + "\n").encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


__all__ = ["WebServer", "collect_state"]
