"""Shared fixtures for the simulated-network tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hive.node.sim.testing import Diamond, Runner, build_diamond


@pytest.fixture
def diamond() -> Diamond:
    return build_diamond()


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    """A Runner whose tasks are cancelled at teardown."""
    async with trio.open_nursery() as nursery:
        yield Runner(nursery)
        nursery.cancel_scope.cancel()
