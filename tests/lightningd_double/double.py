"""A lightningd double: the JSON-RPC unix socket, and the host of one plugin process.

It follows CLN's documented behaviour where the plugin can see it:

* the plugin is started with ``LIGHTNINGD_PLUGIN=1`` and ``LIGHTNINGD_VERSION`` in its
  environment, in the lightning directory; every JSON object written to it is followed by a
  blank line (``"\\n\\n"``); ``getmanifest`` comes first, then ``init`` with ``options`` (every
  registered option, with its default unless configured) and ``configuration``;
* our RPC methods are called the way ``lightning-cli`` calls them through lightningd (params
  passed verbatim, here as an object, with string ids);
* hooks are requests (``custommsg`` with ``peer_id`` and hex ``payload``), notifications carry
  their payload wrapped in an object named after the topic;
* the RPC socket answers JSON-RPC 2.0 with CLN-shaped results and error objects, each answer
  followed by ``"\\n\\n"``; requests are parsed from the stream as whole JSON objects.

Everything runs under trio; tests wrap waits in ``trio.fail_after``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket as stdlib_socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from hive.protocol import lnsig
from lightningd_double.network import Network
from lightningd_double.rpc import POSITIONAL, Methods, RpcFail

VERSION = "v25.02"
RPC_FILE = "lightning-rpc"


class PluginCallError(Exception):
    """The plugin (or lightningd on its behalf) answered a call with a JSON-RPC error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('message')} (code {error.get('code')})")
        self.code = error.get("code")
        self.message = str(error.get("message"))
        self.error = error


@attrs.define
class _Injected:
    error: dict[str, Any]
    times: int | None


