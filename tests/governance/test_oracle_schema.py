"""Real decision packets (built by a running engine) and the worked examples of docs/ORACLE.md
validate against docs/oracle-packet.schema.json; the examples' answers parse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
import trio.testing

from hive.config import Governance
from hive.governance import Cost, Draft, Verdict
from hive.governance.decider import DeciderError
from hive.governance.packet import answer, parse_answer

from .helpers import fee_draft, open_draft, rig

DOCS = Path(__file__).parents[2] / "docs"
SCHEMA = json.loads((DOCS / "oracle-packet.schema.json").read_text())


def validator(part: str) -> jsonschema.Draft202012Validator:
    schema = {**SCHEMA, "$ref": f"#/$defs/{part}"}
    schema.pop("oneOf")
    return jsonschema.Draft202012Validator(schema)


class Recorder:
    name = "agent:recorder"

    def __init__(self) -> None:
        self.packets: list[dict[str, Any]] = []

    async def decide(self, packet: dict[str, Any]) -> Verdict:
        self.packets.append(json.loads(json.dumps(packet)))
        return Verdict(True, "recorded")


async def test_real_packets_validate(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    recorder = Recorder()
    async with rig(tmp_path, mode=Governance.ORACLE) as r:
        r.engine.deciders.add(recorder)
        rebalance = Draft(
            kind="rebalance",
            params={"out_peer": r.peers[1], "in_peer": r.peers[2], "amount_sat": 50_000},
            reason="peer 2 runs dry in 6 h",
            cost=Cost(routing_fee_sat=25, ppm=500),
            proposer="rebalancer",
            evidence={"depletion_hours": 6.0, "fleet_path": True},
        )
        for draft in (open_draft(r.peers[1]), fee_draft(r.peers[2]), rebalance):
            status = await r.engine.submit(draft)
            with trio.fail_after(30):
                await r.engine.wait_final(status.id)
    assert len(recorder.packets) == 3
    request = validator("request")
    for packet in recorder.packets:
        request.validate(packet)
    assert [p["proposal"]["kind"] for p in recorder.packets] == [
        "open-channel",
        "set-fee",
        "rebalance",
    ]
    validator("answer").validate(answer(recorder.packets[0]["proposal_id"], True, "fine"))


def test_schema_refuses_what_the_engine_refuses() -> None:
    ans = validator("answer")
    good = answer("p-0123456789", False, "too expensive")
    ans.validate(good)
    for bad in ({**good, "decision": "MAYBE"}, {**good, "reason": ""}, {**good, "version": 2}):
        with pytest.raises(jsonschema.ValidationError):
            ans.validate(bad)
        with pytest.raises(DeciderError):
            parse_answer(json.dumps(bad), "p-0123456789")


def _examples() -> list[dict[str, Any]]:
    text = (DOCS / "ORACLE.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_worked_examples_in_oracle_md_validate() -> None:
    examples = _examples()
    assert len(examples) >= 4
    full = jsonschema.Draft202012Validator(SCHEMA)
    for example in examples:
        full.validate(example)
    for example in examples:
        if example["type"] == "hive.decision-answer":
            assert isinstance(parse_answer(json.dumps(example), example["proposal_id"]), Verdict)
