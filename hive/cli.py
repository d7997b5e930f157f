"""The `hive` command line: tools that run without a Lightning node.

Each tool is one :class:`Subcommand` in :data:`SUBCOMMANDS` (its options and a ``run`` that
returns the exit status); `hive demo` is the first, and the value study (`hive sim`,
:mod:`hive.scenarios.cli`) the second. The companion itself runs under Core Lightning as a plugin
(`hive-plugin`, started by lightningd), and its operator commands are reached through
`lightning-cli` (the epilog of `hive --help` lists them from :data:`hive.commands.CATALOGUE`).

Exit status: 0 after a clean run, a stop by signal, or when the reader of the output goes away
(a closed pipe); 2 for bad input, printed as one line
naming the cause and what to do (argparse's messages are cut to one line too). Operator-facing
failures are :class:`hive.demo.run.DemoError`; trio delivers an exception raised inside the run in
an ExceptionGroup, so the boundary below matches with ``except*`` and anything else (a bug)
propagates with its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import attrs

from hive import __version__
from hive.commands import CATALOGUE
from hive.demo import run as demo
from hive.scenarios import cli as sim_cli
from hive.web.access import DEFAULT_BIND, Bind, BindError, parse_bind

PROG = "hive"


class _Parser(argparse.ArgumentParser):
    """argparse, with each usage error on one line (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


@attrs.frozen
class Subcommand:
    name: str
    help: str  # one line, for `hive --help`
    description: str  # for `hive NAME --help`
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _demo_configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nodes", type=int, default=5, metavar="N", help="companions in the fleet (default 5)"
    )
    parser.add_argument(
        "--graph",
        default="mainnet",
        metavar="G",
        help="'mainnet' (default: the snapshot shipped with hive, or the file $HIVE_GRAPH "
        "names), 'generated' (200 nodes grown like the real network: a few hubs, many "
        "small nodes) or a describegraph .json.gz file",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="N",
        help="random seed: keys, balances, latency (default 1)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        metavar="X",
        default=60.0,
        help="simulated seconds per real second, at most (default 60); the process's own "
        "computation takes no simulated time",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        default=None,
        help="stop after this many simulated seconds once the fleet has formed "
        "(default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        metavar="K",
        default=3,
        help="channels of 2,000,000 sat each companion opens at start (default 3, at most 9)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="D",
        default=None,
        help="keep the companions' keys and databases here; a rerun with the same options "
        "resumes the same fleet (default: a temporary directory, removed at exit)",
    )
    parser.add_argument(
        "--demo-proposals",
        type=float,
        metavar="S",
        default=None,
        help="also run the built-in demo proposer: random opens and fee changes, labelled "
        "'demo:', submitted to each companion every ~S simulated seconds, to exercise the "
        "decision engine beside the real planner's proposals (default: off)",
    )
    parser.add_argument(
        "--web",
        type=_bind,
        default=DEFAULT_BIND,
        metavar="HOST:PORT|off",
        help=f"serve the first companion's live fleet view here (default {DEFAULT_BIND}; "
        "the demo shows its address and token)",
    )


def _demo_run(args: argparse.Namespace) -> int:
    options = demo.DemoOptions(
        nodes=args.nodes,
        graph=args.graph,
        seed=args.seed,
        speed=args.speed,
        duration_s=args.duration,
        channels_per_node=args.channels,
        data_dir=args.data_dir,
        proposal_interval_s=args.demo_proposals,
        web=args.web,
    )
    failure: BaseException | None = None
    try:
        demo.run(options, sys.stdout)
    except* demo.DemoError as group:
        failure = _first(group)
    except* BrokenPipeError:
        # The reader of our output went away (`hive demo | head`): stop quietly, and point
        # stdout at /dev/null so that the interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if failure is not None:
        print(f"{PROG} demo: {failure}", file=sys.stderr)
        return 2
    return 0


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        name="demo",
        help="a fleet of companions on a simulated network built from the mainnet graph",
        description=(
            "Start N companions as small new nodes on a simulated Lightning network built from "
            "the real mainnet graph (a snapshot of 2025-10-25 shipped with hive), let each open "
            "channels to well-connected nodes, form a hive through the real hive-genesis, "
            "hive-invite and hive-join steps, and show the fleet live: one row per companion "
            "with a legend, and a log of what happened. No Lightning node is needed. "
            "Ctrl-C (or closing the terminal) stops it cleanly."
        ),
        configure=_demo_configure,
        run=_demo_run,
    ),
    Subcommand(
        name="sim",
        help="the value study: a Hive fleet against uncoordinated nodes and one whale",
        description=(
            "Compare, on one channel graph with one seeded demand and the same capital, a Hive "
            "fleet of N nodes (each member plans with the real coverage planner and claims "
            "targets through the real intent locks; zero fees and rebalancing between "
            "members), N uncoordinated nodes (a CLBOSS-like autopilot), N independent nodes "
            "(our planner alone each) and one whale with N times the capital; optionally with "
            "one node down from mid-period. Every node closes idle channels and reopens. "
            "Prints a table (mean and 95% confidence interval over the seeds) and writes "
            "JSON, CSV, Markdown and PNG plots. See docs/VALUE.md."
        ),
        configure=sim_cli.configure,
        run=sim_cli.run,
    ),
]


def _epilog() -> str:
    names = [spec.name for spec in CATALOGUE]
    lines = [
        "Under Core Lightning, Hive runs as a plugin: plugin=/path/to/hive-plugin in the",
        "node's config (see README.md). A running plugin's commands are reached through",
        "lightning-cli, e.g. 'lightning-cli hive-status', 'lightning-cli help hive-invite'.",
        "They are:",
    ]
    line = " "
    for name in names:
        if len(line) + len(name) + 2 > 79:
            lines.append(line.rstrip())
            line = " "
        line += f" {name}"
    lines.append(line.rstrip())
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Coordinate independently owned Core Lightning nodes as one fleet.\n"
        "These tools run without a node.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default: warning)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        configure = sub.add_parser(command.name, help=command.help, description=command.description)
        command.configure(configure)
        configure.set_defaults(run=command.run)
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
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
