"""The oracle decision packet and the parsing of an oracle's answer (pure: no I/O, no clock).

Documented for oracle authors in ``docs/ORACLE.md``; the machine-readable form is
``docs/oracle-packet.schema.json`` (a test validates packets built here against it). Both the
HTTP oracle and websocket agents receive exactly this packet and answer in the same format.

Request (``type: hive.decision-request``, ``version: 1``)::

    {"type": "hive.decision-request", "version": 1, "proposal_id": "p-...",
     "node": {"node_id": "02..", "alias": ".."}, "mode": "oracle",
     "proposal": {...Proposal.to_json()...},
     "limits": {...hard limits...}, "budget": {...spent, reserved and left...},
     "sent_ms": 1700000000000, "deadline_ms": 1700000010000}

Answer (``type: hive.decision-answer``, ``version: 1``)::

    {"type": "hive.decision-answer", "version": 1, "proposal_id": "p-...",
     "decision": "APPROVE" | "DENY", "reason": "why, in words"}

Anything else (not JSON, not an object, larger than :data:`MAX_ANSWER_BYTES`, a wrong type or
version, another proposal's id, a decision other than APPROVE/DENY, a missing or too long
reason) is refused with a :class:`~hive.governance.decider.DeciderError` and counts as DENY.
Unknown extra fields in an answer are ignored, so oracles may add their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hive.governance.decider import DeciderError, Verdict
from hive.governance.proposal import ProposalStatus

PACKET_TYPE = "hive.decision-request"
ANSWER_TYPE = "hive.decision-answer"
PACKET_VERSION = 1
MAX_ANSWER_BYTES = 16_384
MAX_ANSWER_REASON = 500

JsonDict = dict[str, Any]


def build_packet(
    status: ProposalStatus,
    *,
    node_id: str,
    alias: str,
    mode: str,
    limits: Mapping[str, Any],
    budget: Mapping[str, Any],
    sent_ms: int,
    deadline_ms: int,
) -> JsonDict:
    """The decision request for one proposal."""
    return {
        "type": PACKET_TYPE,
        "version": PACKET_VERSION,
        "proposal_id": status.id,
        "node": {"node_id": node_id, "alias": alias},
        "mode": mode,
        "proposal": status.proposal.to_json(),
        "limits": dict(limits),
        "budget": dict(budget),
        "sent_ms": sent_ms,
        "deadline_ms": deadline_ms,
    }


def encode_packet(packet: Mapping[str, Any]) -> bytes:
    """The packet's bytes as sent (and signed, for webhooks): compact, keys sorted, UTF-8."""
    return json.dumps(packet, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def parse_answer(raw: bytes | str, proposal_id: str) -> Verdict:
    """The verdict in an oracle's answer to the packet for ``proposal_id``; raises DeciderError."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_ANSWER_BYTES:
        raise DeciderError("oversized", f"answer of {size} bytes (at most {MAX_ANSWER_BYTES})")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeciderError("malformed", f"answer is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DeciderError("malformed", "answer is not a JSON object")
    if data.get("type") != ANSWER_TYPE:
        raise DeciderError("malformed", f"answer type must be {ANSWER_TYPE!r}")
    if data.get("version") != PACKET_VERSION:
        raise DeciderError(
            "unsupported-version", f"answer version {data.get('version')!r} is not {PACKET_VERSION}"
        )
    if data.get("proposal_id") != proposal_id:
        raise DeciderError(
            "wrong-proposal", f"answer is for {data.get('proposal_id')!r}, not {proposal_id!r}"
        )
    decision = data.get("decision")
    if decision not in ("APPROVE", "DENY"):
        raise DeciderError("malformed", f"decision must be APPROVE or DENY, got {decision!r}")
    reason = data.get("reason")
    if not isinstance(reason, str) or not 0 < len(reason) <= MAX_ANSWER_REASON:
        raise DeciderError("malformed", f"reason must be 1 to {MAX_ANSWER_REASON} characters")
    return Verdict(approve=decision == "APPROVE", reason=reason)


def answer(proposal_id: str, approve: bool, reason: str) -> JsonDict:
    """A well-formed answer (for agents written in Python, and tests)."""
    return {
        "type": ANSWER_TYPE,
        "version": PACKET_VERSION,
        "proposal_id": proposal_id,
        "decision": "APPROVE" if approve else "DENY",
        "reason": reason,
    }
