"""Both graph formats a user may have, plain and gzipped, and one-line errors for the rest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hive.node.sim.graph import GraphFileError
from hive.scenarios.graphfile import load_graph_file

A = "02" + "aa" * 32
B = "03" + "bb" * 32
C = "02" + "cc" * 32


def _policy(base: int, ppm: int, disabled: bool = False) -> dict[str, object]:
    return {
        "fee_base_msat": str(base),
        "fee_rate_milli_msat": str(ppm),
        "time_lock_delta": 40,
        "disabled": disabled,
    }


DESCRIBEGRAPH = {
    "nodes": [{"pub_key": A, "alias": "a"}, {"pub_key": B, "alias": "b"}, {"pub_key": C}],
    "edges": [
        {
            "short_channel_id": "800000x1x0",
            "node1_pub": A,
            "node2_pub": B,
            "capacity": "2000000",
            "node1_policy": _policy(1000, 100),
            "node2_policy": _policy(0, 5, disabled=True),
        },
        {
            "short_channel_id": "800001x2x1",
            "node1_pub": B,
            "node2_pub": C,
            "capacity": "500000",
            "node1_policy": _policy(1, 1),
            "node2_policy": None,
        },
    ],
}


def _entry(scid: str, src: str, dst: str, sat: int, base: int, ppm: int, active: bool = True):
    return {
        "source": src,
        "destination": dst,
        "short_channel_id": scid,
        "public": True,
        "amount_msat": sat * 1000,
        "message_flags": 1,
        "channel_flags": 0,
        "active": active,
        "last_update": 1761350400,
        "base_fee_millisatoshi": base,
        "fee_per_millionth": ppm,
        "delay": 40,
        "htlc_minimum_msat": 0,
        "htlc_maximum_msat": sat * 1000,
        "features": "",
    }


# The same graph as DESCRIBEGRAPH, in listchannels form (one entry per announced direction).
LISTCHANNELS = {
    "channels": [
        _entry("800000x1x0", A, B, 2_000_000, 1000, 100),
        _entry("800000x1x0", B, A, 2_000_000, 0, 5, active=False),
        _entry("800001x2x1", B, C, 500_000, 1, 1),
    ]
}


def _write(tmp_path: Path, name: str, data: object, zipped: bool) -> Path:
    raw = json.dumps(data).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if zipped else raw)
    return path


def _shape(path: Path) -> list[tuple[str, str, str, int, tuple[int, int], tuple[int, int], int]]:
    g = load_graph_file(path)
    out = []
    for c in range(g.n_channels):
        n1, n2 = g.node_ids[g.node1[c]], g.node_ids[g.node2[c]]
        if n1 > n2:  # compare independently of which side a format calls node1
            n1, n2 = n2, n1
        pol = {}
        for d, node in ((0, g.node_ids[g.node1[c]]), (1, g.node_ids[g.node2[c]])):
            pol[node] = (g.base_msat[2 * c + d], g.ppm[2 * c + d], g.flags[2 * c + d])
        p1, p2 = pol[n1], pol[n2]
        out.append((g.scids[c], n1, n2, g.capacity_sat[c], p1[:2], p2[:2], p1[2] * 4 + p2[2]))
    return sorted(out)


@pytest.mark.parametrize("zipped", [False, True])
def test_both_formats_give_the_same_graph(tmp_path: Path, zipped: bool) -> None:
    lnd = _shape(_write(tmp_path, "g.json", DESCRIBEGRAPH, zipped))
    cln = _shape(_write(tmp_path, "l.json", LISTCHANNELS, zipped))
    assert lnd == cln
    scids = [row[0] for row in lnd]
    assert scids == ["800000x1x0", "800001x2x1"]
    # A -> B routable at 1000/100; B -> A known but disabled; C -> B has no policy at all.
    ab = lnd[0]
    assert (ab[1], ab[2], ab[3], ab[4]) == (A, B, 2_000_000, (1000, 100))
    assert ab[6] == 3 * 4 + 1  # A's direction routable (3), B's disabled (HAS_POLICY only)
    bc = lnd[1]
    assert bc[6] == 3 * 4 + 0 or bc[6] == 0 * 4 + 3  # one direction only


def test_old_cln_msat_strings_are_read(tmp_path: Path) -> None:
    data = {"channels": [dict(LISTCHANNELS["channels"][2], amount_msat="500000000msat")]}
    g = load_graph_file(_write(tmp_path, "old.json", data, False))
    assert list(g.capacity_sat) == [500_000]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "not JSON"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (b'{"foo": 1}', "neither LND describegraph JSON"),
        (b"[1, 2]", "found list"),
        (b'{"channels": [{"source": "x"}]}', "channel entry #0 is not a listchannels entry"),
        (b'{"nodes": [], "edges": [{"node1_pub": "a"}]}', "edge #0 is not a describegraph edge"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_anything_else_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(GraphFileError) as info:
        load_graph_file(path)
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError, match="no such file"):
        load_graph_file(tmp_path / "absent.json")
    with pytest.raises(GraphFileError, match="a directory"):
        load_graph_file(tmp_path)
