"""The simulated network's channel graph: compact, array-backed, mutable.

Nodes are dense integers (``0..n_nodes-1``) with their ids in :attr:`Graph.node_ids`; channels are
dense integers too. Per-channel data lives in :mod:`array` columns, per-direction data in columns
of twice the length indexed ``2 * channel + direction``, where direction 0 is "``node1`` forwards
out to ``node2``" (``node1``'s policy) and 1 the reverse. This keeps the 12.8k-node / 49.6k-channel
mainnet graph at a few megabytes instead of a dict per channel.

Rules the whole simulator follows (documented here because they are decided here):

* **Routable directions.** A direction is routable only when a ``channel_update`` is known for it
  (LND's ``nodeX_policy`` is not null) *and* it is not ``disabled``. Directions without a policy
  are kept (the channel still exists and its other side may be usable) but never route; they are
  also left out of :meth:`public_channels`, as ``listchannels`` shows only announced directions.
  Disabled directions are shown with ``active=False``.
* **Balances.** The public graph has none. Each channel starts with a fraction of its capacity on
  the ``node1`` side drawn by a :data:`SplitFn` from a seeded :class:`random.Random`; the default
  :func:`uniform_split` draws uniformly from 0.2..0.8, :func:`even_split` gives 0.5.
* **Announcements.** Each channel has the trio time its ``channel_announcement`` was made
  (:attr:`Graph.announced`): ``-inf`` for channels of a loaded or generated graph (known to every
  node from the start), ``+inf`` while a new channel is unannounced. Which node has heard of it
  by when is the network's business (:class:`~hive.node.sim.network.GossipLag`);
  :meth:`Graph.public_channels` takes the viewer's filter.
* HTLC minimum/maximum, channel reserves and inbound fees are not modelled.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from hive.node.port import ChannelState, FeePolicy, PublicChannel
from hive.protocol.lnsig import node_id_from_secret

GRAPH_FILENAME = "ln_graph_mainnet_2025-10-25.json.gz"
GRAPH_ENV = "HIVE_GRAPH"

# Per-direction flags.
HAS_POLICY = 1
ENABLED = 2
ROUTABLE = HAS_POLICY | ENABLED

# Channel state codes stored in Graph.state (index into _STATES).
_STATES = (ChannelState.OPENING, ChannelState.NORMAL, ChannelState.CLOSING, ChannelState.CLOSED)
STATE_CODE = {state: code for code, state in enumerate(_STATES)}
OPENING = STATE_CODE[ChannelState.OPENING]
NORMAL = STATE_CODE[ChannelState.NORMAL]

SplitFn = Callable[[random.Random], float]
"""Draws the fraction of a channel's capacity that starts on the ``node1`` side."""


def uniform_split(low: float = 0.2, high: float = 0.8) -> SplitFn:
    """A split drawn uniformly from ``low..high`` (the default: 0.2..0.8)."""
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"split bounds must satisfy 0 <= low <= high <= 1, got {low}, {high}")

    def split(rng: random.Random) -> float:
        return rng.uniform(low, high)

    return split


def even_split(rng: random.Random) -> float:
    """Half of every channel on each side (consumes no randomness)."""
    return 0.5


@attrs.frozen
class DirectionPolicy:
    """A forwarding policy for one direction of a channel, as loaded or set."""

    base_msat: int
    ppm: int
    cltv_delta: int = 34
    flags: int = ROUTABLE


DEFAULT_POLICY = DirectionPolicy(base_msat=1000, ppm=10, cltv_delta=34)  # CLN's defaults


