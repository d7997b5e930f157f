"""Companion configuration: what the operator sets through `hive-*` options or the CLI."""

from __future__ import annotations

import enum
from pathlib import Path

import attrs


class Governance(enum.Enum):
    """Who decides: the operator, the node within hard limits, or an external oracle."""

    ADVISOR = "advisor"
    AUTONOMOUS = "autonomous"
    ORACLE = "oracle"


@attrs.frozen
class MembershipConfig:
    # How often connected members compare roster digests (and we retry connecting to members).
    sync_interval_s: float = 300.0
    # How often handshake deadlines are checked.
    tick_s: float = 1.0
    # Hive software version announced in a join manifest.
    hive_version: str = "0.1.0"


@attrs.frozen
class HiveConfig:
    data_dir: Path
    governance: Governance = Governance.ADVISOR
    log_level: str = "info"
    # Seconds between liveness pings to connected members.
    ping_interval_s: float = 60.0
    membership: MembershipConfig = attrs.field(factory=MembershipConfig)
