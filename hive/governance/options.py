"""The decision engine's plugin options, validated without I/O (for lightningd's ``init``).

``decisions_from_options(options)`` turns ``hive-proposal-ttl``, ``hive-oracle-url``,
``hive-oracle-timeout``, ``hive-webhook-url`` (repeatable: lightningd passes a list),
``hive-webhook-secret`` and the ``hive-limit-*`` options into a
:class:`~hive.config.DecisionConfig`, or raises :class:`DecisionOptionError` with a one-line
reason naming the option. :data:`OPTIONS` lists them with their defaults and help for the
plugin to register.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from hive.config import DecisionConfig
from hive.governance.limits import DESCRIPTIONS, LIMIT_OPTIONS, LimitInvalid, Limits
from hive.governance.limits import limits_from_options as _limits

MAX_URL_CHARS = 2_000
MAX_WEBHOOKS = 8
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 512
_DURATION = re.compile(r"^(\d{1,7})([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DEFAULT = DecisionConfig()


class DecisionOptionError(ValueError):
    pass


@attrs.frozen
class OptionSpec:
    name: str
    default: str | None
    description: str
    multi: bool = False


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "hive-proposal-ttl",
        "24h",
        "Undecided proposals expire after this long (seconds, or 90m, 24h, 7d)",
    ),
    OptionSpec(
        "hive-oracle-url",
        "",
        "oracle mode: the HTTP(S) endpoint that receives decision packets (docs/ORACLE.md)",
    ),
    OptionSpec(
        "hive-oracle-timeout",
        "30",
        "Seconds an oracle or agent has to answer; no answer in time is DENY",
    ),
    OptionSpec(
        "hive-webhook-url",
        None,
        "POST a signed JSON event per proposal, decision and outcome to this URL (repeatable)",
        multi=True,
    ),
    OptionSpec(
        "hive-webhook-secret",
        "",
        f"HMAC-SHA256 key for X-Hive-Signature (at least {MIN_SECRET_CHARS} characters; "
        "needed with hive-webhook-url)",
    ),
    *(
        OptionSpec(option, str(getattr(Limits(), field)), f"Hard limit: {DESCRIPTIONS[field]}")
        for option, field in LIMIT_OPTIONS.items()
    ),
)


def parse_duration_s(name: str, raw: Any, *, low: int, high: int) -> int:
    text = str(raw).strip().lower()
    match = _DURATION.match(text)
    if not match:
        raise DecisionOptionError(
            f"{name} must be seconds or a duration such as 90m, 24h, 7d; got {raw!r}"
        )
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if not low <= seconds <= high:
        raise DecisionOptionError(f"{name} must be from {low} s to {high} s, got {raw!r}")
    return seconds


def parse_url(name: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_CHARS or raw != raw.strip():
        raise DecisionOptionError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    if any(c.isspace() for c in raw):
        raise DecisionOptionError(f"{name} must not contain spaces, got {raw!r}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise DecisionOptionError(f"{name}: {raw!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DecisionOptionError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    if port == 0:
        raise DecisionOptionError(f"{name}: port 0 in {raw!r}")
    if parts.username or parts.password:
        raise DecisionOptionError(f"{name}: put no credentials in the URL ({parts.hostname})")
    return raw


def _multi(raw: Any) -> list[str]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw):
        return [v for v in raw if v != ""]
    raise DecisionOptionError(f"hive-webhook-url must be URLs, got {raw!r}")


def decisions_from_options(options: Mapping[str, Any]) -> DecisionConfig:
    ttl_raw = options.get("hive-proposal-ttl") or "24h"
    ttl = parse_duration_s("hive-proposal-ttl", ttl_raw, low=60, high=30 * 86_400)
    timeout_raw = options.get("hive-oracle-timeout") or "30"
    timeout = parse_duration_s("hive-oracle-timeout", timeout_raw, low=1, high=600)
    oracle_raw = options.get("hive-oracle-url") or ""
    oracle = parse_url("hive-oracle-url", oracle_raw) if oracle_raw else None
    hooks = [parse_url("hive-webhook-url", u) for u in _multi(options.get("hive-webhook-url"))]
    if len(hooks) > MAX_WEBHOOKS:
        raise DecisionOptionError(f"at most {MAX_WEBHOOKS} hive-webhook-url, got {len(hooks)}")
    if len(set(hooks)) != len(hooks):
        raise DecisionOptionError("hive-webhook-url: the same URL is given twice")
    secret = options.get("hive-webhook-secret") or ""
    if not isinstance(secret, str) or len(secret) > MAX_SECRET_CHARS:
        raise DecisionOptionError(
            f"hive-webhook-secret must be text of at most {MAX_SECRET_CHARS} characters"
        )
    if hooks and len(secret) < MIN_SECRET_CHARS:
        raise DecisionOptionError(
            f"hive-webhook-url needs hive-webhook-secret of at least {MIN_SECRET_CHARS} "
            "characters (receivers check the HMAC signature)"
        )
    if secret and len(secret) < MIN_SECRET_CHARS:
        raise DecisionOptionError(
            f"hive-webhook-secret must be at least {MIN_SECRET_CHARS} characters"
        )
    try:
        limits = _limits(options)
    except LimitInvalid as exc:
        raise DecisionOptionError(str(exc)) from None
    return attrs.evolve(
        _DEFAULT,
        proposal_ttl_s=float(ttl),
        oracle_url=oracle,
        oracle_timeout_s=float(timeout),
        webhook_urls=tuple(hooks),
        webhook_secret=secret or None,
        limits=limits,
    )
