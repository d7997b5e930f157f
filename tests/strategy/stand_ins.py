"""Stand-ins for what the strategy actor talks to besides its store (membership, transport,
engine, state map, node), for tests of its bookkeeping and for the SIGKILL child."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import nacl.signing

from hive.actors.strategy import Strategy
from hive.config import StrategyConfig
from hive.node.port import ChannelState, ChannelView, FeePolicy
from hive.store import Store


@attrs.frozen
class Cert:
    node_id: bytes


@attrs.frozen
class Body:
    cert: Cert
    admitted_ms: int = 0


@attrs.frozen
class Record:
    body: Body


def record(node: str) -> Record:
    return Record(Body(Cert(bytes.fromhex(node))))


@attrs.define
class Roster:
    hive_id: bytes
    keys: dict[bytes, str]  # hive key -> node id of the members
    members: Sequence[str] = ()

    def by_hive_key(self, key: bytes) -> Record | None:
        node = self.keys.get(key)
        return None if node is None else record(node)

    def active(self) -> dict[bytes, Record]:
        return {bytes.fromhex(n): record(n) for n in self.members}


@attrs.define
class Membership:
    roster: Roster
    node_id: bytes
    is_member: bool = True
    connected: frozenset[str] = frozenset()

    def fleet_peers(self) -> list[str]:
        return []


@attrs.define
class Stats:
    dropped: collections.Counter[str] = attrs.Factory(collections.Counter)


class Transport:
    def __init__(self) -> None:
        self.stats = Stats()

    def subscribe(self, *_: Any) -> None: ...

    def subscribe_events(self, *_: Any) -> None: ...

    async def send(self, *_: Any) -> None: ...


class Quiet:
    """The engine and the state map: nothing registered, no state records."""

    def register_kind(self, *_: Any, **__: Any) -> None: ...

    def entry(self, _: str) -> None:
        return None


def channel(peer: str, scid: str, state: ChannelState = ChannelState.NORMAL) -> ChannelView:
    return ChannelView(peer, scid, state, 10**9, 5 * 10**8, 5 * 10**8, FeePolicy(1000, 100))


class Node:
    def __init__(self, channels: list[ChannelView]) -> None:
        self.channels = channels

    async def list_channels(self) -> list[ChannelView]:
        return self.channels


def make_strategy(
    *,
    store: Store,
    key: nacl.signing.SigningKey,
    membership: Membership,
    node: Node,
    transport: Transport,
    now_ms: Callable[[], int],
    config: StrategyConfig,
) -> Strategy:
    quiet = Quiet()
    return Strategy(
        node=node,  # type: ignore[arg-type]
        transport=transport,
        membership=membership,
        statemap=quiet,
        store=store,
        engine=quiet,  # type: ignore[arg-type]
        signing_key=key,
        now_ms=now_ms,
        config=config,
    )
