"""Membership under attack and after exits, on the simulated network (issue 8 items 3, 6, 9 and
the tests that could not fail; issue 13 items 6 and 7)."""

from __future__ import annotations

import random
from typing import Any

import attrs
import nacl.signing
import trio
import trio.testing
from test_membership import Sim, call, record_count, sim, sim_ms

from hive.node.sim import SimNode
from hive.protocol.gossip.state import Liquidity, MemberState, Relayed, StateSnapshot
from hive.protocol.membership import (
    Certificate,
    Hello,
    Manifest,
    MemberAnnounce,
    MemberBody,
    TicketClaim,
    cert_text,
    challenge_text,
    decode_ticket,
    sign_member,
)
from hive.protocol.membership.handshake import grant_body
from hive.protocol.membership.pki import sign_grant
from hive.protocol.messages import Ping
from hive.protocol.wire.facade import HiveWire
from hive.runtime import Runtime

__all__ = ["sim"]  # the fixture, from test_membership


def _key_of(node: SimNode) -> nacl.signing.SigningKey:
    """The hive key Sim.start gives a node's companion."""
    return nacl.signing.SigningKey(random.Random(int(node.node_id[2:10], 16)).randbytes(32))


def _status(runtime: Runtime) -> dict[str, Any]:
    return runtime.status()


async def _pair(sim: Sim) -> tuple[Runtime, Runtime]:
    founder, member = await sim.companion("founder"), await sim.companion("member")
    await call(founder, "hive-genesis")
    invite = await call(founder, "hive-invite")
    await call(member, "hive-join", ticket=invite["ticket"])
    await trio.sleep(2)
    return founder, member


# --- issue 8 item 3: a join flood ----------------------------------------------------------------


