"""Graph loading (mainnet snapshot and LND JSON rules) and generated graphs."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.node.sim.graph import (
    HAS_POLICY,
    ROUTABLE,
    GraphFileError,
    default_graph_path,
    even_split,
    generate_graph,
    graph_from_describegraph,
    load_mainnet,
    uniform_split,
)
from hive.protocol.lnsig import node_id_from_secret

A = "02" + "aa" * 32
B = "03" + "bb" * 32
C = "02" + "cc" * 32
ACINQ = "03864ef025fde8fb587d989186ce6a4a186895ee44a926bfc370e2c366597a3f8f"


def _policy(base: str, ppm: str, *, disabled: bool = False) -> dict[str, object]:
    return {
        "time_lock_delta": 80,
        "min_htlc": "1000",
        "fee_base_msat": base,
        "fee_rate_milli_msat": ppm,
        "disabled": disabled,
        "max_htlc_msat": "1000000",
    }


def _tiny() -> dict[str, object]:
    return {
        "nodes": [{"pub_key": A, "alias": "a"}, {"pub_key": B, "alias": "b"}],
        "edges": [
            {
                "short_channel_id": "1x1x0",
                "node1_pub": A,
                "node2_pub": B,
                "capacity": "100000",
                "node1_policy": _policy("1000", "10"),
                "node2_policy": None,
            },
            {
                "short_channel_id": "1x2x0",
                "node1_pub": A,
                "node2_pub": C,  # C has no node entry
                "capacity": "200000",
                "node1_policy": _policy("0", "1", disabled=True),
                "node2_policy": _policy("5", "50"),
            },
        ],
    }


def test_describegraph_direction_rules() -> None:
    graph = graph_from_describegraph(_tiny(), split=even_split)
    assert graph.node_ids == [A, B, C]
    assert graph.aliases == ["a", "b", ""]
    ab, ac = graph.scid_index["1x1x0"], graph.scid_index["1x2x0"]
    assert graph.flags[2 * ab] == ROUTABLE  # A -> B: policy, enabled
    assert graph.flags[2 * ab + 1] == 0  # B -> A: null policy, not routable
    assert graph.flags[2 * ac] == HAS_POLICY  # A -> C: disabled
    assert graph.flags[2 * ac + 1] == ROUTABLE
    assert graph.node1_msat[ab] == 50_000_000  # half of 100,000 sat
    public_a = {p.short_channel_id: p for p in graph.public_channels(graph.index[A])}
    assert public_a["1x1x0"].active
    assert not public_a["1x2x0"].active
    assert public_a["1x1x0"].fee.fee_msat(1_000_000) == 1010
    assert graph.public_channels(graph.index[B]) == []  # B announced no policy
    assert graph.cltv[2 * ab] == 80


def test_uniform_split_bounds_and_seed() -> None:
    split = uniform_split(0.2, 0.8)
    draws = [split(random.Random(s)) for s in range(500)]
    assert all(0.2 <= d <= 0.8 for d in draws)
    assert min(draws) < 0.25
    assert max(draws) > 0.75
    one = graph_from_describegraph(_tiny(), seed=4)
    two = graph_from_describegraph(_tiny(), seed=4)
    assert list(one.node1_msat) == list(two.node1_msat)
    with pytest.raises(ValueError, match="split bounds"):
        uniform_split(0.9, 0.1)


@settings(max_examples=30, deadline=None)
@given(n_nodes=st.integers(2, 200), seed=st.integers(0, 2**32), extra=st.integers(0, 300))
def test_generated_graph_is_connected_with_real_keys(n_nodes: int, seed: int, extra: int) -> None:
    graph = generate_graph(n_nodes, seed=seed, extra_channels=extra)
    assert graph.n_nodes == n_nodes
    assert graph.n_channels == n_nodes - 1 + extra
    assert graph.is_connected()
    assert len(set(graph.node_ids)) == n_nodes
    for idx in (0, n_nodes - 1):
        assert node_id_from_secret(graph.secrets[idx]) == graph.node_ids[idx]
    for c in range(graph.n_channels):
        capacity = graph.capacity_sat[c] * 1000
        assert 0.2 * capacity - 1 <= graph.node1_msat[c] <= 0.8 * capacity
        assert graph.flags[2 * c] == graph.flags[2 * c + 1] == ROUTABLE


def test_generated_graph_is_deterministic() -> None:
    one, two = generate_graph(40, seed=9), generate_graph(40, seed=9)
    assert one.node_ids == two.node_ids
    assert list(one.node1_msat) == list(two.node1_msat)
    assert generate_graph(40, seed=10).node_ids != one.node_ids


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_graph_has_hubs_like_the_real_network(seed: int) -> None:
    """A few nodes hold many channels, most a handful (preferential attachment); a uniformly
    random graph (every node near 6 channels, the largest near 14) gives the planner little."""
    graph = generate_graph(200, seed=seed)
    degrees = sorted(len(channels) for channels in graph.adjacency)
    median, largest = degrees[len(degrees) // 2], degrees[-1]
    assert largest >= 8 * median
    assert sum(d <= 2 for d in degrees) >= len(degrees) // 8


def test_is_connected_detects_islands() -> None:
    graph = graph_from_describegraph(
        {"nodes": [{"pub_key": A, "alias": ""}, {"pub_key": B, "alias": ""}], "edges": []}
    )
    assert not graph.is_connected()


def test_graph_path_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVE_GRAPH", "/elsewhere/g.json.gz")
    assert str(default_graph_path()) == "/elsewhere/g.json.gz"
    monkeypatch.delenv("HIVE_GRAPH")
    # Shipped inside the package, so an installed hive finds it from any directory.
    assert default_graph_path().parts[-3:] == (
        "hive",
        "data",
        "ln_graph_mainnet_2025-10-25.json.gz",
    )
    assert default_graph_path().is_file()


@pytest.mark.skipif(
    not default_graph_path().exists(),
    reason=f"mainnet graph snapshot not found at {default_graph_path()} (set HIVE_GRAPH)",
)
def test_mainnet_graph_counts() -> None:
    graph = load_mainnet(seed=0)
    assert graph.n_nodes == 12_827
    assert graph.n_channels == 49_570
    # Counts from the data README: 96,988 directed policies, 83,178 of them enabled.
    has_policy = sum(1 for f in graph.flags if f & HAS_POLICY)
    routable = sum(1 for f in graph.flags if f == ROUTABLE)
    assert (has_policy, routable) == (96_988, 83_178)
    assert sum(graph.capacity_sat) == 575_880_373_608
    assert len(graph.adjacency[graph.index[ACINQ]]) == 2387
    assert all(
        0.2 * graph.capacity_sat[c] * 1000 - 1
        <= graph.node1_msat[c]
        <= 0.8 * graph.capacity_sat[c] * 1000
        for c in range(0, graph.n_channels, 97)
    )


EDGE_WITHOUT_FIELDS = json.dumps({"nodes": [], "edges": [{"node1_pub": A}]}).encode()
WHOLE = json.dumps({"nodes": [{"pub_key": f"{i:066x}"} for i in range(500)], "edges": []}).encode()
BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    # name: (file content, gzipped unless it is the plain one; None: no file), cause named
    "absent.json.gz": (None, "no such file"),
    "plain.json": (b"{}", "not a gzip file"),
    "truncated.json.gz": (gzip.compress(WHOLE)[:-200], "truncated gzip file"),
    "bad.json.gz": (gzip.compress(b"{nodes: "), "not JSON"),
    "latin1.json.gz": (gzip.compress(b'{"a": "\xff"}'), "not UTF-8"),
    "list.json.gz": (gzip.compress(b"[1, 2]"), "no 'nodes' list"),
    "no-edges.json.gz": (gzip.compress(b'{"nodes": []}'), "no 'edges' list"),
    "node.json.gz": (gzip.compress(b'{"nodes": [{"alias": "x"}], "edges": []}'), "node #0"),
    "edge.json.gz": (gzip.compress(EDGE_WITHOUT_FIELDS), "edge #0 is not a describegraph edge"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unusable_graph_files_raise_one_line_naming_the_cause(tmp_path: Path, name: str) -> None:
    content, cause = BAD_FILES[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GraphFileError) as info:
        load_mainnet(path)
    message = str(info.value)
    assert cause in message
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


def test_a_directory_is_not_a_graph_file(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError, match="a directory"):
        load_mainnet(tmp_path)
