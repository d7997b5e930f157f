"""Settings the real-node tests need before pyln-testing is imported.

pyln-testing gives every node a ``--grpc-port`` unless ``RUST=0``: a lightningd built without
cln-grpc (``./configure --disable-rust``, or a distribution package without Rust) then exits with
"--grpc-port=...: unknown option" and every test fails. The hive never uses gRPC, so RUST is 0
unless the environment says otherwise.

It also holds the one fixture every real-node test uses, ``hive_plugin``.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

os.environ.setdefault("RUST", "0")


@pytest.fixture
def hive_plugin(tmp_path: Path) -> Path:
    """An executable lightningd can start: this interpreter running ``python -m hive.cln``."""
    script = tmp_path / "hive-plugin"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hive.cln "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script
