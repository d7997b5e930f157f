"""Hold times and who closed a channel, parsed from the notifications CLN v25.12.1 sent
(``/work/shared/cln-v25.12.1``) and from the shapes lightningd's source gives a force close."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.cln.events import EventRejected, RawEvent, to_node_event
from hive.cln.views import starts_unilateral_close
from hive.node.port import ChannelState, ChannelStateChanged, Forwarded, StateCause

CAPTURES = Path("/work/shared/cln-v25.12.1")
PEER = "03" + "bb" * 32
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="CLN captures not present")


def notification(name: str) -> RawEvent:
    received = json.loads((CAPTURES / f"notification.{name}.json").read_text())["received"]
    return RawEvent(received["method"], received["params"])


@needs_captures
def test_the_hold_time_of_a_real_settled_and_failed_forward() -> None:
    settled = to_node_event(notification("forward_event.settled"))
    assert isinstance(settled, Forwarded)
    assert settled.settled
    assert settled.hold_ms == 133  # 1796157342.297866 - 1796157342.1646643 s
    failed = to_node_event(notification("forward_event.failed"))
    assert isinstance(failed, Forwarded)
    assert not failed.settled
    assert failed.hold_ms == 63
    local = to_node_event(notification("forward_event.local_failed"))
    assert isinstance(local, Forwarded)
    assert local.hold_ms is None  # no resolved_time: failed at once, nothing held
    assert to_node_event(notification("forward_event.offered")) is None


@needs_captures
def test_real_channel_state_changes_carry_their_cause_and_are_no_force_close() -> None:
    opened_by_peer = to_node_event(notification("channel_state_changed.accepter-awaiting-lockin"))
    assert isinstance(opened_by_peer, ChannelStateChanged)
    assert opened_by_peer.cause is StateCause.REMOTE
    assert opened_by_peer.old_state is None
    normal = to_node_event(notification("channel_state_changed.normal"))
    assert isinstance(normal, ChannelStateChanged)
    assert normal.cause is StateCause.USER
    for event in (opened_by_peer, normal):
        assert not event.unilateral
        assert not event.forced_by_peer


def state_changed(old: str | None, new: str, cause: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "peer_id": PEER,
        "channel_id": "b2" * 32,
        "short_channel_id": "103x4x0",
        "timestamp": "2026-12-01T20:40:00.000Z",
        "new_state": new,
        "message": "Onchain funding spend",
    }
    if old is not None:
        body["old_state"] = old
    if cause is not None:
        body["cause"] = cause
    return {"channel_state_changed": body}


@pytest.mark.parametrize(
    ("old", "new", "cause", "forced_by_peer"),
    [
        # The peer broadcast its commitment: lightningd sees the funding spent, closer unknown.
        ("CHANNELD_NORMAL", "FUNDING_SPEND_SEEN", "onchain", True),
        # The peer sent an error: we broadcast our commitment because of it.
        ("CHANNELD_NORMAL", "AWAITING_UNILATERAL", "remote", True),
        # Our own unilateral close (`close` timed out, or an operator asked).
        ("CHANNELD_NORMAL", "AWAITING_UNILATERAL", "user", False),
        ("CHANNELD_SHUTTING_DOWN", "AWAITING_UNILATERAL", "local", False),
        # The next steps of a close already counted, and negotiated closes.
        ("AWAITING_UNILATERAL", "FUNDING_SPEND_SEEN", "remote", False),
        ("FUNDING_SPEND_SEEN", "ONCHAIN", "onchain", False),
        ("CLOSINGD_COMPLETE", "FUNDING_SPEND_SEEN", "remote", False),
        ("CLOSINGD_SIGEXCHANGE", "FUNDING_SPEND_SEEN", "onchain", False),
        ("CHANNELD_NORMAL", "CHANNELD_SHUTTING_DOWN", "remote", False),
        # No cause field (an old node): we cannot tell who closed, so nobody is blamed.
        ("CHANNELD_NORMAL", "FUNDING_SPEND_SEEN", None, False),
    ],
)
def test_who_started_a_unilateral_close(
    old: str, new: str, cause: str | None, forced_by_peer: bool
) -> None:
    event = to_node_event(RawEvent("channel_state_changed", state_changed(old, new, cause)))
    assert isinstance(event, ChannelStateChanged)
    assert event.forced_by_peer is forced_by_peer
    assert event.new_state is ChannelState.CLOSING or new == "ONCHAIN"


def test_an_unknown_cause_reads_as_unknown() -> None:
    raw = state_changed("CHANNELD_NORMAL", "FUNDING_SPEND_SEEN", "aliens")
    event = to_node_event(RawEvent("channel_state_changed", raw))
    assert isinstance(event, ChannelStateChanged)
    assert event.cause is StateCause.UNKNOWN
    assert event.unilateral
    assert not event.forced_by_peer


def forward(**times: object) -> RawEvent:
    body = {"in_channel": "1x1x1", "out_channel": "1x2x1", "in_msat": 10, "out_msat": 9,
            "status": "failed", **times}  # fmt: skip
    return RawEvent("forward_event", {"forward_event": body})


def test_hold_times_that_make_no_sense() -> None:
    stepped_back = to_node_event(forward(received_time=100.0, resolved_time=99.0))
    assert isinstance(stepped_back, Forwarded)
    assert stepped_back.hold_ms is None
    for bad in ("100.5", True, float("nan")):
        with pytest.raises(EventRejected, match="malformed_notification"):
            to_node_event(forward(received_time=100.0, resolved_time=bad))


@given(st.floats(0, 2e9), st.floats(0, 30 * 86_400))
def test_hold_is_resolved_minus_received(received: float, held: float) -> None:
    event = to_node_event(forward(received_time=received, resolved_time=received + held))
    assert isinstance(event, Forwarded)
    assert event.hold_ms is not None
    assert abs(event.hold_ms - held * 1000) <= 1


@given(st.sampled_from(["CHANNELD_NORMAL", "CLOSINGD_COMPLETE", "AWAITING_UNILATERAL", None]))
def test_a_close_is_started_once(old: str | None) -> None:
    """Along any one close, at most one step counts as its start."""
    first = starts_unilateral_close(old, "AWAITING_UNILATERAL")
    path = [old, "AWAITING_UNILATERAL", "FUNDING_SPEND_SEEN", "ONCHAIN"]
    starts = sum(starts_unilateral_close(a, b) for a, b in itertools.pairwise(path) if b)
    assert starts == (1 if first else 0)
