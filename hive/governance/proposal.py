"""The proposal record and the records of its life: decision, execution, outcome.

Every action Hive takes on the node (open a channel, rebalance, set a fee, ban a peer) is first a
:class:`Proposal`. A producer (the planner, the rebalancer, the ban logic, the demo proposer)
builds a :class:`Draft` and hands it to the engine (:meth:`hive.governance.api.EngineApi.submit`);
the engine gives it an id, a creation and an expiry time, records it, and returns the
:class:`Proposal`. From then on its :class:`ProposalState` only moves along the transition table
of :mod:`hive.governance.modes`.

All records are frozen and JSON-able through :meth:`to_json` / :func:`proposal_from_json`.
Amounts are whole satoshi (``*_sat``); a payment's fee rate is in parts per million.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs

JsonDict = dict[str, Any]

# Bounds on what a producer may put in a proposal: the ledger stores it and the oracle packet
# carries it, so nothing in it may grow without limit.
MAX_REASON_CHARS = 500
MAX_JSON_CHARS = 8_000
MAX_PROPOSER_CHARS = 64
MAX_SAT = 21_000_000 * 100_000_000


class ProposalState(enum.Enum):
    """Where a proposal is in its life (see :data:`hive.governance.modes.TRANSITIONS`)."""

    PENDING = "pending"  # waiting for a decision (operator, oracle), or held by a limit
    APPROVED = "approved"  # decided yes, waiting to execute (e.g. while paused)
    EXECUTING = "executing"  # budget reserved, the node is being asked
    SUCCEEDED = "succeeded"  # executed; real cost settled
    FAILED = "failed"  # executed and the node refused or failed; reservation released
    REJECTED = "rejected"  # decided no (operator, oracle DENY, oracle timeout)
    EXPIRED = "expired"  # nobody decided before expires_ms

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {ProposalState.SUCCEEDED, ProposalState.FAILED, ProposalState.REJECTED, ProposalState.EXPIRED}
)


class ProposalInvalid(ValueError):
    """A draft (or its parameters) is not acceptable; the message says why, in one line."""


@attrs.frozen
class Cost:
    """What an action may cost (estimated, reserved) or did cost (settled), in satoshi.

    ``capital_sat`` is money moved into a channel (still ours, but no longer on chain);
    ``onchain_fee_sat`` is paid to miners; ``routing_fee_sat`` to forwarding nodes. ``ppm`` is the
    fee rate of a payment (``routing_fee / amount * 1e6``) where the action is one, else None.
    """

    onchain_fee_sat: int = 0
    capital_sat: int = 0
    routing_fee_sat: int = 0
    ppm: int | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("onchain_fee_sat", "capital_sat", "routing_fee_sat"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAT:
                raise ProposalInvalid(f"cost {name} must be a whole number of sats, got {value!r}")
        if self.ppm is not None and (
            isinstance(self.ppm, bool) or not isinstance(self.ppm, int) or self.ppm < 0
        ):
            raise ProposalInvalid(f"cost ppm must be a whole number >= 0, got {self.ppm!r}")

    @property
    def total_sat(self) -> int:
        return self.onchain_fee_sat + self.capital_sat + self.routing_fee_sat

    def to_json(self) -> JsonDict:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cost:
        return cls(
            onchain_fee_sat=data.get("onchain_fee_sat", 0),
            capital_sat=data.get("capital_sat", 0),
            routing_fee_sat=data.get("routing_fee_sat", 0),
            ppm=data.get("ppm"),
        )


def msat_to_sat_up(msat: int) -> int:
    """Whole sats covering ``msat`` (rounded up: budgets never under-count)."""
    return -(-msat // 1000)


@attrs.frozen
class Draft:
    """What a producer submits. The engine turns it into a :class:`Proposal`.

    ``params`` are the kind's parameters (checked by the kind's ``validate``), ``evidence`` the
    figures behind the proposal (free-form JSON, bounded), ``target`` the peer the action is
    about when there is one (locks, ``hive-why`` and the live view key on it). ``ttl_s`` overrides
    ``hive-proposal-ttl`` for this proposal (it can only shorten it).
    """

    kind: str
    params: Mapping[str, Any]
    reason: str
    cost: Cost
    proposer: str
    evidence: Mapping[str, Any] = attrs.field(factory=dict)
    expected_value_sat: int = 0
    confidence: float = 1.0
    target: str | None = None
    ttl_s: float | None = None


@attrs.frozen(eq=True, hash=False)
class Proposal:
    """One intended action, as recorded. Immutable: its life is in :class:`ProposalStatus`."""

    id: str
    kind: str
    params: Mapping[str, Any]
    reason: str
    evidence: Mapping[str, Any]
    cost: Cost
    expected_value_sat: int
    confidence: float
    proposer: str
    target: str | None
    created_ms: int
    expires_ms: int

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": dict(self.params),
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "cost": self.cost.to_json(),
            "expected_value_sat": self.expected_value_sat,
            "confidence": self.confidence,
            "proposer": self.proposer,
            "target": self.target,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
        }


def proposal_from_json(data: Mapping[str, Any]) -> Proposal:
    """The inverse of :meth:`Proposal.to_json` (for rows this node wrote itself)."""
    return Proposal(
        id=str(data["id"]),
        kind=str(data["kind"]),
        params=dict(data["params"]),
        reason=str(data["reason"]),
        evidence=dict(data["evidence"]),
        cost=Cost.from_json(data["cost"]),
        expected_value_sat=int(data["expected_value_sat"]),
        confidence=float(data["confidence"]),
        proposer=str(data["proposer"]),
        target=None if data.get("target") is None else str(data["target"]),
        created_ms=int(data["created_ms"]),
        expires_ms=int(data["expires_ms"]),
    )


def check_draft_shape(draft: Draft) -> None:
    """The bounds every draft must meet whatever its kind; raises :class:`ProposalInvalid`."""
    import json

    if not isinstance(draft.reason, str) or not 0 < len(draft.reason) <= MAX_REASON_CHARS:
        raise ProposalInvalid(f"reason must be 1 to {MAX_REASON_CHARS} characters")
    if not isinstance(draft.proposer, str) or not 0 < len(draft.proposer) <= MAX_PROPOSER_CHARS:
        raise ProposalInvalid(f"proposer must be 1 to {MAX_PROPOSER_CHARS} characters")
    if not isinstance(draft.cost, Cost):
        raise ProposalInvalid("cost must be a Cost")
    confidence = draft.confidence
    if not isinstance(confidence, int | float) or not math.isfinite(confidence):
        raise ProposalInvalid(f"confidence must be a number from 0 to 1, got {confidence!r}")
    if not 0 <= confidence <= 1:
        raise ProposalInvalid(f"confidence must be from 0 to 1, got {confidence!r}")
    ev = draft.expected_value_sat
    if isinstance(ev, bool) or not isinstance(ev, int) or abs(ev) > MAX_SAT:
        raise ProposalInvalid(f"expected_value_sat must be a whole number of sats, got {ev!r}")
    if draft.ttl_s is not None and not (
        isinstance(draft.ttl_s, int | float) and math.isfinite(draft.ttl_s) and draft.ttl_s > 0
    ):
        raise ProposalInvalid(f"ttl_s must be a positive number of seconds, got {draft.ttl_s!r}")
    if draft.target is not None and (not isinstance(draft.target, str) or len(draft.target) > 66):
        raise ProposalInvalid("target must be a node id")
    for name in ("params", "evidence"):
        value = getattr(draft, name)
        if not isinstance(value, Mapping):
            raise ProposalInvalid(f"{name} must be a JSON object")
        try:
            text = json.dumps(dict(value), allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ProposalInvalid(f"{name} must be plain JSON: {exc}") from None
        if len(text) > MAX_JSON_CHARS:
            raise ProposalInvalid(f"{name} is larger than {MAX_JSON_CHARS} characters of JSON")


@attrs.frozen
class Decision:
    """Who decided, what, and why. ``by`` names the decider: ``operator``, ``operator:web``,
    ``autonomous``, ``oracle:<url>``, ``agent:<name>``, ``timeout:<decider>``, ``expiry``."""

    approve: bool
    by: str
    reason: str
    at_ms: int

    def to_json(self) -> JsonDict:
        return {"approve": self.approve, "by": self.by, "reason": self.reason, "at_ms": self.at_ms}


@attrs.frozen
class ExecutionResult:
    """What an executor reports: the real cost, the node calls made, kind-specific detail."""

    cost: Cost
    calls: tuple[str, ...] = ()
    detail: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Outcome:
    """How an execution ended: ``ok`` with the real cost, or the exact error."""

    ok: bool
    cost: Cost
    error: str | None
    calls: tuple[str, ...]
    detail: Mapping[str, Any]
    at_ms: int

    def to_json(self) -> JsonDict:
        return {
            "ok": self.ok,
            "cost": self.cost.to_json(),
            "error": self.error,
            "calls": list(self.calls),
            "detail": dict(self.detail),
            "at_ms": self.at_ms,
        }


@attrs.frozen(eq=True, hash=False)
class ProposalStatus:
    """A proposal and where it stands now: what ``hive-pending`` lists and events carry.

    ``held_by`` names the hard limit that keeps an approved or autonomous proposal waiting.
    """

    proposal: Proposal
    state: ProposalState
    decision: Decision | None = None
    outcome: Outcome | None = None
    held_by: str | None = None

    @property
    def id(self) -> str:
        return self.proposal.id

    def to_json(self) -> JsonDict:
        return {
            **self.proposal.to_json(),
            "state": self.state.value,
            "decision": None if self.decision is None else self.decision.to_json(),
            "outcome": None if self.outcome is None else self.outcome.to_json(),
            "held_by": self.held_by,
        }
