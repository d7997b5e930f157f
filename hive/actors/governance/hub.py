"""A publish/subscribe hub whose publisher never waits: one bounded channel per subscriber.

``publish`` puts the item into every subscriber's channel without waiting; a subscriber whose
channel is full loses that item, and the loss is counted (per hub and per subscription), so a
slow consumer (a browser tab, a dead webhook) can never slow the publisher down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")


class TooManySubscribers(Exception):
    pass


@attrs.define
class _Subscription(Generic[T]):
    send: trio.MemorySendChannel[T]
    dropped: int = 0


class EventHub(Generic[T]):
    def __init__(self, *, max_subscribers: int = 64, max_capacity: int = 4096) -> None:
        self._subs: list[_Subscription[T]] = []
        self.max_subscribers = max_subscribers
        self.max_capacity = max_capacity
        self.published = 0
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @asynccontextmanager
    async def subscribe(self, capacity: int = 64) -> AsyncIterator[trio.MemoryReceiveChannel[T]]:
        """Every item published from now until the block ends."""
        if not 1 <= capacity <= self.max_capacity:
            raise ValueError(f"capacity must be from 1 to {self.max_capacity}, got {capacity}")
        if len(self._subs) >= self.max_subscribers:
            raise TooManySubscribers(f"at most {self.max_subscribers} subscribers")
        send, receive = trio.open_memory_channel[T](capacity)
        sub = _Subscription(send)
        self._subs.append(sub)
        try:
            async with receive:
                yield receive
        finally:
            self._subs.remove(sub)
            send.close()

    def publish(self, item: T) -> None:
        self.published += 1
        for sub in self._subs:
            try:
                sub.send.send_nowait(item)
            except trio.WouldBlock:
                sub.dropped += 1
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
