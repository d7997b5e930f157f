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
class HiveConfig:
    data_dir: Path
    governance: Governance = Governance.ADVISOR
    log_level: str = "info"
    # Seconds between liveness pings to connected members.
    ping_interval_s: float = 60.0
    # Fellow companions to talk to. Membership (genesis, invites, joins) will maintain this list;
    # until then it is configured.
    fleet_peers: tuple[str, ...] = ()
