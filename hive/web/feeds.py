"""The feed messages observers receive, and the pure rules that produce them (no I/O, no clock).

Every message is one JSON object with a version field ``v`` (see ``docs/FEEDS.md``). The
``state`` topic is a snapshot on subscribe and then *changes*: for each keyed section of the
state (``members``, ``channels``, ``targets``, ``ignored``, ``fleet``) the entries set and the
keys removed, so ``apply_change(old, diff_state(old, new)) == new`` (tested with Hypothesis).
The ``events`` topic is derived from the same two states (a member appearing is a join, a new
edge an open, ...) plus whatever other actors publish; each event carries the ``why`` an
operator reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

VERSION = 1
TOPICS = ("state", "events", "proposals", "ledger")
# Keyed sections of the state topic: each maps a key (a node id, or "fleet") to a JSON value.
SECTIONS = ("fleet", "members", "channels", "targets", "ignored")
# A member's channels shown in the feed: the largest ones, so one message stays bounded.
MAX_EDGES_PER_MEMBER = 500
# Events kept for a subscriber's snapshot.
RECENT_EVENTS = 100
# What a client may send us (subscribe, an oracle answer): anything longer is refused.
MAX_CLIENT_MESSAGE = 16 * 1024
MAX_REASON = 500

JsonObj = dict[str, Any]
State = dict[str, dict[str, Any]]


class ClientMessageError(ValueError):
    """A client message we refuse; ``str(exc)`` is the reason sent back to the client."""


def encode(message: Mapping[str, Any]) -> str:
    """One wire text: compact JSON, keys sorted so equal messages are equal strings."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True, allow_nan=False)


def envelope(topic: str, kind: str, seq: int, data: Any) -> JsonObj:
    """A server message: ``{"v", "topic", "type", "seq", "data"}``."""
    return {"v": VERSION, "topic": topic, "type": kind, "seq": seq, "data": data}


def hello(topics: Sequence[str]) -> JsonObj:
    """The first message on every feed connection: the version and the topics served."""
    return {"v": VERSION, "type": "hello", "topics": list(topics)}


def error(reason: str) -> JsonObj:
    return {"v": VERSION, "type": "error", "reason": reason}


# ----------------------------------------------------------------------------------------------
# The state topic


def _fees(policy: Mapping[str, Any] | None, kept: Mapping[str, Any] | None) -> Any:
    """The policy our channels with one member apply and since when (None if not applied)."""
    if policy is None or kept is None:
        return None
    return {"base_msat": policy["base_msat"], "ppm": policy["ppm"], "since_ms": kept["since_ms"]}


