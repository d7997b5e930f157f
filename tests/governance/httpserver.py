"""A real HTTP server on loopback for oracle and webhook tests (the standard library's
``ThreadingHTTPServer``, served from a ``trio.to_thread`` worker, shut down at the end)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import trio


@attrs.frozen
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@attrs.frozen
class Reply:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0
    # Send the body in chunks of this size with Transfer-Encoding: chunked (no Content-Length).
    chunked: int | None = None


Behaviour = Callable[[Request, int], Reply]  # (request, how many came before) -> reply


@attrs.define
class Server:
    url: str
    requests: list[Request]
    lock: threading.Lock


@asynccontextmanager
async def http_server(behaviour: Behaviour) -> AsyncIterator[Server]:
    requests: list[Request] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            request = Request(self.path, dict(self.headers.items()), body, time.monotonic())
            with lock:
                before = len(requests)
                requests.append(request)
            reply = behaviour(request, before)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    step = reply.chunked
                    for i in range(0, len(reply.body), step):
                        piece = reply.body[i : i + step]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, server.serve_forever)
        try:
            yield Server(f"http://127.0.0.1:{port}/decide", requests, lock)
        finally:
            await trio.to_thread.run_sync(server.shutdown)
            server.server_close()
