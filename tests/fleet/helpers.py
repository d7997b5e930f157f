"""Builders for hand-made fleet states (node ids as hex strings, as the state map keys them)."""

from __future__ import annotations

from hive.node.port import FeePolicy, PublicChannel
from hive.protocol.gossip.state import Liquidity, MemberState, PeerEdge


def node(index: int) -> str:
    """A deterministic 33-byte node id, hex."""
    return (bytes([2]) + bytes([index]) * 32).hex()


def edge(peer: str, capacity_sat: int, share_ppm: int = 500_000) -> PeerEdge:
    return PeerEdge(peer=bytes.fromhex(peer), capacity_sat=capacity_sat, local_share_ppm=share_ppm)


def member_state(
    version: int,
    *topology: PeerEdge,
    outbound_msat: int = 1_000,
    inbound_msat: int = 2_000,
    onchain_sat: int = 3,
) -> MemberState:
    return MemberState(
        version=version,
        topology=topology,
        liquidity=Liquidity(
            outbound_msat=outbound_msat, inbound_msat=inbound_msat, onchain_sat=onchain_sat
        ),
        reputation=(),
        opportunities=(),
    )


def channel(scid: str, a: str, b: str, capacity_sat: int) -> PublicChannel:
    return PublicChannel(
        short_channel_id=scid,
        source=a,
        destination=b,
        capacity_msat=capacity_sat * 1000,
        fee=FeePolicy(base_msat=1000, ppm=1),
        active=True,
    )


def both_directions(scid: str, a: str, b: str, capacity_sat: int) -> list[PublicChannel]:
    """A public channel as listchannels shows it: once per direction."""
    return [channel(scid, a, b, capacity_sat), channel(scid, b, a, capacity_sat)]
