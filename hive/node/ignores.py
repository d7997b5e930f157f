"""Who keeps a peer out of channel opens: several holders, one peer, no stolen releases.

Bans (``bans``), saturation (``saturation``) and an open in progress (``open``) each ask the
node port to ignore a target for opens (``NodePort.set_open_ignored``), for their own reasons
and on their own schedules. A peer stays ignored while any holder holds it: one holder's
release never lifts another's hold. Both port implementations keep an :class:`OpenIgnores`
and tell other automation (CLBOSS) only what it implies: ignored while some hold remains,
released when the last one goes. Pure state, no I/O.
"""

from __future__ import annotations

NodeId = str
MAX_HOLDERS = 16  # distinct holder names per peer (a bound: holders are our own actors)


class OpenIgnores:
    def __init__(self) -> None:
        self._holds: dict[NodeId, dict[str, str]] = {}

    def set(self, peer: NodeId, ignored: bool, reason: str, holder: str) -> bool:
        """Hold or release ``peer`` for ``holder``; True while any holder still holds it."""
        holds = self._holds.get(peer)
        if ignored:
            if holds is None:
                holds = self._holds[peer] = {}
            if holder in holds or len(holds) < MAX_HOLDERS:
                holds[holder] = reason
        elif holds is not None:
            holds.pop(holder, None)
            if not holds:
                del self._holds[peer]
        return peer in self._holds

    def holders(self, peer: NodeId) -> dict[str, str]:
        return dict(self._holds.get(peer, {}))

    def reasons(self) -> dict[NodeId, str]:
        """Every ignored peer with its holders' reasons, in holder order, joined by "; "."""
        return {
            peer: "; ".join(reason for _, reason in sorted(holds.items()))
            for peer, holds in self._holds.items()
        }
