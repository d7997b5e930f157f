"""Channels that open, confirm and close during a run, with the on-chain money they move.

A scenario node holds an on-chain **wallet** (its capital at the start). Opening a channel
takes ``amount + open fee`` from it; the peer matches ``amount`` from outside the graph (a
dual-funded open: the node holds half of a channel of twice its commitment, the rule every
scenario shares). The channel exists in the :class:`~hive.scenarios.flow.Flow` at once but
forwards nothing until it confirms (``confirm_s`` later, drawn per open). The scenario node
charges outsiders ``fee``; the public peer charges what ``peer_fee`` says for it (the driver:
that node's own median fee over its public channels, not ours). Closing one puts the
node's side back in its wallet minus the close fee; the peer's side leaves the graph.

Every forward's fee is credited to both of the forwarder's channels it used (the incoming and
the outgoing one), the way CLBOSS's earnings tracker counts ``in_fee + out_fee`` per peer; the
close rules read that record.

:meth:`ChannelBook.check` proves conservation at the end of a run: for every node of the
graph, the change in what it holds in channels plus its wallet equals the ledger (received -
paid + fees earned + matched by it - withdrawn by it - on-chain fees).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs
import numpy as np

from hive.scenarios.flow import Flow


@attrs.define
class Chan:
    """One channel a scenario node opened (the node is ``node1`` of the flow channel)."""

    index: int  # the flow's channel index
    owner: int
    peer: int
    amount_sat: int  # the owner's commitment (the channel is twice that)
    opened_s: float
    internal: bool = False  # between two members of a fleet (zero fee, never judged)
    live_s: float | None = None  # confirmed: forwards from then on
    closed_s: float | None = None
    earned_msat: int = 0  # fees of the forwards it carried (in or out)
    last_forward_s: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_s is None


def set_live(flow: Flow, channels: Iterable[int], live: bool) -> None:
    """Both directions of ``channels`` forward (or not) from now on."""
    c = np.fromiter(channels, dtype=np.int64)
    if not live:
        for channel in c.tolist():
            flow.close_channel(channel)  # patched into the routing arrays in place
    elif len(c):
        flow.routable[2 * c] = True
        flow.routable[2 * c + 1] = True
        flow.invalidate()


class ChannelBook:
    """The scenario's channels and wallets over one run (see the module docstring)."""

    def __init__(
        self,
        flow: Flow,
        wallets_sat: dict[int, int],
        fee: tuple[int, int],
        open_fee_sat: int,
        close_fee_sat: int,
        *,
        peer_fee: Callable[[int], tuple[int, int]] | None = None,
    ) -> None:
        self.flow = flow
        self.wallet_msat = {n: w * 1000 for n, w in wallets_sat.items()}
        self.fee = fee  # what the scenario's nodes charge outsiders
        # What a public node charges on a new channel to a scenario node: its own usual fee
        # (default: the same as ours).
        self.peer_fee = peer_fee or (lambda _node: fee)
        self.open_fee_sat = open_fee_sat
        self.close_fee_sat = close_fee_sat
        self.chans: list[Chan] = []
        self.by_index: dict[int, Chan] = {}
        self.matched_msat = np.zeros(flow.n, dtype=np.int64)  # brought in by peers
        self.withdrawn_msat = np.zeros(flow.n, dtype=np.int64)  # taken out at closes
        self.onchain_msat = np.zeros(flow.n, dtype=np.int64)  # fees paid on chain
        self.opens = 0
        self.closes = 0
        self.overlaps = 0  # opens to a target another node of the scenario had a channel to
        self.duplicates = 0  # ... that the deciding node did not know of
        self.down: set[int] = set()
        self.version = 0  # bumps whenever the public graph changes
        self._start_holdings = flow.holdings()
        self._start_wallets = dict(self.wallet_msat)

    # --- queries ------------------------------------------------------------------------------

    def of(self, node: int, *, live_only: bool = False) -> list[Chan]:
        return [
            c
            for c in self.chans
            if c.open
            and (c.owner == node or c.peer == node)
            and (c.live_s is not None or not live_only)
        ]

    def spare_sat(self, node: int) -> int:
        return self.wallet_msat.get(node, 0) // 1000

    def public(self) -> frozenset[tuple[int, int, int]]:
        """The scenario's channels the public graph shows now (live, both ends up)."""
        return frozenset(
            (c.owner, c.peer, c.amount_sat)
            for c in self.chans
            if c.open
            and c.live_s is not None
            and c.owner not in self.down
            and c.peer not in self.down
        )

    # --- changes ------------------------------------------------------------------------------

    def open(
        self,
        node: int,
        peer: int,
        amount_sat: int,
        now_s: float,
        *,
        internal: bool = False,
        aware: frozenset[int] = frozenset(),
    ) -> Chan:
        """Fund a channel (not yet forwarding: :meth:`confirm` it). ``aware``: the nodes whose
        channel to ``peer`` the decision knew of (an overlap with any other is a duplicate)."""
        cost = (amount_sat + self.open_fee_sat) * 1000
        if self.wallet_msat.get(node, 0) < cost:
            raise ValueError(f"node {node} cannot fund {amount_sat} sat")
        others = {c.owner for c in self.chans if c.open and c.peer == peer and not c.internal}
        if not internal and others - {node}:
            self.overlaps += 1
            if others - {node} - aware:
                self.duplicates += 1
        self.wallet_msat[node] -= cost
        self.onchain_msat[node] += self.open_fee_sat * 1000
        if peer in self.wallet_msat:  # another scenario node matches from its own wallet
            self.wallet_msat[peer] -= amount_sat * 1000
        else:
            self.matched_msat[peer] += amount_sat * 1000
        if internal:
            fee_a = fee_b = (0, 0)
        else:
            fee_a = self.fee
            fee_b = self.fee if peer in self.wallet_msat else self.peer_fee(peer)
        index = self.flow.add_channel(node, peer, 2 * amount_sat, amount_sat * 1000, fee_a, fee_b)
        set_live(self.flow, [index], False)
        chan = Chan(index, node, peer, amount_sat, now_s, internal=internal)
        self.chans.append(chan)
        self.by_index[index] = chan
        self.opens += 1
        return chan

    def confirm(self, chan: Chan, now_s: float) -> None:
        if not chan.open or chan.live_s is not None:
            return
        chan.live_s = now_s
        if chan.owner not in self.down and chan.peer not in self.down:
            set_live(self.flow, [chan.index], True)
        self.version += 1

    def close(self, chan: Chan, now_s: float) -> None:
        """Mutual close: each side's balance goes on chain; the owner pays the fee."""
        if not chan.open:
            return
        flow, c = self.flow, chan.index
        mine = int(flow.bal1[c])
        theirs = int(flow.cap_msat[c] - flow.bal1[c])
        fee = self.close_fee_sat * 1000
        self.wallet_msat[chan.owner] = self.wallet_msat.get(chan.owner, 0) + mine - fee
        self.onchain_msat[chan.owner] += fee
        if chan.peer in self.wallet_msat:
            self.wallet_msat[chan.peer] += theirs
        else:
            self.withdrawn_msat[chan.peer] += theirs
        set_live(flow, [c], False)
        flow.bal1[c] = 0
        flow.cap_msat[c] = 0  # out of routing already: nothing reads its capacity again
        chan.closed_s = now_s
        self.closes += 1
        self.version += 1

    def set_down(self, node: int) -> None:
        self.down.add(node)
        self.flow.set_offline(node)
        self.version += 1

    def forwarded(self, in_edge: int, out_edge: int, fee_msat: int, now_s: float) -> None:
        for e in (in_edge, out_edge):
            chan = self.by_index.get(e // 2)
            if chan is not None:
                chan.earned_msat += fee_msat
                chan.last_forward_s = now_s

    # --- conservation -------------------------------------------------------------------------

    def check(self) -> None:
        """Raise if any node's money moved without a ledger entry (see the module docstring)."""
        flow = self.flow
        wallet = np.zeros(flow.n, dtype=np.int64)
        for n, w in self.wallet_msat.items():
            wallet[n] = w - self._start_wallets.get(n, 0)
        start = np.zeros(flow.n, dtype=np.int64)
        start[: len(self._start_holdings)] = self._start_holdings
        delta = flow.holdings() - start + wallet
        ledger = (
            flow.received
            - flow.paid
            + flow.earned
            + self.matched_msat
            - self.withdrawn_msat
            - self.onchain_msat
        )
        if not np.array_equal(delta, ledger):
            bad = np.flatnonzero(delta != ledger)
            raise RuntimeError(f"money moved without a ledger entry at nodes {bad[:5].tolist()}")
