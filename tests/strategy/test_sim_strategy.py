"""Strategy gossip on the simulated network, through full runtimes (issue 12, done-when).

Members m0 (the founder, an admin), m1 and m2; outside nodes X and P. X has a channel to m0,
m0 one to m1, m1 one to P. m1 forwards for m0 out to P and earns: m1 discovers P, commits,
reveals after the delay, and m0 (against its own forwards and the graph) and m2 (the graph)
find the report consistent. m2 lies: it commits to a report claiming a channel that does not
exist and forwards from m1 that m1 never sent. m1 catches it at the reveal (the forwards), m0
once the graph's grace is over (the channel); each notes it and proposes revoke-member through
the engine: m1 is no admin and its execution is refused with the reason; m0, an admin, revokes
m2 (ledger: proposed, outcome; hive-why has the evidence).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from brain.helpers import CONFIRM_S, Fleet, call, form, poll

from hive.actors.strategy import Strategy
from hive.config import Governance, StrategyConfig
from hive.node.port import Forwarded
from hive.node.sim import SimNetwork, SimNode
from hive.node.sim.graph import Graph
from hive.protocol.membership.roster import MemberStatus
from hive.protocol.strategy import InboundShare, ReportBody, ReportedChannel, StrategyDigest
from hive.protocol.wire.facade import Received
from hive.runtime import Runtime

CAP_SAT = 1_000_000
HOUR_S = 3600.0
DELAY_S = 3600.0
CONFIG = StrategyConfig(
    delay_s=DELAY_S,
    leech_delay_s=2 * HOUR_S,
    check_s=600.0,
    window_s=6 * HOUR_S,
    min_yield_ppm=1,
    min_forwards=3,
    verify_grace_s=1800.0,
    sync_interval_s=300.0,
)


@attrs.define
class Scene:
    fleet: Fleet
    m: list[Runtime]
    x: SimNode
    p: SimNode

    def strategy(self, i: int) -> Strategy:
        strategy = self.m[i].strategy
        assert strategy is not None
        return strategy

    def node(self, i: int) -> SimNode:
        return self.fleet.node_of(self.m[i])


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    network = SimNetwork(Graph(), seed=12, latency=(0.05, 0.2))
    config = {"governance": Governance.AUTONOMOUS, "strategy": CONFIG}
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        fleet = Fleet(network, tmp_path, nursery, config=config)
        m = await form(fleet, 3)
        x = network.add_node("X", 50_000_000)
        p = network.add_node("P", 50_000_000)
        await x.open_channel(fleet.node_of(m[0]).node_id, CAP_SAT)
        await fleet.node_of(m[0]).open_channel(fleet.node_of(m[1]).node_id, CAP_SAT)
        await fleet.node_of(m[1]).open_channel(p.node_id, CAP_SAT)
        await trio.sleep(CONFIRM_S + 60)
        yield Scene(fleet, m, x, p)
        nursery.cancel_scope.cancel()


async def scid(node: SimNode, peer: str) -> str:
    (channel,) = [c for c in await node.list_channels() if c.peer_id == peer]
    assert channel.short_channel_id
    return channel.short_channel_id


async def forward_through_m1(scene: Scene, count: int) -> int:
    """m0 forwards X's payments to m1, which forwards them to P; both see their half."""
    m0_in = await scid(scene.node(0), scene.x.node_id)
    m0_out = await scid(scene.node(0), scene.node(1).node_id)
    m1_in = await scid(scene.node(1), scene.node(0).node_id)
    m1_out = await scid(scene.node(1), scene.p.node_id)
    for _ in range(count):
        scene.strategy(0).events.send_nowait(
            Forwarded(m0_in, m0_out, 10_001_500, 10_001_000, settled=True)
        )
        scene.strategy(1).events.send_nowait(
            Forwarded(m1_in, m1_out, 10_001_000, 10_000_000, settled=True)
        )
    return count * 10_001_000


def received(scene: Scene, i: int) -> list[dict[str, object]]:
    from hive.commands.strategy import listing

    return listing(scene.strategy(i))["received"]


