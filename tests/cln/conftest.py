"""Fixtures for the CLN front: lightningd doubles on a shared network.

Tests that run the plugin as a real process (or call lightningd's socket from worker threads)
use trio's real clock: a MockClock would jump ahead while they wait for another process or a
thread. Every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lightningd_double import Network

ECHO_PLUGIN = [sys.executable, str(Path(__file__).with_name("echo_plugin.py"))]
HIVE_PLUGIN = [sys.executable, "-m", "hive.cln"]


@pytest.fixture
def network() -> Network:
    return Network()