class LightningdDouble:
    """One node: identity, wallet, invoices and payments; the network holds the rest."""

    def __init__(
        self,
        network: Network,
        name: str,
        *,
        onchain_sat: int = 10_000_000,
        clboss: bool = False,
    ) -> None:
        self.network = network
        self.name = name
        self.alias = name.upper()
        self.secret = hashlib.sha256(f"lightningd double {name}".encode()).digest()
        self.node_id = lnsig.node_id_from_secret(self.secret)
        self.port = 9735 + len(network.doubles)
        # AF_UNIX paths are short (108 bytes): keep the directory near the root.
        self.lightning_dir = Path(tempfile.mkdtemp(prefix=f"ld-{name[:6]}-"))
        self.rpc_path = self.lightning_dir / RPC_FILE
        self.clboss = clboss
        self.wallet: list[dict[str, Any]] = [
            {
                "txid": hashlib.sha256(f"{name} utxo".encode()).hexdigest(),
                "output": 0,
                "amount_msat": onchain_sat * 1000,
                "scriptpubkey": "0014" + "22" * 20,
                "address": "bcrt1qwallet",
                "status": "confirmed",
                "blockheight": 101,
                "reserved": False,
            }
        ]
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.sent_custommsgs: list[tuple[str, bytes]] = []
        self.clboss_unmanaged: dict[str, str] = {}
        self.rpc_calls: list[tuple[str, dict[str, Any]]] = []
        self._injected: dict[str, _Injected] = {}
        # Calls whose answer never comes (crash tests): method -> "before" (not executed) or
        # "after" (executed, answer withheld); `stalled[method]` is set when one arrived.
        self._stalls: dict[str, str] = {}
        self.stalled: dict[str, trio.Event] = {}
        self._methods = Methods(self)
        # Plugin side.
        self.process: trio.Process | None = None
        self.manifest: dict[str, Any] = {}
        self.init_result: Any = None
        self.plugin_logs: list[dict[str, Any]] = []
        self.plugin_stderr = bytearray()
        self.hook_answers: list[Any] = []
        self._pending: dict[str, tuple[trio.Event, list[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._write_lock = trio.Lock()
        self._outbox_send, self._outbox = trio.open_memory_channel[tuple[str, str, Any]](10_000)
        network.add(self)

    # ------------------------------------------------------------------------------------------
    # Test controls

    def inject_error(
        self,
        method: str,
        code: int = -1,
        message: str = "injected failure",
        *,
        data: dict[str, Any] | None = None,
        times: int | None = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` (all, with None) fail with this error."""
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self._injected[method] = _Injected(error=error, times=times)

    def stall(self, method: str, *, executed: bool) -> trio.Event:
        """The next call of ``method`` never gets an answer, as if lightningd hung or the plugin
        died waiting; with ``executed`` it takes effect first. The event is set when it came."""
        self._stalls[method] = "after" if executed else "before"
        self.stalled[method] = trio.Event()
        return self.stalled[method]

    def onchain_sat(self) -> int:
        return sum(int(o["amount_msat"]) for o in self.wallet) // 1000

    @property
    def plugin_methods(self) -> set[str]:
        return {m["name"] for m in self.manifest.get("rpcmethods", [])}

    def notify_soon(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue a notification for the plugin (delivered in order, after the RPC answer)."""
        self._outbox_send.send_nowait(("notify", topic, payload))

    def deliver_custommsg_soon(self, peer_id: str, payload_hex: str) -> None:
        self._outbox_send.send_nowait(("custommsg", peer_id, payload_hex))

    # ------------------------------------------------------------------------------------------
    # Life cycle

    @asynccontextmanager
    async def running(
        self,
        plugin: Sequence[str] | None = None,
        options: dict[str, Any] | None = None,
        *,
        init: bool = True,
    ) -> AsyncIterator[LightningdDouble]:
        """Serve the RPC socket and, with ``plugin`` (an argv), run that plugin process."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._serve_rpc)
                if plugin is not None:
                    await self._start_plugin(nursery, plugin, options or {}, init=init)
                nursery.start_soon(self._deliver_outbox)
                yield self
                await self._stop_plugin()
                nursery.cancel_scope.cancel()
        finally:
            shutil.rmtree(self.lightning_dir, ignore_errors=True)

    async def _serve_rpc(self, *, task_status: trio.TaskStatus[None]) -> None:
        sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
        await sock.bind(str(self.rpc_path))
        sock.listen(16)
        listener = trio.SocketListener(sock)
        async with trio.open_nursery() as nursery:
            task_status.started()
            await trio.serve_listeners(self._rpc_connection, [listener], handler_nursery=nursery)

    async def _rpc_connection(self, stream: trio.SocketStream) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data.decode()
                while True:
                    buffer = buffer.lstrip()
                    if not buffer:
                        break
                    try:
                        request, end = decoder.raw_decode(buffer)
                    except json.JSONDecodeError:
                        break  # wait for the rest of the object
                    buffer = buffer[end:]
                    stall = self._stalls.pop(str(request.get("method")), None)
                    if stall == "after":
                        self.handle_rpc(request)
                    if stall is not None:
                        self.stalled[str(request.get("method"))].set()
                        await trio.sleep_forever()
                    answer = self.handle_rpc(request)
                    await stream.send_all((json.dumps(answer) + "\n\n").encode())

    def handle_rpc(self, request: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC request on the socket -> the response object."""
        method = request.get("method")
        rid = request.get("id")
        params = request.get("params") or {}
        table = self._methods.table()
        if not isinstance(method, str) or method not in table:
            return _error(rid, {"code": -32601, "message": f"Unknown command '{method}'"})
        if isinstance(params, list):
            names = POSITIONAL[method]
            if len(params) > len(names):
                return _error(rid, {"code": -32602, "message": "too many parameters"})
            params = dict(zip(names, params, strict=False))
        self.rpc_calls.append((method, params))
        injected = self._injected.get(method)
        if injected is not None:
            if injected.times is not None:
                injected.times -= 1
                if injected.times <= 0:
                    del self._injected[method]
            return _error(rid, injected.error)
        try:
            result = table[method](params)
        except RpcFail as exc:
            return _error(rid, exc.error)
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ------------------------------------------------------------------------------------------
    # The plugin process

    async def _start_plugin(
        self, nursery: trio.Nursery, argv: Sequence[str], options: dict[str, Any], *, init: bool
    ) -> None:
        env = dict(os.environ, LIGHTNINGD_PLUGIN="1", LIGHTNINGD_VERSION=VERSION)
        self.process = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(self.lightning_dir),
        )
        nursery.start_soon(self._read_stdout)
        nursery.start_soon(self._read_stderr)
        with trio.fail_after(30):
            self.manifest = await self.request("getmanifest", {"allow-deprecated-apis": False})
        if init:
            await self.send_init(options)

    async def send_init(self, options: dict[str, Any]) -> Any:
        values = {}
        for opt in self.manifest.get("options", []):
            name = opt["name"]
            if name in options:
                values[name] = options[name]
            elif "default" in opt:
                values[name] = opt["default"]
        configuration = {
            "lightning-dir": str(self.lightning_dir),
            "rpc-file": RPC_FILE,
            "startup": True,
            "network": "regtest",
            "feature_set": {
                "init": "08a0000a8a5961",
                "node": "88a0000a8a5961",
                "channel": "",
                "invoice": "02000002024100",
            },
            "always_use_proxy": False,
        }
        with trio.fail_after(30):
            self.init_result = await self.request(
                "init", {"options": values, "configuration": configuration}
            )
        return self.init_result

    async def _write(self, obj: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        async with self._write_lock:
            await self.process.stdin.send_all((json.dumps(obj) + "\n\n").encode())

    async def request(self, method: str, params: dict[str, Any] | list[Any]) -> Any:
        """A JSON-RPC request to the plugin; returns ``result`` or raises PluginCallError."""
        rid = f"cln:{method}#{next(self._ids)}"
        done = trio.Event()
        slot: list[dict[str, Any]] = []
        self._pending[rid] = (done, slot)
        await self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        await done.wait()
        response = slot[0]
        if "error" in response:
            raise PluginCallError(method, response["error"])
        return response.get("result")

    async def call_plugin(
        self, method: str, params: dict[str, Any] | list[Any] | None = None
    ) -> Any:
        """Call one of the plugin's RPC methods as lightning-cli would, through lightningd."""
        if method not in self.plugin_methods:
            raise PluginCallError(
                method, {"code": -32601, "message": f"Unknown command '{method}'"}
            )
        return await self.request(method, params if params is not None else {})

    async def hook(self, name: str, payload: dict[str, Any]) -> Any:
        hooks = {h["name"] for h in self.manifest.get("hooks", [])}
        assert name in hooks, f"the plugin did not register the {name} hook"
        answer = await self.request(name, payload)
        self.hook_answers.append(answer)
        return answer

    async def notify(self, topic: str, payload: dict[str, Any]) -> None:
        if topic in self.manifest.get("subscriptions", []) or "*" in self.manifest.get(
            "subscriptions", []
        ):
            await self._write({"jsonrpc": "2.0", "method": topic, "params": {topic: payload}})

    async def shutdown(self) -> None:
        await self.notify("shutdown", {})

    async def close_stdin(self) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def wait_exit(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def _stop_plugin(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with trio.move_on_after(5):
            await self.shutdown()
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def _read_stdout(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        buffer = b""
        while True:
            data = await self.process.stdout.receive_some(65536)
            if not data:
                break
            buffer += data
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                if frame.strip():
                    self._on_frame(json.loads(frame))
        for done, slot in self._pending.values():  # the plugin died: fail waiting requests
            slot.append({"error": {"code": -4, "message": "plugin exited"}})
            done.set()
        self._pending.clear()

    def _on_frame(self, obj: dict[str, Any]) -> None:
        if "id" in obj and ("result" in obj or "error" in obj):
            pending = self._pending.pop(str(obj["id"]), None)
            assert pending is not None, f"answer to an unknown request: {obj}"
            pending[1].append(obj)
            pending[0].set()
        elif obj.get("method") == "log":
            self.plugin_logs.append(obj["params"])
        else:
            self.plugin_logs.append({"level": "notification", "message": json.dumps(obj)})

    async def _read_stderr(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while data := await self.process.stderr.receive_some(65536):
            self.plugin_stderr += data

    async def _deliver_outbox(self) -> None:
        async for kind, key, value in self._outbox:
            if self.process is None or self.process.returncode is not None:
                continue
            if kind == "notify":
                await self.notify(key, value)
            else:
                await self.hook("custommsg", {"peer_id": key, "payload": value})

    def log_text(self) -> str:
        return "\n".join(str(entry.get("message")) for entry in self.plugin_logs)


def _error(rid: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": error}