def build_state(
    *,
    node_id: str,
    hive_id: str | None,
    members: Sequence[Mapping[str, Any]],
    view: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    ignored: Mapping[str, str],
    member_fees: Mapping[str, Any] | None = None,
) -> State:
    """The ``state`` topic's value from the runtime's own JSON (``hive-members`` rows, the
    fleet view, each member's record as ``hive-state MEMBER`` gives it, the ignored targets).

    ``fleet`` holds the fleet-wide figures; ``members`` one entry per roster member with its
    liquidity when a fresh record is held; ``channels`` each member's edges (largest first,
    at most :data:`MAX_EDGES_PER_MEMBER`) with the local share that colours them; ``targets``
    the external nodes the fleet reaches and which members reach them. ``member_fees`` is the
    fee policy actor's status (``hive-status``'s ``member_fees``, None when it is off): a
    member's ``fees`` is the policy our channels with it apply and since when, or None.
    """
    summaries = {m["member"]: m for m in view.get("members", ())}
    stale = set(view.get("stale", ()))
    policy = None if member_fees is None else member_fees.get("policy")
    kept = {} if member_fees is None else member_fees.get("member_channels", {})
    member_section: dict[str, Any] = {}
    for row in members:
        nid = str(row["node_id"])
        summary = summaries.get(nid)
        member_section[nid] = {
            "role": row.get("role"),
            "status": row.get("status"),
            "self": bool(row.get("self")),
            "since_ms": row.get("since_ms"),
            "rtt_ms": row.get("rtt_ms"),
            "fresh": summary is not None,
            "stale": nid in stale,
            "channels": None if summary is None else summary["channels"],
            "capacity_sat": None if summary is None else summary["capacity_sat"],
            "outbound_msat": None if summary is None else summary["outbound_msat"],
            "inbound_msat": None if summary is None else summary["inbound_msat"],
            "onchain_sat": None if summary is None else summary["onchain_sat"],
            "clamped": False if summary is None else bool(summary["clamped"]),
            "fees": _fees(policy, kept.get(nid)),
        }
    channels: dict[str, Any] = {}
    for nid, record in records.items():
        topology = record.get("state", {}).get("topology", ())
        edges = sorted(topology, key=lambda e: (-int(e["capacity_sat"]), str(e["peer"])))
        channels[nid] = {
            "edges": [
                {
                    "peer": e["peer"],
                    "capacity_sat": e["capacity_sat"],
                    "local_share_ppm": e["local_share_ppm"],
                }
                for e in edges[:MAX_EDGES_PER_MEMBER]
            ],
            "total": len(edges),
            "version": record.get("version"),
        }
    targets = {
        t["target"]: {
            "members": list(t["members"]),
            "fleet_capacity_sat": t["fleet_capacity_sat"],
            "public_capacity_sat": t["public_capacity_sat"],
            "share": t["share"],
        }
        for t in view.get("targets", ())
    }
    fleet = {
        "node_id": node_id,
        "hive_id": hive_id,
        "members": len(member_section),
        "fresh": len(summaries),
        "coverage": view.get("coverage", 0),
        "fleet_capacity_sat": view.get("fleet_capacity_sat", 0),
    }
    return {
        "fleet": {"fleet": fleet},
        "members": member_section,
        "channels": channels,
        "targets": targets,
        "ignored": {target: {"reason": reason} for target, reason in ignored.items()},
    }


def empty_state() -> State:
    return {section: {} for section in SECTIONS}


def diff_state(old: State, new: State) -> JsonObj:
    """The change from ``old`` to ``new``: per section, ``set`` (key -> new value) and
    ``remove`` (sorted keys); sections without a change are left out, so an empty dict means
    nothing changed."""
    change: JsonObj = {}
    for section in SECTIONS:
        before, after = old.get(section, {}), new.get(section, {})
        changed = {k: v for k, v in after.items() if before.get(k, _MISSING) != v}
        removed = sorted(k for k in before if k not in after)
        if changed or removed:
            change[section] = {"set": changed, "remove": removed}
    return change


def apply_change(state: State, change: Mapping[str, Any]) -> State:
    """``state`` with ``change`` applied (what a client does with a ``change`` message)."""
    result = {section: dict(state.get(section, {})) for section in SECTIONS}
    for section, delta in change.items():
        entries = result[section]
        for key in delta.get("remove", ()):
            entries.pop(key, None)
        entries.update(delta.get("set", {}))
    return result


_MISSING = object()


# ----------------------------------------------------------------------------------------------
# The events topic


@attrs.frozen
class Event:
    """One thing that happened, with the reason an operator reads (``why``)."""

    kind: str  # member-joined, member-left, channel-opened, channel-closed, clamped, ...
    at_ms: int
    why: str
    subject: str | None = None  # the member (or proposal) it is about
    detail: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> JsonObj:
        return {
            "kind": self.kind,
            "at_ms": self.at_ms,
            "why": self.why,
            "subject": self.subject,
            "detail": dict(self.detail),
        }


