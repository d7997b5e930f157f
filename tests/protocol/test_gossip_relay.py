"""Relaying: verbatim inner frames, dedup through the shared replay guard, hop limits, targets."""

from __future__ import annotations

from collections import deque

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.protocol.errors import ProtocolError
from hive.protocol.gossip.relay import RelayPolicy, open_relayed, wrap
from hive.protocol.gossip.state import MAX_HOPS, Relayed, StateDelta, StateRequest
from hive.protocol.messages import Message, Ping
from hive.protocol.wire.envelope import sign_frame
from hive.protocol.wire.facade import HiveWire, Received

NOW = 1_700_000_000_000


class Member:
    """A node id, a wire, and what it received (for the relay scenarios)."""

    def __init__(self, index: int) -> None:
        self.node_id = f"node{index}"
        self.wire = HiveWire(nacl.signing.SigningKey(bytes([index + 1]) * 32), first_seq=1)
        self.last_hops: int | None = None  # hops_left of the last Relayed opened, else None

    @property
    def key(self) -> bytes:
        return self.wire.hive_key

    def receive(self, peer: Member, data: bytes, now: int = NOW) -> Received:
        """Unpack from ``peer``; a Relayed is opened with the shared replay guard."""
        outer = self.wire.unpack(peer.node_id, data, now)
        assert outer is not None
        self.last_hops = None
        if isinstance(outer.message, Relayed):
            self.last_hops = outer.message.hops_left
            return open_relayed(
                outer.message,
                peer_id=peer.node_id,
                relayer=outer.sender,
                own_key=self.key,
                replay=self.wire.replay,
                now_ms=now,
            )
        return outer


def _delta(version: int = 2) -> StateDelta:
    return StateDelta(
        base_version=version - 1,
        version=version,
        upserts=(),
        removed=(),
        liquidity=None,
        reputation=None,
        opportunities=None,
    )


def _relay(relayer: Member, frame: bytes, hops: int) -> bytes:
    (data,) = relayer.wire.pack(wrap(frame, hops), NOW, msg_id=0)
    return data


