"""The verdict on a revealed report, pure: what a receiving member can check by itself.

Two sources (docs/REPUTATION.md, "What a report can be checked against"):

* **the public graph**: each reported channel must be a public channel from the issuer's node
  to the reported peer (``endpoint``) with the stated capacity (``capacity``); one our graph
  does not show is ``pending`` until the grace is over, then ``absent``. Fees cannot be proven
  false afterwards (the graph has no history and fees change), so a fee that differs from the
  one announced now is ``fee-changed``: shown, never counted as a lie;
* **what we saw ourselves**: the report's inbound share from *our* node is what the issuer
  says it received from us for forwards to the peer. Every such HTLC went out through our own
  channel with the issuer, so we saw it (a forward of ours, or our own rebalance through the
  issuer). A share above what we sent the issuer over the window (plus ``tolerance`` and
  ``floor_msat``) is ``exceeds``; when our own observation does not cover the whole window
  (we were not running) it is ``pending``, then ``not-covered`` (no conclusion).

The verdict: ``false`` when any check found a lie (``absent``, ``endpoint``, ``capacity``,
``exceeds``), else ``pending`` while any check waits, else ``consistent`` when every channel
was found as stated, else ``unverified``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from hive.protocol.strategy.records import ReportBody

LIES = frozenset({"absent", "endpoint", "capacity", "exceeds"})
WAITING = "pending"


@attrs.frozen
class GraphChannel:
    """One public channel from the issuer's node, as our graph shows it."""

    short_channel_id: str
    destination: bytes
    capacity_sat: int
    base_msat: int
    ppm: int


@attrs.frozen
class Observed:
    """What we sent the issuer over the report's window: ``covered`` when we were observing
    throughout it."""

    covered: bool
    sent_msat: int


@attrs.frozen
class Check:
    name: str
    result: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "result": self.result, "detail": self.detail}


@attrs.frozen
class Verdict:
    verdict: str
    checks: tuple[Check, ...]

    @property
    def final(self) -> bool:
        return self.verdict != WAITING

    @property
    def lies(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.result in LIES)


@attrs.frozen
class Tolerance:
    fraction: float = 0.10
    floor_msat: int = 10_000_000


def judge(
    body: ReportBody,
    our_node: bytes,
    graph: Sequence[GraphChannel] | None,
    observed: Observed | None,
    *,
    past_grace: bool,
    tolerance: Tolerance | None = None,
) -> Verdict:
    """The verdict on ``body``; ``graph`` None when the issuer's channels could not be read,
    ``observed`` None when we have no observation; ``past_grace`` once waiting is over."""
    tol = tolerance or Tolerance()
    checks: list[Check] = []
    by_scid = {c.short_channel_id: c for c in graph or ()}
    for claimed in body.channels:
        name = f"graph:{claimed.short_channel_id}"
        seen = by_scid.get(claimed.short_channel_id)
        if seen is None and graph is None:
            result = "unread" if past_grace else WAITING
            checks.append(Check(name, result, "the issuer's channels could not be read"))
        elif seen is None:
            if past_grace:
                checks.append(Check(name, "absent", "no such public channel of the issuer"))
            else:
                checks.append(Check(name, WAITING, "not in our graph yet"))
        elif seen.destination != body.peer:
            checks.append(Check(name, "endpoint", f"the channel goes to {seen.destination.hex()}"))
        elif seen.capacity_sat != claimed.capacity_sat:
            checks.append(
                Check(name, "capacity", f"{seen.capacity_sat} sat, not {claimed.capacity_sat}")
            )
        elif (seen.base_msat, seen.ppm) != (claimed.base_msat, claimed.ppm):
            checks.append(
                Check(
                    name,
                    "fee-changed",
                    f"announced now {seen.base_msat}/{seen.ppm}, reported "
                    f"{claimed.base_msat}/{claimed.ppm}",
                )
            )
        else:
            checks.append(Check(name, "ok", "as announced"))
    share = next((s for s in body.inbound if s.member == our_node), None)
    if share is not None:
        name = "observed:from-us"
        if observed is None or not observed.covered:
            result = "not-covered" if past_grace else WAITING
            checks.append(Check(name, result, "we did not observe the whole window"))
        else:
            allowed = observed.sent_msat + max(
                int(tol.fraction * observed.sent_msat), tol.floor_msat
            )
            if share.forwarded_msat > allowed:
                checks.append(
                    Check(
                        name,
                        "exceeds",
                        f"claims {share.forwarded_msat} msat from us, we sent "
                        f"{observed.sent_msat} msat",
                    )
                )
            else:
                checks.append(Check(name, "ok", f"we sent {observed.sent_msat} msat"))
    if any(c.result in LIES for c in checks):
        verdict = "false"
    elif any(c.result == WAITING for c in checks):
        verdict = WAITING
    elif all(c.result in ("ok", "fee-changed") for c in checks if c.name.startswith("graph:")):
        verdict = "consistent"
    else:
        verdict = "unverified"
    return Verdict(verdict, tuple(checks))
