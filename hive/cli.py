"""The `hive` command: `hive demo` runs a fleet of companions on the simulated network."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import trio
import trio.testing

from hive.demo import DemoOptions, run_demo, run_until_signalled
from hive.web.access import DEFAULT_BIND, Bind, BindError, parse_bind


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hive",
        description="Coordinate independently owned Core Lightning nodes as one fleet.",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default: warning)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run a fleet of companions on a simulated network built from the mainnet graph",
        description=(
            "Start N companions as small new nodes on a simulated Lightning network built from "
            "the real mainnet graph (../shared/data, or HIVE_GRAPH), let them open channels and "
            "talk over signed custom messages, and show the fleet live. Ctrl-C stops it cleanly."
        ),
    )
    demo.add_argument("--nodes", type=_positive_int, default=5, help="companions (default 5)")
    demo.add_argument(
        "--graph",
        default="mainnet",
        help="'mainnet' (default), 'generated' (200 random nodes) or a describegraph .json.gz",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument(
        "--speed",
        type=_positive_float,
        default=60.0,
        help="simulated seconds per real second (default 60)",
    )
    demo.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        help="stop after this many simulated seconds (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--channels",
        type=_positive_int,
        default=3,
        help="channels each companion opens to well-connected nodes (default 3)",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the companions' data here (default: a temporary directory)",
    )
    demo.add_argument(
        "--web",
        type=_bind,
        default=DEFAULT_BIND,
        metavar="HOST:PORT|off",
        help=f"serve the live fleet view of the first companion here (default {DEFAULT_BIND})",
    )
    return parser


def _bind(text: str) -> Bind | None:
    try:
        return parse_bind(text)
    except BindError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "demo":
        options = DemoOptions(
            nodes=args.nodes,
            graph=args.graph,
            seed=args.seed,
            speed=args.speed,
            duration_s=args.duration,
            channels_per_node=args.channels,
            data_dir=args.data_dir,
            web=args.web,
        )
        main_fn = functools.partial(run_demo, options, sys.stdout)
        try:
            trio.run(run_until_signalled, main_fn, clock=trio.testing.MockClock(rate=options.speed))
        except FileNotFoundError as exc:
            print(f"hive demo: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
