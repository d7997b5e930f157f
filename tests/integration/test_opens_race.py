"""Two members of a three-node hive race to open to one target; only one opens (real Core
Lightning nodes through pyln-testing's ``node_factory``).

Runs where ``lightningd`` and ``bitcoind`` are on PATH and pyln-testing is installed; skipped
at collection otherwise (without importing anything that is missing).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

_missing = [name for name in ("lightningd", "bitcoind") if shutil.which(name) is None]
if _missing:
    pytest.skip(f"{' and '.join(_missing)} not on PATH", allow_module_level=True)
pytest.importorskip("pyln.testing", reason="pyln-testing is not installed")

from pyln.testing.fixtures import *  # noqa: E402, F403  (node_factory and its fixtures)

pytestmark = pytest.mark.integration

AMOUNT_SAT = 1_000_000


def _channels_to(node: Any, peer: str) -> list[dict[str, Any]]:
    return [
        c
        for c in node.rpc.listpeerchannels(peer)["channels"]
        if c["state"] not in ("CLOSED", "ONCHAIN", "FUNDING_SPEND_SEEN")
    ]


def test_two_members_race_to_open_to_one_target_and_only_one_opens(
    node_factory: Any, bitcoind: Any, hive_plugin: Path
) -> None:
    """l1, l2, l3 form a hive (advisor mode); l1 and l2 each propose an open to l4 and both
    are approved within the same second. The intent lock lets one of them open; the other's
    proposal fails with the lock's reason, and l4 ends with exactly one channel from the fleet."""
    from pyln.testing.utils import wait_for

    opts = {"plugin": str(hive_plugin), "hive-governance": "advisor"}
    l1, l2, l3 = node_factory.get_nodes(3, opts=opts)
    l4 = node_factory.get_node()
    l1.rpc.call("hive-genesis", {"name": "race"})
    for joiner in (l2, l3):
        ticket = l1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
        joiner.rpc.call(
            "hive-join", {"ticket": ticket, "member": f"{l1.info['id']}@localhost:{l1.port}"}
        )
    members = {l1.info["id"], l2.info["id"], l3.info["id"]}
    for node in (l1, l2, l3):
        wait_for(
            lambda n=node: {m["node_id"] for m in n.rpc.call("hive-members")["members"]} == members
        )
    for node in (l1, l2):
        node.fundwallet(10 * AMOUNT_SAT)
    target = l4.info["id"]
    proposals = []
    for node in (l1, l2):
        status = node.rpc.call(
            "hive-open",
            {"peer": target, "amount_sat": AMOUNT_SAT, "host": "localhost", "port": l4.port},
        )
        proposals.append((node, status["id"]))
    for node, pid in proposals:
        node.rpc.call("hive-approve", {"id": pid, "reason": "race test"})

    def final(node: Any, pid: str) -> str | None:
        state = node.rpc.call("hive-why", {"id": pid})["proposal"]["state"]
        return state if state in ("succeeded", "failed", "rejected", "expired") else None

    wait_for(lambda: all(final(n, p) for n, p in proposals), timeout=300)
    states = sorted(str(final(n, p)) for n, p in proposals)
    assert states == ["failed", "succeeded"]
    loser = next((n, p) for n, p in proposals if final(n, p) == "failed")
    story = " | ".join(loser[0].rpc.call("hive-why", {"id": loser[1]})["story"])
    assert "intent lock not taken" in story or "re-check failed" in story, story
    bitcoind.generate_block(6)
    opened = [n for n in (l1, l2) if _channels_to(n, target)]
    assert len(opened) == 1
    plan = l1.rpc.call("hive-plan")
    assert "locks" in plan
