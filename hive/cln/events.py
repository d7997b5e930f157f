"""Hook calls and notifications from lightningd, as the node port's events.

The plugin bridge hands over each ``custommsg`` hook call and each subscribed notification as
a :class:`RawEvent` (topic and JSON params, untouched). :func:`to_node_event` turns it into a
:data:`~hive.node.port.NodeEvent`, or raises :class:`EventRejected` with a short stable
``reason`` (counted per reason by :class:`~hive.cln.node.ClnNode`) and a readable ``detail``.

Notification params come in two shapes: CLN >= 23.x wraps the payload in an object named after
the topic (``{"connect": {...}}``); older versions sent it flat. Both are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from hive.cln.views import channel_state, msat, starts_unilateral_close, state_cause
from hive.errors import NodeError
from hive.node.port import (
    ChannelOpened,
    ChannelStateChanged,
    CustomMessage,
    Forwarded,
    NodeEvent,
    PeerConnected,
    PeerDisconnected,
)

# The hive's BOLT 1 message type: odd (it's ok to be odd), in the custom range >= 32768.
HIVE_MESSAGE_TYPE = 0xB1E5  # 45541

# Topics the plugin subscribes to whose payloads become events (shutdown is handled apart).
EVENT_TOPICS = ("connect", "disconnect", "channel_opened", "channel_state_changed", "forward_event")
CUSTOMMSG = "custommsg"

# BOLT 1: a message is at most 65535 bytes, type included.
MAX_MESSAGE_LEN = 65535


@attrs.frozen
class RawEvent:
    """One hook call or notification exactly as lightningd sent it."""

    topic: str
    params: Mapping[str, Any]


class EventRejected(Exception):
    """A hook call or notification that is not (or not a valid) event for the hive."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def to_node_event(
    raw: RawEvent, *, message_types: Collection[int] = (HIVE_MESSAGE_TYPE,)
) -> NodeEvent | None:
    """The port event for ``raw``; None for a notification that carries no event (a forward
    still in flight). Raises EventRejected for what must be dropped."""
    if raw.topic == CUSTOMMSG:
        return _custommsg(raw.params, message_types)
    body = raw.params.get(raw.topic, raw.params)
    if not isinstance(body, Mapping):
        raise EventRejected("malformed_notification", f"{raw.topic}: payload is not an object")
    try:
        if raw.topic == "connect":
            return PeerConnected(peer_id=_str(body, "id"), features=_hex(body, "features"))
        if raw.topic == "disconnect":
            return PeerDisconnected(peer_id=_str(body, "id"))
        if raw.topic == "channel_opened":
            # Only sent when a peer funded a channel with us (we did not fund it).
            return ChannelOpened(
                peer_id=_str(body, "id"), funding_msat=msat(body.get("funding_msat")), ours=False
            )
        if raw.topic == "channel_state_changed":
            old = body.get("old_state")
            old_name = old if isinstance(old, str) and old else None
            new_name = _str(body, "new_state")
            return ChannelStateChanged(
                peer_id=_str(body, "peer_id"),
                short_channel_id=body.get("short_channel_id") or None,
                old_state=None if old_name is None else channel_state(old_name),
                new_state=channel_state(new_name),
                cause=state_cause(body.get("cause")),
                unilateral=starts_unilateral_close(old_name, new_name),
            )
        if raw.topic == "forward_event":
            return _forward(body)
    except (KeyError, TypeError, ValueError, NodeError) as exc:
        raise EventRejected("malformed_notification", f"{raw.topic}: {exc}") from exc
    raise EventRejected("unknown_topic", raw.topic)


def _custommsg(params: Mapping[str, Any], message_types: Collection[int]) -> CustomMessage:
    peer_id = params.get("peer_id")
    # "payload" since CLN 0.10.x; "message" before.
    payload = params.get("payload", params.get("message"))
    if not isinstance(peer_id, str) or not isinstance(payload, str):
        raise EventRejected("malformed_custommsg", "peer_id or payload missing")
    if len(payload) < 4:
        raise EventRejected("malformed_custommsg", f"payload {payload!r} is shorter than a type")
    try:
        msg_type = int(payload[:4], 16)
    except ValueError:
        raise EventRejected("malformed_custommsg", "type is not hex") from None
    if msg_type not in message_types:
        raise EventRejected("foreign_type", f"type {msg_type} from {peer_id}")
    try:
        message = bytes.fromhex(payload)
    except ValueError:
        raise EventRejected("malformed_custommsg", f"payload from {peer_id} is not hex") from None
    if len(message) > MAX_MESSAGE_LEN:
        raise EventRejected("malformed_custommsg", f"{len(message)} bytes from {peer_id}")
    return CustomMessage(peer_id=peer_id, message=message)


def _forward(body: Mapping[str, Any]) -> Forwarded | None:
    status = _str(body, "status")
    if status == "offered":
        return None  # the outcome comes in a later notification
    out_channel = body.get("out_channel")
    return Forwarded(
        in_channel=_str(body, "in_channel"),
        out_channel=out_channel if isinstance(out_channel, str) else "",
        in_msat=msat(body.get("in_msat", 0)),
        out_msat=msat(body.get("out_msat", 0)),
        settled=status == "settled",
        hold_ms=_hold_ms(body),
    )


def _hold_ms(body: Mapping[str, Any]) -> int | None:
    """``resolved_time - received_time`` (seconds as floats since CLN 0.10) in milliseconds;
    None when either is absent (``local_failed`` has no ``resolved_time``) or the node's clock
    stepped back between them."""
    received, resolved = body.get("received_time"), body.get("resolved_time")
    if received is None or resolved is None:
        return None
    for value in (received, resolved):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"received_time/resolved_time should be numbers, got {value!r}")
    held = resolved - received
    return None if held < 0 else round(held * 1000)


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {key!r} missing or not a string")
    return value


def _hex(body: Mapping[str, Any], key: str) -> bytes:
    value = body.get(key)
    if not isinstance(value, str):
        return b""
    return bytes.fromhex(value)
