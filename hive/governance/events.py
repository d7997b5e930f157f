"""What the engine tells its subscribers (the live view, websocket feeds, webhooks, producers).

One :class:`EngineEvent` per step of a proposal's life, plus the kill switch. Subscribers get
them through :meth:`hive.governance.api.EngineApi.subscribe`: a bounded channel per subscriber;
the engine never waits for a subscriber, so a subscriber that falls behind loses events (they
are counted in ``hive-status`` under ``governance.events_dropped``) and can always re-read the
truth from the ledger (``hive-ledger``, ``hive-why``).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from hive.governance.proposal import ProposalStatus


class EventKind(enum.Enum):
    NEW = "new"  # a proposal was recorded (state pending)
    DECIDED = "decided"  # approved or rejected (status.decision says by whom and why)
    HELD = "held"  # a hard limit (status.held_by) keeps an approved/autonomous proposal waiting
    EXECUTING = "executing"  # budget reserved, the node is being asked
    OUTCOME = "outcome"  # succeeded or failed (status.outcome has the real cost or the error)
    EXPIRED = "expired"  # nobody decided in time
    PAUSED = "paused"  # the kill switch was set (detail: the reason)
    RESUMED = "resumed"  # the kill switch was lifted


@attrs.frozen(eq=True, hash=False)
class EngineEvent:
    kind: EventKind
    at_ms: int
    # The proposal concerned, as it stands after this event; None for paused/resumed.
    status: ProposalStatus | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.kind.value,
            "at_ms": self.at_ms,
            "proposal": None if self.status is None else self.status.to_json(),
            "detail": self.detail,
        }