async def test_an_honest_report_is_verified_and_a_lie_is_caught_and_handled(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    await trio.sleep(HOUR_S)  # into the second hour: the first was observed throughout
    sent = await forward_through_m1(scene, 5)

    # m1 discovers P and commits; the report stays secret until the delay is over.
    await poll(lambda: any(r.state == "pending" for r in scene.strategy(1).own.values()),
               within_s=1200)  # fmt: skip
    (row,) = scene.strategy(1).own.values()
    assert row.peer == scene.p.node_id
    assert row.body.inbound == (InboundShare(bytes.fromhex(scene.node(0).node_id), sent, 5),)
    await poll(lambda: len(scene.strategy(2).book.pending()) == 1, within_s=120)  # type: ignore[union-attr]
    assert received(scene, 2) == []
    mine = await call(scene.m[1], "hive-strategies")
    assert mine["ours"][0]["state"] == "pending"

    # m2 lies: a channel that does not exist, forwards m0 and m1 never sent.
    liar = scene.strategy(2)
    assert liar.book is not None
    body = ReportBody(
        hive_id=liar.book.hive_id,
        issuer=liar.hive_key,
        peer=bytes.fromhex(scene.x.node_id),
        channels=(ReportedChannel("999999x9x9", 5_000_000, 0, 10),),
        forwarded_msat=500_000_000,
        forwards=50,
        earned_msat=5_000_000,
        window_start_ms=row.body.window_start_ms,
        window_end_ms=scene.strategy(2).now_ms(),
        inbound=(InboundShare(bytes.fromhex(scene.node(1).node_id), 200_000_000, 20),),
    )
    await liar.commit(body)

    async def reveal_anyway(now: int) -> None:  # a liar's companion skips the honest checks
        for pending in list(liar.own.values()):
            if pending.state == "pending" and pending.reveal_ms <= now:
                await liar._reveal(pending, now)

    liar._reveal_due = reveal_anyway  # type: ignore[method-assign]

    # After the delay both reports are revealed; m0 and m2 verify m1's.
    honest = lambda i: [r for r in received(scene, i) if r["peer"] == scene.p.node_id]  # noqa: E731
    await poll(lambda: bool(honest(0)) and honest(0)[0]["verdict"] == "consistent",
               within_s=DELAY_S + 1800)  # fmt: skip
    await poll(lambda: bool(honest(2)) and honest(2)[0]["verdict"] == "consistent", within_s=600)
    checks = {c["check"]: c["result"] for c in honest(0)[0]["checks"]}
    assert checks == {f"graph:{row.body.channels[0].short_channel_id}": "ok",
                      "observed:from-us": "ok"}  # fmt: skip
    assert honest(0)[0]["yield_ppm"] == 5  # 5 000 msat earned on 1 000 000 sat

    # The lie. m1 sees at once that the share it is said to have sent exceeds what it sent.
    # revoke-member is decided by the operator in every mode (autonomous here): it waits,
    # held by operator_decides; approved, it fails on m1 with the reason (m1 is no admin).
    m2_node = bytes.fromhex(scene.node(2).node_id)
    revokes1: set[str] = set()

    async def m1_proposed() -> set[str]:
        ledger1 = await call(scene.m[1], "hive-ledger")
        return {e["proposal_id"] for e in ledger1["entries"] if e["kind"] == "revoke-member"}

    with trio.fail_after(600):
        while not revokes1:
            await trio.sleep(1)
            revokes1 = await m1_proposed()
    (id1,) = revokes1
    await waits_for_its_operator(scene, 1, id1)
    await call(scene.m[1], "hive-approve", id=id1)
    await poll(lambda: scene.m[1].engine.get(id1).state.final, within_s=60)  # type: ignore[union-attr]
    why1 = await call(scene.m[1], "hive-why", id=id1)
    assert why1["proposal"]["state"] == "failed"
    assert "not an admin" in str(why1)
    assert [c["result"] for c in why1["proposal"]["evidence"]["lies"]] == ["exceeds"]
    assert any(n.reason == "strategy-false" and n.peer == m2_node
               for n in scene.strategy(1).reputation())  # fmt: skip

    # m0, an admin, finds the channel absent once the graph grace is over; its operator
    # approves and m2 is revoked.
    roster0 = scene.m[0].membership.roster  # type: ignore[union-attr]

    async def m0_proposed() -> set[str]:
        ledger0 = await call(scene.m[0], "hive-ledger")
        return {e["proposal_id"] for e in ledger0["entries"] if e["kind"] == "revoke-member"}

    revokes0: set[str] = set()
    with trio.fail_after(CONFIG.verify_grace_s + 600):
        while not revokes0:
            await trio.sleep(1)
            revokes0 = await m0_proposed()
    (id0,) = revokes0
    await waits_for_its_operator(scene, 0, id0)
    assert roster0.status(m2_node) is not MemberStatus.REVOKED
    await call(scene.m[0], "hive-approve", id=id0)
    await poll(lambda: roster0.status(m2_node) is MemberStatus.REVOKED,
               within_s=CONFIG.verify_grace_s + 600)  # fmt: skip
    ledger = await call(scene.m[0], "hive-ledger")
    entries = [e for e in ledger["entries"] if e["kind"] == "revoke-member"]
    assert {"proposed", "outcome"} <= {e["entry"] for e in entries}
    proposal = next(e["proposal_id"] for e in entries if e["entry"] == "proposed")
    why = await call(scene.m[0], "hive-why", id=proposal)
    lies = why["proposal"]["evidence"]["lies"]
    assert [c["result"] for c in lies] == ["absent"]
    assert why["proposal"]["state"] == "succeeded"
    assert any(n.reason == "strategy-false" and n.peer == m2_node
               for n in scene.strategy(0).reputation())  # fmt: skip


async def waits_for_its_operator(scene: Scene, i: int, proposal_id: str) -> None:
    """The proposal stays pending, held by operator_decides, however long autonomous mode
    has (an hour here), and executes nothing meanwhile."""
    await trio.sleep(HOUR_S)
    status = scene.m[i].engine.get(proposal_id)  # type: ignore[union-attr]
    assert status is not None
    assert status.state.value == "pending"
    assert status.held_by == "operator_decides"


async def test_a_leech_gets_reveals_later_and_repair_brings_them(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    """With m2 in leech standing (as m0 and m1 both score it), m1's reveal reaches m0 at once
    and m2 only ``leech_delay_s`` later, through digest repair."""
    m2 = scene.node(2).node_id

    for i in (0, 1):
        strategy = scene.strategy(i)

        async def leech(now: int, s: Strategy = strategy) -> None:
            s._standing = {m2: "leech"}

        strategy._refresh_standing = leech  # type: ignore[method-assign]
    await trio.sleep(HOUR_S)
    await forward_through_m1(scene, 5)
    await poll(lambda: len(received(scene, 0)) == 1, within_s=DELAY_S + 1800)
    revealed_at = trio.current_time()
    assert received(scene, 2) == []
    await trio.sleep(CONFIG.leech_delay_s - 600)  # type: ignore[operator]
    assert received(scene, 2) == []
    waited = await poll(lambda: len(received(scene, 2)) == 1, within_s=1800)
    assert trio.current_time() - revealed_at >= CONFIG.leech_delay_s  # type: ignore[operator]
    assert waited > 0


async def test_a_member_sending_digest_after_digest_gets_the_book_a_bounded_number_of_times(
    scene: Scene, autojump_clock: trio.testing.MockClock
) -> None:
    """Amplification: each differing digest would cost us a whole StrategySync. A member
    that sends a hundred gets sync_answer_burst answers, then one per sync_answer_gap_s."""
    await trio.sleep(HOUR_S)
    await forward_through_m1(scene, 5)
    strategy1 = scene.strategy(1)
    await poll(lambda: bool(strategy1.own), within_s=CONFIG.check_s + 600)
    sent: list[tuple[str, str]] = []
    real_send = strategy1._send

    async def counting(peer: str, message: object) -> None:
        sent.append((peer, type(message).__name__))
        await real_send(peer, message)

    strategy1._send = counting  # type: ignore[method-assign]
    asker = scene.node(0).node_id

    def digest(k: int) -> Received:
        message = StrategyDigest(digest=bytes([k]) * 32, count=k, answer=False)
        return Received(asker, b"\x01" * 32, k, 0, message, b"")

    for k in range(100):
        await strategy1.inbox.send(digest(k))
    await trio.sleep(1)
    syncs = [p for p, kind in sent if kind == "StrategySync"]
    assert syncs == [asker] * CONFIG.sync_answer_burst
    assert strategy1.refusals["sync-rate"] == 100 - len(syncs)
    await trio.sleep(CONFIG.sync_answer_gap_s)
    await strategy1.inbox.send(digest(200))
    await trio.sleep(1)
    assert [p for p, kind in sent if kind == "StrategySync"] == [asker] * (len(syncs) + 1)
