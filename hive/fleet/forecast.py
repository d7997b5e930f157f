"""Per-channel flow forecast from forward events. Pure: time comes in as an argument.

**Estimator.** For each channel and direction we keep an exponentially *time*-decayed sum of
the msat that moved (out: forwards leaving through the channel, draining our local balance;
in: forwards arriving through it, refilling it). With time constant ``tau`` the sum decays by
``exp(-dt / tau)`` between observations, so for a steady flow of ``r`` msat/s it converges to
``r * tau``; the rate estimate is ``sum / tau``. Unlike an EWMA over events, this one does not
depend on how the flow is chopped into forwards, and it decays while nothing happens (a
channel that stopped draining stops looking urgent). The same decay applied to a count of
events gives the *effective number of observations* ``n_eff``.

**Depletion.** With net outflow ``out - in > 0``, the local balance reaches the floor after
``(local - floor) / (out - in)`` seconds; with net outflow at or below zero it never does.

**Confidence** in [0, 1]: ``(1 - exp(-n_eff / n_half)) * min(1, observed / tau)``: few
forwards, or a channel observed for less than one time constant, give a low confidence. The
EV gate multiplies expected income by it, so a guess from three forwards is not worth paying for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

DEFAULT_TAU_S = 6 * 3600.0  # the estimator's time constant: 6 hours
DEFAULT_N_HALF = 5.0  # effective forwards at which the count factor reaches 1 - 1/e


@attrs.define
class Flow:
    """Decayed sums of one channel: msat out and in, and the decayed count of forwards."""

    out_msat: float = 0.0
    in_msat: float = 0.0
    events: float = 0.0
    out_events: float = 0.0
    first_ms: int | None = None
    last_ms: int | None = None

    def decay_to(self, now_ms: int, tau_s: float) -> None:
        if self.last_ms is not None and now_ms > self.last_ms:
            factor = math.exp(-(now_ms - self.last_ms) / 1000 / tau_s)
            self.out_msat *= factor
            self.in_msat *= factor
            self.events *= factor
            self.out_events *= factor
        if self.last_ms is None or now_ms > self.last_ms:
            self.last_ms = now_ms
        if self.first_ms is None:
            self.first_ms = now_ms


@attrs.frozen
class ChannelForecast:
    """What the estimator expects of one channel at ``now_ms``."""

    short_channel_id: str
    out_rate_msat_s: float  # drain of our local balance
    in_rate_msat_s: float  # refill
    local_msat: int
    floor_msat: int
    # Seconds until the local balance crosses the floor; None: not draining.
    depletion_s: float | None
    confidence: float
    # Mean size of a forward out through the channel (0: none seen).
    avg_forward_msat: float = 0.0
    # Seconds until the *remote* balance crosses the floor (the channel fills up); None: not.
    fill_s: float | None = None

    @property
    def net_out_msat_s(self) -> float:
        return self.out_rate_msat_s - self.in_rate_msat_s

    def outflow_msat(self, horizon_s: float) -> float:
        """Expected msat leaving through the channel over the horizon (gross, not net)."""
        return self.out_rate_msat_s * horizon_s

    def runs_dry_within(self, horizon_s: float) -> bool:
        return self.depletion_s is not None and self.depletion_s <= horizon_s


class FlowEstimator:
    """Decayed flow sums per short channel id (see the module docstring)."""

    def __init__(self, tau_s: float = DEFAULT_TAU_S, n_half: float = DEFAULT_N_HALF) -> None:
        if not tau_s > 0 or not n_half > 0:
            raise ValueError(f"tau_s and n_half must be > 0, got {tau_s}, {n_half}")
        self.tau_s = tau_s
        self.n_half = n_half
        self.flows: dict[str, Flow] = {}

    def _flow(self, scid: str, now_ms: int) -> Flow:
        flow = self.flows.setdefault(scid, Flow())
        flow.decay_to(now_ms, self.tau_s)
        return flow

    def observe_channel(self, scid: str, now_ms: int) -> None:
        """Start the observation period of a channel (its age counts towards confidence)."""
        self._flow(scid, now_ms)

    def forwarded(
        self, in_channel: str, out_channel: str, in_msat: int, out_msat: int, now_ms: int
    ) -> None:
        """One settled forward: ``out_msat`` left through ``out_channel``, ``in_msat`` came in."""
        out = self._flow(out_channel, now_ms)
        out.out_msat += max(0, out_msat)
        out.events += 1
        out.out_events += 1
        inc = self._flow(in_channel, now_ms)
        inc.in_msat += max(0, in_msat)
        inc.events += 1

    def forget(self, keep: Iterable[str]) -> None:
        """Drop channels that no longer exist."""
        kept = set(keep)
        for scid in [s for s in self.flows if s not in kept]:
            del self.flows[scid]

    def forecast(
        self,
        scid: str,
        local_msat: int,
        floor_msat: int,
        now_ms: int,
        *,
        capacity_msat: int = 0,
    ) -> ChannelForecast:
        flow = self._flow(scid, now_ms)
        out_rate = flow.out_msat / self.tau_s
        in_rate = flow.in_msat / self.tau_s
        net = out_rate - in_rate
        if net <= 0:
            depletion: float | None = None
        else:
            depletion = max(0.0, (local_msat - floor_msat) / net)
        remote = max(0, capacity_msat - local_msat) if capacity_msat else 0
        fill = None if net >= 0 or not capacity_msat else max(0.0, (remote - floor_msat) / -net)
        observed_s = 0.0 if flow.first_ms is None else (now_ms - flow.first_ms) / 1000
        confidence = (1 - math.exp(-flow.events / self.n_half)) * min(1.0, observed_s / self.tau_s)
        return ChannelForecast(
            short_channel_id=scid,
            out_rate_msat_s=out_rate,
            in_rate_msat_s=in_rate,
            local_msat=local_msat,
            floor_msat=floor_msat,
            depletion_s=depletion,
            confidence=max(0.0, min(1.0, confidence)),
            avg_forward_msat=flow.out_msat / flow.out_events if flow.out_events > 0 else 0.0,
            fill_s=fill,
        )

    def export(self) -> dict[str, list[float | int | None]]:
        """A JSON-able copy, to persist across restarts."""
        return {
            scid: [f.out_msat, f.in_msat, f.events, f.out_events, f.first_ms, f.last_ms]
            for scid, f in self.flows.items()
        }

    def restore(self, saved: Mapping[str, object]) -> int:
        """Load :meth:`export`'s output, skipping malformed entries; returns how many loaded."""
        loaded = 0
        for scid, entry in saved.items():
            if not isinstance(scid, str) or not isinstance(entry, list) or len(entry) != 6:
                continue
            out, inc, events, out_events, first, last = entry
            numbers = (out, inc, events, out_events)
            if not all(isinstance(v, int | float) and v >= 0 for v in numbers):
                continue
            if not all(v is None or isinstance(v, int) for v in (first, last)):
                continue
            self.flows[scid] = Flow(
                float(out), float(inc), float(events), float(out_events), first, last
            )
            loaded += 1
        return loaded


__all__ = ["DEFAULT_TAU_S", "ChannelForecast", "Flow", "FlowEstimator"]
