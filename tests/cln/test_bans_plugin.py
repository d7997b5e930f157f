"""The openchannel hook of the real plugin process, driven by the lightningd double: a peer
banned through the engine (autonomous mode) is refused at once, any other peer continues.
The hook payload is the one captured from CLN v25.12.1 (hook.openchannel.json)."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from lightningd_double import LightningdDouble, Network

from cln.conftest import HIVE_PLUGIN

START = 60
CAPTURE = Path("/work/shared/cln-v25.12.1/hook.openchannel.json")
PEER = "028dc223139bf31c48b6f4d6caba67d17d58ac94932ff97812fbd09d523198c20f"


def payload(peer: str) -> dict[str, object]:
    if CAPTURE.exists():
        params = json.loads(CAPTURE.read_text())["received"]["params"]
    else:  # the capture's shape, for machines without /work/shared
        params = {"openchannel": {"id": PEER, "funding_msat": 200_000_000}}
    body = dict(params["openchannel"])
    body["id"] = peer
    return {"openchannel": body}


async def test_openchannel_from_a_banned_peer_is_rejected(network: Network) -> None:
    ld = LightningdDouble(network, "alice")
    other = "03" + "11" * 32
    with trio.fail_after(START):
        async with ld.running(HIVE_PLUGIN, {"hive-governance": "autonomous"}):
            assert {"openchannel", "openchannel2"} <= {h["name"] for h in ld.manifest["hooks"]}
            before = await ld.hook("openchannel", payload(PEER))
            await ld.call_plugin("hive-genesis", {"name": "bans"})
            proposal = await ld.call_plugin("hive-ban", {"peer": PEER, "reason": "jamming"})
            with trio.fail_after(20):
                while True:
                    listing = await ld.call_plugin("hive-bans", {"peer": PEER})
                    if listing["banned"]:
                        break
                    await trio.sleep(0.1)
            after = await ld.hook("openchannel", payload(PEER))
            unrelated = await ld.hook("openchannel", payload(other))
            v2 = await ld.hook("openchannel2", {"openchannel2": {"id": PEER}})
    assert before == {"result": "continue"}
    assert proposal["kind"] == "ban-peer"
    assert after == {"result": "reject", "error_message": f"hive: {PEER} is banned by the fleet"}
    assert unrelated == {"result": "continue"}
    assert v2["result"] == "reject"
