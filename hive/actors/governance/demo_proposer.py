"""The built-in demo proposer's loop: submits :func:`hive.governance.demo_proposer.next_proposal`
to one companion's engine every ``interval_s`` (simulated) seconds. Only ``hive demo
--demo-proposals S`` runs it, beside the real producers (the planner, the rebalancer, ban votes).
Node errors skip a round; refusals are logged, never fatal."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import trio

from hive.actors.governance.engine import Engine
from hive.errors import TransientError
from hive.governance.api import Refused
from hive.governance.demo_proposer import next_proposal

log = logging.getLogger(__name__)


async def run_demo_proposer(
    engine: Engine,
    candidates: Sequence[str],
    rng: random.Random,
    *,
    interval_s: float = 600.0,
    max_open: int = 3,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    while True:
        await trio.sleep(interval_s * rng.uniform(0.5, 1.5))
        try:
            channels = await engine.node.list_channels()
        except TransientError as exc:
            log.info("demo proposer: node not answering (%s); skipping a round", exc)
            continue
        if len(engine.pending()) >= max_open:
            continue  # let the operator (or the limits) catch up
        busy = {s.proposal.target for s in engine.pending() if s.proposal.target}
        draft = next_proposal(channels, candidates, busy, rng)
        if draft is None:
            continue
        try:
            await engine.submit(draft)
        except Refused as exc:
            log.info("demo proposer: %s", exc)
