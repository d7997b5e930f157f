#!/usr/bin/env python3
"""A small oracle agent for Hive: it connects to a companion's ``/oracle`` websocket, receives
decision packets (docs/ORACLE.md), and answers APPROVE or DENY with a reason.

Its policy is deliberately readable: approve a channel open when it moves at most
``--max-open-sat`` into the channel and the proposal's evidence says the target has at least
``--min-target-channels`` public channels; deny everything else (rebalances, fee changes, bans,
opens without that evidence). Replace :func:`decide` with your own model: an ML scorer, a call
to an LLM with the packet as its context, a rule table. Keep the answer within the packet's
``deadline_ms``: a late or missing answer is a DENY, and so is a malformed one (the companion
sends back ``hive.answer-refused`` with the reason).

Run it beside a node in ``hive-governance=oracle`` mode::

    python examples/oracle_agent.py --url ws://127.0.0.1:8484/oracle \\
        --token "$(lightning-cli hive-web-token | jq -r .token)" --name rules

It uses trio and trio-websocket, which Hive itself depends on. Several agents may connect: each
is asked, any DENY denies, otherwise the first APPROVE approves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

log = logging.getLogger("oracle-agent")

Policy = Callable[[Mapping[str, Any]], tuple[bool, str]]


def decide(
    packet: Mapping[str, Any], *, max_open_sat: int, min_target_channels: int
) -> tuple[bool, str]:
    """APPROVE (True) or DENY (False), and why, for one decision packet."""
    proposal = packet.get("proposal", {})
    kind = proposal.get("kind")
    if kind != "open-channel":
        return False, f"this agent only approves channel opens, not {kind}"
    amount = int(proposal.get("params", {}).get("amount_sat", 0))
    if amount > max_open_sat:
        return False, f"{amount:,} sat is more than the {max_open_sat:,} sat this agent allows"
    channels = proposal.get("evidence", {}).get("target_channels")
    if not isinstance(channels, int):
        return False, "the proposal does not say how many channels the target has"
    if channels < min_target_channels:
        return False, f"the target has {channels} channels, fewer than {min_target_channels}"
    return True, f"{amount:,} sat to a target with {channels} channels fits the policy"


def answer(packet: Mapping[str, Any], approve: bool, reason: str) -> str:
    return json.dumps(
        {
            "type": "hive.decision-answer",
            "version": 1,
            "proposal_id": packet["proposal_id"],
            "decision": "APPROVE" if approve else "DENY",
            "reason": reason[:500],
        }
    )


async def run_agent(url: str, token: str, name: str, policy: Policy) -> None:
    """Serve decisions until the companion closes the connection (or Ctrl-C)."""
    headers = [("Authorization", f"Bearer {token}")]
    async with open_websocket_url(f"{url}?name={name}", extra_headers=headers) as ws:
        hello = json.loads(await ws.get_message())
        log.info("connected as %s; the companion is in %s mode", hello["name"], hello["mode"])
        if hello["mode"] != "oracle":
            log.warning("this companion is not in oracle mode: it will not ask for decisions")
        while True:
            message = json.loads(await ws.get_message())
            if message.get("type") == "hive.answer-refused":
                log.error("answer refused: %s", message["reason"])
                continue
            if message.get("type") != "hive.decision-request":
                continue
            approve, reason = policy(message)
            log.info("%s %s: %s", message["proposal_id"], "APPROVE" if approve else "DENY", reason)
            await ws.send_message(answer(message, approve, reason))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8484/oracle", help="the /oracle endpoint")
    parser.add_argument("--token", required=True, help="the token hive-web-token shows")
    parser.add_argument(
        "--name", default="rules", help="this agent's name (recorded as agent:NAME)"
    )
    parser.add_argument("--max-open-sat", type=int, default=2_000_000)
    parser.add_argument("--min-target-channels", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def policy(packet: Mapping[str, Any]) -> tuple[bool, str]:
        return decide(
            packet, max_open_sat=args.max_open_sat, min_target_channels=args.min_target_channels
        )

    try:
        trio.run(run_agent, args.url, args.token, args.name, policy)
    except HandshakeError as exc:
        print(f"oracle-agent: the companion refused the connection: {exc}", file=sys.stderr)
        return 1
    except ConnectionClosed as exc:
        print(f"oracle-agent: connection closed: {exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
