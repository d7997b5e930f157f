"""The decision engine on the feeds: the ``proposals`` and ``ledger`` topics, and the browser's
Approve / Reject buttons, which call the engine's own entry points (the ones ``hive-approve``
and ``hive-reject`` use), recorded as decided by ``operator:web``.

The engine never waits for a subscriber (a full subscription loses events, counted by the
engine), so the feed does not rely on every event arriving: each refresh also re-reads the
engine's open and recent proposals, and the ledger topic re-reads the ledger's newest entries after
every event, sending those it has not sent yet.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from hive.commands import CommandError, JsonDict
from hive.governance.api import EngineApi, Refused
from hive.governance.events import EngineEvent
from hive.governance.proposal import ProposalStatus
from hive.web.feeds import Event
from hive.web.hub import FeedHub

log = logging.getLogger(__name__)

RECENT_FINAL = 50  # final proposals kept for a new subscriber's snapshot
LEDGER_SNAPSHOT = 50
LEDGER_PAGE = 20
DECIDED_BY = "operator:web"

Ledger = Callable[[Mapping[str, Any]], Awaitable[JsonDict]]


def proposal_json(status: ProposalStatus) -> JsonDict:
    """A proposal as the feed shows it: the engine's record plus one line for people."""
    data = status.to_json()
    data["summary"] = summarize(data)
    return data


def summarize(data: Mapping[str, Any]) -> str:
    params = data.get("params", {})
    target = data.get("target") or params.get("peer")
    amount = params.get("amount_sat") or params.get("amount_msat", 0) // 1000
    parts = []
    if amount:
        parts.append(f"{int(amount):,} sat")
    if target:
        parts.append(f"to {str(target)[:12]}..")
    return " ".join(parts) or str(data.get("kind"))


def event_from_engine(event: EngineEvent) -> Event:
    """The events-topic entry for one engine event, with its why."""
    status = event.status
    if status is None:
        return Event(f"engine-{event.kind.value}", event.at_ms, event.detail or event.kind.value)
    why = status.proposal.reason
    if status.decision is not None and event.kind.value in ("decided", "expired"):
        verdict = "approved" if status.decision.approve else "rejected"
        why = f"{verdict} by {status.decision.by}: {status.decision.reason}"
    elif status.outcome is not None:
        outcome = status.outcome
        why = "succeeded" if outcome.ok else f"failed: {outcome.error}"
    elif status.held_by is not None:
        why = f"held by the {status.held_by} limit"
    return Event(
        f"proposal-{event.kind.value}",
        event.at_ms,
        why,
        status.id,
        {
            "kind": status.proposal.kind,
            "state": status.state.value,
            "target": status.proposal.target,
        },
    )


class ProposalFeed:
    """Feeds the engine's proposals and ledger to the hub; decides for the browser."""

    def __init__(self, engine: EngineApi, hub: FeedHub, ledger: Ledger | None) -> None:
        self.engine = engine
        self.hub = hub
        self.ledger = ledger
        self._ledger_seq = 0
        self._ledger_recent: collections.deque[JsonDict] = collections.deque(maxlen=LEDGER_SNAPSHOT)
        hub.serve_topic("proposals")
        if ledger is not None:
            hub.serve_topic("ledger")

    def snapshot(self) -> list[JsonDict]:
        """Open proposals (oldest first), then recent final ones (newest first)."""
        open_ = [proposal_json(s) for s in self.engine.pending()]
        final = [proposal_json(s) for s in reversed(self.engine.recent()[-RECENT_FINAL:])]
        return open_ + final

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.hub.set_snapshot("proposals", self.snapshot())
        await self._read_ledger(LEDGER_SNAPSHOT)
        async with self.engine.subscribe(capacity=256) as events:
            task_status.started()
            async for event in events:
                await self._on_event(event)

    async def _on_event(self, event: EngineEvent) -> None:
        if event.status is not None:
            data = proposal_json(event.status)
            self.hub.publish("proposals", event.kind.value, data, snapshot=self.snapshot())
        self.hub.publish_event(event_from_engine(event))
        await self._read_ledger(LEDGER_PAGE)

    async def _read_ledger(self, limit: int) -> None:
        if self.ledger is None:
            return
        try:
            page = await self.ledger({"limit": limit})
        except CommandError as exc:
            log.warning("web: the ledger could not be read: %s", exc.message)
            return
        fresh = [e for e in page.get("entries", []) if int(e["seq"]) > self._ledger_seq]
        for entry in sorted(fresh, key=lambda e: int(e["seq"])):
            self._ledger_seq = int(entry["seq"])
            self._ledger_recent.appendleft(entry)
            self.hub.publish("ledger", "entry", entry, snapshot=list(self._ledger_recent))

    async def decide(self, proposal_id: Any, approve: bool, reason: Any) -> JsonDict:
        """Approve or reject for the browser; returns the new state or raises Refused."""
        if not isinstance(proposal_id, str) or not 0 < len(proposal_id) <= 80:
            raise Refused("invalid", "'proposal' must be a proposal id")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise Refused("invalid", "'reason' must be text of at most 500 characters")
        text = reason or f"{'approved' if approve else 'rejected'} in the live view"
        if approve:
            status = await self.engine.approve(proposal_id, by=DECIDED_BY, reason=text)
        else:
            status = await self.engine.reject(proposal_id, by=DECIDED_BY, reason=text)
        return {"proposal": status.id, "state": status.state.value}


__all__ = ["ProposalFeed", "event_from_engine", "proposal_json"]
