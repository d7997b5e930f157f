"""Our own state record, built from what the node reports, and what counts as a material
change of it. Pure: the gossip actor gathers the inputs and publishes the result.

What goes into the record:

* **topology**: one :class:`PeerEdge` per channel in state NORMAL (a channel still opening is
  not in the public graph yet, and the fleet would clamp it away), with its capacity and our
  share of it (local balance / capacity, in ppm);
* **liquidity**: outbound and inbound msat summed over those channels (public ones only, like
  the topology: members cut liquidity to the public capacity they can check, so counting
  private channels would get an honest member clamped), on-chain sat as the node reports it
  available for opens;
* **reputation**: the notes the caller collected (e.g. members we clamped), at most 100;
* **opportunities**: fees earned per peer from settled forwards, the 100 best;
* **addresses**: where we accept connections (``host:port``, at most 4), so members without a
  channel to us find us again after a restart.
* **balances** (rebalancing): surplus and deficit per peer and direction from the rebalancer's
  forecast, summed over the channels with that peer, the 100 largest; and our own
  **rebalancing** totals (provided, consumed, fees paid, moves).

A change is *material*, and published at once, when a channel is added, removed or resized, a
peer's local share moves by more than ``share_change_ppm``, outbound, inbound or on-chain
liquidity moves by more than ``liquidity_fraction`` of its published value (any change from
zero counts), a reputation note appears or goes, or a peer starts or stops being in deficit
(the fleet must know at once who needs liquidity). Anything else (balances drifting a little,
earnings, surplus) rides along with the next material change or the next keepalive interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from hive.fleet.rebalance import Balance
from hive.node.port import ChannelState, ChannelView, NodeId
from hive.protocol.gossip.state import (
    MAX_BALANCES,
    MAX_NOTES,
    MAX_OPPORTUNITIES,
    NO_REBALANCING,
    PPM,
    ChannelBalance,
    Liquidity,
    MemberState,
    Opportunity,
    PeerEdge,
    RebalanceTotals,
    ReputationNote,
)

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1


@attrs.frozen
class MaterialPolicy:
    """Thresholds of a material change (see the module docstring)."""

    share_change_ppm: int = 50_000
    liquidity_fraction: float = 0.10


@attrs.define
class Earnings:
    """Fees earned through one peer (settled forwards out through our channel with it)."""

    earned_msat: int = 0
    forwards: int = 0


def build_state(
    version: int,
    channels: Iterable[ChannelView],
    onchain_sat: int,
    *,
    reputation: Iterable[ReputationNote] = (),
    earnings: Mapping[NodeId, Earnings] | None = None,
    addresses: Sequence[str] = (),
    balances: Iterable[Balance] = (),
    rebalancing: RebalanceTotals = NO_REBALANCING,
) -> MemberState:
    """Our :class:`MemberState` at ``version`` from the node's channels and balances.

    The topology and the liquidity count public channels only: the fleet's reach is what the
    public graph can route through, and members check claims against that graph."""
    edges: list[PeerEdge] = []
    outbound = inbound = 0
    for channel in channels:
        if channel.state is not ChannelState.NORMAL or channel.capacity_msat <= 0:
            continue
        if channel.private:
            continue
        outbound += max(0, channel.local_msat)
        inbound += max(0, channel.remote_msat)
        share = min(PPM, max(0, channel.local_msat * PPM // channel.capacity_msat))
        edges.append(
            PeerEdge(
                peer=bytes.fromhex(channel.peer_id),
                capacity_sat=channel.capacity_msat // 1000,
                local_share_ppm=share,
            )
        )
    best = sorted((earnings or {}).items(), key=lambda item: (-item[1].earned_msat, item[0]))
    opportunities = tuple(
        Opportunity(
            peer=bytes.fromhex(peer),
            earned_msat=min(e.earned_msat, U64_MAX),
            forwards=min(e.forwards, U32_MAX),
        )
        for peer, e in best[:MAX_OPPORTUNITIES]
        if e.earned_msat > 0
    )
    return MemberState(
        version=version,
        topology=tuple(edges),
        liquidity=Liquidity(
            outbound_msat=min(outbound, U64_MAX),
            inbound_msat=min(inbound, U64_MAX),
            onchain_sat=min(max(0, onchain_sat), U64_MAX),
        ),
        reputation=tuple(reputation)[:MAX_NOTES],
        opportunities=opportunities,
        addresses=tuple(addresses),
        balances=_channel_balances(balances),
        rebalancing=rebalancing,
    )


def _channel_balances(balances: Iterable[Balance]) -> tuple[ChannelBalance, ...]:
    """Per-peer sums, nonzero ones only, the :data:`MAX_BALANCES` largest."""
    per_peer: dict[NodeId, list[int]] = {}
    for b in balances:
        sums = per_peer.setdefault(b.peer, [0, 0, 0, 0])
        for i, v in enumerate(
            (b.surplus_out_msat, b.deficit_out_msat, b.surplus_in_msat, b.deficit_in_msat)
        ):
            sums[i] += max(0, v)
    ranked = sorted(
        ((peer, sums) for peer, sums in per_peer.items() if any(sums)),
        key=lambda item: (-sum(item[1]), item[0]),
    )
    return tuple(
        ChannelBalance(
            peer=bytes.fromhex(peer),
            surplus_out_msat=min(sums[0], U64_MAX),
            deficit_out_msat=min(sums[1], U64_MAX),
            surplus_in_msat=min(sums[2], U64_MAX),
            deficit_in_msat=min(sums[3], U64_MAX),
        )
        for peer, sums in ranked[:MAX_BALANCES]
    )


def same_content(a: MemberState, b: MemberState) -> bool:
    """True when the two states differ at most in their version."""
    return attrs.evolve(a, version=b.version) == b


def _by_peer(edges: Sequence[PeerEdge]) -> dict[bytes, list[PeerEdge]]:
    groups: dict[bytes, list[PeerEdge]] = {}
    for edge in edges:
        groups.setdefault(edge.peer, []).append(edge)
    return groups


def _share_ppm(edges: Sequence[PeerEdge]) -> int:
    capacity = sum(e.capacity_sat for e in edges)
    if capacity == 0:
        return 0
    return sum(e.capacity_sat * e.local_share_ppm for e in edges) // capacity


def _moved(old: int, new: int, fraction: float) -> bool:
    if old == 0:
        return new != 0
    return abs(new - old) > fraction * old


def material_change(
    published: MemberState, current: MemberState, policy: MaterialPolicy
) -> str | None:
    """Why ``current`` must be published now (a reason naming the change), or None."""
    before, after = _by_peer(published.topology), _by_peer(current.topology)
    for peer in sorted(set(after) - set(before)):
        return f"channel to {peer.hex()} added"
    for peer in sorted(set(before) - set(after)):
        return f"channel to {peer.hex()} removed"
    for peer in sorted(after):
        old, new = before[peer], after[peer]
        old_caps = sorted(e.capacity_sat for e in old)
        new_caps = sorted(e.capacity_sat for e in new)
        if old_caps != new_caps:
            return f"channels to {peer.hex()} changed: {old_caps} -> {new_caps} sat"
        old_share, new_share = _share_ppm(old), _share_ppm(new)
        if abs(new_share - old_share) > policy.share_change_ppm:
            return (
                f"local share with {peer.hex()} moved from {old_share / 10_000:.1f}% "
                f"to {new_share / 10_000:.1f}%"
            )
    fraction = policy.liquidity_fraction
    for name in ("outbound_msat", "inbound_msat", "onchain_sat"):
        old_value = getattr(published.liquidity, name)
        new_value = getattr(current.liquidity, name)
        if _moved(old_value, new_value, fraction):
            return f"{name} moved from {old_value} to {new_value}"
    old_notes = {(n.peer, n.reason) for n in published.reputation}
    new_notes = {(n.peer, n.reason) for n in current.reputation}
    if old_notes != new_notes:
        return f"reputation notes changed ({len(old_notes)} -> {len(new_notes)})"
    if published.addresses != current.addresses:
        return "addresses changed"
    old_short = {b.peer for b in published.balances if b.deficit_out_msat or b.deficit_in_msat}
    new_short = {b.peer for b in current.balances if b.deficit_out_msat or b.deficit_in_msat}
    for peer in sorted(new_short - old_short):
        return f"liquidity deficit with {peer.hex()}"
    for peer in sorted(old_short - new_short):
        return f"liquidity deficit with {peer.hex()} resolved"
    return None


__all__ = ["Earnings", "MaterialPolicy", "build_state", "material_change", "same_content"]
