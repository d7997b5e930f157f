"""A restart between commitment and reveal still reveals the same report with the same salt:
the committing process is killed with SIGKILL (tests/strategy/crash_child.py), a new one on
the same data directory reveals, and the reveal matches the commitment made before the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hive.protocol.strategy import StrategyReport, commitment_of
from hive.protocol.wire import cbor
from hive.protocol.wire.codec import CONVERTER

CHILD = Path(__file__).with_name("crash_child.py")


def child(data_dir: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_sigkill_between_commit_and_reveal_reveals_the_committed_report(tmp_path: Path) -> None:
    first = child(tmp_path, "commit")
    assert first.stdout is not None
    committed = json.loads(first.stdout.readline())
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    first.stdout.close()

    second = child(tmp_path, "reveal")
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0
    pending_line, report_hex = out.strip().splitlines()
    assert json.loads(pending_line) == {"pending": 1}
    report = CONVERTER.structure(cbor.decode(bytes.fromhex(report_hex)), StrategyReport)
    assert report.salt.hex() == committed["salt"]
    assert commitment_of(report.body, report.salt).hex() == committed["commitment"]
    assert report.salt != bytes(32)
