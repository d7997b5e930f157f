"""`hive demo`: a fleet of companions on the simulated network, with a live terminal view.

The companions are small new nodes attached to the network built from the real mainnet graph
(shipped with the package; or a generated one, or any describegraph file). Each opens a few
channels to well-connected nodes, and the fleet forms through the real commands (`hive-genesis`,
`hive-invite`, `hive-join`). Every companion runs the full hive runtime against its simulated
node. Simulated time runs up to ``speed`` times faster than the wall clock and only while the
process waits (:mod:`hive.demo.clock`), so channel confirmations (ten simulated minutes) happen
in seconds and round trips show network latency, not this process's computation.

The screen is :mod:`hive.demo.screen` (how to add events and sections is said there); a kept
fleet (``--data-dir``) is :mod:`hive.demo.datadir`. Operator mistakes raise :class:`DemoError`
with one line that names the cause and what to do; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import attrs
import nacl.signing
import trio
from rich.text import Text

from hive import keys
from hive.actors.governance.demo_proposer import run_demo_proposer
from hive.actors.opens.planner import PlannerSettings
from hive.commands import CommandError
from hive.config import Governance, HiveConfig
from hive.demo import datadir as demo_datadir
from hive.demo.clock import IdleClock
from hive.demo.datadir import DemoError, Manifest
from hive.demo.governance import event_line, governance_lines, proposal_rows
from hive.demo.screen import Screen, plural
from hive.fleet.plantypes import PlannerConfig
from hive.node.port import ChannelState
from hive.node.sim import Graph, GraphFileError, SimNetwork, SimNode, generate_graph, load_mainnet
from hive.node.sim.graph import GRAPH_ENV
from hive.runtime import Runtime
from hive.web.access import Bind
from hive.web.demo import announce, demo_web_config

log = logging.getLogger(__name__)

__all__ = ["DemoError", "DemoOptions", "run_demo", "run_until_signalled"]

# 2025-10-25 00:00 UTC, the graph snapshot's day: a new fleet's simulated time starts there.
SIM_EPOCH_MS = 1_761_350_400_000
OPEN_FEE_SAT = 2_000  # the simulated network's on-chain fee per open
MAX_NODES = 200  # every companion runs in this one process

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
    # The built-in demo proposer (hive/actors/governance/demo_proposer.py, `--demo-proposals`)
    # submits a random proposal labelled "demo:" to each companion every ~`proposal_interval_s`
    # simulated seconds; None (the default) leaves the proposals to the real producers.
    proposal_interval_s: float | None = None
    # The first companion serves the live view here (None: no web server).
    web: Bind | None = None

    def check(self) -> None:
        """Raise DemoError for options the demo cannot run with (before anything starts)."""
        if not 1 <= self.nodes <= MAX_NODES:
            raise DemoError(
                f"--nodes {self.nodes}: give 1 to {MAX_NODES} "
                "(every companion runs in this one process)"
            )
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise DemoError(f"--speed {self.speed}: give a positive number, e.g. 60")
        if self.duration_s is not None and not (
            math.isfinite(self.duration_s) and self.duration_s > 0
        ):
            raise DemoError(f"--duration {self.duration_s}: give a positive number of seconds")
        every = self.proposal_interval_s
        if every is not None and not (math.isfinite(every) and every > 0):
            raise DemoError(
                f"--demo-proposals {every}: give a positive number of simulated seconds, e.g. 600"
            )
        affordable = self.onchain_sat // (self.channel_sat + OPEN_FEE_SAT)
        if not 1 <= self.channels_per_node <= affordable:
            raise DemoError(
                f"--channels {self.channels_per_node}: each companion has {self.onchain_sat:,} "
                f"sat on chain, enough for 1 to {affordable} opens of {self.channel_sat:,} sat "
                f"+ {OPEN_FEE_SAT:,} sat fee; give --channels {affordable} or fewer"
            )


def load_graph(spec: str, seed: int) -> Graph:
    """The graph named by ``--graph``; DemoError (one line) when it cannot be used."""
    if spec == "generated":
        return generate_graph(200, seed=seed)
    try:
        if spec == "mainnet":
            return load_mainnet(seed=seed)
        return load_mainnet(Path(spec), seed=seed)
    except GraphFileError as exc:
        if spec == "mainnet" and GRAPH_ENV in os.environ:
            hint = f"(named by {GRAPH_ENV}; unset it to use the snapshot shipped with hive)"
        elif spec == "mainnet":
            hint = f"(the shipped snapshot: reinstall hive, or set {GRAPH_ENV})"
        else:
            hint = "(--graph takes mainnet, generated or a describegraph .json.gz)"
        raise DemoError(f"{exc} {hint}") from exc


def hubs(graph: Graph, count: int) -> list[int]:
    """The ``count`` nodes with the most public capacity, best first."""
    totals = [0] * graph.n_nodes
    for c in range(graph.n_channels):
        cap = graph.capacity_sat[c]
        totals[graph.node1[c]] += cap
        totals[graph.node2[c]] += cap
    ranked = sorted(range(graph.n_nodes), key=lambda n: -totals[n])
    return [n for n in ranked if totals[n] > 0][:count]


def _load_key(data_dir: Path) -> nacl.signing.SigningKey:
    try:
        return keys.load_or_create(data_dir)
    except OSError as exc:
        raise DemoError(f"cannot keep a hive key in {data_dir}: {exc.strerror or exc}") from exc
    except keys.KeyFileError as exc:  # says what is wrong with the file and what to do
        raise DemoError(str(exc)) from exc


@attrs.define
class Companion:
    node: SimNode
    runtime: Runtime


class _SimClock:
    """Unix milliseconds on the simulated clock: trio's clock plus where this fleet's time is."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms

    def __call__(self) -> int:
        return self.start_ms + int(trio.current_time() * 1000)


