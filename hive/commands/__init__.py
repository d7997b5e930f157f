"""Operator commands (`hive-*`), independent of how they arrive (CLN JSON-RPC, the demo's CLI).

A command handler takes keyword parameters as decoded JSON and returns a JSON-able dict. Failures
the operator should read are :class:`CommandError` with a stable numeric code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

JsonDict = dict[str, Any]
Handler = Callable[[Mapping[str, Any]], Awaitable[JsonDict]]


class CommandError(Exception):
    """A command failed in a way the operator should read; ``code`` is stable per cause."""

    # Codes follow JSON-RPC's "server error" range; lightningd passes them through unchanged.
    INVALID_PARAMS = -32602
    NOT_READY = 1401
    REFUSED = 1402
    NODE_ERROR = 1403
    NOT_FOUND = 1404

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class CommandSpec:
    """An operator command as lightningd registers it, before any handler exists."""

    name: str
    usage: str
    description: str

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names from ``usage`` (``"peer [amount]"`` -> ``("peer", "amount")``),
        used to name positional parameters."""
        return tuple(token.strip("[]") for token in self.usage.split() if token.strip("[]"))


@attrs.frozen
class Command:
    """One operator command: its spec and the handler that serves it."""

    spec: CommandSpec
    handler: Handler

    @property
    def name(self) -> str:
        return self.spec.name


# Every command the companion serves. lightningd reads the names from the plugin's manifest
# before the runtime exists, so this list is static; the runtime binds a handler to each.
CATALOGUE: tuple[CommandSpec, ...] = (
    CommandSpec(
        "hive-status",
        "",
        "This companion's identity, hive, actors, message counters, peers and handshakes.",
    ),
    CommandSpec(
        "hive-state",
        "[member]",
        "The fleet view from gossiped state (coverage, capacity and share per target, "
        "liquidity per member); with MEMBER, that member's record and its age.",
    ),
    CommandSpec(
        "hive-genesis",
        "[name]",
        "Create a new hive with this node as its founder and first admin.",
    ),
    CommandSpec(
        "hive-invite",
        "[valid_hours] [req_splice] [min_version] [max_uses] [for_node]",
        "Issue a signed invitation ticket (admins only); defaults: 24 hours, one use.",
    ),
    CommandSpec(
        "hive-join",
        "ticket [member]",
        "Join a hive with a ticket, through MEMBER_ID[@HOST:PORT] (default: the ticket's issuer).",
    ),
    CommandSpec(
        "hive-members",
        "",
        "The hive's members: role, since when, status and last seen.",
    ),
    CommandSpec(
        "hive-leave",
        "[delete_data]",
        "Leave the hive (channels and funds stay untouched); keeps local hive data unless asked.",
    ),
    CommandSpec(
        "hive-revoke",
        "node [reason]",
        "Revoke a member (admins only); every member then refuses its messages.",
    ),
    CommandSpec(
        "hive-rebalance",
        "[since_hours] [run] [out_peer] [in_peer] [amount_sat]",
        "Forecasts, recent rebalance decisions with their figures, member fee policy, and "
        "liquidity provided/consumed per member over SINCE_HOURS (default 168); RUN=true "
        "plans now; OUT_PEER IN_PEER AMOUNT_SAT proposes that move.",
    ),
    CommandSpec(
        "hive-pending",
        "",
        "Proposals waiting for a decision or for budget (held by a named limit), oldest first.",
    ),
    CommandSpec(
        "hive-approve",
        "id [reason]",
        "Approve proposal ID (or all pending ones); it executes within the hard limits.",
    ),
    CommandSpec("hive-reject", "id [reason]", "Reject proposal ID, with a reason for the ledger."),
    CommandSpec(
        "hive-pause",
        "[reason]",
        "Kill switch: nothing executes until hive-resume (proposals are still recorded).",
    ),
    CommandSpec("hive-resume", "", "Lift the kill switch; approved proposals execute again."),
    CommandSpec(
        "hive-budget",
        "",
        "Hard limits, what is spent (rolling 24 h) and reserved per category, and what is left.",
    ),
    CommandSpec(
        "hive-ledger",
        "[kind] [since] [limit] [before]",
        "The decision ledger, newest first: KIND, SINCE (24h, 7d or epoch ms), LIMIT entries "
        "(default 50), BEFORE a sequence number to page back.",
    ),
    CommandSpec(
        "hive-why", "id", "The whole story of proposal ID: why, who decided, what it cost."
    ),
    CommandSpec(
        "hive-web-token",
        "",
        "The token web clients present, and the live fleet view's address (hive-web-bind).",
    ),
    CommandSpec(
        "hive-reputation",
        "[member]",
        "Each member's contribution score (provided/consumed liquidity, smoothed ratio, standing:"
        " new, balanced, contributor or leech) with its inputs and cross-check notes.",
    ),
    CommandSpec(
        "hive-bans",
        "[peer]",
        "The fleet's signed bans held here (peer, rule, reason, issuer, expiry), local overrides"
        " and refused opens; with PEER, whether it is banned on this node.",
    ),
    CommandSpec(
        "hive-ban",
        "peer [reason] [ttl_hours] [permanent]",
        "Propose banning PEER fleet-wide (a ban-peer proposal through the engine); permanent"
        " holds only once several members ban the same peer.",
    ),
    CommandSpec(
        "hive-unban",
        "peer [local] [undo]",
        "Propose lifting our (or, as an admin, any) ban on PEER; local=true overrides every ban"
        " on PEER for this node only (undo=true removes the override).",
    ),
    CommandSpec(
        "hive-strategies",
        "[peer]",
        "Strategy gossip: our commitments and when they are revealed, and the reports members"
        " revealed (peer, fees, volume, yield over the window) with this node's verdict on each.",
    ),
    CommandSpec(
        "hive-plan",
        "[member]",
        "The fleet's channel plan (for MEMBER): each open's routed-demand and reach gain, "
        "alternatives and why; targets left out and why; our opens in flight and the locks.",
    ),
    CommandSpec(
        "hive-open",
        "peer amount_sat [host] [port]",
        "Propose opening a channel to PEER; once approved it opens under the fleet's intent "
        "lock, so no other member opens to PEER at the same time.",
    ),
)


def spec(name: str) -> CommandSpec:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(f"no command {name!r} in the catalogue")
