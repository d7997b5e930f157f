"""Figures over seeds (mean and a 95 % Student-t confidence interval) and the output files:
``results.json`` (config, every run, the summary), ``runs.csv`` (one row per scenario and seed),
``summary.md`` (the table and the headline ratios) and PNG plots (matplotlib, no display)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from scipy import stats

from hive.scenarios.compare import Run, StudyConfig

FIGURES = (
    ("routing_share", "routing share", "{:.2%}"),
    ("forwarded_sat", "forwarded (sat)", "{:,.0f}"),
    ("fee_income_sat", "fee income (sat)", "{:,.1f}"),
    ("income_per_btc_sat", "income per BTC (sat)", "{:,.1f}"),
    ("rebalances", "rebalancing moves", "{:,.1f}"),
    ("rebalance_needs", "channels forecast to run dry (gate asked)", "{:,.1f}"),
    ("rebalance_fees_sat", "rebalancing fees (sat)", "{:,.1f}"),
    ("rebalance_market_sat", "same moves at market fees (sat)", "{:,.1f}"),
    ("net_income_sat", "net income: fees - rebalancing - on-chain (sat)", "{:,.0f}"),
    ("success_rate", "network success", "{:.2%}"),
    ("failed_no_liquidity", "failed forwards, no liquidity", "{:,.1f}"),
    ("onchain_fees_sat", "on-chain fees (sat)", "{:,.0f}"),
    ("opens", "opens", "{:,.1f}"),
    ("closes", "closes", "{:,.1f}"),
    ("overlapping_channels", "overlapping channels", "{:,.1f}"),
    ("duplicate_channels", "duplicate channels", "{:,.1f}"),
    ("lock_conflicts", "lock conflicts", "{:,.1f}"),
    ("reach_2_hops", "destinations within 2 hops", "{:,.0f}"),
    ("top_exit_fee_share", "fee income through the busiest exit target", "{:.0%}"),
)


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (0 with one value)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean()) if len(arr) else 0.0
    if len(arr) < 2:
        return mean, 0.0
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, half


def summarise(runs: Sequence[Run]) -> dict[str, Any]:
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(r.scenario, []).append(r)
    summary: dict[str, Any] = {}
    for name, rs in by.items():
        summary[name] = {key: interval([r.figures[key] for r in rs]) for key, _, _ in FIGURES}
    share = {name: {r.seed: r.figures["routing_share"] for r in rs} for name, rs in by.items()}

    late = {n: {r.seed: r.figures["share_after_down_at"] for r in rs} for n, rs in by.items()}

    def ratio(num: str, den: str, of: dict[str, dict[int, float]] = share) -> Any:
        if num not in of or den not in of:
            return None
        values = [of[num][s] / of[den][s] for s in of[num] if of[den].get(s, 0.0) > 0]
        return interval(values) if values else None

    # The fault figure: the share after the node went down, against the same payments' share
    # in the same scenario with nobody down.
    for kind in ("hive", "whale"):
        kept = ratio(f"{kind}-down", kind, late)
        if kept is not None and kind in summary:
            summary[kind]["share_kept_one_down"] = kept
            estimates = [r.figures["planner_kept_estimate"] for r in by[f"{kind}-down"]]
            finite = [e for e in estimates if e >= 0]
            if finite:
                summary[kind]["planner_kept_estimate"] = interval(finite)
    return {
        "scenarios": summary,
        "exits": {name: _exits(rs) for name, rs in by.items()},
        "fleet_vs_whale": ratio("hive", "whale"),
        "fleet_vs_uncoordinated": ratio("hive", "uncoordinated"),
        "fleet_vs_independent": ratio("hive", "independent"),
    }


def _exits(runs: Sequence[Run], top: int = 3) -> list[dict[str, Any]]:
    """The scenario's busiest exit targets over its seeds: fees and channels per seed (a seed
    where the target earned nothing counts as zero), and in how many seeds it was among the run's
    top five exits."""
    fee: dict[str, float] = {}
    chans: dict[str, float] = {}
    seeds: dict[str, int] = {}
    for r in runs:
        for e in r.exits:
            fee[e["target"]] = fee.get(e["target"], 0.0) + e["fee_sat"]
            chans[e["target"]] = chans.get(e["target"], 0.0) + e["channels"]
            seeds[e["target"]] = seeds.get(e["target"], 0) + 1
    count = max(1, len(runs))
    ranked = sorted(fee, key=lambda t: (-fee[t], t))[:top]
    return [
        {
            "target": t,
            "fee_sat_per_seed": fee[t] / count,
            "channels_per_seed": chans[t] / count,
            "seeds": seeds[t],
        }
        for t in ranked
    ]


def _cell(mean_half: tuple[float, float], fmt: str) -> str:
    mean, half = mean_half
    return f"{fmt.format(mean)} ± {fmt.format(half)}"


def markdown(summary: dict[str, Any], config: StudyConfig, wall_s: float | None) -> str:
    scen = summary["scenarios"]
    names = list(scen)
    lines = [
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, label, fmt in FIGURES:
        lines.append(f"| {label} | " + " | ".join(_cell(scen[n][key], fmt) for n in names) + " |")
    kept = [scen[n].get("share_kept_one_down") for n in names]
    if any(k is not None for k in kept):
        cells = [_cell(k, "{:.0%}") if k is not None else "" for k in kept]
        lines.append("| share kept, one node down | " + " | ".join(cells) + " |")
        est = [scen[n].get("planner_kept_estimate") for n in names]
        cells = [_cell(k, "{:.0%}") if k is not None else "" for k in est]
        lines.append("| planner's estimate of it | " + " | ".join(cells) + " |")
    lines.append("")
    for key, label in (
        ("fleet_vs_whale", "fleet's routing share / whale's"),
        ("fleet_vs_uncoordinated", "fleet's routing share / uncoordinated nodes'"),
        ("fleet_vs_independent", "fleet's routing share / independent nodes'"),
    ):
        value = summary.get(key)
        if value is not None:
            lines.append(f"- {label}: {_cell(value, '{:.2f}')} (per seed, then mean ± 95 % CI)")
    exits = summary.get("exits", {})
    if any(exits.values()):
        lines += [
            "",
            "Where the fee income left (the busiest exit targets, per seed):",
        ]
        for name in names:
            parts = [
                f"{e['target'][:16]}… {e['fee_sat_per_seed']:,.0f} sat, "
                f"{e['channels_per_seed']:.1f} channels, {e['seeds']} seeds"
                if e["target"] != "member"
                else f"a member (internal hop) {e['fee_sat_per_seed']:,.0f} sat, {e['seeds']} seeds"
                for e in exits.get(name, [])
            ]
            lines.append(f"- {name}: " + ("; ".join(parts) if parts else "no fee income"))
        lines.append("")
    d = config.demand
    lines.append(
        f"- {config.seeds} seeds; {config.nodes} nodes x {config.capital_sat:,} sat; "
        f"{d.payments:,} payments over {d.period_s / 86400:g} days"
        + (f"; wall time {wall_s:.0f} s" if wall_s is not None else "")
    )
    return "\n".join(lines) + "\n"


def plots(runs: Sequence[Run], summary: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(r.scenario, []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rs in by.items():
        days = np.array([r.daily_share for r in rs])
        x = np.arange(1, days.shape[1] + 1)
        mean = np.array([interval(days[:, d].tolist())[0] for d in range(days.shape[1])]) * 100
        half = np.array([interval(days[:, d].tolist())[1] for d in range(days.shape[1])]) * 100
        (line,) = ax.plot(x, mean, marker="o", label=name)
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("day")
    ax.set_ylabel("payments routed through the scenario's nodes (%)")
    ax.set_title("Routing share per day (mean and 95 % CI over seeds)")
    ax.legend()
    files.append(_save(fig, out / "routing_share.png"))
    scen = summary["scenarios"]
    names = list(scen)
    fig, ax = plt.subplots(figsize=(7, 4))
    means = [scen[n]["income_per_btc_sat"][0] for n in names]
    halves = [scen[n]["income_per_btc_sat"][1] for n in names]
    ax.bar(names, means, yerr=halves, capsize=4)
    ax.set_ylabel("fee income per BTC of capital (sat, whole period)")
    ax.set_title("Income per BTC (95 % CI)")
    files.append(_save(fig, out / "income_per_btc.png"))
    kept = {n: scen[n]["share_kept_one_down"] for n in names if "share_kept_one_down" in scen[n]}
    if kept:
        fig, ax = plt.subplots(figsize=(6, 4))
        x = np.arange(len(kept))
        ax.bar(
            x - 0.2,
            [v[0] * 100 for v in kept.values()],
            0.4,
            yerr=[v[1] * 100 for v in kept.values()],
            capsize=4,
            label="measured (routing share after / with nobody down)",
        )
        estimate = [scen[n].get("planner_kept_estimate", (0.0, 0.0)) for n in kept]
        ax.bar(
            x + 0.2,
            [v[0] * 100 for v in estimate],
            0.4,
            yerr=[v[1] * 100 for v in estimate],
            capsize=4,
            label="the planner's estimate",
        )
        ax.set_xticks(x, [f"{n}, one node down" for n in kept])
        ax.set_ylabel("routing share kept (%)")
        ax.set_title("Fault tolerance (95 % CI)")
        ax.legend(fontsize=8)
        files.append(_save(fig, out / "fault_tolerance.png"))
    plt.close("all")
    return files


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write(
    runs: Sequence[Run],
    config: StudyConfig,
    out: Path,
    wall_s: float | None,
    graph_label: str,
) -> tuple[dict[str, Any], str, list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs)
    table = markdown(summary, config, wall_s)
    document = {
        "graph": graph_label,
        "config": attrs.asdict(config),
        "wall_time_s": wall_s,
        "summary": summary,
        "runs": [attrs.asdict(r) for r in runs],
    }
    (out / "results.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    keys = [k for k, _, _ in FIGURES] + sorted(
        {k for r in runs for k in r.figures} - {k for k, _, _ in FIGURES}
    )
    with (out / "runs.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["scenario", "seed", *keys])
        for r in runs:
            writer.writerow([r.scenario, r.seed, *(r.figures[k] for k in keys)])
    (out / "summary.md").write_text(table)
    return summary, table, plots(runs, summary, out)
