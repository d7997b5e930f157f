"""What ``hive demo`` adds for the live view: the first companion (the one in advisor mode,
whose proposals wait for Approve) serves the page, and the demo prints its address and token."""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from hive.config import WebConfig
from hive.runtime import Runtime
from hive.web.access import Bind

log = logging.getLogger(__name__)

PROPOSER = "demo"


def demo_web_config(bind: Bind | None, speed: float) -> WebConfig:
    """The first companion's web settings: the state refreshed twice a real second."""
    return WebConfig(bind=bind, refresh_s=max(0.5 * speed, 0.1))


async def announce(runtime: Runtime, say: Callable[[str], None], *, timeout_s: float) -> None:
    """Say the live view's address (with the token) once the server listens: ``hive demo``
    pins it in its event log, so it stays on screen."""
    web = runtime.web
    if web is None:
        return
    with trio.move_on_after(timeout_s):
        await web.listening.wait()
    url = web.view_url()
    if url is None:
        say(f"live view: not listening ({web.error or 'still starting'})")
        return
    say(f"live view: {url}")
    say(f"web token: {web.token}  (hive-web-token shows it again)")


__all__ = ["announce", "demo_web_config"]
