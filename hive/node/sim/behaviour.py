"""Misbehaving peers in the simulated network: HTLCs held long (jamming) and force closes.

Honest nodes resolve an HTLC at once and close channels only when told to. A node given a
:class:`PeerBehaviour` (``SimNetwork.set_behaviour``) holds every HTLC that reaches it, as a
forwarder or as the payee, for ``hold_s`` before resolving it. Settlement stays atomic (the
balances move when the payment is made, see :mod:`hive.node.sim.routing`); what the hold
changes is what the forwarding nodes see: each one's ``Forwarded`` event arrives when its HTLC
resolves, ``hold_ms`` after it was offered, and ``hold_ms`` is the sum of the holds of the
nodes after it on the path (an HTLC is resolved upstream only once it is resolved downstream).

A force close (``SimNetwork.force_close``) is unilateral: the closer's commitment reaches the
chain, the channel stops carrying payments at once and is CLOSED ``confirmation_delay_s``
later, when each side's balance returns to its wallet. The events follow CLN's
``channel_state_changed``: the closer sees a unilateral close it started (cause USER), the other
end one the chain showed it (cause ONCHAIN, so ``forced_by_peer``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from hive.node.port import ChannelState, ChannelStateChanged, StateCause
from hive.node.sim.graph import NORMAL, OPENING, STATE_CODE

if TYPE_CHECKING:
    from hive.node.sim.network import SimNetwork
    from hive.node.sim.routing import PathHop

CLOSING = STATE_CODE[ChannelState.CLOSING]
CLOSED = STATE_CODE[ChannelState.CLOSED]


@attrs.frozen
class PeerBehaviour:
    """How a simulated node departs from an honest one."""

    # Seconds this node holds each HTLC that reaches it before resolving it.
    hold_s: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.hold_s <= 30 * 86_400:
            raise ValueError(f"hold_s must be within 0 and 30 days, got {self.hold_s}")


HONEST = PeerBehaviour()


def downstream_holds_s(net: SimNetwork, path: Sequence[PathHop]) -> list[float]:
    """For each hop index ``i``, how long the HTLC into ``path[i].node`` stays unresolved:
    the holds of that node and of every node after it."""
    holds = [net.behaviour(hop.node).hold_s for hop in path]
    out = [0.0] * len(path)
    total = 0.0
    for i in range(len(path) - 1, -1, -1):
        total += holds[i]
        out[i] = total
    return out


def force_close(net: SimNetwork, closer: int, peer: int) -> list[str]:
    """``closer`` force-closes every open or usable channel it has with ``peer``; returns the
    short channel ids (or "" for one not confirmed yet)."""
    graph = net.graph
    closed = []
    for c in graph.channels_between(closer, peer):
        if graph.state[c] not in (NORMAL, OPENING):
            continue
        old = graph.channel_state(c)
        graph.state[c] = CLOSING
        scid = graph.scids[c] or None
        for me, other, cause in (
            (closer, peer, StateCause.USER),
            (peer, closer, StateCause.ONCHAIN),
        ):
            net._emit(
                me,
                ChannelStateChanged(
                    graph.node_ids[other],
                    scid,
                    old,
                    ChannelState.CLOSING,
                    cause=cause,
                    unilateral=True,
                ),
            )
        net._schedule_at(
            net._now() + net.confirmation_delay_s, functools.partial(_settle, net, c, closer)
        )
        closed.append(graph.scids[c])
    return closed


def _settle(net: SimNetwork, c: int, closer: int) -> None:
    """The commitment is confirmed: each side's balance is back in its wallet."""
    graph = net.graph
    if graph.state[c] != CLOSING:
        return
    graph.state[c] = CLOSED
    a, b = graph.node1[c], graph.node2[c]
    for me, other in ((a, b), (b, a)):
        net.fund(graph.node_ids[me], graph.outbound_msat(c, me) // 1000)
        cause = StateCause.USER if me == closer else StateCause.ONCHAIN
        net._emit(
            me,
            ChannelStateChanged(
                graph.node_ids[other],
                graph.scids[c] or None,
                ChannelState.CLOSING,
                ChannelState.CLOSED,
                cause=cause,
            ),
        )
