"""Who may use the web server: the token in the data directory and the address it listens on.

The token is 32 random bytes (URL-safe base64), created on first use in
``<data-dir>/web_token`` with mode 0600, and shown by ``hive-web-token``. Every API call and
websocket connection presents it (``Authorization: Bearer <token>``, or ``?token=`` where a
browser cannot set headers); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import unquote

import attrs

TOKEN_FILE = "web_token"
DEFAULT_PORT = 8484
DEFAULT_BIND = f"127.0.0.1:{DEFAULT_PORT}"
OFF = ("off", "none", "no", "false", "")


class BindError(ValueError):
    """A ``hive-web-bind`` value we cannot use; the message says why."""


@attrs.frozen
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def hypercorn(self) -> str:
        """The form hypercorn's ``bind`` takes (``[::1]:8484`` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_bind(text: str) -> Bind | None:
    """``host:port`` (``[v6]:port`` for IPv6), or ``off`` -> None. Pure; raises BindError."""
    value = text.strip()
    if value.lower() in OFF:
        return None
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise BindError(f"hive-web-bind: expected [IPv6]:PORT, got {text!r}")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise BindError(f"hive-web-bind: expected HOST:PORT or off, got {text!r}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise BindError(
                f"hive-web-bind: {host!r} is not an IP address (or localhost)"
            ) from None
    try:
        port = int(port_text)
    except ValueError:
        raise BindError(f"hive-web-bind: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise BindError(f"hive-web-bind: port {port} is out of range 0..65535")
    return Bind(host, port)


def load_or_create_token(data_dir: Path) -> str:
    """The web token, created with mode 0600 on first call (blocking: run in a thread)."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        # O_EXCL: two processes racing create one file; the loser reads the winner's token.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_token(data_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    if len(token) < 16:
        raise ValueError(f"{path} holds no usable token; delete it to create a new one")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, 0o600)  # readable by others: tighten rather than refuse to start
    return token


def token_matches(expected: str, presented: str | None) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def presented_token(headers: list[tuple[bytes, bytes]], query: bytes) -> str | None:
    """The token a request presents: ``Authorization: Bearer`` first, else ``token=``."""
    for name, raw in headers:
        if name.lower() == b"authorization":
            scheme, _, credential = raw.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return credential.strip()
    for part in query.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key == "token":
            return unquote(value)
    return None


__all__ = [
    "DEFAULT_BIND",
    "Bind",
    "BindError",
    "load_or_create_token",
    "parse_bind",
    "presented_token",
    "token_matches",
]