async def run_demo(
    options: DemoOptions,
    out: TextIO,
    *,
    graph: Graph | None = None,
    rate: Callable[[], float] | None = None,
) -> list[dict[str, Any]]:
    """Run the demo until its duration ends or it is cancelled; returns the final statuses.

    ``rate`` reports the simulated seconds per wall second really reached (shown in the header).
    """
    options.check()
    kept = demo_datadir.read(options.data_dir) if options.data_dir else None
    if graph is None:
        print(f"loading the {options.graph} graph ...", file=out, flush=True)
        graph = await trio.to_thread.run_sync(load_graph, options.graph, options.seed)
    candidates = hubs(graph, max(30, options.channels_per_node * 2))
    if len(candidates) < options.channels_per_node:
        raise DemoError(
            f"the graph has {len(candidates)} nodes with channels, too few for "
            f"--channels {options.channels_per_node}; give a larger graph or fewer channels"
        )
    graph_line = f"graph: {graph.n_nodes:,} nodes, {graph.n_channels:,} channels"
    network = SimNetwork(graph, seed=options.seed, latency=(0.05, 0.3))
    rng = random.Random(options.seed)
    nodes = [network.add_node(f"hive-{i + 1}", options.onchain_sat) for i in range(options.nodes)]
    node_ids = [n.node_id for n in nodes]
    if kept is not None and options.data_dir is not None:
        demo_datadir.check_resumable(options.data_dir, kept, node_ids)
    # A kept fleet's time continues past its last run: an hour after the time recorded last, or
    # two redraw intervals if they are longer, since the run may have gone on unrecorded for up
    # to one of them (a SIGKILL), so timestamps and sequence numbers only increase.
    start_ms = SIM_EPOCH_MS
    if kept is not None:
        start_ms = kept.clock_ms + max(3_600_000, int(2_000 * options.refresh_s * options.speed))
    clock = _SimClock(start_ms - int(trio.current_time() * 1000))
    started = trio.current_time()
    screen = Screen(out, lambda: trio.current_time() - started)
    screen.log.add("demo", "graph", graph_line)
    with tempfile.TemporaryDirectory(prefix="hive-demo-") as tmp:
        base = options.data_dir or Path(tmp)
        if options.data_dir is not None:
            manifest = Manifest(options.graph, options.seed, tuple(node_ids), clock())
            demo_datadir.write(options.data_dir, manifest)
        # Keys and SQLite run on trio's thread: work in a worker thread would count as waiting
        # and so take simulated time (hive/demo/clock.py); under a test's autojump clock the
        # clock would jump while a thread works.
        companions = [
            Companion(
                node,
                Runtime(
                    node,
                    HiveConfig(
                        data_dir=base / node.alias,
                        ping_interval_s=30.0,
                        web=demo_web_config(options.web if i == 0 else None, options.speed),
                        # The first companion waits for the operator, the others decide
                        # within the hard limits: the demo shows both.
                        governance=Governance.ADVISOR if i == 0 else Governance.AUTONOMOUS,
                    ),
                    now_ms=clock,
                    rng=random.Random(rng.getrandbits(64)),
                    signing_key=_load_key(base / node.alias),
                    store_inline=True,
                    events=screen.log.sink(node.alias),
                ),
            )
            for i, node in enumerate(nodes)
        ]
        for companion in companions:
            companion.runtime.planner_settings = DEMO_PLANNER
        final: list[list[dict[str, Any]]] = [[]]
        screen.add_section("plan", _plan)
        screen.add_section("proposals", lambda _statuses: _proposals(companions))
        watcher = _Watcher(screen)

        async def redraw() -> None:
            statuses = await _snapshot(companions, graph)
            watcher.observe(statuses)
            screen.show(statuses, trio.current_time() - started, rate() if rate else options.speed)
            if options.data_dir is not None:
                manifest = Manifest(options.graph, options.seed, tuple(node_ids), clock())
                demo_datadir.write(options.data_dir, manifest)
            final[0] = statuses

        async def redraw_every_refresh() -> None:
            while True:
                await redraw()
                await trio.sleep(options.refresh_s * options.speed)

        with screen.running():
            async with trio.open_nursery() as nursery:
                await nursery.start(network.run)
                for companion in companions:
                    await nursery.start(companion.runtime.run)
                nursery.start_soon(redraw_every_refresh)
                await _attach(nodes, graph, candidates, options, rng)
                await form_hive(companions, screen)
                if options.web is not None:
                    await announce(
                        companions[0].runtime,
                        lambda text: screen.log.add("demo", "web", text, pinned=True),
                        timeout_s=5 * options.speed,
                    )
                await _start_proposers(nursery, companions, graph, candidates, options, rng)
                for companion in companions:
                    nursery.start_soon(_log_engine_events, companion, screen)
                await trio.sleep(options.duration_s if options.duration_s is not None else math.inf)
                await redraw()
                nursery.cancel_scope.cancel()
    return final[0]


