"""Where members can be reached, kept across restarts.

Custom messages need a connection, and a node that restarted knows only node ids: a member
without a channel to us is not in the public graph and lightningd's ``connect`` answers "no
address known for peer". So the address given to ``hive-join`` and the addresses each member
publishes in its state record (``MemberState.addresses``) are persisted (store tables of
:mod:`hive.store.fleet`) and tried, in that order, when a plain connect fails. Addresses are
untrusted: each is parsed and bounded here and used for nothing but a connection attempt,
whose handshake checks the node id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from hive.errors import HiveError
from hive.node.port import NodeId, NodePort
from hive.protocol.gossip.state import MAX_ADDRESS_BYTES, MAX_ADDRESSES
from hive.store import Store
from hive.store import fleet as tables

log = logging.getLogger(__name__)


def parse_address(text: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port), or None when malformed."""
    if not 0 < len(text.encode("utf-8", "surrogatepass")) <= MAX_ADDRESS_BYTES:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not 0 < port < 65536 or not host or not host.isprintable() or not host.isascii():
        return None
    if any(c.isspace() or c in "@/[]" for c in host):
        return None
    return host, port


def clean(addresses: Iterable[str]) -> tuple[str, ...]:
    """The well-formed ones, at most MAX_ADDRESSES, without repeats, in order."""
    out: list[str] = []
    for text in addresses:
        if parse_address(text) is not None and text not in out:
            out.append(text)
    return tuple(out[:MAX_ADDRESSES])


class AddressBook:
    """Member addresses by source ('join' first, then 'record'), in memory and in the store."""

    def __init__(self, store: Store, now_ms: Callable[[], int], own: Sequence[str] = ()) -> None:
        self.store = store
        self.now_ms = now_ms
        self.own = clean(own)  # what we publish in our own record
        self._known: dict[NodeId, dict[str, tuple[str, ...]]] = {}

    async def load(self) -> None:
        stored = await tables.addresses(self.store)
        self._known = {
            node: {source: clean(found) for source, found in sources.items()}
            for node, sources in stored.items()
        }

    def of(self, member: NodeId) -> list[str]:
        """Every address known for ``member``: the one given to hive-join first."""
        sources = self._known.get(member, {})
        out: list[str] = []
        for source in tables.ADDRESS_SOURCES:
            out.extend(a for a in sources.get(source, ()) if a not in out)
        return out

    async def learn(self, member: NodeId, addresses: Iterable[str], source: str) -> None:
        """Keep what ``source`` says about ``member`` (persisted only when it changed)."""
        found = clean(addresses)
        sources = self._known.setdefault(member, {})
        if sources.get(source, ()) == found:
            return
        await tables.set_addresses(self.store, member, source, found, self.now_ms())
        sources[source] = found
        log.info("contact: %s reachable at %s (%s)", member, ", ".join(found) or "-", source)

    async def forget(self, member: NodeId) -> None:
        if self._known.pop(member, None) is not None:
            await tables.forget_member(self.store, member)

    async def connect(self, node: NodePort, member: NodeId) -> None:
        """Connect to ``member``: plainly, then at each address known for it. Raises the
        last failure (a HiveError) when none works."""
        try:
            await node.connect(member)
            return
        except HiveError as exc:
            failure = exc
        for text in self.of(member):
            parsed = parse_address(text)
            if parsed is None:
                continue
            try:
                await node.connect(member, parsed[0], parsed[1])
                return
            except HiveError as exc:
                failure = exc
        raise failure


__all__ = ["AddressBook", "clean", "parse_address"]
