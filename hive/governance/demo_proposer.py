"""The built-in demo proposer's choice (pure): what to propose next (random opens to hubs,
beside the planner's, so the demo shows decisions early).

This is **not** the planner. It was written so that ``hive demo`` showed the decision engine at
work (proposals pending, approved, held by a limit, executed) before the real producers (planner,
rebalancer, ban logic) existed; now they do, it runs only when asked (``hive demo
--demo-proposals S``), for more and other kinds of proposals. Its proposals say so: ``proposer``
is ``demo-proposer`` and every reason starts with "demo:". It picks at random, within reason:

* while the node has fewer than ``max_channels`` channels: open ``amount_sat`` to a candidate
  (a well-connected node) it has no channel with and no open proposal for;
* otherwise: set a fee on one of its channels.

Confidence is drawn from 0.4-0.95, so some proposals fall below ``min_confidence_pct`` and are
held, which the demo should show too.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from hive.governance.proposal import Cost, Draft
from hive.node.port import ChannelView

PROPOSER = "demo-proposer"
OPEN_FEE_ESTIMATE_SAT = 2_500
FEE_CHOICES_PPM = (10, 50, 100, 250, 500)


def next_proposal(
    channels: Sequence[ChannelView],
    candidates: Sequence[str],
    busy: Collection[str],
    rng: random.Random,
    *,
    max_channels: int = 6,
    amount_sat: int = 1_000_000,
) -> Draft | None:
    """A draft for the engine, or None when there is nothing sensible to propose."""
    peers = {c.peer_id for c in channels}
    confidence = round(rng.uniform(0.4, 0.95), 2)
    fresh = [c for c in candidates if c not in peers and c not in busy]
    if len(peers) < max_channels and fresh:
        peer = rng.choice(fresh)
        return Draft(
            kind="open-channel",
            params={"peer": peer, "amount_sat": amount_sat},
            reason=f"demo: open to well-connected node {peer[:12]}..",
            cost=Cost(capital_sat=amount_sat, onchain_fee_sat=OPEN_FEE_ESTIMATE_SAT),
            proposer=PROPOSER,
            evidence={"candidates": len(candidates), "channels": len(peers)},
            expected_value_sat=amount_sat // 1_000,
            confidence=confidence,
            target=peer,
        )
    existing = [c for c in channels if c.peer_id not in busy]
    if not existing:
        return None
    channel = rng.choice(existing)
    ppm = rng.choice([p for p in FEE_CHOICES_PPM if p != channel.our_fee.ppm])
    return Draft(
        kind="set-fee",
        params={"peer": channel.peer_id, "base_msat": 0, "ppm": ppm},
        reason=f"demo: try {ppm} ppm (now {channel.our_fee.ppm}) on {channel.peer_id[:12]}..",
        cost=Cost(),
        proposer=PROPOSER,
        evidence={"current_ppm": channel.our_fee.ppm},
        confidence=confidence,
        target=channel.peer_id,
    )
