"""The demand model: who pays whom, how much and when. Pure: numpy, seeded, no I/O, no clock.

Modelled the way published simulators do (CLoTH draws payments between random node pairs with
Poisson arrivals; SimLN draws activity per node from capacity-scaled distributions):

* **arrivals**: ``payments`` payments spread uniformly over ``period_s`` (a Poisson process
  conditioned on its count), sorted by time;
* **senders**: drawn among the graph's nodes with weight ``degree ** sender_exponent`` (busy
  nodes stand for wallets' LSPs and exchanges, which send most payments);
* **receivers**: with probability ``merchant_share`` one of the ``merchants`` (the nodes with
  the most capacity, a fixed fraction of the graph) weighted by capacity, otherwise any node
  weighted by ``capacity ** receiver_exponent``; never the sender;
* **amounts**: log-normal (heavy right tail) with median ``median_sat`` and shape ``sigma``,
  cut to ``min_sat .. max_sat``.

Only nodes with at least one routable channel send or receive; the scenarios' own nodes never
do (they are routing nodes), so every scenario sees the same payments for the same seed.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value > 0:
        raise ValueError(f"demand {attribute.name} must be > 0, got {value!r}")


def _fraction(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"demand {attribute.name} must be within 0..1, got {value!r}")


@attrs.frozen
class DemandConfig:
    payments: int = attrs.field(default=4000, validator=_positive)
    period_s: float = attrs.field(default=7 * 86400.0, validator=_positive)
    merchant_share: float = attrs.field(default=0.3, validator=_fraction)
    merchants: float = attrs.field(default=0.02, validator=_fraction)  # share of the nodes
    sender_exponent: float = 1.0
    receiver_exponent: float = 0.5
    median_sat: float = attrs.field(default=20_000.0, validator=_positive)
    sigma: float = attrs.field(default=1.5, validator=_positive)
    min_sat: int = attrs.field(default=100, validator=_positive)
    max_sat: int = attrs.field(default=2_000_000, validator=_positive)


@attrs.frozen(eq=False)
class Payments:
    """One row per payment, sorted by time."""

    at_s: FloatArray
    sender: IntArray
    receiver: IntArray
    amount_msat: IntArray

    def __len__(self) -> int:
        return len(self.at_s)


def generate(
    degree: npt.ArrayLike,
    capacity_sat: npt.ArrayLike,
    config: DemandConfig,
    seed: int,
) -> Payments:
    """The payments of one seed. Nodes with ``degree == 0`` never take part."""
    deg = np.asarray(degree, dtype=np.float64)
    cap = np.asarray(capacity_sat, dtype=np.float64)
    active = np.flatnonzero(deg > 0)
    if len(active) < 2:
        raise ValueError("the demand needs at least two nodes with channels")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE4]))
    count = int(config.payments)
    at = np.sort(rng.uniform(0.0, config.period_s, size=count))
    send_w = deg[active] ** config.sender_exponent
    senders = rng.choice(active, size=count, p=send_w / send_w.sum())
    recv_w = np.maximum(cap[active], 1.0) ** config.receiver_exponent
    n_merchants = max(1, int(len(active) * config.merchants))
    merchants = active[np.argsort(-cap[active], kind="stable")[:n_merchants]]
    merch_w = np.maximum(cap[merchants], 1.0)
    to_merchant = rng.random(count) < config.merchant_share
    receivers = np.where(
        to_merchant,
        rng.choice(merchants, size=count, p=merch_w / merch_w.sum()),
        rng.choice(active, size=count, p=recv_w / recv_w.sum()),
    )
    # Never pay oneself: redraw those (rare) from the general receivers until none is left.
    same = np.flatnonzero(receivers == senders)
    while len(same):
        receivers[same] = rng.choice(active, size=len(same), p=recv_w / recv_w.sum())
        same = same[receivers[same] == senders[same]]
    amounts_sat = np.exp(rng.normal(np.log(config.median_sat), config.sigma, size=count))
    amounts_sat = np.clip(amounts_sat, config.min_sat, config.max_sat)
    return Payments(
        at_s=at,
        sender=senders.astype(np.int64),
        receiver=receivers.astype(np.int64),
        amount_msat=(amounts_sat * 1000).astype(np.int64),
    )