def _proposals(companions: Sequence[Companion]) -> Text:
    """The proposals section: each companion's open proposals, then its latest decided ones."""
    engines = [(c.node.alias, c.runtime.engine) for c in companions if c.runtime.engine]
    return Text("\n".join(governance_lines(proposal_rows(engines))).strip("\n"))


async def _start_proposers(
    nursery: trio.Nursery,
    companions: Sequence[Companion],
    graph: Graph,
    candidates: Sequence[int],
    options: DemoOptions,
    rng: random.Random,
) -> None:
    """One built-in demo proposer per companion, when asked for (``--demo-proposals``)."""
    every = options.proposal_interval_s
    if every is None:
        return
    targets = [graph.node_ids[h] for h in candidates]
    for companion in companions:
        engine = companion.runtime.engine
        if engine is not None:
            await nursery.start(
                partial(run_demo_proposer, interval_s=every),
                engine,
                targets,
                random.Random(rng.getrandbits(64)),
            )


async def _log_engine_events(companion: Companion, screen: Screen) -> None:
    """Every decision engine event of one companion, as a line in the demo's event log."""
    engine = companion.runtime.engine
    if engine is None:
        return
    async with engine.subscribe(64) as events:
        async for event in events:
            screen.log.add(companion.node.alias, event.kind.value, event_line("", event)[2:])


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


