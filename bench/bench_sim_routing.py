"""Benchmark `hive sim`'s routing engine on the mainnet snapshot: payments/s, attempts/s, memory.

Usage: .venv/bin/python bench/bench_sim_routing.py [--payments 20000] [--seed 1] [--graph FILE]

Prints figures only; it asserts nothing. The study's demand (hive/scenarios/demand.py, default
shape) over the public graph with the study's per-seed balances (20 .. 80 % on a random side),
paid in time order through Flow.pay (search, HTLC walk, retries without the failed channel), so
balances drift as they would in a run. No scenario nodes and no rebalancing: this is the engine
alone; `hive sim`'s wall time is in docs/BENCHMARKS.md.

"Cold" is the first path after a change of structure or fees, which rebuilds the routing
arrays (and, first in a process, loads the compiled search from numba's cache, or compiles it);
"warm" is every path after that, until the next change. The engine keeps no path or tree
cache: each attempt searches afresh over what is current.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from hive.node.sim.graph import default_graph_path
from hive.scenarios.compare import StudyConfig, _Base
from hive.scenarios.demand import DemandConfig, generate
from hive.scenarios.graphfile import load_graph_file


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=None, help="default: the mainnet snapshot")
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    path = args.graph or default_graph_path()
    print(f"graph file: {path}")
    start = time.perf_counter()
    graph = load_graph_file(path)
    base = _Base(graph, StudyConfig())  # the study's view of the public graph
    template = base.template
    print(
        f"nodes: {template.n:,}  channels: {len(template.node1):,}  "
        f"routable directed edges: {int(template.routable.sum()):,}"
    )
    print(f"load: {time.perf_counter() - start:.2f} s, ru_maxrss {_maxrss_mib():.0f} MiB")

    flow = base.fresh(args.seed)  # this seed's balances, as every scenario starts
    payments = generate(base.degree, base.capacity, DemandConfig(payments=args.payments), args.seed)

    # Cold: the first path in the process (compiled search loaded or compiled, arrays built);
    # then, on a scratch copy, the first path after a change: an added channel rebuilds the
    # arrays, a fee change or a close patches them in place.
    s0, r0, a0 = int(payments.sender[0]), int(payments.receiver[0]), int(payments.amount_msat[0])
    t = time.perf_counter()
    flow.route(s0, r0, a0)
    first_s = time.perf_counter() - t
    scratch = base.fresh(args.seed)
    scratch.route(s0, r0, a0)
    rng = np.random.default_rng(args.seed)
    costs: dict[str, list[float]] = {"added channel": [], "fee change": [], "close": []}
    for _ in range(10):
        a, b = (int(x) for x in rng.choice(template.n, size=2, replace=False))
        for change in costs:
            if change == "added channel":
                scratch.add_channel(a, b, 1_000_000, 0, (0, 0), (0, 0))
            elif change == "fee change":
                scratch.set_fee(int(scratch.edges[a]), 1000, 100)
            else:
                scratch.close_channel(int(scratch.edges[b]) // 2)
            t = time.perf_counter()
            scratch.route(s0, r0, a0)
            costs[change].append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(20):
        scratch.route(s0, r0, a0)
    same_warm = (time.perf_counter() - t) / 20
    print(f"cold: first path in the process {first_s:.2f} s (numba cache load or compile, arrays)")
    print(
        "cold: first path after "
        + ", ".join(f"{k} {1000 * float(np.median(v)):.2f} ms" for k, v in costs.items())
        + f" (median of 10); the same path warm {1000 * same_warm:.2f} ms"
    )

    # Warm: the whole demand through Flow.pay, attempts counted.
    attempts = [0]
    route = flow.route

    def counted(*a: object, **kw: object) -> tuple[int, ...] | None:
        attempts[0] += 1
        return route(*a, **kw)  # type: ignore[arg-type]

    flow.route = counted  # type: ignore[method-assign]
    ok = retried = 0
    searching = 0.0
    cpu = time.process_time()
    t = time.perf_counter()
    for k in range(len(payments)):
        before = attempts[0]
        done = flow.pay(
            int(payments.sender[k]), int(payments.receiver[k]), int(payments.amount_msat[k])
        )
        ok += done.ok
        retried += attempts[0] - before > 1
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    flow.route = route  # type: ignore[method-assign]
    sample = range(0, len(payments), max(1, len(payments) // 2000))
    t = time.process_time()
    for k in sample:
        flow.route(int(payments.sender[k]), int(payments.receiver[k]), int(payments.amount_msat[k]))
    searching = (time.process_time() - t) / len(sample)
    n = len(payments)
    print(
        f"warm: {n:,} payments in {wall:.1f} s wall, {cpu:.1f} s CPU: "
        f"{n / wall:,.0f} payments/s and {attempts[0] / wall:,.0f} attempts/s by the wall clock, "
        f"{n / cpu:,.0f} and {attempts[0] / cpu:,.0f} per CPU second"
    )
    print(
        f"      {1000 * cpu / n:.3f} ms CPU per payment; a search alone {1000 * searching:.3f} ms "
        f"CPU (mean over {len(sample):,})"
    )
    print(
        f"      attempts per payment {attempts[0] / n:.3f}; retried {retried / n:.1%}; "
        f"succeeded {ok / n:.1%}"
    )
    print(f"ru_maxrss: {_maxrss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
