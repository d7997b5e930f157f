"""Open ignores held per holder (hive/node/ignores.py): a ban and saturation both keep a
target out of opens, and lifting one never releases the other."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hive.node.ignores import OpenIgnores
from hive.node.sim import SimNetwork
from hive.node.sim.graph import Graph

PEER = "02" + "aa" * 32


def test_a_peer_stays_ignored_until_its_last_holder_lets_go() -> None:
    holds = OpenIgnores()
    assert holds.set(PEER, True, "banned by the fleet", "bans")
    assert holds.set(PEER, True, "saturated", "saturation")
    assert holds.reasons() == {PEER: "banned by the fleet; saturated"}
    assert holds.set(PEER, False, "below the release share", "saturation")  # the ban holds
    assert holds.reasons() == {PEER: "banned by the fleet"}
    assert not holds.set(PEER, False, "", "bans")
    assert holds.reasons() == {}
    assert not holds.set(PEER, False, "", "bans")  # releasing twice is harmless


@given(st.lists(st.tuples(st.sampled_from(["bans", "saturation", "open"]), st.booleans())))
def test_ignored_exactly_while_some_holder_holds(steps: list[tuple[str, bool]]) -> None:
    holds = OpenIgnores()
    held: set[str] = set()
    for holder, on in steps:
        (held.add if on else held.discard)(holder)
        assert holds.set(PEER, on, holder, holder) == bool(held)
    assert set(holds.holders(PEER)) == held


async def test_the_simulated_node_keeps_a_ban_when_saturation_is_lifted() -> None:
    net = SimNetwork(Graph())
    alice = net.add_node("alice")
    await alice.set_open_ignored(PEER, True, "banned by the fleet", holder="bans")
    await alice.set_open_ignored(PEER, True, "saturated", holder="saturation")
    await alice.set_open_ignored(PEER, False, "released", holder="saturation")
    assert alice.open_ignored == {PEER: "banned by the fleet"}
    await alice.set_open_ignored(PEER, False, "", holder="bans")
    assert alice.open_ignored == {}
