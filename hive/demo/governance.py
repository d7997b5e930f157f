"""What the demo shows of the decision engine: rows for a panel and lines for an event log.

Pure functions of engine state, so the demo screen (whatever draws it) only has to place them:
:func:`proposal_rows` gives one row per recent proposal of every companion (pending ones
first), :func:`event_line` one line per :class:`~hive.governance.events.EngineEvent`, and
:func:`governance_lines` the plain-text block the current table appends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hive.actors.governance.engine import Engine
from hive.governance.demo_proposer import PROPOSER as DEMO_PROPOSER
from hive.governance.events import EngineEvent, EventKind
from hive.governance.proposal import ProposalState, ProposalStatus

WIDTH = 79  # the demo screen is 80 columns
ROW_FIELDS = ("companion", "id", "kind", "target", "state", "by", "note")


def _row(alias: str, s: ProposalStatus) -> dict[str, str]:
    note = ""
    if s.held_by:
        note = f"held: {s.held_by}"
    elif s.outcome is not None:
        note = s.outcome.error or f"cost {s.outcome.cost.total_sat:,} sat"
    elif s.decision is not None:
        note = s.decision.reason
    return {
        "companion": alias,
        "id": s.id,
        "kind": s.proposal.kind,
        "target": (s.proposal.target or "")[:12],
        "state": s.state.value,
        # Who decided it; while undecided, who proposed it (the planner, the rebalancer, ...).
        "by": _proposer(s.proposal.proposer) if s.decision is None else s.decision.by,
        "note": note[:40],
    }


def _proposer(name: str) -> str:
    return "demo" if name == DEMO_PROPOSER else name[:10]


def proposal_rows(engines: Iterable[tuple[str, Engine]], *, each: int = 2) -> list[dict[str, str]]:
    """Per companion, up to ``each`` open proposals (oldest first), then up to ``each`` of
    its latest final ones (newest first)."""
    rows: list[dict[str, str]] = []
    for alias, engine in engines:
        mine = [*engine.pending()[:each], *list(reversed(engine.recent()))[:each]]
        rows.extend(_row(alias, s) for s in mine)
    return rows


def event_line(alias: str, event: EngineEvent) -> str:
    s = event.status
    if s is None:
        return f"{alias}: governance {event.kind.value} {event.detail}".rstrip()
    what = f"{s.id} {s.proposal.kind} {(s.proposal.target or '')[:12]}"
    if event.kind is EventKind.DECIDED and s.decision is not None:
        verdict = "approved" if s.decision.approve else "rejected"
        return f"{alias}: {what} {verdict} by {s.decision.by}"
    if event.kind is EventKind.HELD:
        return f"{alias}: {what} held by {s.held_by}"
    if event.kind is EventKind.OUTCOME and s.outcome is not None:
        if s.state is ProposalState.SUCCEEDED:
            return f"{alias}: {what} done, cost {s.outcome.cost.total_sat:,} sat"
        return f"{alias}: {what} failed: {s.outcome.error}"
    return f"{alias}: {what} {event.kind.value}"


def governance_lines(rows: Sequence[dict[str, str]]) -> list[str]:
    if not rows:
        return ["", "proposals: none yet (the planner, the rebalancer and ban votes propose)"]
    lines = ["", "proposals (pending first; by: the proposer while pending, then who decided):"]
    for r in rows:
        line = (
            f"  {r['companion']:<8} {r['id']} {r['kind']:<12} {r['target']:<12} "
            f"{r['state']:<9} {r['by']:<10} {r['note']}"
        ).rstrip()
        # One line a proposal on an 80-column screen: the note gives way ("hive-why ID" has it all).
        lines.append(line if len(line) <= WIDTH else line[: WIDTH - 2] + "..")
    return lines
