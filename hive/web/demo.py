"""What ``hive demo`` adds for the live view: the first companion serves the page, the demo
prints its address and token, and a demo-only proposer gives the operator something to decide.

The proposer is not the planner (that is its own concern): every ``interval_s`` it proposes
that the first companion open one channel to the largest well-connected node no member has a
channel to yet, with that as its reason, and lets the engine route it (advisor mode: it waits
for Approve in the page or ``hive-approve``). At most one of its proposals is open at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TextIO

import trio

from hive.config import WebConfig
from hive.governance.api import EngineApi, Refused
from hive.governance.proposal import Cost, Draft
from hive.runtime import Runtime
from hive.web.access import Bind

log = logging.getLogger(__name__)

PROPOSER = "demo"


def demo_web_config(bind: Bind | None, speed: float) -> WebConfig:
    """The first companion's web settings: the state refreshed twice a real second."""
    return WebConfig(bind=bind, refresh_s=max(0.5 * speed, 0.1))


async def announce(runtime: Runtime, out: TextIO, *, timeout_s: float) -> None:
    """Print the live view's address (with the token) once the server listens."""
    web = runtime.web
    if web is None:
        return
    with trio.move_on_after(timeout_s):
        await web.listening.wait()
    url = web.view_url()
    if url is None:
        print(f"live view: not listening ({web.error or 'still starting'})", file=out, flush=True)
        return
    print(f"live view: {url}", file=out)
    print(f"web token: {web.token}  (hive-web-token shows it again)", file=out, flush=True)


async def propose_opens(
    runtime: Runtime,
    candidates: Sequence[str],
    aliases: dict[str, str],
    *,
    amount_sat: int,
    interval_s: float,
) -> None:
    """Keep one open-channel proposal waiting for the operator (runs until cancelled)."""
    engine: EngineApi | None = runtime.engine
    if engine is None:
        return
    proposed: set[str] = set()  # each target once: a new channel is in no view until confirmed
    while True:
        mine = [s for s in engine.pending() if s.proposal.proposer == PROPOSER]
        target = None if mine else _unreached(runtime, candidates, proposed)
        if target is not None:
            proposed.add(target)
            name = aliases.get(target) or target[:12]
            draft = Draft(
                kind="open-channel",
                params={"peer": target, "amount_sat": amount_sat},
                reason=f"no member has a channel to {name}, one of the best-connected nodes",
                cost=Cost(capital_sat=amount_sat, onchain_fee_sat=2_000),
                proposer=PROPOSER,
                target=target,
                evidence={"alias": name},
            )
            try:
                await engine.submit(draft)
            except Refused as exc:
                log.info("demo proposer: %s", exc.message)
        await trio.sleep(interval_s)


def _unreached(runtime: Runtime, candidates: Sequence[str], proposed: set[str]) -> str | None:
    fleet = runtime.fleet
    if fleet is None:
        return None
    reached = {t.target for t in fleet.view().targets}
    for candidate in candidates:
        if candidate not in reached and candidate not in proposed:
            return candidate
    return None


__all__ = ["announce", "demo_web_config", "propose_opens"]
