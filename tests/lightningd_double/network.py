"""The world several lightningd doubles share: connections, channels, gossip, routing.

A channel is stored once with both ends' balances and fee policies; each double shows it from
its own side (``listpeerchannels``) and the gossip graph shows both directions
(``listchannels``). ``getroute`` runs a breadth-first search over that graph and computes
amounts and CLTV deltas backwards from the destination, the way CLN's answer reads.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from lightningd_double.double import LightningdDouble


@attrs.define
class Side:
    balance_msat: int
    fee_base_msat: int = 1000
    fee_ppm: int = 10
    cltv_delta: int = 6


@attrs.define
class Channel:
    scid: str
    a: str
    b: str
    capacity_msat: int
    sides: dict[str, Side]
    state: str = "CHANNELD_NORMAL"
    opener: str = ""
    active: bool = True
    funding_txid: str = ""

    def other(self, node_id: str) -> str:
        return self.b if node_id == self.a else self.a

    def direction_from(self, node_id: str) -> int:
        """BOLT 7: direction 0 leaves the lexicographically smaller node id."""
        return 0 if node_id == min(self.a, self.b) else 1


@attrs.define
class Announcement:
    alias: str
    features: str = "88a0000a8a5961"
    addresses: list[dict[str, Any]] = attrs.Factory(list)


class Network:
    """Shared by the doubles of one test; every mutation is synchronous (no I/O)."""

    def __init__(self) -> None:
        self.doubles: dict[str, LightningdDouble] = {}
        self.connections: set[frozenset[str]] = set()
        self.channels: dict[str, Channel] = {}
        self.announcements: dict[str, Announcement] = {}
        self._blocks = itertools.count(103)
        self.blockheight = 110

    def add(self, double: LightningdDouble) -> None:
        self.doubles[double.node_id] = double
        self.announcements[double.node_id] = Announcement(alias=double.alias)

    def connected(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.connections

    def connect(self, a: str, b: str) -> None:
        self.connections.add(frozenset((a, b)))

    def disconnect(self, a: str, b: str) -> None:
        self.connections.discard(frozenset((a, b)))

    def peers_of(self, node_id: str) -> set[str]:
        peers = {next(iter(p - {node_id})) for p in self.connections if node_id in p}
        peers |= {c.other(node_id) for c in self.channels.values() if node_id in (c.a, c.b)}
        return peers

    def open_channel(
        self,
        a: str,
        b: str,
        capacity_sat: int,
        *,
        a_balance_msat: int | None = None,
        state: str = "CHANNELD_NORMAL",
        fees: dict[str, tuple[int, int]] | None = None,
    ) -> Channel:
        """A channel between ``a`` and ``b``; ``a`` funded it and holds everything unless
        ``a_balance_msat`` says otherwise. ``fees`` maps node id -> (base_msat, ppm)."""
        capacity = capacity_sat * 1000
        a_balance = capacity if a_balance_msat is None else a_balance_msat
        scid = f"{next(self._blocks)}x1x0"
        sides = {a: Side(balance_msat=a_balance), b: Side(balance_msat=capacity - a_balance)}
        for node, (base, ppm) in (fees or {}).items():
            sides[node].fee_base_msat, sides[node].fee_ppm = base, ppm
        funding = hashlib.sha256(scid.encode()).hexdigest()
        channel = Channel(
            scid=scid,
            a=a,
            b=b,
            capacity_msat=capacity,
            sides=sides,
            state=state,
            opener=a,
            funding_txid=funding,
        )
        self.channels[scid] = channel
        for node in (a, b):
            self.announcements.setdefault(node, Announcement(alias=node[:8]))
        return channel

    def channels_of(self, node_id: str) -> list[Channel]:
        return [c for c in self.channels.values() if node_id in (c.a, c.b)]

    # ------------------------------------------------------------------------------------------
    # Routing

    def route(
        self,
        source: str,
        destination: str,
        amount_msat: int,
        *,
        final_cltv: int = 9,
        exclude: Iterable[str] = (),
    ) -> list[dict[str, Any]] | None:
        """Fewest hops from ``source`` to ``destination``; None when there is none.

        ``exclude`` holds node ids and ``scid/direction`` strings, as in CLN's getroute.
        """
        excluded = set(exclude)
        previous: dict[str, tuple[str, Channel]] = {}
        queue = deque([source])
        seen = {source}
        while queue:
            node = queue.popleft()
            if node == destination:
                break
            for ch in self.channels_of(node):
                nxt = ch.other(node)
                if nxt in seen or nxt in excluded or not ch.active:
                    continue
                if ch.state != "CHANNELD_NORMAL":
                    continue
                if f"{ch.scid}/{ch.direction_from(node)}" in excluded:
                    continue
                if ch.capacity_msat < amount_msat:
                    continue
                seen.add(nxt)
                previous[nxt] = (node, ch)
                queue.append(nxt)
        if destination not in previous:
            return None
        path: list[tuple[str, str, Channel]] = []  # (from, to, channel)
        node = destination
        while node != source:
            prev, ch = previous[node]
            path.append((prev, node, ch))
            node = prev
        path.reverse()
        hops: list[dict[str, Any]] = []
        amount, delay = amount_msat, final_cltv
        for i in range(len(path) - 1, -1, -1):
            frm, to, ch = path[i]
            hops.append(
                {
                    "id": to,
                    "channel": ch.scid,
                    "direction": ch.direction_from(frm),
                    "amount_msat": amount,
                    "delay": delay,
                    "style": "tlv",
                }
            )
            if i > 0:  # the node forwarding into this hop charges its fee on this channel
                side = ch.sides[frm]
                amount += side.fee_base_msat + amount * side.fee_ppm // 1_000_000
                delay += side.cltv_delta
        hops.reverse()
        return hops

    def settle(self, payer: str, route: list[dict[str, Any]]) -> tuple[int, str, str] | None:
        """Move a payment's amounts along ``route``; on a hop without the liquidity, return
        (erring index, erring node, erring channel) and move nothing."""
        moves: list[tuple[Channel, str, str, int]] = []
        sender = payer
        for index, hop in enumerate(route):
            ch = self.channels.get(hop["channel"])
            receiver = hop["id"]
            if ch is None or {sender, receiver} != {ch.a, ch.b}:
                return index, sender, hop["channel"]
            if ch.sides[sender].balance_msat < hop["amount_msat"] or ch.state != "CHANNELD_NORMAL":
                return index, sender, ch.scid
            moves.append((ch, sender, receiver, hop["amount_msat"]))
            sender = receiver
        for ch, frm, to, amount in moves:
            ch.sides[frm].balance_msat -= amount
            ch.sides[to].balance_msat += amount
        return None
