"""`hive sim`: its options, the run with a progress bar, the files it writes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import attrs
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hive.fleet.plantypes import PlannerConfig
from hive.node.sim.graph import Graph, GraphFileError, default_graph_path, generate_graph
from hive.scenarios.compare import SCENARIOS, StudyConfig, run_study
from hive.scenarios.deciders import DecisionConfig
from hive.scenarios.demand import DemandConfig
from hive.scenarios.graphfile import load_graph_file
from hive.scenarios.report import write

DEFAULT_SCENARIOS = ("hive", "uncoordinated", "independent", "whale", "hive-down")


class SimError(ValueError):
    """A bad option or unusable graph: one line for the operator."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graph",
        default="mainnet",
        metavar="G",
        help="'mainnet' (default: the snapshot shipped with hive, or $HIVE_GRAPH), 'generated' "
        "(a random 200-node graph) or a file: LND describegraph JSON or Core Lightning "
        "listchannels JSON, plain or gzipped (detected from the content)",
    )
    parser.add_argument("--nodes", type=int, default=5, metavar="N", help="fleet size (default 5)")
    parser.add_argument(
        "--capital",
        type=int,
        default=10_000_000,
        metavar="SAT",
        help="capital per node in sat (default 10,000,000); the whale has N x SAT",
    )
    parser.add_argument(
        "--payments",
        type=int,
        default=50_000,
        metavar="P",
        help="payments per seed over the period, the whole network's (default 50,000)",
    )
    parser.add_argument(
        "--days", type=float, default=7.0, metavar="D", help="simulated period (default 7)"
    )
    parser.add_argument(
        "--merchant-share",
        type=float,
        default=0.3,
        metavar="F",
        help="share of payments to the merchants (the 2%% largest nodes; default 0.3)",
    )
    parser.add_argument(
        "--median-sat",
        type=float,
        default=20_000.0,
        metavar="SAT",
        help="median payment (log-normal amounts, sigma 1.5; default 20,000)",
    )
    parser.add_argument(
        "--seeds", type=int, default=5, metavar="K", help="seeds, 1 to 100 (default 5)"
    )
    parser.add_argument(
        "--grace-days",
        type=float,
        default=2.0,
        metavar="D",
        help="every node closes a channel that forwarded nothing for D days and spends the "
        "capital again (default 2; 0: channels are never revisited)",
    )
    parser.add_argument(
        "--robustness",
        type=float,
        default=PlannerConfig().robustness,
        metavar="R",
        help="the planner's robustness weight, which spreads routing over members so one "
        f"member down costs less (default {PlannerConfig().robustness:g}, the product's)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        metavar="J",
        help="worker processes, one seed each at a time (default 2; the figures do not "
        "depend on it)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(SCENARIOS)} "
        f"(default: {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("hive-sim-results"),
        metavar="DIR",
        help="where results.json, runs.csv, summary.md and the PNG plots go "
        "(default ./hive-sim-results)",
    )


def options(args: argparse.Namespace) -> StudyConfig:
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or not scenarios:
        raise SimError(
            f"--scenarios: unknown {unknown or 'none given'}; give some of {', '.join(SCENARIOS)}"
        )
    if not 1 <= args.nodes <= 50:
        raise SimError(f"--nodes {args.nodes}: give 1 to 50")
    if not 1 <= args.seeds <= 100:
        raise SimError(f"--seeds {args.seeds}: give 1 to 100")
    pc = PlannerConfig()
    # A fleet member funds its ring channel and matches its neighbour's (2 x min_channel_sat
    # and one open fee), then needs one open's worth above the planner's reserve.
    least = 3 * pc.min_channel_sat + 2 * pc.open_fee_sat + pc.reserve_sat
    if args.capital < least:
        raise SimError(
            f"--capital {args.capital}: give at least {least:,} sat per node (a fleet member "
            f"puts {2 * pc.min_channel_sat + pc.open_fee_sat:,} sat into the members' ring "
            f"and needs {pc.min_channel_sat + pc.open_fee_sat + pc.reserve_sat:,} sat more "
            "for one open)"
        )
    if not 1 <= args.payments <= 10_000_000:
        raise SimError(f"--payments {args.payments}: give 1 to 10,000,000")
    if not 0 < args.days <= 365:
        raise SimError(f"--days {args.days}: give a period of up to 365 days")
    if not 0 <= args.grace_days <= 365:
        raise SimError(f"--grace-days {args.grace_days}: give 0 to 365")
    if not 0 <= args.robustness <= 100:
        raise SimError(f"--robustness {args.robustness}: give 0 to 100")
    if not 1 <= args.jobs <= 64:
        raise SimError(f"--jobs {args.jobs}: give 1 to 64")
    try:
        demand = DemandConfig(
            payments=args.payments,
            period_s=args.days * 86400.0,
            merchant_share=args.merchant_share,
            median_sat=args.median_sat,
        )
    except ValueError as exc:
        raise SimError(str(exc)) from exc
    decisions = DecisionConfig(
        grace_s=max(1.0, args.grace_days * 86400.0), revisit=args.grace_days > 0
    )
    return StudyConfig(
        nodes=args.nodes,
        capital_sat=args.capital,
        seeds=args.seeds,
        scenarios=scenarios,
        demand=demand,
        planner=attrs.evolve(PlannerConfig(), robustness=args.robustness),
        decisions=decisions,
    )


def load(graph: str, config: StudyConfig) -> tuple[Graph, StudyConfig, str]:
    if graph == "generated":
        # Generated scids are not real block heights: the planner's age rule would refuse all.
        planner = attrs.evolve(config.planner, min_age_blocks=0)
        return generate_graph(200, seed=7), attrs.evolve(config, planner=planner), "generated"
    path = default_graph_path() if graph == "mainnet" else Path(graph)
    try:
        return load_graph_file(path), config, str(path)
    except GraphFileError as exc:
        raise SimError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    try:
        config = options(args)
        graph, config, label = load(args.graph, config)
    except SimError as exc:
        print(f"hive sim: {exc}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    started = time.monotonic()
    columns = (
        TextColumn("[bold]hive sim"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} payments"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("sim", total=1)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        runs = run_study(graph, config, on_progress, jobs=args.jobs)
    wall = time.monotonic() - started
    try:
        _, table, pngs = write(runs, config, args.out, wall, label)
    except OSError as exc:
        print(f"hive sim: cannot write results to {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(table)
    print(
        f"results in {args.out}/: results.json, runs.csv, summary.md, "
        + ", ".join(p.name for p in pngs)
    )
    return 0
