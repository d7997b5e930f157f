"""A kept demo fleet: what `hive demo --data-dir D` writes into ``D`` so a rerun resumes it.

``D/demo.json`` records what made the fleet (graph, seed, the companions' node ids) and how far
simulated time had gone; ``D/hive-N/`` is each companion's data directory (``hive_key``,
``hive.sqlite3``). A rerun with the same options derives the same node keys (the simulated
network derives them from the seed and the graph), so each companion finds its own key, hive
membership and state again. The simulated network itself (channels, balances, the wallet) is
not kept: it is rebuilt from the graph on every run and the companions open their channels
again. Simulated time continues an hour after the last run's recorded time (it is recorded at
every redraw), so signed timestamps and sequence numbers keep increasing across runs.

Anything that cannot be resumed (options that derive other keys, a directory that holds other
files, an unreadable record) is refused with a :class:`DemoError`, one line saying what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

MANIFEST = "demo.json"
FORMAT = 1


class DemoError(Exception):
    """Bad input or an unusable directory: one line for the operator, shown without traceback."""


@attrs.frozen
class Manifest:
    graph: str
    seed: int
    node_ids: tuple[str, ...]
    # Simulated Unix milliseconds when the last run wrote this file.
    clock_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "graph": self.graph,
            "seed": self.seed,
            "node_ids": list(self.node_ids),
            "clock_ms": self.clock_ms,
        }


def read(data_dir: Path) -> Manifest | None:
    """The kept fleet in ``data_dir``, or None for a new or empty directory."""
    if not data_dir.exists():
        return None
    if not data_dir.is_dir():
        raise DemoError(f"--data-dir {data_dir} is not a directory")
    path = data_dir / MANIFEST
    if not path.exists():
        if any(data_dir.iterdir()):
            raise DemoError(
                f"--data-dir {data_dir} is not empty and holds no demo fleet ({MANIFEST}); "
                "give a new or empty directory"
            )
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        return Manifest(
            graph=str(raw["graph"]),
            seed=int(raw["seed"]),
            node_ids=tuple(str(n) for n in raw["node_ids"]),
            clock_ms=int(raw["clock_ms"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DemoError(f"{path} cannot be read ({exc}); use another --data-dir") from exc


def check_resumable(data_dir: Path, kept: Manifest, node_ids: Sequence[str]) -> None:
    """Refuse a rerun whose companions would not be the kept ones."""
    if tuple(node_ids) == kept.node_ids:
        return
    raise DemoError(
        f"--data-dir {data_dir} keeps a fleet of {len(kept.node_ids)} companions made with "
        f"--graph {kept.graph} --seed {kept.seed}; rerun with those options "
        f"(--nodes {len(kept.node_ids)}) or use another --data-dir"
    )


def write(data_dir: Path, manifest: Manifest) -> None:
    """Replace ``demo.json`` atomically (a crash leaves the old or the new one)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, data_dir / MANIFEST)
    except OSError as exc:
        raise DemoError(f"cannot write to --data-dir {data_dir}: {exc.strerror or exc}") from exc
