"""The companion's Ed25519 hive key: created on first run, kept in the data directory.

The key file holds the 32-byte seed, mode 0600. It is never logged and never sent; only the
public half travels, inside signed frames. Blocking file I/O: call through ``trio.to_thread``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nacl.signing

SEED_BYTES = 32

KEY_FILE = "hive_key"


class KeyFileError(Exception):
    """The key file exists but cannot be used (wrong size or permissions too open)."""


def load_or_create(data_dir: Path) -> nacl.signing.SigningKey:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)
    key = nacl.signing.SigningKey.generate()
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(key))
        f.flush()
        os.fsync(f.fileno())
    return key


def _load(path: Path) -> nacl.signing.SigningKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    seed = path.read_bytes()
    if len(seed) != SEED_BYTES:
        raise KeyFileError(f"{path} holds {len(seed)} bytes, expected 32: not a hive key")
    return nacl.signing.SigningKey(seed)
