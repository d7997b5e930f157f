"""`hive demo`: a fleet of companions on the simulated network, with a live terminal view.

The companions are small new nodes attached to the network built from the real mainnet graph
(or a generated one). Each opens a few channels to well-connected nodes, connects to its fellow
companions, and runs the full hive runtime against its simulated node. Time is trio's clock
running ``speed`` times faster than the wall clock, so channel confirmations (ten simulated
minutes) happen in seconds.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from hive.actors.demo_proposer import run_demo_proposer
from hive.actors.planner import PlannerSettings
from hive.config import Governance, HiveConfig
from hive.demo_governance import governance_lines, proposal_rows
from hive.fleet.plantypes import PlannerConfig
from hive.node.port import ChannelState
from hive.node.sim import Graph, SimNetwork, SimNode, generate_graph, load_mainnet
from hive.runtime import Runtime

log = logging.getLogger(__name__)

# 2025-10-25 00:00 UTC, the graph snapshot's day: simulated time starts there.
SIM_EPOCH_MS = 1_761_350_400_000
# Plan soon after the fleet forms and take young, small targets too (generated graphs).
DEMO_PLANNER = PlannerSettings(
    warmup_s=180.0,
    interval_s=900.0,
    planner=PlannerConfig(min_age_blocks=0, min_target_capacity_sat=1_000_000),
)


@attrs.frozen
class DemoOptions:
    nodes: int = 5
    graph: str = "mainnet"  # "mainnet", "generated", or a path to a describegraph .json.gz
    seed: int = 1
    speed: float = 60.0
    # Simulated seconds to run; None runs until Ctrl-C.
    duration_s: float | None = None
    channels_per_node: int = 3
    channel_sat: int = 2_000_000
    onchain_sat: int = 20_000_000
    refresh_s: float = 1.0
    data_dir: Path | None = None
    # The built-in demo proposer (hive/governance/demo_proposer.py) submits a proposal to each
    # companion every ~`proposal_interval_s` simulated seconds; None turns it off.
    proposal_interval_s: float | None = 600.0
    # Run SQLite on the trio thread: only for tests under an autojump clock, which would
    # otherwise jump ahead while a worker thread runs.
    store_inline: bool = False


def sim_clock_ms() -> int:
    """Unix milliseconds on the simulated clock (trio's clock, started at the snapshot's day)."""
    return SIM_EPOCH_MS + int(trio.current_time() * 1000)


def load_graph(spec: str, seed: int) -> Graph:
    if spec == "mainnet":
        return load_mainnet(seed=seed)
    if spec == "generated":
        return generate_graph(200, seed=seed)
    return load_mainnet(Path(spec), seed=seed)


def hubs(graph: Graph, count: int) -> list[int]:
    """The ``count`` nodes with the most public capacity, best first."""
    totals = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        cap = graph.capacity_sat[c]
        totals[graph.node1[c]] += cap
        totals[graph.node2[c]] += cap
    return sorted(range(graph.n_nodes), key=lambda n: -totals[n])[:count]


@attrs.define
class Companion:
    node: SimNode
    runtime: Runtime


async def run_demo(
    options: DemoOptions, out: TextIO, *, graph: Graph | None = None
) -> list[dict[str, Any]]:
    """Run the demo until its duration ends or it is cancelled; returns the final statuses."""
    if graph is None:
        print(f"loading the {options.graph} graph ...", file=out, flush=True)
        graph = await trio.to_thread.run_sync(load_graph, options.graph, options.seed)
    print(f"graph: {graph.n_nodes:,} nodes, {graph.n_channels:,} channels", file=out, flush=True)
    network = SimNetwork(graph, seed=options.seed, latency=(0.05, 0.3))
    rng = random.Random(options.seed)
    candidates = hubs(graph, max(30, options.channels_per_node * 2))
    nodes = [network.add_node(f"hive-{i + 1}", options.onchain_sat) for i in range(options.nodes)]
    with tempfile.TemporaryDirectory(prefix="hive-demo-") as tmp:
        base = options.data_dir or Path(tmp)
        companions = [
            Companion(
                node,
                Runtime(
                    node,
                    HiveConfig(
                        data_dir=base / node.alias,
                        ping_interval_s=30.0,
                        # The first companion waits for the operator, the others decide
                        # within the hard limits: the demo shows both.
                        governance=Governance.ADVISOR if i == 0 else Governance.AUTONOMOUS,
                    ),
                    now_ms=sim_clock_ms,
                    rng=random.Random(rng.getrandbits(64)),
                    store_inline=options.store_inline,
                ),
            )
            for i, node in enumerate(nodes)
        ]
        for companion in companions:
            companion.runtime.planner_settings = DEMO_PLANNER
        statuses: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(network.run)
            for companion in companions:
                await nursery.start(companion.runtime.run)
            await _attach(nodes, graph, candidates, options, rng)
            await form_hive(companions, out)
            targets = [graph.node_ids[h] for h in candidates]
            every = options.proposal_interval_s
            for companion in companions:
                engine = companion.runtime.engine
                if engine is not None and every is not None:
                    await nursery.start(
                        partial(run_demo_proposer, interval_s=every),
                        engine,
                        targets,
                        random.Random(rng.getrandbits(64)),
                    )
            started = trio.current_time()
            with trio.move_on_after(
                options.duration_s if options.duration_s is not None else float("inf")
            ):
                while True:
                    statuses = await _snapshot(companions, graph)
                    table = render_table(statuses, trio.current_time() - started)
                    _show(out, "\n".join([table, *_proposals(companions)]))
                    await trio.sleep(options.refresh_s * options.speed)
            statuses = await _snapshot(companions, graph)
            table = render_table(statuses, trio.current_time() - started)
            _show(out, "\n".join([table, *_proposals(companions)]))
            nursery.cancel_scope.cancel()
    return statuses


def _proposals(companions: Sequence[Companion]) -> list[str]:
    engines = [(c.node.alias, c.runtime.engine) for c in companions if c.runtime.engine]
    return governance_lines(proposal_rows(engines))


async def _attach(
    nodes: Sequence[SimNode],
    graph: Graph,
    candidates: Sequence[int],
    options: DemoOptions,
    rng: random.Random,
) -> None:
    """Open each companion's first channels to well-connected nodes."""
    for node in nodes:
        for hub in rng.sample(list(candidates), options.channels_per_node):
            peer = graph.node_ids[hub]
            await node.connect(peer)
            await node.open_channel(peer, options.channel_sat)


