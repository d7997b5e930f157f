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

* ``slow-htlc-jamming``: at least ``jam_min_count`` small forwards (at most ``jam_small_sat``)
  from or through a peer, each held at least ``jam_min_hold_s`` and at least
  ``jam_hold_multiple`` times the median hold of the forwards of all our other peers (the
  norm, floored at 1 s; the forwards the peer took part in are left out of it). A forward
  counts for both its incoming and its outgoing peer: we cannot tell which end holds (the
  evidence says how many came from the peer and how many went out through it).
* ``force-closes``: at least ``force_close_count`` distinct channels the peer closed
  unilaterally (it broadcast its commitment, or sent an error that made us broadcast ours)
  within ``force_close_window_s``.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Mapping
from typing import Any

import attrs

from hive.config import BanConfig

NORM_FLOOR = 0.01
HOLD_NORM_FLOOR_MS = 1_000
MAX_EVENTS_PER_PEER = 10_000
MAX_PEERS = 10_000
MAX_HOLDS = 100_000


@attrs.frozen
class Trigger:
    rule: str
    peer: str
    reason: str
    evidence: Mapping[str, object]


class Observations:
    """Per-peer windowed events (bounded): forward outcomes, inbound channel opens, forward
    hold times and force closes by the peer (these over their own, longer window)."""

    def __init__(self, window_ms: int, close_window_ms: int | None = None) -> None:
        self.window_ms = window_ms
        self.close_window_ms = window_ms if close_window_ms is None else close_window_ms
        self.forwards: dict[str, collections.deque[tuple[int, bool]]] = {}
        self.opens: dict[str, collections.deque[tuple[int, int]]] = {}
        # Resolved forwards with a hold time: (time, in peer, out peer, amount_msat, hold_ms),
        # one entry per forward (the norm of a peer leaves out every forward it was part of).
        self.holds: collections.deque[tuple[int, str | None, str | None, int, int]] = (
            collections.deque(maxlen=MAX_HOLDS)
        )
        self.closes: dict[str, collections.deque[tuple[int, str]]] = {}

    def forward(self, peer: str, failed: bool, now_ms: int) -> None:
        self._push(self.forwards, peer, (now_ms, failed))

    def opened(self, peer: str, funding_sat: int, now_ms: int) -> None:
        self._push(self.opens, peer, (now_ms, funding_sat))

    def held(
        self, in_peer: str | None, out_peer: str | None, amount_msat: int, hold_ms: int, now_ms: int
    ) -> None:
        """A resolved forward from ``in_peer`` out through ``out_peer``, held ``hold_ms``."""
        self.holds.append((now_ms, in_peer, out_peer, amount_msat, max(hold_ms, 0)))

    def force_closed(self, peer: str, channel: str, now_ms: int) -> None:
        """The peer closed ``channel`` unilaterally; a channel is counted once."""
        if any(seen == channel for _, seen in self.closes.get(peer, ())):
            return
        self._push(self.closes, peer, (now_ms, channel))

    def _push(self, table: dict[str, collections.deque[Any]], peer: str, item: Any) -> None:
        if peer not in table and len(table) >= MAX_PEERS:
            return
        table.setdefault(peer, collections.deque(maxlen=MAX_EVENTS_PER_PEER)).append(item)

    def prune(self, now_ms: int) -> None:
        while self.holds and self.holds[0][0] <= now_ms - self.window_ms:
            self.holds.popleft()
        tables: list[tuple[dict[str, collections.deque[Any]], int]] = [
            (self.forwards, self.window_ms),
            (self.opens, self.window_ms),
            (self.closes, self.close_window_ms),
        ]
        for table, window in tables:
            cutoff = now_ms - window
            for peer in list(table):
                events = table[peer]
                while events and events[0][0] <= cutoff:
                    events.popleft()
                if not events:
                    del table[peer]

    def forget(self, peer: str) -> None:
        for table in (self.forwards, self.opens, self.closes):
            table.pop(peer, None)
        if any(peer in (i, o) for _, i, o, _, _ in self.holds):
            kept = [h for h in self.holds if peer not in (h[1], h[2])]
            self.holds = collections.deque(kept, maxlen=MAX_HOLDS)


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


def hold_threshold_ms(norm_ms: float, config: BanConfig) -> float:
    """The hold from which a forward counts as slow, given the norm of our other peers."""
    return max(config.jam_min_hold_s * 1000, config.jam_hold_multiple * norm_ms)


def slow_htlc_jamming(obs: Observations, config: BanConfig) -> list[Trigger]:
    small_msat = config.jam_small_sat * 1000
    floor_ms = config.jam_min_hold_s * 1000
    # Cheap pass first: only a peer with enough small forwards held past the absolute floor
    # can trigger, and only for such a peer is the norm of the others computed.
    candidates: dict[str, int] = {}
    for _, in_peer, out_peer, amount, hold in obs.holds:
        if amount <= small_msat and hold >= floor_ms:
            for peer in {in_peer, out_peer} - {None}:
                assert peer is not None
                candidates[peer] = candidates.get(peer, 0) + 1
    out = []
    for peer in sorted(p for p, n in candidates.items() if n >= config.jam_min_count):
        mine = [h for h in obs.holds if peer in (h[1], h[2])]
        others = [h[4] for h in obs.holds if peer not in (h[1], h[2])]
        norm = max(statistics.median(others) if others else 0.0, HOLD_NORM_FLOOR_MS)
        threshold = hold_threshold_ms(norm, config)
        slow = [h for h in mine if h[3] <= small_msat and h[4] >= threshold]
        if len(slow) < config.jam_min_count:
            continue
        holds = [h[4] for h in slow]
        out.append(
            Trigger(
                rule="slow-htlc-jamming",
                peer=peer,
                reason=f"{len(slow)} small HTLCs held over {threshold / 1000:.0f} s "
                f"(others' median {norm / 1000:.1f} s)",
                evidence={
                    "slow": len(slow),
                    "forwards": len(mine),
                    "from_peer": sum(1 for h in slow if h[1] == peer),
                    "through_peer": sum(1 for h in slow if h[2] == peer),
                    "threshold_ms": round(threshold),
                    "norm_ms": round(norm),
                    "max_hold_ms": max(holds),
                    "holds_ms": holds[-20:],
                    "small_msat": small_msat,
                    "window_ms": obs.window_ms,
                },
            )
        )
    return out


def force_closes(obs: Observations, config: BanConfig) -> list[Trigger]:
    out = []
    for peer, events in sorted(obs.closes.items()):
        if len(events) >= config.force_close_count:
            out.append(
                Trigger(
                    rule="force-closes",
                    peer=peer,
                    reason=f"{len(events)} channels force-closed by the peer",
                    evidence={
                        "channels": [channel for _, channel in events][-20:],
                        "count": len(events),
                        "window_ms": obs.close_window_ms,
                    },
                )
            )
    return out


RULES = (htlc_failure_rate, dust_opens, slow_htlc_jamming, force_closes)


def evaluate(obs: Observations, config: BanConfig) -> list[Trigger]:
    """Every rule's triggers, in rule order."""
    return [t for rule in RULES for t in rule(obs, config)]