@attrs.define(slots=True, eq=False)
class Graph:
    """Nodes, channels, per-direction policies and balances; see the module docstring."""

    node_ids: list[str] = attrs.Factory(list)
    aliases: list[str] = attrs.Factory(list)
    index: dict[str, int] = attrs.Factory(dict)
    # Channel indices touching each node.
    adjacency: list[list[int]] = attrs.Factory(list)
    # Secret keys of the nodes the simulator owns (generated graphs, added nodes).
    secrets: dict[int, bytes] = attrs.Factory(dict)
    # init-message / node_announcement feature bits, big-endian bytes, when known.
    features: dict[int, bytes] = attrs.Factory(dict)

    scids: list[str] = attrs.Factory(list)
    scid_index: dict[str, int] = attrs.Factory(dict)
    node1: array[int] = attrs.Factory(lambda: array("l"))
    node2: array[int] = attrs.Factory(lambda: array("l"))
    capacity_sat: array[int] = attrs.Factory(lambda: array("q"))
    node1_msat: array[int] = attrs.Factory(lambda: array("q"))
    state: bytearray = attrs.Factory(bytearray)
    # Trio time of each channel's announcement (-inf: always known; +inf: not announced yet).
    announced: array[float] = attrs.Factory(lambda: array("d"))
    # Per direction (2 * channel + direction).
    base_msat: array[int] = attrs.Factory(lambda: array("q"))
    ppm: array[int] = attrs.Factory(lambda: array("q"))
    cltv: array[int] = attrs.Factory(lambda: array("l"))
    flags: bytearray = attrs.Factory(bytearray)

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_channels(self) -> int:
        return len(self.node1)

    def add_node(self, node_id: str, alias: str, *, secret: bytes | None = None) -> int:
        """Add a node; returns its index. Raises ValueError if the id is already present."""
        if node_id in self.index:
            raise ValueError(f"node {node_id} already in the graph")
        idx = len(self.node_ids)
        self.node_ids.append(node_id)
        self.aliases.append(alias)
        self.index[node_id] = idx
        self.adjacency.append([])
        if secret is not None:
            self.secrets[idx] = secret
        return idx

    def add_channel(
        self,
        a: int,
        b: int,
        capacity_sat: int,
        *,
        scid: str,
        a_msat: int,
        policy_a: DirectionPolicy | None,
        policy_b: DirectionPolicy | None,
        state: ChannelState = ChannelState.NORMAL,
        announced: float = -math.inf,
    ) -> int:
        """Add a channel with ``a`` as ``node1``; ``a_msat`` is ``a``'s starting balance.

        ``scid`` may be "" for a channel not yet confirmed (see :meth:`set_scid`). A None policy
        means no ``channel_update`` is known for that direction. ``announced``: see
        :attr:`announced` (default: known to everyone from the start).
        """
        if a == b:
            raise ValueError("a channel needs two distinct nodes")
        if not 0 <= a_msat <= capacity_sat * 1000:
            raise ValueError(f"balance {a_msat} msat outside capacity {capacity_sat} sat")
        c = len(self.node1)
        self.scids.append(scid)
        if scid:
            if scid in self.scid_index:
                raise ValueError(f"duplicate short channel id {scid}")
            self.scid_index[scid] = c
        self.node1.append(a)
        self.node2.append(b)
        self.capacity_sat.append(capacity_sat)
        self.node1_msat.append(a_msat)
        self.state.append(STATE_CODE[state])
        self.announced.append(announced)
        for policy in (policy_a, policy_b):
            if policy is None:
                self.base_msat.append(0)
                self.ppm.append(0)
                self.cltv.append(0)
                self.flags.append(0)
            else:
                self.base_msat.append(policy.base_msat)
                self.ppm.append(policy.ppm)
                self.cltv.append(policy.cltv_delta)
                self.flags.append(policy.flags)
        self.adjacency[a].append(c)
        self.adjacency[b].append(c)
        return c

    def set_scid(self, c: int, scid: str) -> None:
        if scid in self.scid_index:
            raise ValueError(f"duplicate short channel id {scid}")
        self.scids[c] = scid
        self.scid_index[scid] = c

    # --- per-channel helpers ------------------------------------------------------------------

    def other(self, c: int, n: int) -> int:
        """The endpoint of channel ``c`` that is not ``n``."""
        return self.node2[c] if self.node1[c] == n else self.node1[c]

    def direction(self, c: int, n: int) -> int:
        """Index into the per-direction columns for ``n`` forwarding out through ``c``."""
        return 2 * c if self.node1[c] == n else 2 * c + 1

    def outbound_msat(self, c: int, n: int) -> int:
        """What ``n`` can send through ``c`` now (reserves are not modelled)."""
        if self.node1[c] == n:
            return self.node1_msat[c]
        return self.capacity_sat[c] * 1000 - self.node1_msat[c]

    def move(self, c: int, sender: int, amount_msat: int) -> None:
        """Move ``amount_msat`` from ``sender``'s side of ``c`` to the other side."""
        if self.node1[c] == sender:
            self.node1_msat[c] -= amount_msat
        else:
            self.node1_msat[c] += amount_msat

    def channel_state(self, c: int) -> ChannelState:
        return _STATES[self.state[c]]

    def fee_policy(self, c: int, n: int) -> FeePolicy:
        """What ``n`` charges to forward out through ``c``."""
        d = self.direction(c, n)
        return FeePolicy(base_msat=self.base_msat[d], ppm=self.ppm[d])

    def set_policy(self, c: int, n: int, policy: DirectionPolicy) -> None:
        d = self.direction(c, n)
        self.base_msat[d] = policy.base_msat
        self.ppm[d] = policy.ppm
        self.cltv[d] = policy.cltv_delta
        self.flags[d] = policy.flags

    def channels_between(self, a: int, b: int) -> list[int]:
        return [c for c in self.adjacency[a] if self.other(c, a) == b]

    def public_channels(
        self, n: int, known: Callable[[int], bool] | None = None
    ) -> list[PublicChannel]:
        """Confirmed channels with a known policy in the ``n`` -> peer direction; with
        ``known``, only the channels ``known(c)`` accepts (a viewer's lagging view)."""
        out: list[PublicChannel] = []
        for c in self.adjacency[n]:
            d = self.direction(c, n)
            if self.state[c] != NORMAL or not self.flags[d] & HAS_POLICY:
                continue
            if known is not None and not known(c):
                continue
            out.append(
                PublicChannel(
                    short_channel_id=self.scids[c],
                    source=self.node_ids[n],
                    destination=self.node_ids[self.other(c, n)],
                    capacity_msat=self.capacity_sat[c] * 1000,
                    fee=FeePolicy(base_msat=self.base_msat[d], ppm=self.ppm[d]),
                    active=self.flags[d] == ROUTABLE,
                )
            )
        return out

    def is_connected(self) -> bool:
        """True when every node is reachable from node 0 over channels (ignoring direction)."""
        if not self.node_ids:
            return True
        seen = bytearray(self.n_nodes)
        seen[0] = 1
        stack = [0]
        while stack:
            n = stack.pop()
            for c in self.adjacency[n]:
                m = self.other(c, n)
                if not seen[m]:
                    seen[m] = 1
                    stack.append(m)
        return all(seen)


