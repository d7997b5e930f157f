"""Ban detection rules: small named pure functions over what the node saw (issue 12).

Each rule reads windowed observations (kept by :class:`Observations`, fed from the node's
events by :mod:`hive.actors.bans`) and returns :class:`Trigger` values; a trigger becomes a
``ban-peer`` proposal with the trigger's evidence. Thresholds come from
:class:`hive.config.BanConfig`. No I/O, no clock: ``now_ms`` is passed in.

* ``htlc-failure-rate``: forwards we sent out to a peer failed at least ``failure_min_rate``
  and at least ``failure_multiple`` times the failure rate of all our other peers together
  (floored at 1 %, so a quiet fleet does not make every failure look extreme), over at least
  ``failure_min_attempts`` forwards within the window.
* ``dust-opens``: a peer opened at least ``dust_open_count`` channels of less than
  ``dust_open_sat`` to us within the window (channel spam that costs us UTXOs and watch work).

What the port cannot show is not claimed: HTLC hold times (jamming by slow HTLCs) and who
initiated a unilateral close are not in the node events, so there are no rules for them yet.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import attrs

from hive.config import BanConfig

NORM_FLOOR = 0.01
MAX_EVENTS_PER_PEER = 10_000
MAX_PEERS = 10_000


@attrs.frozen
class Trigger:
    rule: str
    peer: str
    reason: str
    evidence: Mapping[str, object]


class Observations:
    """Per-peer windowed events: forward outcomes and inbound channel opens (bounded)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.forwards: dict[str, collections.deque[tuple[int, bool]]] = {}
        self.opens: dict[str, collections.deque[tuple[int, int]]] = {}

    def forward(self, peer: str, failed: bool, now_ms: int) -> None:
        self._push(self.forwards, peer, (now_ms, failed))

    def opened(self, peer: str, funding_sat: int, now_ms: int) -> None:
        self._push(self.opens, peer, (now_ms, funding_sat))

    def _push(self, table: dict[str, collections.deque[Any]], peer: str, item: Any) -> None:
        if peer not in table and len(table) >= MAX_PEERS:
            return
        table.setdefault(peer, collections.deque(maxlen=MAX_EVENTS_PER_PEER)).append(item)

    def prune(self, now_ms: int) -> None:
        cutoff = now_ms - self.window_ms
        for table in (self.forwards, self.opens):
            for peer in list(table):
                events = table[peer]
                while events and events[0][0] <= cutoff:
                    events.popleft()
                if not events:
                    del table[peer]

    def forget(self, peer: str) -> None:
        self.forwards.pop(peer, None)
        self.opens.pop(peer, None)


def htlc_failure_rate(obs: Observations, config: BanConfig) -> list[Trigger]:
    counts = {
        peer: (len(events), sum(1 for _, failed in events if failed))
        for peer, events in obs.forwards.items()
    }
    total_attempts = sum(a for a, _ in counts.values())
    total_failed = sum(f for _, f in counts.values())
    out = []
    for peer, (attempts, failed) in sorted(counts.items()):
        if attempts < config.failure_min_attempts:
            continue
        rate = failed / attempts
        others = total_attempts - attempts
        norm = (total_failed - failed) / others if others else 0.0
        norm = max(norm, NORM_FLOOR)
        if rate >= config.failure_min_rate and rate >= config.failure_multiple * norm:
            out.append(
                Trigger(
                    rule="htlc-failure-rate",
                    peer=peer,
                    reason=f"{failed} of {attempts} forwards failed ({rate:.0%}; others "
                    f"{norm:.1%})",
                    evidence={
                        "attempts": attempts,
                        "failed": failed,
                        "rate": round(rate, 4),
                        "norm": round(norm, 4),
                        "window_ms": obs.window_ms,
                    },
                )
            )
    return out


def dust_opens(obs: Observations, config: BanConfig) -> list[Trigger]:
    out = []
    for peer, events in sorted(obs.opens.items()):
        small = [sat for _, sat in events if sat < config.dust_open_sat]
        if len(small) >= config.dust_open_count:
            out.append(
                Trigger(
                    rule="dust-opens",
                    peer=peer,
                    reason=f"{len(small)} channels under {config.dust_open_sat} sat opened to us",
                    evidence={
                        "opens_sat": small[-20:],
                        "count": len(small),
                        "window_ms": obs.window_ms,
                    },
                )
            )
    return out


RULES = (htlc_failure_rate, dust_opens)


def evaluate(obs: Observations, config: BanConfig) -> list[Trigger]:
    """Every rule's triggers, in rule order."""
    return [t for rule in RULES for t in rule(obs, config)]