def events_between(old: State, new: State, now_ms: int) -> list[Event]:
    """The events a change of state shows: members joining and leaving, channels opened and
    closed (edges appearing in or leaving a member's record), claims clamped, targets ignored
    for saturation or released. Deterministic order (by section, then key)."""
    events: list[Event] = []
    if not old.get("fleet"):
        return events  # the first look at the fleet: what is there already is not news
    before, after = old.get("members", {}), new.get("members", {})
    for nid in sorted(set(after) - set(before)):
        events.append(Event("member-joined", now_ms, "admitted to the roster", nid))
    for nid in sorted(set(before) - set(after)):
        events.append(Event("member-left", now_ms, "no longer in the roster", nid))
    for nid in sorted(set(before) & set(after)):
        was, now = before[nid], after[nid]
        if was.get("status") != now.get("status"):
            why = f"status {was.get('status')} -> {now.get('status')}"
            events.append(Event("member-status", now_ms, why, nid))
        if now.get("clamped") and not was.get("clamped"):
            why = "its published channels exceed what the public graph shows; cut to the graph"
            events.append(Event("clamped", now_ms, why, nid))
    old_channels, new_channels = old.get("channels", {}), new.get("channels", {})
    for nid in sorted(new_channels):
        if nid not in old_channels:
            continue  # a member's first record: its channels are not news
        was_peers = {e["peer"]: e for e in old_channels[nid]["edges"]}
        now_peers = {e["peer"]: e for e in new_channels[nid]["edges"]}
        for peer in sorted(set(now_peers) - set(was_peers)):
            sat = now_peers[peer]["capacity_sat"]
            events.append(
                Event(
                    "channel-opened",
                    now_ms,
                    f"a {sat:,} sat channel appears in the member's published state",
                    nid,
                    {"peer": peer, "capacity_sat": sat},
                )
            )
        for peer in sorted(set(was_peers) - set(now_peers)):
            events.append(
                Event(
                    "channel-closed",
                    now_ms,
                    "the channel left the member's published state",
                    nid,
                    {"peer": peer},
                )
            )
    old_ignored, new_ignored = old.get("ignored", {}), new.get("ignored", {})
    for target in sorted(set(new_ignored) - set(old_ignored)):
        why = str(new_ignored[target].get("reason", "saturated"))
        events.append(Event("target-ignored", now_ms, why, None, {"target": target}))
    for target in sorted(set(old_ignored) - set(new_ignored)):
        why = "fleet share fell below the release threshold"
        events.append(Event("target-released", now_ms, why, None, {"target": target}))
    return events


# ----------------------------------------------------------------------------------------------
# What clients send


@attrs.frozen
class Subscribe:
    topics: tuple[str, ...]


def parse_client_message(text: str | bytes) -> JsonObj:
    """A client's message as a JSON object with ``v`` == :data:`VERSION` and a string
    ``type``; raises :class:`ClientMessageError` with the reason otherwise."""
    if isinstance(text, bytes):
        raise ClientMessageError("binary messages are not accepted; send JSON text")
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ClientMessageError(f"message longer than {MAX_CLIENT_MESSAGE} characters")
    try:
        message = json.loads(text)
    except ValueError:
        raise ClientMessageError("not JSON") from None
    if not isinstance(message, dict):
        raise ClientMessageError("a message must be a JSON object")
    if message.get("v") != VERSION:
        raise ClientMessageError(f"unsupported version {message.get('v')!r}; this server speaks 1")
    if not isinstance(message.get("type"), str):
        raise ClientMessageError("a message needs a string 'type'")
    return message


def parse_subscribe(message: Mapping[str, Any], served: Iterable[str]) -> Subscribe:
    """``{"v": 1, "type": "subscribe", "topics": [...]}``: the topics, each served here."""
    topics = message.get("topics")
    if not isinstance(topics, list) or not topics or len(topics) > len(TOPICS):
        raise ClientMessageError(f"'topics' must be a non-empty list drawn from {list(TOPICS)}")
    available = set(served)
    chosen: list[str] = []
    for topic in topics:
        if topic not in TOPICS:
            raise ClientMessageError(f"unknown topic {topic!r}; topics are {list(TOPICS)}")
        if topic not in available:
            raise ClientMessageError(f"topic {topic!r} is not served by this companion")
        if topic not in chosen:
            chosen.append(topic)
    return Subscribe(tuple(chosen))


__all__ = [
    "MAX_CLIENT_MESSAGE",
    "SECTIONS",
    "TOPICS",
    "VERSION",
    "ClientMessageError",
    "Event",
    "Subscribe",
    "apply_change",
    "build_state",
    "diff_state",
    "empty_state",
    "encode",
    "envelope",
    "error",
    "events_between",
    "parse_client_message",
    "parse_subscribe",
]