# --- loading the mainnet snapshot ----------------------------------------------------------------


def default_graph_path() -> Path:
    """``$HIVE_GRAPH`` if set, else the snapshot shipped with the package (``hive/data/``)."""
    override = os.environ.get(GRAPH_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "data" / GRAPH_FILENAME


class GraphFileError(ValueError):
    """A graph file that cannot be used: absent, unreadable, not gzip, not JSON, wrong shape.

    The message is one line naming the file and the cause, fit to show an operator as it is.
    """


def _policy(raw: dict[str, Any] | None) -> DirectionPolicy | None:
    if raw is None:
        return None
    return DirectionPolicy(
        base_msat=int(raw["fee_base_msat"]),
        ppm=int(raw["fee_rate_milli_msat"]),
        cltv_delta=int(raw["time_lock_delta"]),
        flags=HAS_POLICY if raw.get("disabled") else ROUTABLE,
    )


def graph_from_describegraph(
    data: dict[str, Any], *, seed: int = 0, split: SplitFn | None = None
) -> Graph:
    """Build a :class:`Graph` from LND ``describegraph`` JSON (``nodes`` and ``edges``).

    Raises :class:`GraphFileError` naming the first entry that does not have that shape.
    """
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise GraphFileError("not a describegraph graph: no 'nodes' list at the top level")
    if not isinstance(data.get("edges"), list):
        raise GraphFileError("not a describegraph graph: no 'edges' list at the top level")
    rng = random.Random(seed)
    split_fn = split if split is not None else uniform_split()
    graph = Graph()
    for number, raw_node in enumerate(data["nodes"]):
        try:
            node_id, alias = str(raw_node["pub_key"]), str(raw_node.get("alias") or "")
        except (KeyError, TypeError, AttributeError) as exc:
            raise GraphFileError(f"node #{number} has no pub_key ({exc!r})") from exc
        if node_id in graph.index:
            raise GraphFileError(f"node #{number}: {node_id} is listed twice")
        graph.add_node(node_id, alias)
    index = graph.index
    for number, edge in enumerate(data["edges"]):
        try:
            a_id, b_id = str(edge["node1_pub"]), str(edge["node2_pub"])
            capacity = int(edge["capacity"])
            scid = str(edge["short_channel_id"])
            policy_a = _policy(edge.get("node1_policy"))
            policy_b = _policy(edge.get("node2_policy"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GraphFileError(f"edge #{number} is not a describegraph edge ({exc!r})") from exc
        if capacity <= 0 or a_id == b_id:
            raise GraphFileError(f"edge #{number} ({scid}): needs two nodes and a capacity > 0")
        if scid in graph.scid_index:
            raise GraphFileError(f"edge #{number}: short channel id {scid} is listed twice")
        for node_id in (a_id, b_id):
            if node_id not in index:  # an edge to a node without a node entry
                graph.add_node(node_id, "")
        graph.add_channel(
            index[a_id],
            index[b_id],
            capacity,
            scid=scid,
            a_msat=int(capacity * 1000 * split_fn(rng)),
            policy_a=policy_a,
            policy_b=policy_b,
        )
    return graph


def load_mainnet(
    path: Path | str | None = None, *, seed: int = 0, split: SplitFn | None = None
) -> Graph:
    """Load a gzipped describegraph snapshot (default: :func:`default_graph_path`).

    Raises :class:`GraphFileError` (one line: the file and the cause) when the file is absent,
    unreadable, not gzip, truncated, not JSON or not a describegraph graph.
    """
    file = Path(path) if path is not None else default_graph_path()
    try:
        with gzip.open(file, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise GraphFileError(f"{file}: no such file") from exc
    except IsADirectoryError as exc:
        raise GraphFileError(f"{file}: a directory, not a .json.gz file") from exc
    except gzip.BadGzipFile as exc:
        raise GraphFileError(f"{file}: not a gzip file ({exc})") from exc
    except EOFError as exc:
        raise GraphFileError(f"{file}: truncated gzip file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise GraphFileError(f"{file}: not UTF-8 text inside the gzip ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"{file}: not JSON ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise GraphFileError(f"{file}: cannot read it ({exc})") from exc
    try:
        return graph_from_describegraph(data, seed=seed, split=split)
    except GraphFileError as exc:
        raise GraphFileError(f"{file}: {exc}") from exc


# --- generated graphs ----------------------------------------------------------------------------


def derive_secret(seed: int, label: str) -> bytes:
    """A valid secp256k1 secret derived deterministically from ``seed`` and ``label``."""
    counter = 0
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    while True:
        secret = hashlib.sha256(f"hive-sim/{seed}/{label}/{counter}".encode()).digest()
        if 0 < int.from_bytes(secret, "big") < order:
            return secret
        counter += 1


def generate_graph(
    n_nodes: int = 50,
    *,
    seed: int = 0,
    extra_channels: int | None = None,
    capacity_sat: tuple[int, int] = (1_000_000, 20_000_000),
    split: SplitFn | None = None,
) -> Graph:
    """A small connected random graph whose nodes have real keys (kept in ``secrets``).

    Shaped like the real network, where a few hubs hold many channels and most nodes a
    handful: each node ``i`` opens to an earlier node chosen by preferential attachment (with
    probability proportional to its channels + 1), which makes the graph connected; then
    ``extra_channels`` more channels (default ``2 * n_nodes``), each from a uniformly chosen
    node to one chosen the same way, add cycles. (A uniformly random graph has no hubs: every
    node is about as far from every payer, so a new channel makes no typical payer's route
    cheaper, and the coverage planner, which judges by typical payers, finds little or nothing
    worth opening.) Policies are drawn from typical
    mainnet values; every direction is routable. Scids are ``100000+i x 1 x 0``.
    """
    if n_nodes < 2:
        raise ValueError("a generated graph needs at least two nodes")
    rng = random.Random(seed)
    split_fn = split if split is not None else uniform_split()
    graph = Graph()
    for i in range(n_nodes):
        secret = derive_secret(seed, f"gen/{i}")
        graph.add_node(node_id_from_secret(secret), f"gen-{i:03d}", secret=secret)

    def policy() -> DirectionPolicy:
        return DirectionPolicy(
            base_msat=rng.choice((0, 0, 1000, 1000, 500)),
            ppm=rng.choice((1, 10, 50, 100, 100, 250, 500, 1000)),
            cltv_delta=rng.choice((34, 40, 80, 144)),
        )

    # Preferential attachment: a node opens to one already holding many channels (weight
    # degree + 1), so a few hubs carry much of the graph and most nodes have a handful.
    ends: list[int] = [0]  # every node once, plus once per channel end
    pairs: list[tuple[int, int]] = []
    for i in range(1, n_nodes):
        peer = rng.choice(ends)
        pairs.append((i, peer))
        ends += [i, peer]
    extra = 2 * n_nodes if extra_channels is None else extra_channels
    for _ in range(extra):
        a = rng.randrange(n_nodes)
        b = rng.choice(ends)
        while b == a:
            b = rng.choice(ends)
        pairs.append((a, b))
        ends += [a, b]
    for k, (a, b) in enumerate(pairs):
        capacity = rng.randint(*capacity_sat)
        graph.add_channel(
            a,
            b,
            capacity,
            scid=f"{100_000 + k}x1x0",
            a_msat=int(capacity * 1000 * split_fn(rng)),
            policy_a=policy(),
            policy_b=policy(),
        )
    return graph