async def form_hive(companions: Sequence[Companion], out: TextIO) -> None:
    """The real steps: the first companion founds the hive and invites each other one, which
    joins with its single-use ticket through the founder."""
    founder = companions[0].runtime
    created = await founder.command("hive-genesis")({"name": "demo"})
    print(f"{companions[0].node.alias}: hive-genesis -> hive {created['hive_id'][:16]}..", file=out)
    for companion in companions[1:]:
        invite = await founder.command("hive-invite")({})
        joined = await companion.runtime.command("hive-join")({"ticket": invite["ticket"]})
        print(
            f"{companion.node.alias}: hive-join {invite['ticket'][:24]}.. -> "
            f"member #{joined['members']}",
            file=out,
            flush=True,
        )


async def _snapshot(companions: Sequence[Companion], graph: Graph) -> list[dict[str, Any]]:
    rows = []
    for companion in companions:
        status = companion.runtime.status()
        for target in status.get("gossip", {}).get("fleet", {}).get("top_targets", []):
            index = graph.index.get(target["target"])
            target["alias"] = graph.aliases[index] if index is not None else None
        channels = await companion.node.list_channels()
        status["channels_normal"] = sum(c.state is ChannelState.NORMAL for c in channels)
        status["channels_opening"] = sum(c.state is ChannelState.OPENING for c in channels)
        status["local_sat"] = sum(c.local_msat for c in channels) // 1000
        status["onchain_sat"] = await companion.node.onchain_balance_sat()
        rows.append(status)
    return rows


def _plan_lines(statuses: Sequence[dict[str, Any]]) -> list[str]:
    """Planning and locking (issue 16): what each companion planned, its live intents."""
    parts = []
    for s in statuses:
        planner, locks = s.get("planner"), s.get("locks")
        if not planner or planner.get("ours_planned") is None:
            continue
        live = len(locks.get("own", [])) if locks else 0
        parts.append(
            f"{s['alias']}: {planner['ours_planned']} planned, {live} locking, "
            f"{locks.get('executed', 0) if locks else 0} opened"
        )
    if not parts:
        return []
    first = next(
        s["planner"] for s in statuses if s.get("planner", {}).get("ours_planned") is not None
    )
    return [
        f"plan: routed demand {first['routed_demand_ppm']} ppm, reach {first['reach_ppm']} ppm "
        "of the network (after the plan); " + "; ".join(parts)
    ]


