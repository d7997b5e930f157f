"""``/metrics``: the counters of ``hive-status`` in Prometheus' text format (prometheus-client).

Rather than a second set of counters kept beside the first, one collector walks the
``hive-status`` JSON at scrape time, so every counter an actor adds to its status appears here
too: ``messages.sent`` becomes ``hive_messages_sent_total``; a map of reasons to counts
(``messages.rejected``) becomes one family with a ``reason`` label; actors and peers are
labelled by name and node id. Figures that go up and down (members, coverage, capacity, inbox
depth, connected clients) are gauges; everything else counted is a counter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Leaves that are levels, not counts.
GAUGES = {
    "members",
    "coverage",
    "fleet_capacity_sat",
    "clients",
    "peak_clients",
    "member",
    "in_flight",
    "pending",
}
# Leaves that are neither (identifiers, versions, text) are skipped.
SKIP = {"published_version", "top_targets", "stale", "handshakes", "open_ignored", "url", "error"}
# Maps of reasons to counts, whatever their keys look like.
REASON_TABLES = {"rejected", "dropped", "joins_refused", "refused", "errors"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class StatusCollector:
    """A prometheus-client collector over one status snapshot."""

    def __init__(self, status: Mapping[str, Any], web: Mapping[str, Any]) -> None:
        self._status = status
        self._web = web

    def collect(self) -> Iterator[Metric]:
        status = self._status
        yield from _actors(status.get("actors", ()))
        yield from _peers(status.get("peers", ()))
        rest = {k: v for k, v in status.items() if k not in ("actors", "peers")}
        yield from _walk("hive", rest)
        yield from _walk("hive_web", self._web)


def render_metrics(status: Mapping[str, Any], web: Mapping[str, Any]) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status, web))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _actors(actors: Any) -> Iterator[Metric]:
    running = GaugeMetricFamily("hive_actor_running", "1 while the actor runs", labels=["actor"])
    restarts = CounterMetricFamily(
        "hive_actor_restarts", "Restarts after transient failures", labels=["actor"]
    )
    depth = GaugeMetricFamily("hive_actor_inbox_depth", "Messages waiting", labels=["actor"])
    peak = GaugeMetricFamily("hive_actor_inbox_peak", "Most messages waiting", labels=["actor"])
    for actor in actors:
        name = [str(actor["name"])]
        running.add_metric(name, 1.0 if actor.get("running") else 0.0)
        restarts.add_metric(name, float(actor.get("restarts", 0)))
        if actor.get("inbox_depth") is not None:
            depth.add_metric(name, float(actor["inbox_depth"]))
            peak.add_metric(name, float(actor["inbox_peak"]))
    yield from (running, restarts, depth, peak)


def _peers(peers: Any) -> Iterator[Metric]:
    rtt = GaugeMetricFamily("hive_peer_rtt_ms", "Last ping round trip", labels=["peer"])
    seen = GaugeMetricFamily("hive_peer_last_seen_seconds", "Seconds since heard", labels=["peer"])
    pings = CounterMetricFamily("hive_peer_pings_sent", "Pings sent", labels=["peer"])
    pongs = CounterMetricFamily("hive_peer_pongs_received", "Pongs received", labels=["peer"])
    for peer in peers:
        label = [str(peer["node_id"])]
        if peer.get("rtt_ms") is not None:
            rtt.add_metric(label, float(peer["rtt_ms"]))
        if peer.get("last_seen_s_ago") is not None:
            seen.add_metric(label, float(peer["last_seen_s_ago"]))
        pings.add_metric(label, float(peer.get("pings_sent", 0)))
        pongs.add_metric(label, float(peer.get("pongs_received", 0)))
    yield from (rtt, seen, pings, pongs)


def _walk(prefix: str, node: Mapping[str, Any]) -> Iterator[Metric]:
    for key, value in node.items():
        if key in SKIP or not _NAME.match(key):
            continue
        name = f"{prefix}_{key}"
        if isinstance(value, bool | int | float):
            family: Metric
            if key in GAUGES or isinstance(value, bool):
                family = GaugeMetricFamily(name, f"hive-status {name}")
            else:
                family = CounterMetricFamily(name, f"hive-status {name}")
            family.add_metric([], float(value))
            yield family
        elif isinstance(value, Mapping):
            if _is_reason_table(key, value):
                family = CounterMetricFamily(
                    name, f"hive-status {name} by reason", labels=["reason"]
                )
                for reason, count in sorted(value.items()):
                    family.add_metric([str(reason)], float(count))
                yield family
            else:
                yield from _walk(name, value)


def _is_reason_table(key: str, value: Mapping[str, Any]) -> bool:
    """A map of free-form keys (reasons, kinds) to counts, such as ``rejected``."""
    numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
    if not numbers:
        return False
    return key in REASON_TABLES or any(not _NAME.match(str(k)) for k in value)


__all__ = ["StatusCollector", "render_metrics"]
