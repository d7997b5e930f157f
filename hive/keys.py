"""The companion's Ed25519 hive key: created on first run, kept in the data directory.

The key file holds the 32-byte seed, mode 0600. It is never logged and never sent; only the
public half travels, inside signed frames. Blocking file I/O: call through ``trio.to_thread``.

Creation is atomic: the seed is written to a temporary file (mode 0600 from its creation),
flushed to disk, then linked into place under its final name (a hard link never replaces an
existing file, so two processes racing on one data directory both end up with the one key that
won), and the directory is synced. A crash at any point leaves either no key file (the next
start creates one) or a complete one, never an empty or partial key.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import nacl.signing

SEED_BYTES = 32

KEY_FILE = "hive_key"
_TEMP_PREFIX = ".hive_key.tmp-"


class KeyFileError(Exception):
    """The key file exists but cannot be used (wrong size or permissions too open)."""


def load_or_create(data_dir: Path) -> nacl.signing.SigningKey:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / KEY_FILE
    if path.exists():
        return _load(path)
    _remove_leftovers(data_dir)
    key = nacl.signing.SigningKey.generate()
    temp = data_dir / f"{_TEMP_PREFIX}{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(key))
            f.flush()
            os.fsync(f.fileno())
        try:
            _place(temp, path)
        except FileExistsError:
            return _load(path)  # another process created it first: use theirs
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _sync_dir(data_dir)
    return key


def _place(temp: Path, path: Path) -> None:
    """Give ``temp`` the name ``path`` atomically, never replacing an existing ``path``."""
    try:
        os.link(temp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A file system without hard links: rename, after checking nobody got there first.
        if path.exists():
            raise FileExistsError(path) from exc
        os.rename(temp, path)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(data_dir: Path) -> None:
    """Temporary files of a creation that was killed halfway hold a key nobody uses."""
    for leftover in data_dir.glob(f"{_TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _load(path: Path) -> nacl.signing.SigningKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    seed = path.read_bytes()
    if len(seed) != SEED_BYTES:
        raise KeyFileError(f"{path} holds {len(seed)} bytes, expected 32: not a hive key")
    return nacl.signing.SigningKey(seed)