def render_table(statuses: Sequence[dict[str, Any]], elapsed_s: float) -> str:
    """The fleet status table shown by `hive demo` (pure: easy to test)."""
    header = (
        f"{'companion':<10} {'node id':<14} {'role':<6} {'chans':>5} {'open':>4} {'local sat':>11} "
        f"{'on-chain':>11} {'alive':>5} {'rtt ms':>6} {'sent':>6} {'recv':>6} {'rej':>4} "
        f"{'restarts':>8}"
    )
    hive_ids = {s["hive"]["hive_id"] for s in statuses if s["hive"]["hive_id"]}
    members = max((s["hive"]["members"] for s in statuses), default=0)
    hive = f"hive {next(iter(hive_ids))[:16]}.., {members} members" if len(hive_ids) == 1 else ""
    lines = [
        f"hive demo - simulated time {_clock(elapsed_s)}   {hive}",
        header,
        "-" * len(header),
    ]
    for s in statuses:
        peers = s["peers"]
        alive = [p for p in peers if p["last_seen_s_ago"] is not None and p["last_seen_s_ago"] < 90]
        rtts = [p["rtt_ms"] for p in peers if p["rtt_ms"] is not None]
        rtt = f"{sum(rtts) // len(rtts)}" if rtts else "-"
        msgs = s["messages"]
        restarts = sum(a["restarts"] for a in s["actors"])
        lines.append(
            f"{s['alias']:<10} {s['node_id'][:12] + '..':<14} {s['hive']['role'] or '-':<6} "
            f"{s['channels_normal']:>5} "
            f"{s['channels_opening']:>4} {s['local_sat']:>11,} {s['onchain_sat']:>11,} "
            f"{len(alive):>2}/{len(peers):<2} {rtt:>6} {msgs['sent']:>6} {msgs['received']:>6} "
            f"{sum(msgs['rejected'].values()):>4} {restarts:>8}"
        )
    lines.extend(_fleet_lines(statuses))
    lines.extend(_plan_lines(statuses))
    lines.append("")
    lines.append("alive: fleet peers that answered a ping in the last 90 s.  Ctrl-C to stop.")
    return "\n".join(lines)


def _fleet_lines(statuses: Sequence[dict[str, Any]]) -> list[str]:
    """The fleet view as the first companion with gossip figures sees it (all converge to the
    same view), and every target any companion ignores for saturation."""
    views = [s["gossip"] for s in statuses if s.get("gossip")]
    if not views:
        return []
    fleet = views[0]["fleet"]
    lines = [
        "",
        f"fleet: {fleet['members']} fresh members, {len(fleet['stale'])} stale, coverage "
        f"{fleet['coverage']} targets, capacity {fleet['fleet_capacity_sat']:,} sat, "
        f"states sent {sum(v['states_sent'] for v in views)}, "
        f"relayed {sum(v['relayed'] for v in views)}",
    ]
    top = ", ".join(
        f"{_name(t)} {t['share'] * 100:.2f}% ({t['members']})" for t in fleet["top_targets"]
    )
    lines.append(f"top targets by fleet share: {top or '-'}")
    ignored = sorted({target for v in views for target in v["fleet"]["ignored"]})
    shown = ", ".join(f"{target[:12]}.." for target in ignored)
    lines.append(f"ignored for saturation: {shown or 'none'}")
    return lines


def _name(target: dict[str, Any]) -> str:
    alias = target.get("alias")
    return alias[:20] if alias else f"{target['target'][:12]}.."


def _clock(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _show(out: TextIO, table: str) -> None:
    if out.isatty():
        out.write("\x1b[H\x1b[2J")
    out.write(table + "\n")
    out.flush()


async def run_until_signalled(main: Callable[[], Any]) -> Any:
    """Run ``main`` until it returns or SIGINT/SIGTERM arrives, then cancel it cleanly."""
    result: list[Any] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    print(f"\n{signal.Signals(signum).name}: stopping", file=sys.stderr)
                    nursery.cancel_scope.cancel()
                    return

            async def body() -> None:
                result.append(await main())
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(body)
    return result[0] if result else None
