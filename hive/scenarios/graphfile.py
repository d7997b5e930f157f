"""Any graph a user has: LND ``describegraph`` JSON or Core Lightning ``listchannels`` JSON
(``{"channels": [...]}``, one entry per direction), plain or gzipped, detected from the content.

Anything else is a :class:`~hive.node.sim.graph.GraphFileError` with one line naming the file
and the cause. describegraph is parsed by the simulator's own loader
(:func:`~hive.node.sim.graph.graph_from_describegraph`); listchannels is folded here into the
same :class:`~hive.node.sim.graph.Graph` (a channel is one entry per announced direction, so a
direction without an entry has no policy and never routes, exactly as describegraph's null
``nodeX_policy``).
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from pathlib import Path
from typing import Any

from hive.node.sim.graph import (
    HAS_POLICY,
    ROUTABLE,
    DirectionPolicy,
    Graph,
    GraphFileError,
    SplitFn,
    graph_from_describegraph,
    uniform_split,
)

GZIP_MAGIC = b"\x1f\x8b"


def read_json(file: Path) -> Any:
    """The file's JSON, gunzipped first when it starts with the gzip magic bytes."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError as exc:
        raise GraphFileError(f"{file}: no such file") from exc
    except IsADirectoryError as exc:
        raise GraphFileError(f"{file}: a directory, not a graph file") from exc
    except OSError as exc:
        raise GraphFileError(f"{file}: cannot read it ({exc.strerror})") from exc
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise GraphFileError(f"{file}: a damaged or truncated gzip file ({exc})") from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise GraphFileError(f"{file}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"{file}: not JSON ({exc})") from exc


def _listchannels_policy(entry: dict[str, Any]) -> DirectionPolicy:
    return DirectionPolicy(
        base_msat=int(entry["base_fee_millisatoshi"]),
        ppm=int(entry["fee_per_millionth"]),
        cltv_delta=int(entry.get("delay", 0)),
        flags=ROUTABLE if entry.get("active", True) else HAS_POLICY,
    )


def _capacity_sat(entry: dict[str, Any]) -> int:
    if "amount_msat" in entry:
        value = entry["amount_msat"]
        # Older CLN printed "123000msat"; v23+ prints an integer.
        msat = int(value[:-4]) if isinstance(value, str) and value.endswith("msat") else int(value)
        return msat // 1000
    return int(entry["satoshis"])


def graph_from_listchannels(
    data: dict[str, Any], *, seed: int = 0, split: SplitFn | None = None
) -> Graph:
    """A :class:`Graph` from Core Lightning ``listchannels`` output (one entry per direction)."""
    channels = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(channels, list):
        raise GraphFileError("not a listchannels graph: no 'channels' list at the top level")
    rng = random.Random(seed)
    split_fn = split if split is not None else uniform_split()
    # scid -> (node1, node2, capacity, {node: policy}); node1 is the smaller id (BOLT 7).
    found: dict[str, tuple[str, str, int, dict[str, DirectionPolicy]]] = {}
    order: list[str] = []
    for number, entry in enumerate(channels):
        try:
            scid = str(entry["short_channel_id"])
            source, destination = str(entry["source"]), str(entry["destination"])
            capacity = _capacity_sat(entry)
            policy = _listchannels_policy(entry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GraphFileError(
                f"channel entry #{number} is not a listchannels entry ({exc!r})"
            ) from exc
        if capacity <= 0 or source == destination:
            raise GraphFileError(
                f"channel entry #{number} ({scid}): needs two nodes and a capacity > 0"
            )
        node1, node2 = sorted((source, destination))
        known = found.get(scid)
        if known is None:
            found[scid] = known = (node1, node2, capacity, {})
            order.append(scid)
        elif (known[0], known[1]) != (node1, node2):
            raise GraphFileError(f"channel entry #{number}: {scid} joins two other nodes")
        if source in known[3]:
            raise GraphFileError(f"channel entry #{number}: {scid} from {source} listed twice")
        known[3][source] = policy
    graph = Graph()
    for scid in order:
        node1, node2, capacity, policies = found[scid]
        for node_id in (node1, node2):
            if node_id not in graph.index:
                graph.add_node(node_id, "")
        graph.add_channel(
            graph.index[node1],
            graph.index[node2],
            capacity,
            scid=scid,
            a_msat=int(capacity * 1000 * split_fn(rng)),
            policy_a=policies.get(node1),
            policy_b=policies.get(node2),
        )
    return graph


def load_graph_file(path: Path | str, *, seed: int = 0, split: SplitFn | None = None) -> Graph:
    """A describegraph or listchannels file, plain or gzipped; GraphFileError otherwise."""
    file = Path(path)
    data = read_json(file)
    try:
        if isinstance(data, dict) and "nodes" in data and "edges" in data:
            return graph_from_describegraph(data, seed=seed, split=split)
        if isinstance(data, dict) and "channels" in data:
            return graph_from_listchannels(data, seed=seed, split=split)
    except GraphFileError as exc:
        raise GraphFileError(f"{file}: {exc}") from exc
    shape = type(data).__name__ if not isinstance(data, dict) else f"keys {sorted(data)[:5]}"
    raise GraphFileError(
        f"{file}: neither LND describegraph JSON ('nodes' and 'edges') nor Core Lightning "
        f"listchannels JSON ('channels'); found {shape}"
    )
