"""Contribution reputation (issue 12): who provides liquidity to the fleet and who only takes.

Pure: no I/O, no clock. Inputs per member are its *claimed* totals (the signed
``RebalanceTotals`` of its state record: liquidity it provided by forwarding other members'
circular payments, liquidity it consumed by its own) and what *we observed* it provide (the
``provided`` rows of our ``liquidity_shares``: members that forwarded our own rebalances).

* ``provided = max(claimed provided, observed provided)``: a claim cannot hide what we saw;
  ``consumed`` is the claim (only the payer knows who paid; members forwarding a payment see
  an amount, not a payer).
* ``ratio = (provided + prior) / (consumed + prior)`` with ``prior_msat`` (1 000 000 sat) on
  both sides: smoothing, so small volumes stay near 1.0 and one early rebalance does not
  brand anyone.
* standing: ``new`` while the volume (provided + consumed) is below ``min_volume_msat`` or the
  member joined less than ``new_days`` ago (no history is not the same as a leech); otherwise
  ``leech`` below ``leech_below``, ``contributor`` above ``contributor_above``, else
  ``balanced``.
* cross-check: a claim of provided liquidity below what we saw the member provide, by more
  than ``tolerance`` (10 %, at least 1 000 sat), becomes a note (its record is stale or wrong).
"""

from __future__ import annotations

from typing import Any

import attrs

DAY_MS = 86_400_000
NEW, LEECH, BALANCED, CONTRIBUTOR = "new", "leech", "balanced", "contributor"


@attrs.frozen
class ReputationRules:
    prior_msat: int = 1_000_000_000
    min_volume_msat: int = 5_000_000_000
    new_days: float = 14.0
    leech_below: float = 0.5
    contributor_above: float = 2.0
    tolerance: float = 0.10
    tolerance_floor_msat: int = 1_000_000


@attrs.frozen
class Inputs:
    member: str
    admitted_ms: int
    claimed_provided_msat: int | None  # None: no state record held
    claimed_consumed_msat: int | None
    observed_provided_msat: int = 0


@attrs.frozen
class Score:
    member: str
    provided_msat: int
    consumed_msat: int
    ratio: float
    standing: str
    notes: tuple[str, ...]
    inputs: Inputs

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "provided_msat": self.provided_msat,
            "consumed_msat": self.consumed_msat,
            "ratio": round(self.ratio, 4),
            "standing": self.standing,
            "notes": list(self.notes),
            "inputs": attrs.asdict(self.inputs),
        }


def score(inputs: Inputs, now_ms: int, rules: ReputationRules | None = None) -> Score:
    r = rules or ReputationRules()
    claimed_p = inputs.claimed_provided_msat or 0
    consumed = inputs.claimed_consumed_msat or 0
    provided = max(claimed_p, inputs.observed_provided_msat)
    ratio = (provided + r.prior_msat) / (consumed + r.prior_msat)
    notes: list[str] = []
    if inputs.claimed_provided_msat is None:
        notes.append("no state record held: scored from our own observations only")
    gap = inputs.observed_provided_msat - claimed_p
    allowed = max(r.tolerance * inputs.observed_provided_msat, r.tolerance_floor_msat)
    if inputs.claimed_provided_msat is not None and gap > allowed:
        notes.append(
            f"claims {claimed_p} msat provided, we saw {inputs.observed_provided_msat} msat"
        )
    young = now_ms - inputs.admitted_ms < r.new_days * DAY_MS
    if provided + consumed < r.min_volume_msat or young:
        standing = NEW
    elif ratio < r.leech_below:
        standing = LEECH
    elif ratio > r.contributor_above:
        standing = CONTRIBUTOR
    else:
        standing = BALANCED
    return Score(inputs.member, provided, consumed, ratio, standing, tuple(notes), inputs)
