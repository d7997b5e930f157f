"""Frames accepted shortly before a crash are not accepted again after it (issue 8, item 8).

A receiver runs in its own process (tests/replay_child.py) on the wall clock with a real SQLite
store; it is killed with SIGKILL after accepting frames it never saved, and restarted on the
same data directory; the same frames are then replayed to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nacl.signing

from hive.protocol.messages import Ping
from hive.protocol.wire.facade import HiveWire

CHILD = Path(__file__).with_name("replay_child.py")
NEVER_S = "3600"  # no periodic save during the test: only the ones it asks for


class Child:
    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), NEVER_S],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, lines: list[str]) -> list[str]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines))
        self.process.stdin.flush()
        return [self.process.stdout.readline().strip() for _ in lines]

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def _frames(sender: HiveWire, count: int) -> list[str]:
    now = int(time.time() * 1000)
    return [
        sender.pack(Ping(nonce=i.to_bytes(8, "big")), now, msg_id=i)[0].hex() for i in range(count)
    ]


def test_frames_accepted_before_a_sigkill_are_refused_after_restart(tmp_path: Path) -> None:
    sender = HiveWire(nacl.signing.SigningKey(b"\x61" * 32), first_seq=1_000)
    child = Child(tmp_path)
    try:
        assert child.ask(["save"]) == ["saved"]  # up and running (frames before its start
        saved, unsaved = _frames(sender, 64), _frames(sender, 128)  # would be refused)
        assert child.ask(saved) == ["ok"] * 64
        assert child.ask(["save"]) == ["saved"]
        assert child.ask(unsaved) == ["ok"] * 128  # accepted after the last save ...
        child.kill()  # ... and never saved
    finally:
        child.close()
    time.sleep(0.01)  # the restart comes at least a millisecond after the last frame
    child = Child(tmp_path)
    try:
        answers = child.ask(saved + unsaved)
        assert "ok" not in answers, f"{answers.count('ok')} frames accepted again"
        assert set(answers) <= {"stale", "replay"}
        # The restarted receiver takes new frames.
        assert child.ask(_frames(sender, 3)) == ["ok"] * 3
    finally:
        child.close()
