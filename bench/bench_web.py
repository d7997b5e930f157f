"""Memory of the web server under 100 slow websocket clients (and a few fast ones).

One companion on a small simulated network serves the feeds on loopback. A second process
opens the clients (so their memory is not counted): ``--slow`` clients that read one message a
second and reconnect when dropped, ``--fast`` clients that read everything. The server then
publishes ``--rate`` events a second of ``--size`` bytes for ``--seconds``, and this process
prints its own resident memory, the clients connected and the slow clients dropped, every few
seconds. Flat memory while slow clients are being dropped and reconnecting is the point.

    .venv/bin/python bench/bench_web.py            # 100 slow, 5 fast, 200 events/s of 2 KB, 30 s
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from hive.config import HiveConfig, WebConfig
from hive.node.sim import SimNetwork, generate_graph
from hive.runtime import Runtime
from hive.web.access import Bind
from hive.web.feeds import Event

TOKEN = "bench-token-" + "b" * 32


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def clients(url: str, slow: int, fast: int, seconds: float) -> None:
    """The client side (run in its own process): slow readers that reconnect, fast readers."""
    headers = [("Authorization", f"Bearer {TOKEN}")]
    subscribe = json.dumps({"v": 1, "type": "subscribe", "topics": ["state", "events"]})

    async def one(delay: float) -> None:
        while True:
            try:
                async with open_websocket_url(url, extra_headers=headers) as ws:
                    await ws.send_message(subscribe)
                    while True:
                        await ws.get_message()
                        await trio.sleep(delay)
            except (ConnectionClosed, HandshakeError, OSError):
                await trio.sleep(0.5)

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(slow):
                nursery.start_soon(one, 1.0)
            for _ in range(fast):
                nursery.start_soon(one, 0.0)


async def server(args: argparse.Namespace) -> None:
    graph = generate_graph(40, seed=1)
    network = SimNetwork(graph, seed=1, latency=(0.001, 0.002))
    node = network.add_node("bench", 10_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        config = HiveConfig(
            data_dir=Path(tmp),
            web=WebConfig(
                bind=Bind("127.0.0.1", 0), max_clients=args.slow + args.fast + 10, refresh_s=1.0
            ),
        )
        runtime = Runtime(node, config, rng=random.Random(1))
        runtime.web_token = TOKEN
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            await nursery.start(runtime.run)
            web = runtime.web
            assert web is not None
            await web.listening.wait()
            assert web.url is not None
            url = web.url.replace("http://", "ws://") + "/ws"
            baseline = rss_mib()
            child = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    __file__,
                    "--clients-of",
                    url,
                    f"--slow={args.slow}",
                    f"--fast={args.fast}",
                    f"--seconds={args.seconds + 15}",
                ]
            )
            try:
                await trio.sleep(5)  # let them connect
                print(f"baseline RSS {baseline:.1f} MiB; clients connected: {web.hub.clients}")
                print(f"{'t s':>5} {'published':>10} {'clients':>8} {'dropped':>8} {'RSS MiB':>8}")
                blob = "x" * args.size
                started = time.monotonic()
                published = 0
                next_report = 0.0
                peak = 0.0
                while (elapsed := time.monotonic() - started) < args.seconds:
                    web.hub.publish_event(Event("bench", published, blob))
                    published += 1
                    if elapsed >= next_report:
                        rss = rss_mib()
                        peak = max(peak, rss)
                        dropped = web.hub.stats.dropped.get("slow", 0)
                        print(
                            f"{elapsed:5.0f} {published:>10} {web.hub.clients:>8} "
                            f"{dropped:>8} {rss:8.1f}",
                            flush=True,
                        )
                        next_report += args.seconds / 10
                    await trio.sleep(1 / args.rate)
                print(
                    f"published {published} events of {args.size} B; slow clients dropped "
                    f"{web.hub.stats.dropped.get('slow', 0)} times; RSS peak {peak:.1f} MiB, "
                    f"end {rss_mib():.1f} MiB (baseline {baseline:.1f})"
                )
            finally:
                child.kill()
                await child.wait()
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--fast", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--size", type=int, default=2048, help="bytes of each event's text")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients_of:
        trio.run(clients, args.clients_of, args.slow, args.fast, args.seconds)
    else:
        trio.run(server, args)


if __name__ == "__main__":
    main()