async def test_a_join_flood_neither_drops_members_messages_nor_blocks_an_honest_join(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    ticket = decode_ticket((await call(founder, "hive-invite"))["ticket"])
    flooders = []
    for index in range(20):
        outsider = sim.network.add_node(f"flood{index}", 0)
        await outsider.connect(sim.nodes[0].node_id)
        key = nacl.signing.SigningKey(bytes([index + 1]) * 32)
        node_id = bytes.fromhex(outsider.node_id)
        cert = Certificate(
            hive_id=ticket.body.hive_id,
            node_id=node_id,
            hive_key=bytes(key.verify_key),
            node_sig=await outsider.sign_message(
                cert_text(ticket.body.hive_id, node_id, bytes(key.verify_key))
            ),
        )
        flooders.append((outsider, HiveWire(key, first_seq=1), cert))
    manifest = Manifest(
        node_version="v25.09",
        hive_version="0.1.0",
        features=b"",
        splicing=False,
        channels=0,
        capacity_sat=0,
        public=False,
    )

    async def flood(outsider: SimNode, wire: HiveWire, cert: Certificate) -> None:
        for round_ in range(50):
            hello = Hello(
                session=round_.to_bytes(16, "big"), ticket=ticket, cert=cert, manifest=manifest
            )
            (frame,) = wire.pack(hello, sim_ms(), msg_id=round_)
            await outsider.send_custommsg(sim.nodes[0].node_id, frame)

    # Each message costs the founder's membership actor 10 ms, as the signature checks of a
    # real Hello do on a small machine (under the mock clock, work is otherwise free).
    membership = founder.membership
    assert membership is not None
    dispatch = membership._dispatch

    async def slow_dispatch(received: Any, nursery: trio.Nursery) -> None:
        await trio.sleep(0.01)
        await dispatch(received, nursery)

    membership._dispatch = slow_dispatch  # type: ignore[method-assign]
    newcomer = await sim.companion("newcomer")
    invite = await call(founder, "hive-invite")
    async with trio.open_nursery() as nursery:
        for outsider, wire, cert in flooders:
            nursery.start_soon(flood, outsider, wire, cert)
        # Meanwhile an honest candidate joins through the member: its claim must reach the
        # founder (the issuer), and the admission must reach the founder too.
        await call(newcomer, "hive-join", ticket=invite["ticket"], member=sim.nodes[1].node_id)
    await trio.sleep(5)
    status = _status(founder)
    assert status["messages"]["dropped"].get("subscriber-full", 0) == 0
    assert status["messages"]["rejected"]["join-rate"] > 500  # 1000 Hellos, 2/s per peer
    assert status["hive"]["members"] == 3
    assert _status(member)["hive"]["members"] == 3


# --- issue 8 item 9: a plain member mints nothing ------------------------------------------------


async def test_a_plain_member_cannot_mint_a_member_nor_burn_a_ticket(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    assert founder.membership is not None
    roster = founder.membership.roster
    assert roster is not None
    member_key = _key_of(sim.nodes[1])
    outsider = sim.network.add_node("outsider", 0)
    outsider_id = bytes.fromhex(outsider.node_id)
    outsider_key = nacl.signing.SigningKey(b"\x31" * 32)
    cert = Certificate(
        hive_id=roster.hive_id,
        node_id=outsider_id,
        hive_key=bytes(outsider_key.verify_key),
        node_sig=await outsider.sign_message(
            cert_text(roster.hive_id, outsider_id, bytes(outsider_key.verify_key))
        ),
    )
    nonce = b"\x09" * 32
    member_node = bytes.fromhex(sim.nodes[1].node_id)
    proof = await outsider.sign_message(challenge_text(roster.hive_id, member_node, nonce))
    ticket = decode_ticket((await call(founder, "hive-invite"))["ticket"])
    claim = TicketClaim(claim_id=b"c" * 16, ticket=ticket, cert=cert, nonce=nonce, node_sig=proof)
    # The member grants itself a use of an invented ticket and admits the outsider.
    forged = attrs_evolve_ticket(claim, member_key)
    body = MemberBody(
        hive_id=roster.hive_id,
        cert=cert,
        role=0,
        admitted_by=bytes(member_key.verify_key),
        admitted_ms=sim_ms(),
        grant=sign_grant(
            member_key,
            grant_body(
                forged,
                member_node=member_node,
                member_key=bytes(member_key.verify_key),
                use=1,
                now_ms=sim_ms(),
            ),
        ),
    )
    before = await record_count(founder)
    assert member.transport is not None
    await member.transport.send(
        sim.nodes[0].node_id, MemberAnnounce(record=sign_member(member_key, body))
    )
    # And it tries to burn the real ticket's use with a claim whose proof is not the
    # candidate's answer to it (the outsider's node signed something else).
    bad_proof = await outsider.sign_message("something else")
    await member.transport.send(
        sim.nodes[0].node_id,
        TicketClaim(claim_id=b"d" * 16, ticket=ticket, cert=cert, nonce=nonce, node_sig=bad_proof),
    )
    await trio.sleep(3)
    assert await record_count(founder) == before
    rejected = _status(founder)["hive"]["rejected"]
    assert rejected.get("not-admin") == 1
    assert rejected.get("claim-bad-answer") == 1
    row = await founder.membership.store.ticket(ticket.body.ticket_id)
    assert row is not None
    assert row.uses == 0


def attrs_evolve_ticket(claim: TicketClaim, key: nacl.signing.SigningKey) -> TicketClaim:
    """The claim with an invented ticket "issued" by ``key`` (a plain member's)."""
    body = attrs.evolve(claim.ticket.body, ticket_id=b"\xee" * 16, issuer_key=bytes(key.verify_key))
    ticket = attrs.evolve(claim.ticket, body=body)
    return attrs.evolve(claim, ticket=ticket)


# --- issue 8 item 6: a leave is acknowledged before local data goes -------------------------------


async def test_leave_with_delete_waits_for_an_acknowledgement(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    left = await call(member, "hive-leave", delete_data=True)
    assert left["acknowledged"] is True
    assert left["data_deleted"] is True
    assert await record_count(member) == 0
    assert _status(founder)["hive"]["members"] == 1


async def test_an_unacknowledged_leave_keeps_the_data_and_is_repeated_until_heard(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    await sim.stop(founder)  # the only other member is down: nobody can hear the leave
    left = await call(member, "hive-leave", delete_data=True)
    assert left == {
        "hive_id": left["hive_id"],
        "left": True,
        "acknowledged": False,
        "data_deleted": False,
        "delete_pending": True,
    }
    assert await record_count(member) == 3  # two admissions and the leave, all kept
    assert _status(member)["hive"]["exit_unacknowledged"] is True
    # The member restarts too; the pending leave survives it.
    await sim.stop(member)
    member = await sim.start(sim.nodes[1])
    founder = await sim.start(sim.nodes[0])
    assert _status(founder)["hive"]["members"] == 2  # it never heard of the leave
    await trio.sleep(member.config.membership.sync_interval_s + 5)
    assert _status(founder)["hive"]["members"] == 1
    assert _status(member)["hive"]["exit_unacknowledged"] is False
    assert await record_count(member) == 0  # deleted only now


# --- issue 13 items 6 and 7: what a node that is out knows ----------------------------------------


async def test_a_revoked_node_learns_it_was_revoked_even_if_it_was_offline(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    third = await sim.companion("third")
    invite = await call(founder, "hive-invite")
    await call(third, "hive-join", ticket=invite["ticket"])
    await trio.sleep(2)
    await call(founder, "hive-revoke", node=sim.nodes[1].node_id)
    await trio.sleep(2)
    assert _status(member)["hive"]["member"] is False  # told at once
    assert (await call(member, "hive-members"))["members"][1]["status"] == "revoked"
    # One that was down when it was revoked learns it when it talks to a member again.
    await sim.stop(third)
    sim.network.set_offline(sim.nodes[2].node_id)  # the revoke cannot reach it
    await call(founder, "hive-revoke", node=sim.nodes[2].node_id)
    await trio.sleep(2)
    sim.network.set_offline(sim.nodes[2].node_id, False)
    third = await sim.start(sim.nodes[2])
    assert _status(third)["hive"]["member"] is True  # its own store still says so
    await trio.sleep(65)  # it pings the founder, which refuses it, and tells it why
    assert _status(third)["hive"]["member"] is False
    assert _status(founder)["messages"]["rejected"].get("revoked", 0) >= 1


async def test_status_after_leaving_shows_no_join_and_no_fleet_peers(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    await trio.sleep(65)  # a round of pings: each knows the other as a peer
    assert [p["node_id"] for p in _status(member)["peers"]] == [sim.nodes[0].node_id]
    assert _status(member)["hive"]["joining"]["state"] == "joined"
    await call(member, "hive-leave")
    await trio.sleep(2)
    status = _status(member)
    assert status["hive"]["joining"] is None
    assert status["peers"] == []
    assert _status(founder)["peers"] == []


# --- tests that could not fail -------------------------------------------------------------------


async def test_a_members_frame_over_another_members_connection_is_refused(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, _member = await _pair(sim)
    third = await sim.companion("third")
    invite = await call(founder, "hive-invite")
    await call(third, "hive-join", ticket=invite["ticket"])
    await trio.sleep(2)
    # The member sends a Ping signed with the third member's hive key over its own connection.
    stolen = HiveWire(_key_of(sim.nodes[2]), first_seq=2**62)
    (frame,) = stolen.pack(Ping(nonce=b"k" * 16), sim_ms(), msg_id=1)
    pongs_before = _status(founder)["messages"]["sent"]
    await sim.nodes[1].send_custommsg(sim.nodes[0].node_id, frame)
    await trio.sleep(2)
    status = _status(founder)
    assert status["messages"]["rejected"].get("key-mismatch") == 1
    assert status["messages"]["sent"] == pongs_before  # no Pong to anyone


async def test_a_non_members_state_relayed_by_a_member_is_refused(
    sim: Sim, autojump_clock: trio.testing.MockClock
) -> None:
    founder, member = await _pair(sim)
    outsider_key = nacl.signing.SigningKey(b"\x41" * 32)
    state = MemberState(
        version=1,
        topology=(),
        liquidity=Liquidity(outbound_msat=10**12, inbound_msat=0, onchain_sat=0),
        reputation=(),
        opportunities=(),
    )
    frame = HiveWire(outsider_key, first_seq=1).sign(StateSnapshot(state=state), sim_ms())
    assert member.transport is not None
    await member.transport.send(sim.nodes[0].node_id, Relayed(hops_left=2, frame=frame))
    await trio.sleep(2)
    assert founder.gossip is not None
    assert founder.gossip.stats.rejected.get("not-member") == 1
    assert founder.fleet is not None
    held = founder.fleet.view().to_json()
    assert bytes(outsider_key.verify_key).hex() not in repr(held)
    assert (
        _status(founder)["gossip"]["states_received"]
        == _status(founder)["gossip"]["states_received"]
    )
