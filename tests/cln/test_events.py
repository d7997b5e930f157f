"""Hook calls and notifications into port events."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.cln.events import HIVE_MESSAGE_TYPE, EventRejected, RawEvent, to_node_event
from hive.node.port import (
    ChannelOpened,
    ChannelState,
    ChannelStateChanged,
    CustomMessage,
    Forwarded,
    PeerConnected,
    PeerDisconnected,
    StateCause,
)

PEER = "03" + "bb" * 32
OURS = f"{HIVE_MESSAGE_TYPE:04x}"


def test_our_custommsg_becomes_a_custom_message() -> None:
    event = to_node_event(RawEvent("custommsg", {"peer_id": PEER, "payload": OURS + "0102"}))
    assert event == CustomMessage(peer_id=PEER, message=bytes.fromhex(OURS + "0102"))


def test_legacy_message_field_is_accepted() -> None:
    event = to_node_event(RawEvent("custommsg", {"peer_id": PEER, "message": OURS}))
    assert event == CustomMessage(peer_id=PEER, message=bytes.fromhex(OURS))


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"peer_id": PEER, "payload": "0007aabb"}, "foreign_type"),
        ({"peer_id": PEER, "payload": "b1"}, "malformed_custommsg"),
        ({"peer_id": PEER, "payload": "zzzz"}, "malformed_custommsg"),
        ({"peer_id": PEER, "payload": OURS + "0"}, "malformed_custommsg"),
        ({"payload": OURS}, "malformed_custommsg"),
        ({"peer_id": PEER, "payload": 7}, "malformed_custommsg"),
    ],
)
def test_rejected_custommsgs(params: dict[str, object], reason: str) -> None:
    with pytest.raises(EventRejected) as info:
        to_node_event(RawEvent("custommsg", params))
    assert info.value.reason == reason


@given(payload=st.binary(min_size=2, max_size=64))
def test_only_our_type_passes(payload: bytes) -> None:
    raw = RawEvent("custommsg", {"peer_id": PEER, "payload": payload.hex()})
    if payload[:2] == HIVE_MESSAGE_TYPE.to_bytes(2, "big"):
        assert to_node_event(raw) == CustomMessage(PEER, payload)
    else:
        with pytest.raises(EventRejected, match="foreign_type"):
            to_node_event(raw)


@pytest.mark.parametrize("wrapped", [True, False])
def test_notifications_new_and_old_shapes(wrapped: bool) -> None:
    def raw(topic: str, body: dict[str, object]) -> RawEvent:
        return RawEvent(topic, {topic: body} if wrapped else body)

    assert to_node_event(raw("connect", {"id": PEER, "direction": "in"})) == PeerConnected(PEER)
    assert to_node_event(raw("disconnect", {"id": PEER})) == PeerDisconnected(PEER)
    assert to_node_event(
        raw("channel_opened", {"id": PEER, "funding_msat": 100_000_000, "funding_txid": "aa"})
    ) == ChannelOpened(peer_id=PEER, funding_msat=100_000_000, ours=False)
    assert to_node_event(
        raw(
            "channel_state_changed",
            {
                "peer_id": PEER,
                "channel_id": "aa",
                "short_channel_id": "103x1x0",
                "old_state": "CHANNELD_NORMAL",
                "new_state": "CHANNELD_SHUTTING_DOWN",
                "cause": "remote",
            },
        )
    ) == ChannelStateChanged(
        PEER, "103x1x0", ChannelState.NORMAL, ChannelState.CLOSING, cause=StateCause.REMOTE
    )


def test_forward_events() -> None:
    settled = {
        "payment_hash": "ff" * 32,
        "in_channel": "103x2x1",
        "out_channel": "103x1x1",
        "in_msat": 100_001_001,
        "out_msat": 100_000_000,
        "fee_msat": 1001,
        "status": "settled",
    }
    event = to_node_event(RawEvent("forward_event", {"forward_event": settled}))
    assert event == Forwarded("103x2x1", "103x1x1", 100_001_001, 100_000_000, settled=True)
    assert isinstance(event, Forwarded)
    assert event.fee_msat == 1001
    offered = {**settled, "status": "offered"}
    assert to_node_event(RawEvent("forward_event", {"forward_event": offered})) is None
    failed = {"in_channel": "103x2x1", "in_msat": 5, "status": "local_failed"}
    assert to_node_event(RawEvent("forward_event", {"forward_event": failed})) == Forwarded(
        "103x2x1", "", 5, 0, settled=False
    )


def test_malformed_notification() -> None:
    with pytest.raises(EventRejected, match="malformed_notification"):
        to_node_event(RawEvent("disconnect", {"disconnect": {"id": 5}}))
    with pytest.raises(EventRejected, match="unknown_topic"):
        to_node_event(RawEvent("block_added", {"block_added": {"height": 1}}))
