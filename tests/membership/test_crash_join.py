"""A join survives a SIGKILL of either side between the admission and the stored Welcome
(issue 8 item 5): after a restart, retrying `hive-join` with the same ticket completes it.

Each case runs tests/membership/crash_join.py in a subprocess (founder and candidate on the
simulated network, real SQLite files), kills it with SIGKILL at one point, then runs it again
on the same data directories. The old code left the candidate listed active by the founder
with no genesis of its own: every retry was refused "already-member".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("crash_join.py")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "point", ["grant-unadmitted", "welcome-unsent", "adopt-start", "adopt-records"]
)
def test_a_join_killed_before_the_welcome_is_stored_can_be_retried(
    tmp_path: Path, point: str
) -> None:
    first = _run(str(tmp_path), "first", point)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    again = _run(str(tmp_path), "again")
    assert again.returncode == 0, again.stderr[-2000:]
    report: dict[str, Any] = json.loads(again.stdout.strip().splitlines()[-1])
    assert report["join"] == "joined"
    assert report["founder"] == {"member": True, "members": 2}
    assert report["candidate"] == {"member": True, "members": 2}


def test_the_harness_joins_when_nothing_is_killed(tmp_path: Path) -> None:
    done = _run(str(tmp_path), "first", "none")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["join"] == "joined"
    assert report["candidate"] == {"member": True, "members": 2}