def _reject(member: Member, peer: Member, data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        member.receive(peer, data)
    return info.value


def test_relayed_frame_arrives_verbatim_with_its_origin() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    (data,) = a.wire.pack(_delta(), NOW, msg_id=1)
    at_b = b.receive(a, data)
    at_c = c.receive(b, _relay(b, at_b.frame, 3))
    assert at_c.sender == a.key
    assert at_c.peer_id == b.node_id
    assert at_c.message == _delta()
    assert at_c.frame == at_b.frame == data[2:]
    assert at_c.seq == at_b.seq


def test_the_same_frame_over_two_paths_is_a_replay() -> None:
    a, b, c, d = Member(0), Member(1), Member(2), Member(3)
    (data,) = a.wire.pack(_delta(), NOW, msg_id=1)
    frame = b.receive(a, data).frame
    assert d.receive(b, _relay(b, frame, 3)).sender == a.key
    error = _reject(d, c, _relay(c, frame, 3))  # via a second relayer
    assert (error.reason, error.sender) == ("replay", a.key)
    error = _reject(d, a, data)  # and directly from the origin
    assert (error.reason, error.sender) == ("replay", a.key)


def test_direct_after_relayed_is_also_a_replay() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    (data,) = a.wire.pack(_delta(), NOW, msg_id=1)
    c.receive(b, _relay(b, data[2:], 2))
    assert _reject(c, a, data).reason == "replay"


def test_our_own_frame_relayed_back() -> None:
    a, b = Member(0), Member(1)
    (data,) = a.wire.pack(_delta(), NOW, msg_id=1)
    error = _reject(a, b, _relay(b, data[2:], 2))
    assert error.reason == "own-frame"


def test_nested_and_unrelayable_frames_are_the_relayers_fault() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    (ping,) = a.wire.pack(Ping(nonce=bytes(8)), NOW, msg_id=1)
    error = _reject(c, b, _relay(b, ping[2:], 2))
    assert (error.reason, error.sender) == ("bad-relay", b.key)
    assert "Ping" in error.detail
    (inner,) = a.wire.pack(wrap(sign_frame_of(a, _delta()), 2), NOW, msg_id=2)
    error = _reject(c, b, _relay(b, inner[2:], 2))
    assert (error.reason, error.sender) == ("bad-relay", b.key)
    # The refused Ping did not consume the origin's seq: the frame itself is still acceptable.
    assert c.receive(a, ping).message == Ping(nonce=bytes(8))


def sign_frame_of(member: Member, message: Message) -> bytes:
    (data,) = member.wire.pack(message, NOW, msg_id=9)
    return data[2:]


def test_tampered_inner_frame_is_the_relayers_fault() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    frame = bytearray(sign_frame_of(a, _delta()))
    frame[-1] ^= 1
    error = _reject(c, b, _relay(b, bytes(frame), 2))
    assert (error.reason, error.sender) == ("bad-signature", b.key)


def test_unknown_inner_kind_is_attributed_to_the_origin() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    key = nacl.signing.SigningKey(bytes([1]) * 32)
    frame = sign_frame(key, kind=0x004F, seq=5, timestamp_ms=NOW, payload=b"\xa0")
    error = _reject(c, b, _relay(b, frame, 2))
    assert (error.reason, error.sender) == ("unknown-kind", a.key)


def test_stale_inner_frame_refused() -> None:
    a, b, c = Member(0), Member(1), Member(2)
    (old,) = a.wire.pack(
        StateRequest(origin=bytes(32), have_version=0), NOW - 11 * 60_000, msg_id=1
    )
    error = _reject(c, b, _relay(b, old[2:], 2))
    assert (error.reason, error.sender) == ("stale", a.key)


# --- policy -----------------------------------------------------------------------------------


def test_onward_hops() -> None:
    policy = RelayPolicy(max_hops=4)
    assert policy.onward_hops(None) == 3  # the origin's direct send was the first hop
    assert policy.onward_hops(3) == 2
    assert policy.onward_hops(2) == 1
    assert policy.onward_hops(1) is None
    assert policy.onward_hops(MAX_HOPS) == 3  # a relayer's larger limit is not ours
    assert RelayPolicy(max_hops=1).onward_hops(None) is None
    with pytest.raises(ValueError, match="max_hops"):
        RelayPolicy(max_hops=MAX_HOPS + 1)


@given(st.sets(st.integers(0, 9)), st.integers(0, 9), st.none() | st.integers(0, 9))
def test_targets_exclude_sender_and_origin(
    connected: set[int], came_from: int, origin: int | None
) -> None:
    targets = RelayPolicy.targets(connected, came_from=came_from, origin=origin)
    assert targets == connected - {came_from, origin}


def _flood(edges: list[tuple[int, int]], size: int, max_hops: int) -> dict[int, int]:
    """Deliver one delta from member 0 over ``edges`` in breadth-first order, every member
    following the receiver rule; return member -> times it accepted the delta."""
    members = [Member(i) for i in range(size)]
    links: dict[int, set[int]] = {i: set() for i in range(size)}
    for x, y in edges:
        links[x].add(y)
        links[y].add(x)
    policy = RelayPolicy(max_hops=max_hops)
    accepted = dict.fromkeys(range(size), 0)
    dropped: set[str] = set()
    (data,) = members[0].wire.pack(_delta(), NOW, msg_id=1)
    queue: deque[tuple[int, int, bytes]] = deque((0, peer, data) for peer in sorted(links[0]))
    while queue:
        src, dst, payload = queue.popleft()
        try:
            received = members[dst].receive(members[src], payload)
        except ProtocolError as exc:
            dropped.add(exc.reason)
            continue
        accepted[dst] += 1
        onward = policy.onward_hops(members[dst].last_hops)
        if onward is None:
            continue
        for peer in sorted(policy.targets(links[dst], came_from=src, origin=0)):
            queue.append((dst, peer, _relay(members[dst], received.frame, onward)))
    assert dropped <= {"replay", "own-frame"}  # duplicates only, nothing else refused
    return accepted


def test_flood_on_a_line_reaches_exactly_max_hops_once() -> None:
    line = [(i, i + 1) for i in range(6)]
    accepted = _flood(line, 7, max_hops=4)
    assert accepted == {0: 0, 1: 1, 2: 1, 3: 1, 4: 1, 5: 0, 6: 0}


def test_flood_on_a_ring_with_chords_delivers_once_each() -> None:
    ring = [(i, (i + 1) % 8) for i in range(8)] + [(0, 4), (2, 6)]
    accepted = _flood(ring, 8, max_hops=3)
    assert accepted == {0: 0, **dict.fromkeys(range(1, 8), 1)}
