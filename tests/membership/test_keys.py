"""The hive key file survives a SIGKILL at any point of its creation (issue 8 item 7).

Each test runs ``load_or_create`` in a subprocess that kills itself with SIGKILL at one point
(after the file is created and before the seed is written, before it is flushed, before
the file gets its final name), then starts again
on the same data directory: the second start must come up with a usable key, and a key that
was already in place must never change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hive import keys

# Runs in a subprocess: patch one os function to SIGKILL the process when it is called.
_KILL_AT = """
import os, signal, sys
from pathlib import Path
from hive import keys
point = sys.argv[2]
real = getattr(os, point)
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(os, point, die)
keys.load_or_create(Path(sys.argv[1]))
"""


def _killed_at(data_dir: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILL_AT, str(data_dir), point], timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", ["fdopen", "fsync", "link"])
def test_a_kill_while_creating_the_key_leaves_a_usable_data_directory(
    tmp_path: Path, point: str
) -> None:
    data_dir = tmp_path / "data"
    _killed_at(data_dir, point)
    key = keys.load_or_create(data_dir)  # the next start
    assert keys.load_or_create(data_dir) == key
    path = data_dir / keys.KEY_FILE
    assert path.read_bytes() == bytes(key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in data_dir.iterdir()] == [keys.KEY_FILE]  # no leftovers


def test_an_existing_key_is_never_replaced(tmp_path: Path) -> None:
    key = keys.load_or_create(tmp_path)
    _killed_at(tmp_path, "stat")  # a later start killed while looking at it
    assert keys.load_or_create(tmp_path) == key


def test_a_damaged_or_exposed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / keys.KEY_FILE
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(keys.KeyFileError, match="holds 5 bytes"):
        keys.load_or_create(tmp_path)
    path.write_bytes(b"k" * 32)
    os.chmod(path, 0o644)
    with pytest.raises(keys.KeyFileError, match="readable by others"):
        keys.load_or_create(tmp_path)
