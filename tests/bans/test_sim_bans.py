"""Signed bans on the simulated network, through full runtimes (issue 12).

Three members m0, m1, m2 and an outside peer J with a channel to m0. Forwards m0 sends out
through J fail far above the norm of m0's other peers: m0's htlc-failure-rate rule proposes a
ban through the engine (autonomous mode executes it, with ledger entries), the signed Ban
floods to m1 and m2, and J's channel open to m1 is then refused by m1's openchannel gate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from brain.helpers import CONFIRM_S, Fleet, call, form, poll

from hive.actors.bans import Bans
from hive.commands import CommandError
from hive.config import BanConfig, Governance
from hive.errors import NodeError
from hive.node.port import Forwarded
from hive.node.sim import SimNetwork, SimNode
from hive.node.sim.graph import Graph
from hive.protocol.bans import BanDigest
from hive.protocol.wire.facade import Received
from hive.runtime import Runtime

CAP_SAT = 1_000_000


@attrs.define
class Scene:
    fleet: Fleet
    m: list[Runtime]
    jammer: SimNode
    good: SimNode

    def bans(self, i: int) -> Bans:
        bans = self.m[i].bans
        assert bans is not None
        return bans

    def node(self, i: int) -> SimNode:
        return self.fleet.node_of(self.m[i])


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    network = SimNetwork(Graph(), seed=12, latency=(0.05, 0.2))
    config = {
        "governance": Governance.AUTONOMOUS,
        "bans": BanConfig(failure_min_attempts=20, sync_interval_s=60.0),
    }
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery, config=config)
        m = await form(fleet, 3)
        jammer = network.add_node("J", 50_000_000)
        good = network.add_node("G", 50_000_000)
        await jammer.open_channel(fleet.node_of(m[0]).node_id, CAP_SAT)
        await good.open_channel(fleet.node_of(m[0]).node_id, CAP_SAT)
        await trio.sleep(CONFIRM_S + 60)
        yield Scene(fleet, m, jammer, good)
        nursery.cancel_scope.cancel()


async def scid_to(node: SimNode, peer: str) -> str:
    (channel,) = [c for c in await node.list_channels() if c.peer_id == peer]
    assert channel.short_channel_id
    return channel.short_channel_id


async def test_failing_peer_is_banned_through_the_engine_and_refused_by_another_member(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    to_j = await scid_to(scene.node(0), scene.jammer.node_id)
    to_g = await scid_to(scene.node(0), scene.good.node_id)
    bans0 = scene.bans(0)
    for k in range(40):  # J fails 30 of 40, G fails 1 of 40
        bans0.events.send_nowait(Forwarded(to_g, to_j, 1_001_000, 1_000_000, settled=k % 4 == 0))
        bans0.events.send_nowait(Forwarded(to_j, to_g, 1_001_000, 1_000_000, settled=k != 0))
    await poll(lambda: all(scene.bans(i).is_banned(scene.jammer.node_id) for i in range(3)),
               within_s=600)  # fmt: skip
    assert not scene.bans(1).is_banned(scene.good.node_id)

    ledger = await call(scene.m[0], "hive-ledger")
    entries = [e["entry"] for e in ledger["entries"] if e["kind"] == "ban-peer"]
    assert "proposed" in entries
    assert "outcome" in entries
    listing = await call(scene.m[1], "hive-bans", peer=scene.jammer.node_id)
    (row,) = listing["bans"]
    assert row["rule"] == "htlc-failure-rate"
    assert row["issuer"] == bans0.hive_key.hex()
    assert "banned by the fleet" in scene.node(1).open_ignored[scene.jammer.node_id]

    with pytest.raises(NodeError, match="banned by the fleet"):
        await scene.jammer.open_channel(scene.node(1).node_id, CAP_SAT)

    # A banned peer with no channel at stake is disconnected when it connects (at the connect
    # event, well before the next 60 s check); m0 keeps its connection to J because they
    # share a channel.
    await scene.jammer.connect(scene.node(2).node_id)
    await poll(lambda: scene.bans(2).disconnected_on_connect == 1, within_s=5)
    peers2 = {p.node_id: p.connected for p in await scene.node(2).list_peers()}
    assert not peers2.get(scene.jammer.node_id, False)
    assert scene.bans(0).disconnected == 0
    await scene.good.open_channel(scene.node(1).node_id, CAP_SAT)  # others still welcome

    # m1's operator overrides locally: J may open to m1 again, while m2 still refuses it.
    await call(scene.m[1], "hive-unban", peer=scene.jammer.node_id, local=True)
    await scene.jammer.open_channel(scene.node(1).node_id, CAP_SAT)
    with pytest.raises(NodeError):
        await scene.jammer.open_channel(scene.node(2).node_id, CAP_SAT)

    # The issuer lifts the ban through the engine; m2 follows.
    await call(scene.m[0], "hive-unban", peer=scene.jammer.node_id)
    await poll(lambda: not scene.bans(2).is_banned(scene.jammer.node_id), within_s=600)
    await scene.jammer.open_channel(scene.node(2).node_id, CAP_SAT)


async def test_a_member_that_missed_the_flood_is_repaired_by_digest(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    scene.node(2).set_offline(True)
    await call(scene.m[0], "hive-ban", peer=scene.jammer.node_id, reason="seen jamming")
    await poll(lambda: scene.bans(1).is_banned(scene.jammer.node_id), within_s=600)
    await trio.sleep(300)
    assert not scene.bans(2).is_banned(scene.jammer.node_id)  # the flood missed it
    scene.node(2).set_offline(False)
    await poll(lambda: scene.bans(2).is_banned(scene.jammer.node_id), within_s=1200)


async def test_a_member_cannot_be_banned(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    member = scene.node(1).node_id
    proposal = await call(scene.m[0], "hive-ban", peer=member, reason="rival")
    why = await call(scene.m[0], "hive-why", id=proposal["proposal"])
    await poll(lambda: scene.bans(0).refusals.get("member", 0) == 1, within_s=60)
    assert why["proposal"]["kind"] == "ban-peer"
    assert not any(scene.bans(i).is_banned(member) for i in range(3))


async def test_reputation_lists_every_member_new_members_are_not_leeches(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    listing = await call(scene.m[0], "hive-reputation")
    members = {row["member"]: row for row in listing["members"]}
    assert set(members) == {scene.node(i).node_id for i in range(3)}
    assert {row["standing"] for row in members.values()} == {"new"}
    one = await call(scene.m[0], "hive-reputation", member=scene.node(1).node_id)
    (row,) = one["members"]
    assert row["inputs"]["claimed_consumed_msat"] is not None  # from m1's signed state record
    with pytest.raises(CommandError):
        await call(scene.m[0], "hive-reputation", member=scene.jammer.node_id)


async def test_a_member_sending_digest_after_digest_gets_the_book_a_bounded_number_of_times(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    """Amplification: each differing digest would cost us a whole BanSync. A member that
    sends a hundred gets sync_answer_burst answers, then one per sync_answer_gap_s."""
    await call(scene.m[0], "hive-ban", peer=scene.jammer.node_id, reason="seen jamming")
    bans0 = scene.bans(0)
    await poll(lambda: bans0.is_banned(scene.jammer.node_id), within_s=60)
    sent: list[tuple[str, str]] = []
    real_send = bans0._send

    async def counting(peer: str, message: object) -> None:
        sent.append((peer, type(message).__name__))
        await real_send(peer, message)

    bans0._send = counting  # type: ignore[method-assign]
    asker = scene.node(1).node_id

    def digest(k: int) -> Received:
        message = BanDigest(digest=bytes([k]) * 32, count=k, answer=False)
        return Received(asker, b"\x01" * 32, k, 0, message, b"")

    for k in range(100):
        await bans0.inbox.send(digest(k))
    await trio.sleep(1)
    syncs = [p for p, kind in sent if kind == "BanSync"]
    assert syncs == [asker] * BanConfig().sync_answer_burst
    assert bans0.refusals["sync-rate"] == 100 - len(syncs)
    await trio.sleep(BanConfig().sync_answer_gap_s)
    await bans0.inbox.send(digest(200))
    await trio.sleep(1)
    assert [p for p, kind in sent if kind == "BanSync"] == [asker] * (len(syncs) + 1)
