"""What lightningd notifies when a peer jams or force-closes, shaped like CLN v25.12.1.

``forward_event`` follows the captures ``notification.forward_event.{settled,failed}.json``
(``received_time`` / ``resolved_time`` as float seconds, ``fee_msat``, ``style``, an index).
A peer's force close follows lightningd's own path for a commitment it did not broadcast
(``onchaind_funding_spent``: the funding spend is seen with cause ``onchain`` when no closer was
known, then onchaind's reply moves it ONCHAIN); the state-change payload has the keys of
``notification.channel_state_changed.normal.json``.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightningd_double.double import LightningdDouble

_INDEX = itertools.count(1)
_HTLC = itertools.count(0)


def forward_event(
    *,
    in_channel: str,
    out_channel: str,
    in_msat: int,
    out_msat: int,
    status: str,
    received_time: float,
    resolved_time: float | None,
) -> dict[str, Any]:
    """One ``forward_event`` payload (``status`` settled, failed or offered)."""
    payment_hash = hashlib.sha256(f"{in_channel}/{next(_INDEX)}".encode()).hexdigest()
    body: dict[str, Any] = {
        "updated_index" if status != "offered" else "created_index": next(_INDEX),
        "payment_hash": payment_hash,
        "in_channel": in_channel,
        "in_htlc_id": next(_HTLC),
        "out_channel": out_channel,
        "in_msat": in_msat,
        "out_msat": out_msat,
        "fee_msat": in_msat - out_msat,
        "status": status,
        "style": "tlv",
        "received_time": received_time,
    }
    if resolved_time is not None:
        body["resolved_time"] = resolved_time
    return body


def _state_changed(
    ld: LightningdDouble, peer: str, scid: str, old: str, new: str, cause: str, message: str
) -> dict[str, Any]:
    channel = ld.network.channels[scid]
    now = datetime.datetime.now(datetime.UTC)
    return {
        "peer_id": peer,
        "channel_id": hashlib.sha256(channel.funding_txid.encode()).hexdigest(),
        "short_channel_id": scid,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "old_state": old,
        "new_state": new,
        "cause": cause,
        "message": message,
    }


def peer_force_closes(ld: LightningdDouble, scid: str) -> None:
    """The peer at the other end of ``scid`` broadcasts its commitment: ``ld`` sees the funding
    spent (cause ``onchain``) and hands the channel to onchaind (ONCHAIN)."""
    channel = ld.network.channels[scid]
    peer = channel.other(ld.node_id)
    old = channel.state
    steps = [
        (old, "FUNDING_SPEND_SEEN", "Onchain funding spend"),
        ("FUNDING_SPEND_SEEN", "ONCHAIN", "Onchain init reply"),
    ]
    for before, after, message in steps:
        channel.state = after
        ld.notify_soon(
            "channel_state_changed",
            _state_changed(ld, peer, scid, before, after, "onchain", message),
        )
