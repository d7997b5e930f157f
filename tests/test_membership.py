"""Membership on the simulated network, under MockClock: genesis, invites, joins, leave, revoke,
restarts, and every refusal the issue lists (with nothing written to the database)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import nacl.signing
import pytest
import trio
import trio.lowlevel
import trio.testing

from hive.commands import CommandError
from hive.config import HiveConfig
from hive.errors import NodeError
from hive.node.port import CustomMessage, NodeEvent
from hive.node.sim import SimNetwork, SimNode, generate_graph
from hive.protocol.membership import (
    ROLE_MEMBER,
    Certificate,
    Challenge,
    ChallengeAnswer,
    Hello,
    Manifest,
    MemberAnnounce,
    MemberBody,
    Refuse,
    cert_text,
    challenge_text,
    decode_ticket,
    encode_ticket,
    sign_member,
    sign_ticket,
)
from hive.protocol.messages import Message, Ping
from hive.protocol.wire.facade import HiveWire
from hive.runtime import Runtime

EPOCH_MS = 1_761_350_400_000
HOUR_MS = 3_600_000


def sim_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@attrs.define
class Sim:
    network: SimNetwork
    tmp: Path
    nursery: trio.Nursery
    nodes: list[SimNode] = attrs.Factory(list)
    runtimes: list[Runtime] = attrs.Factory(list)
    scopes: list[trio.CancelScope] = attrs.Factory(list)

    async def companion(self, alias: str, *, splicing: bool = True) -> Runtime:
        bits = None if splicing else {0, 5, 7, 9, 12, 14, 17}
        node = self.network.add_node(alias, 5_000_000, feature_bits=bits)
        self.nodes.append(node)
        return await self.start(node)

    async def start(self, node: SimNode) -> Runtime:
        seed = int(node.node_id[2:10], 16)
        runtime = Runtime(
            node,
            HiveConfig(data_dir=self.tmp / node.alias, ping_interval_s=30.0),
            now_ms=sim_ms,
            rng=random.Random(seed),
            signing_key=nacl.signing.SigningKey(random.Random(seed).randbytes(32)),
            store_inline=True,
        )
        scope = trio.CancelScope()
        self.scopes.append(scope)

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await runtime.run(task_status=task_status)

        await self.nursery.start(run)
        self.runtimes.append(runtime)
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        index = self.runtimes.index(runtime)
        self.scopes[index].cancel()
        await trio.lowlevel.checkpoint()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    network = SimNetwork(generate_graph(30, seed=7), seed=7, latency=(0.05, 0.25))
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        yield Sim(network, tmp_path, nursery)
        nursery.cancel_scope.cancel()


async def call(runtime: Runtime, command: str, **params: Any) -> dict[str, Any]:
    return await runtime.command(command)(params)


async def members_of(runtime: Runtime) -> dict[str, str]:
    listing = await call(runtime, "hive-members")
    return {m["node_id"]: m["status"] for m in listing["members"]}


async def record_count(runtime: Runtime) -> int:
    assert runtime.membership is not None
    return len(await runtime.membership.store.records())


async def five(sim: Sim) -> list[Runtime]:
    runtimes = [await sim.companion(f"m{i}") for i in range(5)]
    await call(runtimes[0], "hive-genesis", name="five")
    for runtime in runtimes[1:]:
        invite = await call(runtimes[0], "hive-invite")
        await call(runtime, "hive-join", ticket=invite["ticket"])
    await trio.sleep(5)
    return runtimes


async def test_five_nodes_form_a_hive_and_agree(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await five(sim)
    everyone = {n.node_id for n in sim.nodes}
    for runtime in runtimes:
        listing = await members_of(runtime)
        assert set(listing) == everyone
        assert set(listing.values()) == {"active"}
        assert runtime.status()["hive"]["members"] == 5
    roles = [runtime.status()["hive"]["role"] for runtime in runtimes]
    assert roles == ["admin", "member", "member", "member", "member"]
    # Every member stored the same five admissions.
    assert [await record_count(r) for r in runtimes] == [5] * 5
    # And they ping each other: liveness follows the roster.
    await trio.sleep(65)
    for runtime in runtimes:
        assert runtime.liveness is not None
        alive = runtime.liveness.alive(within_ms=40_000)
        assert len(alive) == 4


async def test_single_use_ticket_admits_exactly_one_of_two_simultaneous_joins(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await sim.companion("founder"), await sim.companion("member")
    await call(founder, "hive-genesis")
    invite = await call(founder, "hive-invite")
    await call(member, "hive-join", ticket=invite["ticket"])
    shared = await call(founder, "hive-invite", max_uses=1)
    x, y = await sim.companion("x"), await sim.companion("y")
    outcomes: dict[str, str] = {}

    async def join(runtime: Runtime, via: SimNode, name: str) -> None:
        try:
            await call(runtime, "hive-join", ticket=shared["ticket"], member=via.node_id)
            outcomes[name] = "joined"
        except CommandError as exc:
            outcomes[name] = exc.message

    async with trio.open_nursery() as both:
        both.start_soon(join, x, sim.nodes[0], "x")  # asks the founder (the issuer)
        both.start_soon(join, y, sim.nodes[1], "y")  # asks the other member at the same time
    results = sorted(outcomes.values(), key=lambda v: v != "joined")
    assert results[0] == "joined"
    assert "ticket-exhausted" in results[1]
    await trio.sleep(5)
    assert len(await members_of(founder)) == 3
    assert sorted(r.status()["hive"]["members"] for r in (founder, x, y)) == [0, 3, 3]


async def test_restart_keeps_the_fleet_and_leave_and_revoke_reach_everyone(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    runtimes = await five(sim)
    admin, leaver, victim, restarter = runtimes[0], runtimes[1], runtimes[2], runtimes[3]
    # A restart: a new runtime on the same data directory knows the whole fleet from SQLite.
    await sim.stop(restarter)
    reborn = await sim.start(sim.nodes[3])
    assert set(await members_of(reborn)) == {n.node_id for n in sim.nodes}
    assert reborn.status()["hive"]["role"] == "member"

    await call(leaver, "hive-leave")
    await call(admin, "hive-revoke", node=sim.nodes[2].node_id, reason="caught probing")
    await trio.sleep(5)
    for runtime in (admin, reborn, runtimes[4]):
        listing = await members_of(runtime)
        assert listing[sim.nodes[1].node_id] == "left"
        assert listing[sim.nodes[2].node_id] == "revoked"
        assert runtime.status()["hive"]["members"] == 3
    # The leaver keeps its local data and knows it is out; its channels were never touched.
    assert leaver.status()["hive"]["member"] is False
    assert await record_count(leaver) >= 6

    # Afterwards every frame from the revoked node is refused as such.
    assert victim.transport is not None
    await victim.transport.send(sim.nodes[0].node_id, Ping(nonce=b"r" * 16))
    await trio.sleep(2)
    assert admin.status()["messages"]["rejected"].get("revoked", 0) >= 1
    # Non-admins cannot revoke.
    with pytest.raises(CommandError, match="only admins"):
        await call(runtimes[4], "hive-revoke", node=sim.nodes[0].node_id)


async def _refused_join(runtime: Runtime, ticket: str, via: SimNode | None = None) -> str:
    params: dict[str, Any] = {"ticket": ticket}
    if via is not None:
        params["member"] = via.node_id
    with pytest.raises(CommandError) as info:
        await call(runtime, "hive-join", **params)
    return info.value.message


async def test_bad_tickets_are_refused_with_reasons_and_nothing_stored(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder = await sim.companion("founder")
    await call(founder, "hive-genesis")
    other_hive = await sim.companion("elsewhere")
    await call(other_hive, "hive-genesis", name="other")
    good = decode_ticket((await call(founder, "hive-invite", valid_hours=1))["ticket"])
    candidate = await sim.companion("candidate")
    stored_before = await record_count(founder)

    # Forged: the body changed after signing.
    forged = attrs.evolve(good, body=attrs.evolve(good.body, max_uses=50))
    assert "bad-ticket" in await _refused_join(candidate, encode_ticket(forged))
    # Signed by a key that is not an admin of the hive.
    stranger = nacl.signing.SigningKey(b"\x05" * 32)
    alien = sign_ticket(stranger, attrs.evolve(good.body, issuer_key=bytes(stranger.verify_key)))
    assert "bad-ticket" in await _refused_join(candidate, encode_ticket(alien))
    # Another hive's ticket, presented to our founder.
    theirs = (await call(other_hive, "hive-invite"))["ticket"]
    assert "other-hive" in await _refused_join(candidate, theirs, via=sim.nodes[0])
    # Meant for another node.
    pinned = await call(founder, "hive-invite", for_node=sim.nodes[1].node_id)
    assert "requirement" in await _refused_join(candidate, pinned["ticket"])
    # Requires a newer node version than the simulator's.
    versioned = await call(founder, "hive-invite", min_version="99.1")
    assert "requirement" in await _refused_join(candidate, versioned["ticket"])
    # Expired: an hour passes.
    await trio.sleep(3601)
    assert "ticket-expired" in await _refused_join(candidate, encode_ticket(good))
    # A mangled string never leaves the command.
    with pytest.raises(CommandError, match=r"checksum|bad ticket"):
        await call(candidate, "hive-join", ticket="hive1" + "a" * 60)

    assert await record_count(founder) == stored_before
    refused = founder.status()["hive"]["joins_refused"]
    assert refused["bad-ticket"] == 2
    assert refused["requirement"] == 2
    assert refused["other-hive"] == 1
    assert refused["ticket-expired"] == 1
    assert candidate.status()["hive"]["member"] is False


async def test_a_lying_manifest_is_refused_after_the_probe(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder = await sim.companion("founder")
    await call(founder, "hive-genesis")
    ticket = decode_ticket((await call(founder, "hive-invite"))["ticket"])
    liar_node = sim.network.add_node("liar", 0, feature_bits={0, 5, 7})  # no splicing bit
    await liar_node.connect(sim.nodes[0].node_id)
    key = nacl.signing.SigningKey(b"\x11" * 32)
    hive_key = bytes(key.verify_key)
    node_id = bytes.fromhex(liar_node.node_id)
    cert = Certificate(
        hive_id=ticket.body.hive_id,
        node_id=node_id,
        hive_key=hive_key,
        node_sig=await liar_node.sign_message(cert_text(ticket.body.hive_id, node_id, hive_key)),
    )
    manifest = Manifest(
        node_version="v25.09",
        hive_version="0.1.0",
        features=b"",
        splicing=True,  # the lie
        channels=0,
        capacity_sat=0,
        public=False,
    )
    hello = Hello(session=b"s" * 16, ticket=ticket, cert=cert, manifest=manifest)
    wire = HiveWire(key, first_seq=1)
    # The liar answers the challenge honestly (it has both keys), so only the probe catches it.
    (hello_frame,) = wire.pack(hello, sim_ms(), msg_id=1)
    frame = hello_frame
    events, received = trio.open_memory_channel[NodeEvent](100)
    await sim.nursery.start(liar_node.run_events, events)
    await liar_node.send_custommsg(sim.nodes[0].node_id, frame)
    challenge = await _next_hive_message(received, wire)
    assert isinstance(challenge, Challenge)
    text = challenge_text(ticket.body.hive_id, bytes.fromhex(sim.nodes[0].node_id), challenge.nonce)
    answer = ChallengeAnswer(
        session=hello.session, nonce=challenge.nonce, node_sig=await liar_node.sign_message(text)
    )
    (frame,) = wire.pack(answer, sim_ms(), msg_id=2)
    await liar_node.send_custommsg(sim.nodes[0].node_id, frame)
    refusal = await _next_hive_message(received, wire)
    assert isinstance(refusal, Refuse)
    assert refusal.reason == "manifest-lie"
    assert "splicing" in refusal.detail
    assert founder.status()["hive"]["joins_refused"] == {"manifest-lie": 1}
    assert await record_count(founder) == 1
    # Replaying the Hello or the answer verbatim goes no further than the transport.
    await liar_node.send_custommsg(sim.nodes[0].node_id, hello_frame)
    await liar_node.send_custommsg(sim.nodes[0].node_id, frame)
    await trio.sleep(2)
    assert founder.status()["messages"]["dropped"]["duplicate"] == 2
    assert founder.status()["hive"]["joins_refused"] == {"manifest-lie": 1}


async def _next_hive_message(
    received: trio.MemoryReceiveChannel[NodeEvent], wire: HiveWire
) -> Message:
    with trio.fail_after(10):
        async for event in received:
            if isinstance(event, CustomMessage):
                got = wire.unpack(event.peer_id, event.message, sim_ms())
                if got is not None:
                    return got.message
    raise AssertionError("the event stream ended")


async def test_records_not_signed_by_a_member_are_refused(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await sim.companion("founder"), await sim.companion("member")
    await call(founder, "hive-genesis")
    invite = await call(founder, "hive-invite")
    await call(member, "hive-join", ticket=invite["ticket"])
    await trio.sleep(2)
    assert founder.membership is not None
    assert member.membership is not None
    roster = founder.membership.roster
    assert roster is not None
    # The member relays a record "admitting" an outsider, signed by a key nobody admitted.
    outsider_key = nacl.signing.SigningKey(b"\x21" * 32)
    fake_cert = Certificate(
        hive_id=roster.hive_id,
        node_id=bytes.fromhex(sim.network.add_node("outsider", 0).node_id),
        hive_key=bytes(outsider_key.verify_key),
        node_sig="d" * 100,
    )
    record = sign_member(
        outsider_key,
        MemberBody(
            hive_id=roster.hive_id,
            cert=fake_cert,
            role=ROLE_MEMBER,
            admitted_by=bytes(outsider_key.verify_key),
            admitted_ms=sim_ms(),
            grant=None,
        ),
    )
    before = await record_count(founder)
    assert member.transport is not None
    await member.transport.send(sim.nodes[0].node_id, MemberAnnounce(record=record))
    await trio.sleep(2)
    assert await record_count(founder) == before
    rejected = founder.status()["hive"]["rejected"]
    assert sum(rejected.values()) == 1
    assert len(await members_of(founder)) == 2


async def test_commands_explain_misuse(sim: Sim, autojump_clock: trio.testing.MockClock) -> None:
    lone = await sim.companion("lone")
    with pytest.raises(CommandError, match="in no hive"):
        await call(lone, "hive-invite")
    await call(lone, "hive-genesis")
    with pytest.raises(CommandError, match="already a member"):
        await call(lone, "hive-genesis")
    with pytest.raises(CommandError, match="valid_hours must be"):
        await call(lone, "hive-invite", valid_hours=0)
    with pytest.raises(CommandError, match="unknown parameter"):
        await call(lone, "hive-invite", hours=3)
    # Dashes and strings, as lightning-cli -k may pass them, are fine.
    invite = await lone.command("hive-invite")({"valid-hours": "2", "req-splice": "true"})
    assert invite["requires"]["splicing"] is True
    assert invite["ticket"].startswith("hive1")


async def test_a_node_that_refuses_to_sign_fails_the_join_not_the_companion(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder = await sim.companion("founder")
    await call(founder, "hive-genesis")
    invite = await call(founder, "hive-invite")
    stubborn = sim.network.add_node("stubborn", 0)
    sim.nodes.append(stubborn)
    runtime = await sim.start(stubborn)
    signed: list[str] = []
    real_sign = stubborn.sign_message

    async def sign_once_then_refuse(text: str) -> str:
        # The certificate is signed; the challenge is refused (say, an HSM says no).
        if signed:
            raise NodeError("signmessage: refused by the signer", code=-1)
        signed.append(text)
        return await real_sign(text)

    stubborn.sign_message = sign_once_then_refuse  # type: ignore[method-assign]
    with pytest.raises(CommandError, match="node-error: the node did not sign"):
        await call(runtime, "hive-join", ticket=invite["ticket"])
    # The companion is still running and serving commands.
    assert all(a["running"] for a in runtime.status()["actors"])
    assert runtime.status()["hive"]["member"] is False
