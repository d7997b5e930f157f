"""The RPC gateway against the double's unix socket: results, error mapping, timeouts, stats.

Real clock: the calls run in worker threads, which a MockClock would not wait for.
"""

from __future__ import annotations

import socket as stdlib_socket
import tempfile
from pathlib import Path

import pytest
import trio
from lightningd_double import LightningdDouble, Network

from hive.cln.gateway import RpcFailure, RpcGateway
from hive.errors import NodeError, NodeUnavailable


async def test_call_returns_result_and_counts(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    gateway = RpcGateway(ld.rpc_path)
    with trio.fail_after(10):
        async with ld.running():
            result = await gateway.call("getinfo")
            await gateway.call("getinfo")
    assert result["id"] == ld.node_id
    stats = gateway.stats()["getinfo"]
    assert (stats["calls"], stats["errors"], stats["timeouts"]) == (2, 0, 0)
    assert stats["mean_ms"] is not None
    # None-valued params are not sent (CLN would read null as a value).
    assert ld.rpc_calls[0] == ("getinfo", {})


async def test_rpc_error_becomes_node_error_with_cln_code(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    ld.inject_error("getinfo", code=-5, message="lightningd is shutting down")
    gateway = RpcGateway(ld.rpc_path)
    with trio.fail_after(10):
        async with ld.running():
            with pytest.raises(NodeError) as info:
                await gateway.call("getinfo")
            result = await gateway.call("getinfo")  # the injection was one-shot
    assert info.value.code == -5
    assert str(info.value) == "getinfo: lightningd is shutting down"
    assert result["alias"] == "ALICE"
    assert gateway.stats()["getinfo"]["errors"] == 1


async def test_error_data_is_kept(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    ld.inject_error("waitsendpay", code=204, message="failed", data={"erring_node": "02ab"})
    gateway = RpcGateway(ld.rpc_path)
    with trio.fail_after(10):
        async with ld.running():
            with pytest.raises(RpcFailure) as info:
                await gateway.call("waitsendpay", {"payment_hash": "00"})
    assert info.value.data == {"erring_node": "02ab"}


async def test_missing_socket_is_node_unavailable() -> None:
    gateway = RpcGateway(Path(tempfile.gettempdir()) / "no-such-dir" / "lightning-rpc")
    with trio.fail_after(10), pytest.raises(NodeUnavailable, match="getinfo: cannot reach"):
        await gateway.call("getinfo")
    assert gateway.stats()["getinfo"]["errors"] == 1


async def test_refused_socket_is_node_unavailable() -> None:
    with tempfile.TemporaryDirectory(prefix="gw-") as tmp:
        path = Path(tmp) / "rpc"
        sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.close()  # the file stays, nobody listens: ECONNREFUSED
        gateway = RpcGateway(path)
        with trio.fail_after(10), pytest.raises(NodeUnavailable, match="cannot reach"):
            await gateway.call("listpeers")


async def test_silent_lightningd_times_out_naming_the_method() -> None:
    with tempfile.TemporaryDirectory(prefix="gw-") as tmp:
        path = Path(tmp) / "rpc"
        sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
        await sock.bind(str(path))
        sock.listen(4)
        held: list[trio.SocketStream] = []

        async def accept_and_hold(stream: trio.SocketStream) -> None:
            held.append(stream)
            await trio.sleep_forever()

        gateway = RpcGateway(path, timeout_s=0.3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, accept_and_hold, [trio.SocketListener(sock)])
            with (
                trio.fail_after(10),
                pytest.raises(NodeUnavailable, match=r"listfunds within 0\.3s"),
            ):
                await gateway.call("listfunds")
            nursery.cancel_scope.cancel()
    stats = gateway.stats()["listfunds"]
    assert (stats["calls"], stats["timeouts"], stats["errors"]) == (1, 1, 1)


async def test_concurrency_is_bounded(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    gateway = RpcGateway(ld.rpc_path, concurrency=2)
    with trio.fail_after(20):
        async with ld.running(), trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(gateway.call, "getinfo")
    assert gateway.stats()["getinfo"]["calls"] == 8
    assert len(ld.rpc_calls) == 8