async def form_hive(companions: Sequence[Companion], screen: Screen) -> None:
    """The real steps, resumable: a companion that is already a member (a kept fleet) is left
    as it is; with no hive yet, the first companion founds one; the founder (or any admin)
    invites each companion that is not a member, which joins with its single-use ticket."""
    log_ = screen.log
    states = [c.runtime.status()["hive"] for c in companions]
    hive_ids = {s["hive_id"] for s in states if s["member"]}
    if len(hive_ids) > 1:
        raise DemoError("the kept companions belong to different hives; use another --data-dir")
    admins = [c for c, s in zip(companions, states, strict=True) if s["role"] == "admin"]
    if hive_ids and not admins:
        raise DemoError("no kept companion is an admin of the hive; use another --data-dir")
    if hive_ids:
        members = sum(1 for s in states if s["member"])
        log_.add(
            "demo",
            "resumed",
            f"resumed hive {next(iter(hive_ids))[:16]}.. with {plural(members, 'member')}",
            pinned=True,
        )
        founder = admins[0]
    else:
        founder = companions[0]
        created = await founder.runtime.command("hive-genesis")({"name": "demo"})
        log_.add(
            founder.node.alias,
            "formed",
            f"hive-genesis -> hive {created['hive_id'][:16]}.., admin",
            pinned=True,
        )
    for companion, state in zip(companions, states, strict=True):
        if state["member"] or companion is founder:
            continue
        invite = await founder.runtime.command("hive-invite")({})
        try:
            joined = await companion.runtime.command("hive-join")({"ticket": invite["ticket"]})
        except CommandError as exc:  # the simulated network dropped too much, say
            raise DemoError(f"{companion.node.alias} could not join: {exc.message}") from exc
        log_.add(
            companion.node.alias,
            "joined",
            f"hive-join with ticket {invite['ticket_id'][:12]}.. from "
            f"{founder.node.alias} -> member #{joined['members']}",
            pinned=True,
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
        status["local_sat"] = (
            sum(c.local_msat for c in channels if c.state is ChannelState.NORMAL) // 1000
        )
        status["onchain_sat"] = await companion.node.onchain_balance_sat()
        rows.append(status)
    return rows


class _Watcher:
    """Turns changes between two redraws into event lines (channels confirmed, restarts,
    saturation, stale members) until the actors report their own through the runtime's sink."""

    def __init__(self, screen: Screen) -> None:
        self._log = screen.log
        self._last: dict[str, dict[str, Any]] = {}

    def observe(self, statuses: Sequence[dict[str, Any]]) -> None:
        for s in statuses:
            alias = s["alias"]
            before = self._last.get(alias)
            now = {
                "normal": s["channels_normal"],
                "restarts": {a["name"]: a["restarts"] for a in s["actors"]},
                "ignored": set(s.get("gossip", {}).get("fleet", {}).get("ignored", {})),
                "stale": set(s.get("gossip", {}).get("fleet", {}).get("stale", [])),
            }
            self._last[alias] = now
            if before is None:
                continue
            confirmed = now["normal"] - before["normal"]
            if confirmed > 0:
                self._log.add(
                    alias, "channel", f"{plural(confirmed, 'channel')} confirmed ({now['normal']})"
                )
            for name, count in now["restarts"].items():
                if count > before["restarts"].get(name, 0):
                    self._log.add(alias, "restart", f"actor {name} restarted ({count} so far)")
            for target in sorted(now["ignored"] - before["ignored"]):
                self._log.add(alias, "saturation", f"ignores {target[:16]}.. for opens")
            for target in sorted(before["ignored"] - now["ignored"]):
                self._log.add(alias, "saturation", f"considers {target[:16]}.. again")
            for member in sorted(now["stale"] - before["stale"]):
                self._log.add(alias, "stale", f"member {member[:16]}.. went stale")


def _plan_lines(statuses: Sequence[Mapping[str, Any]]) -> list[str]:
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
    lines = [
        f"plan: routed demand {first['routed_demand_ppm']} ppm, reach {first['reach_ppm']} ppm "
        "of the network (after the plan); " + "; ".join(parts)
    ]
    if first.get("why_nothing"):
        lines.append(f"nothing to open: {first['why_nothing']}")
    return lines


def _plan(statuses: Sequence[Mapping[str, Any]]) -> Text | None:
    """The planning section: the fleet's plan figures and each companion's locks and opens."""
    lines = _plan_lines(statuses)
    return Text("\n".join(lines)) if lines else None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def run_until_signalled(main: Callable[[], Any]) -> Any:
    """Run ``main`` until it returns or SIGINT, SIGTERM or SIGHUP (the terminal closed)
    arrives, then cancel it cleanly, so temporary directories are removed."""
    result: list[Any] = []
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                        print(f"\n{signal.Signals(signum).name}: stopping", file=sys.stderr)
                    nursery.cancel_scope.cancel()
                    return

            async def body() -> None:
                result.append(await main())
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(body)
    return result[0] if result else None


def run(options: DemoOptions, out: TextIO) -> None:
    """Run the demo in a fresh trio loop on the demo's clock (the CLI's entry)."""
    options.check()
    clock = IdleClock(rate=options.speed)

    async def main() -> Any:
        return await run_demo(options, out, rate=clock.effective_rate)

    trio.run(run_until_signalled, main, clock=clock, instruments=[clock])
