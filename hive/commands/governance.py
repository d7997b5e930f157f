"""Operator commands of the decision engine: pending, approve, reject, pause, resume, budget,
ledger, why.

Each handler takes the command's decoded JSON parameters (see
:class:`hive.commands.membership.Params`) and returns a JSON-able dict; a refusal is a
:class:`~hive.commands.CommandError` whose message says what to do, and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hive.actors.governance.engine import Engine
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.errors import TransientError
from hive.governance.api import Refused
from hive.governance.limits import DESCRIPTIONS
from hive.governance.proposal import ProposalStatus
from hive.store import governance as sql

MAX_LEDGER_LIMIT = sql.MAX_LEDGER_PAGE
_ID = re.compile(r"^p-[0-9a-f]{10}$")
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_REFUSAL_CODES = {
    "unknown-id": CommandError.NOT_FOUND,
    "not-pending": CommandError.REFUSED,
    "expired": CommandError.REFUSED,
    "not-running": CommandError.NOT_READY,
}


def _proposal_id(command: str, params: Params) -> str:
    value = params.text("id", max_len=16)
    if not value:
        raise CommandError(CommandError.INVALID_PARAMS, f"{command}: a proposal id is needed")
    value = value.strip().lower()
    if value != "all" and not _ID.match(value):
        raise CommandError(
            CommandError.INVALID_PARAMS,
            f"{command}: {value!r} is not a proposal id (p- and 10 hex digits; see hive-pending)",
        )
    return value


def _refused(command: str, exc: Refused) -> CommandError:
    return CommandError(_REFUSAL_CODES.get(exc.code, CommandError.REFUSED), f"{command}: {exc}")


def parse_since(text: str, now_ms: int) -> int:
    """``24h``, ``90m``, ``7d``, ``30s`` ago, or an absolute time in epoch milliseconds."""
    value = text.strip().lower()
    match = _DURATION.match(value)
    if match:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]
    if value.isdigit() and len(value) <= 15:
        return int(value)
    raise CommandError(
        CommandError.INVALID_PARAMS,
        f"hive-ledger: since must be a duration such as 24h, 90m, 7d, or epoch milliseconds; "
        f"got {text!r}",
    )


class GovernanceCommands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _row(self, status: ProposalStatus) -> JsonDict:
        p = status.proposal
        now = self.engine.now_ms()
        return {
            "id": p.id,
            "kind": p.kind,
            "state": status.state.value,
            "held_by": status.held_by,
            "target": p.target,
            "params": dict(p.params),
            "reason": p.reason,
            "cost": p.cost.to_json(),
            "expected_value_sat": p.expected_value_sat,
            "confidence": p.confidence,
            "proposer": p.proposer,
            "age_s": (now - p.created_ms) // 1000,
            "expires_in_s": max(p.expires_ms - now, 0) // 1000,
            "decision": None if status.decision is None else status.decision.to_json(),
        }

    async def pending(self, raw: Mapping[str, Any]) -> JsonDict:
        Params("hive-pending", raw, ())
        e = self.engine
        return {
            "mode": e.mode.value,
            "paused": e.pause_info,
            "pending": [self._row(s) for s in e.pending()],
        }

    async def approve(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-approve", raw, ("id", "reason"))
        pid = _proposal_id("hive-approve", params)
        reason = params.text("reason", "", max_len=200) or ""
        if pid == "all":
            done = await self.engine.approve_all(by="operator", reason=reason)
            return {"approved": [s.id for s in done], "paused": self.engine.paused}
        try:
            status = await self.engine.approve(pid, by="operator", reason=reason)
        except Refused as exc:
            raise _refused("hive-approve", exc) from None
        return {
            "approved": [status.id],
            "paused": self.engine.paused,
            "proposal": self._row(status),
        }

    async def reject(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-reject", raw, ("id", "reason"))
        pid = _proposal_id("hive-reject", params)
        if pid == "all":
            raise CommandError(CommandError.INVALID_PARAMS, "hive-reject: one id at a time")
        reason = params.text("reason", "", max_len=200) or ""
        try:
            status = await self.engine.reject(pid, by="operator", reason=reason)
        except Refused as exc:
            raise _refused("hive-reject", exc) from None
        return {"rejected": status.id, "reason": status.decision.reason if status.decision else ""}

    async def pause(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-pause", raw, ("reason",))
        reason = params.text("reason", "", max_len=200) or ""
        await self.engine.pause(reason, by="operator")
        return {"paused": self.engine.pause_info}

    async def resume(self, raw: Mapping[str, Any]) -> JsonDict:
        Params("hive-resume", raw, ())
        was = self.engine.pause_info
        if was is None:
            raise CommandError(CommandError.REFUSED, "hive-resume: governance is not paused")
        await self.engine.resume(by="operator")
        return {"resumed": True, "was_paused": was}

    async def budget(self, raw: Mapping[str, Any]) -> JsonDict:
        Params("hive-budget", raw, ())
        e = self.engine
        try:
            balance: int | None = await e.node.onchain_balance_sat()
        except TransientError:
            balance = None
        limits = e.config.limits.to_json()
        return {
            "paused": e.pause_info,
            "mode": e.mode.value,
            "onchain_balance_sat": balance,
            "usage": await e.budget_json(),
            "limits": {
                name: {"value": value, "means": DESCRIPTIONS[name]}
                for name, value in limits.items()
            },
        }

    async def ledger(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-ledger", raw, ("kind", "since", "limit", "before"))
        kind = params.text("kind", max_len=32)
        if kind in ("", "all"):
            kind = None
        since_text = params.text("since", max_len=20)
        since = None if not since_text else parse_since(since_text, self.engine.now_ms())
        limit = params.integer("limit", 50, low=1, high=MAX_LEDGER_LIMIT)
        before_raw = params.values.get("before")
        before = None if before_raw is None else params.integer("before", 0, low=1, high=2**62)
        rows = await self.engine.store.run(
            "ledger",
            lambda c: sql.ledger_page(c, kind=kind, since_ms=since, limit=limit, before_seq=before),
        )
        return {
            "entries": [r.to_json() for r in rows],
            "next_before": rows[-1].seq if len(rows) == limit else None,
        }

    async def why(self, raw: Mapping[str, Any]) -> JsonDict:
        params = Params("hive-why", raw, ("id",))
        pid = _proposal_id("hive-why", params)
        if pid == "all":
            raise CommandError(CommandError.INVALID_PARAMS, "hive-why: one id at a time")
        status = await self.engine.lookup(pid)
        if status is None:
            raise CommandError(CommandError.NOT_FOUND, f"hive-why: no proposal {pid}")
        rows = await self.engine.store.run("why", lambda c: sql.ledger_for(c, pid))
        return {
            "proposal": status.to_json(),
            "story": [_sentence(r) for r in rows],
            "ledger": [r.to_json() for r in rows],
        }


def _sentence(row: sql.LedgerRow) -> str:
    """One line of a proposal's story, for people."""
    d = row.detail
    if row.entry == "proposed":
        return f"proposed by {row.actor}: {d.get('reason')}"
    if row.entry == "decided":
        verb = "approved" if d.get("approve") else "rejected"
        return f"{verb} by {row.actor}: {d.get('reason')}"
    if row.entry == "held":
        return f"held by limit {d.get('limit')} ({d.get('means')})"
    if row.entry == "reserved":
        return f"budget reserved: {_cost(d.get('cost', {}))}"
    if row.entry == "outcome":
        calls = ", ".join(d.get("calls", [])) or "no node calls"
        if d.get("ok"):
            return f"succeeded ({calls}); cost {_cost(d.get('cost', {}))}"
        return f"failed ({calls}): {d.get('error')}"
    if row.entry == "expired":
        return "expired undecided"
    if row.entry == "measured":
        figures = ", ".join(f"{k} {v}" for k, v in sorted(d.items()))
        return f"measured by {row.actor}: {figures}"
    if isinstance(d.get("story"), str):  # a step an executor recorded (e.g. the planner's opener)
        return f"{row.entry} ({row.actor}): {d['story']}"
    return f"{row.entry} by {row.actor}"


def _cost(cost: Mapping[str, Any]) -> str:
    parts = [
        f"{cost.get(k, 0)} sat {label}"
        for k, label in (
            ("capital_sat", "capital"),
            ("onchain_fee_sat", "on-chain fee"),
            ("routing_fee_sat", "routing fee"),
        )
        if cost.get(k)
    ]
    return ", ".join(parts) or "nothing"
