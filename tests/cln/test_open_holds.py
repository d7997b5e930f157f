"""Under CLN with CLBOSS: a banned target that saturation also ignores stays unmanaged for
opens when saturation releases it; CLBOSS gets it back only with the last release."""

from __future__ import annotations

import trio
from lightningd_double import LightningdDouble, Network

from cln.test_node import make_node


async def test_clboss_keeps_a_banned_target_when_saturation_lets_go(network: Network) -> None:
    alice = LightningdDouble(network, "alice", clboss=True)
    peer = "02" + "cc" * 32
    node, _ = make_node(alice)
    with trio.fail_after(10):
        async with alice.running():
            await node.set_open_ignored(peer, True, "banned by the fleet", holder="bans")
            await node.set_open_ignored(peer, True, "saturated", holder="saturation")
            await node.set_open_ignored(peer, False, "below the release share", holder="saturation")
            after_saturation = dict(alice.clboss_unmanaged)
            ignored = node.open_ignored()
            await node.set_open_ignored(peer, False, "ban lifted", holder="bans")
    assert after_saturation == {peer: "open"}
    assert ignored == {peer: "banned by the fleet"}
    assert alice.clboss_unmanaged == {peer: ""}
    assert node.open_ignored() == {}
