"""`hive-strategies [peer]`: our commitments and their reveal times, and the reports other
members revealed with the verdict this node reached on each (docs/REPUTATION.md, "Strategy
gossip")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from hive.actors.strategy import Strategy
from hive.commands import CommandError, JsonDict
from hive.commands.membership import Params
from hive.config import StrategyConfig
from hive.governance.options import OptionSpec, parse_duration_s
from hive.protocol.strategy import report_digest


async def strategies_command(strategy: Strategy, params: Mapping[str, Any]) -> JsonDict:
    p = Params("hive-strategies", params, ("peer",))
    peer = p.node_id("peer", required=False)
    if not strategy.membership.is_member:
        raise CommandError(CommandError.NOT_FOUND, "hive-strategies: this node is in no hive")
    return listing(strategy, peer)


def listing(strategy: Strategy, peer: str | None = None) -> JsonDict:
    book = strategy.book
    roster = strategy.membership.roster
    ours = [
        {
            "peer": r.peer,
            "commitment": r.commitment.hex(),
            "state": r.state,
            "note": r.note,
            "committed_ms": r.created_ms,
            "reveal_ms": r.reveal_ms,
            "yield_ppm": r.body.yield_ppm,
        }
        for r in sorted(strategy.own.values(), key=lambda r: r.created_ms)
        if peer is None or r.peer == peer
    ]
    received = []
    for report in [] if book is None else book.reports():
        body = report.body
        if body.issuer == strategy.hive_key or (peer is not None and body.peer.hex() != peer):
            continue
        held = strategy.verdicts.get(report_digest(report))
        record = None if roster is None else roster.by_hive_key(body.issuer)
        received.append(
            {
                "issuer": None if record is None else record.body.cert.node_id.hex(),
                "peer": body.peer.hex(),
                "channels": [attrs.asdict(c) for c in body.channels],
                "forwarded_msat": body.forwarded_msat,
                "forwards": body.forwards,
                "earned_msat": body.earned_msat,
                "yield_ppm": body.yield_ppm,
                "window_ms": [body.window_start_ms, body.window_end_ms],
                "revealed_ms": report.revealed_ms,
                "verdict": None if held is None else held.verdict,
                "checks": [] if held is None else held.checks,
                "digest": report_digest(report).hex(),
            }
        )
    awaiting = [
        {
            "issuer": c.body.issuer.hex(),
            "committed_ms": c.body.issued_ms,
            "reveal_not_before_ms": c.body.reveal_not_before_ms,
        }
        for c in ([] if book is None else book.pending())
        if c.body.issuer != strategy.hive_key
    ]
    return {
        "ours": ours,
        "received": received,
        "awaiting_reveal": awaiting,
        "refusals": dict(strategy.refusals),
        "delay_s": strategy.config.delay_s,
        "leech_delay_s": strategy.config.leech_delay_s,
    }


# --- plugin options (validated without I/O in lightningd's init) -------------------------------

DELAY_OPTION = "hive-strategy-delay"
LEECH_OPTION = "hive-strategy-leech-delay"
CHECK_OPTION = "hive-strategy-check"
MIN_DELAY_S = 10
MAX_DELAY_S = 30 * 86_400
_DEFAULT = StrategyConfig()

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        DELAY_OPTION,
        "24h",
        "Exclusivity: our strategy reports are revealed this long after their commitment "
        "(10 s to 30 d; seconds, or 90m, 24h, 7d)",
    ),
    OptionSpec(
        LEECH_OPTION,
        "24h",
        "Members in leech standing receive our reveals this much later (0 to 30 d), or never",
    ),
    OptionSpec(
        CHECK_OPTION,
        "1h",
        "How often our forwards are searched for high-yield peers to report (10 s to 1 d)",
    ),
)


def strategy_from_options(options: Mapping[str, Any]) -> StrategyConfig:
    """StrategyConfig from the plugin options; raises DecisionOptionError naming the option."""
    delay = parse_duration_s(
        DELAY_OPTION, options.get(DELAY_OPTION) or "24h", low=MIN_DELAY_S, high=MAX_DELAY_S
    )
    check = parse_duration_s(CHECK_OPTION, options.get(CHECK_OPTION) or "1h", low=10, high=86_400)
    raw = options.get(LEECH_OPTION) or "24h"
    leech: float | None = None
    if str(raw).strip().lower() != "never":
        leech = float(parse_duration_s(LEECH_OPTION, raw, low=0, high=MAX_DELAY_S))
    return attrs.evolve(_DEFAULT, delay_s=float(delay), leech_delay_s=leech, check_s=float(check))
