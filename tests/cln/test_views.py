"""Parsing CLN answers into the port's views: real shapes, added and dropped fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.cln import views
from hive.errors import NodeError
from hive.node.port import ChannelState, FeePolicy

ALICE = "02" + "aa" * 32
BOB = "03" + "bb" * 32

GETINFO = {
    "id": ALICE,
    "alias": "ALICE",
    "color": "aaaaaa",
    "num_peers": 1,
    "num_pending_channels": 0,
    "num_active_channels": 1,
    "num_inactive_channels": 0,
    "address": [],
    "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": 9735}],
    "version": "v25.02",
    "blockheight": 110,
    "network": "regtest",
    "fees_collected_msat": 0,
    "lightning-dir": "/tmp/l1/regtest",
    "our_features": {"init": "08a0", "node": "88a0", "channel": "", "invoice": "0200"},
}

LISTPEERCHANNELS = {
    "channels": [
        {
            "peer_id": BOB,
            "peer_connected": True,
            "state": "CHANNELD_NORMAL",
            "short_channel_id": "103x1x0",
            "direction": 0,
            "channel_id": "ab" * 32,
            "funding_txid": "cd" * 32,
            "opener": "local",
            "private": False,
            "to_us_msat": 700_000_000,
            "total_msat": 1_000_000_000,
            "spendable_msat": 690_000_000,
            "receivable_msat": 290_000_000,
            "fee_base_msat": 1000,
            "fee_proportional_millionths": 10,
            "updates": {"local": {"fee_base_msat": 1, "fee_proportional_millionths": 2}},
        },
        {
            "peer_id": BOB,
            "peer_connected": True,
            "state": "CHANNELD_AWAITING_LOCKIN",
            "channel_id": "ef" * 32,
            "to_us_msat": 500_000_000,
            "total_msat": 500_000_000,
        },
    ]
}

LISTCHANNELS = {
    "channels": [
        {
            "source": ALICE,
            "destination": BOB,
            "short_channel_id": "103x1x0",
            "direction": 0,
            "public": True,
            "amount_msat": 1_000_000_000,
            "message_flags": 1,
            "channel_flags": 0,
            "active": True,
            "last_update": 1_700_000_000,
            "base_fee_millisatoshi": 1000,
            "fee_per_millionth": 10,
            "delay": 6,
            "htlc_minimum_msat": 0,
            "htlc_maximum_msat": 990_000_000,
            "features": "",
        }
    ]
}

GETROUTE = {
    "route": [
        {
            "id": BOB,
            "channel": "103x1x0",
            "direction": 0,
            "amount_msat": 100_001_001,
            "delay": 15,
            "style": "tlv",
        },
        {
            "id": ALICE,
            "channel": "104x1x0",
            "direction": 1,
            "amount_msat": 100_000_000,
            "delay": 9,
            "style": "tlv",
        },
    ]
}


def test_getinfo() -> None:
    info = views.parse_getinfo(GETINFO)
    assert (info.node_id, info.alias, info.version, info.network, info.blockheight) == (
        ALICE,
        "ALICE",
        "v25.02",
        "regtest",
        110,
    )
    assert info.features == bytes.fromhex("08a0")


def test_getinfo_without_our_features() -> None:
    bare = {k: v for k, v in GETINFO.items() if k != "our_features"}
    assert views.parse_getinfo(bare).features == b""


def test_peer_channels_balances_fees_and_states() -> None:
    normal, opening = views.parse_peer_channels(LISTPEERCHANNELS)
    assert normal.state is ChannelState.NORMAL
    assert (normal.capacity_msat, normal.local_msat, normal.remote_msat) == (
        1_000_000_000,
        700_000_000,
        300_000_000,
    )
    assert normal.our_fee == FeePolicy(base_msat=1000, ppm=10)  # top level wins over updates
    assert opening.state is ChannelState.OPENING
    assert opening.short_channel_id is None
    assert opening.our_fee == FeePolicy(0, 0)
    assert normal.private is False


def test_private_channels_are_marked() -> None:
    (entry, *_) = LISTPEERCHANNELS["channels"]
    (private,) = views.parse_peer_channels({"channels": [{**entry, "private": True}]})
    assert private.private is True


def test_fee_from_updates_when_top_level_is_dropped() -> None:
    answer = copy.deepcopy(LISTPEERCHANNELS)
    del answer["channels"][0]["fee_base_msat"]
    del answer["channels"][0]["fee_proportional_millionths"]
    assert views.parse_peer_channels(answer)[0].our_fee == FeePolicy(1, 2)


def test_legacy_msat_strings() -> None:
    answer = copy.deepcopy(LISTPEERCHANNELS)
    answer["channels"][0]["to_us_msat"] = "700000000msat"
    answer["channels"][0]["total_msat"] = "1000000sat"
    view = views.parse_peer_channels(answer)[0]
    assert (view.local_msat, view.capacity_msat) == (700_000_000, 1_000_000_000)


@pytest.mark.parametrize(
    ("raw", "msat"),
    [(0, 0), (123, 123), ("123msat", 123), ("5sat", 5000), ("0.001btc", 100_000_000)],
)
def test_msat_forms(raw: object, msat: int) -> None:
    assert views.msat(raw) == msat


@pytest.mark.parametrize("raw", [True, -1, "12", "1.5msat", "msat", "abcsat", None, 1.5])
def test_msat_rejects(raw: object) -> None:
    with pytest.raises(ValueError, match="amount"):
        views.msat(raw)


def test_missing_required_field_names_rpc_and_field() -> None:
    answer = copy.deepcopy(LISTPEERCHANNELS)
    del answer["channels"][1]["state"]
    with pytest.raises(NodeError, match=r"listpeerchannels: required field 'channels\[1\].state'"):
        views.parse_peer_channels(answer)


def test_wrong_type_names_rpc_and_field() -> None:
    with pytest.raises(NodeError, match=r"getinfo: field 'blockheight' should be an integer"):
        views.parse_getinfo({**GETINFO, "blockheight": "110"})


def test_public_channels_and_delays() -> None:
    (channel,) = views.parse_public_channels(LISTCHANNELS)
    assert channel.fee == FeePolicy(1000, 10)
    assert (channel.source, channel.destination, channel.capacity_msat) == (
        ALICE,
        BOB,
        1_000_000_000,
    )
    assert views.public_channel_delays(LISTCHANNELS) == {("103x1x0", ALICE): 6}


def test_route_amounts() -> None:
    route = views.parse_route(GETROUTE)
    assert route.destination == ALICE
    assert route.amount_msat == 100_000_000
    assert route.fee_msat == 1001
    assert [h.delay for h in route.hops] == [15, 9]


def test_empty_route_is_an_error() -> None:
    with pytest.raises(NodeError, match="empty"):
        views.parse_route({"route": []})


def test_node_announcement_and_bare_node() -> None:
    answer = {
        "nodes": [
            {
                "nodeid": BOB,
                "alias": "BOB",
                "color": "bbbbbb",
                "last_timestamp": 1,
                "features": "8800",
                "addresses": [
                    {"type": "ipv4", "address": "10.0.0.1", "port": 9735},
                    {"type": "ipv6", "address": "::1", "port": 9736},
                ],
            }
        ]
    }
    ann = views.parse_node_announcement(answer, BOB)
    assert ann is not None
    assert ann.features == bytes.fromhex("8800")
    assert ann.addresses == ("10.0.0.1:9735", "[::1]:9736")
    assert views.parse_node_announcement({"nodes": [{"nodeid": BOB}]}, BOB) is None
    assert views.parse_node_announcement({"nodes": []}, BOB) is None


def test_onchain_balance_counts_confirmed_unreserved_only() -> None:
    answer = {
        "outputs": [
            {"txid": "aa", "output": 0, "amount_msat": 5_000_000, "status": "confirmed"},
            {"txid": "bb", "output": 0, "amount_msat": 7_000_000, "status": "unconfirmed"},
            {
                "txid": "cc",
                "output": 1,
                "amount_msat": 9_000_000,
                "status": "confirmed",
                "reserved": True,
            },
        ],
        "channels": [],
    }
    assert views.parse_onchain_balance_sat(answer) == 5000


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("CHANNELD_NORMAL", ChannelState.NORMAL),
        ("CHANNELD_AWAITING_LOCKIN", ChannelState.OPENING),
        ("DUALOPEND_OPEN_INIT", ChannelState.OPENING),
        ("CLOSINGD_SIGEXCHANGE", ChannelState.CLOSING),
        ("FUNDING_SPEND_SEEN", ChannelState.CLOSING),
        ("ONCHAIN", ChannelState.CLOSED),
        ("DUALOPEND_SOMETHING_NEW", ChannelState.OPENING),
        ("SOMETHING_ELSE", ChannelState.CLOSING),
    ],
)
def test_channel_states(state: str, expected: ChannelState) -> None:
    assert views.channel_state(state) is expected


def test_funding_fee_from_tx_and_wallet() -> None:
    prev = "11" * 32
    tx = bytearray((2).to_bytes(4, "little") + b"\x00\x01\x01")
    tx += bytes.fromhex(prev)[::-1] + (3).to_bytes(4, "little") + b"\x00" + b"\xff" * 4
    tx += b"\x02"
    for value in (600_000, 398_000):
        tx += value.to_bytes(8, "little") + b"\x01\x51"
    tx += b"\x00" + b"\x00" * 4
    wallet = {"outputs": [{"txid": prev, "output": 3, "amount_msat": 1_000_000_000}]}
    assert views.funding_fee_sat("fundchannel", tx.hex(), wallet) == 2000
    with pytest.raises(NodeError, match="not in listfunds"):
        views.funding_fee_sat("fundchannel", tx.hex(), {"outputs": []})
    with pytest.raises(NodeError, match="cannot read"):
        views.funding_fee_sat("fundchannel", tx.hex()[:40], wallet)


# ---------------------------------------------------------------------------------------------
# Fields CLN adds never change the parse.

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_extra = st.dictionaries(
    st.text(min_size=1, max_size=12).map(lambda k: "x_" + k), _json, max_size=4
)


def _with_extras(obj: Any, extras: dict[str, Any]) -> Any:
    """A copy of ``obj`` with ``extras`` added to every object in it."""
    if isinstance(obj, dict):
        return {**{k: _with_extras(v, extras) for k, v in obj.items()}, **extras}
    if isinstance(obj, list):
        return [_with_extras(v, extras) for v in obj]
    return obj


@given(extras=_extra)
def test_added_fields_never_change_the_parse(extras: dict[str, Any]) -> None:
    assert views.parse_getinfo(_with_extras(GETINFO, extras)) == views.parse_getinfo(GETINFO)
    assert views.parse_peer_channels(_with_extras(LISTPEERCHANNELS, extras)) == (
        views.parse_peer_channels(LISTPEERCHANNELS)
    )
    assert views.parse_public_channels(_with_extras(LISTCHANNELS, extras)) == (
        views.parse_public_channels(LISTCHANNELS)
    )
    assert views.parse_route(_with_extras(GETROUTE, extras)) == views.parse_route(GETROUTE)


_OPTIONAL_CHANNEL_FIELDS = [
    "peer_connected",
    "direction",
    "channel_id",
    "funding_txid",
    "opener",
    "private",
    "spendable_msat",
    "receivable_msat",
    "updates",
]


@given(dropped=st.sets(st.sampled_from(_OPTIONAL_CHANNEL_FIELDS)))
def test_dropped_optional_fields_do_not_matter(dropped: set[str]) -> None:
    answer = copy.deepcopy(LISTPEERCHANNELS)
    for field in dropped:
        answer["channels"][0].pop(field, None)
    assert views.parse_peer_channels(answer) == views.parse_peer_channels(LISTPEERCHANNELS)


def test_getinfo_addresses_announced_first_else_bindings() -> None:
    # v25.12.1 regtest capture: nothing announced, bound on loopback.
    fresh = {
        **GETINFO,
        "address": [],
        "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": 39731}],
    }
    assert views.parse_getinfo(fresh).addresses == ("127.0.0.1:39731",)
    announced = {
        **fresh,
        "address": [
            {"type": "ipv6", "address": "2001:db8::1", "port": 9735},
            {"type": "torv3", "address": "x" * 56 + ".onion", "port": 9735},
            {"type": "websocket", "port": 9736},
        ],
    }
    assert views.parse_getinfo(announced).addresses == (
        "[2001:db8::1]:9735",
        "x" * 56 + ".onion:9735",
    )
    odd = {
        **GETINFO,
        "binding": [
            {"type": "ipv4", "address": "0.0.0.0", "port": 9735},
            {"type": "local socket", "socket": "/tmp/x"},
            {"type": "ipv4", "address": "10.0.0.1", "port": "9735"},
            "garbage",
        ],
    }
    assert views.parse_getinfo(odd).addresses == ()
    assert views.parse_getinfo(GETINFO).addresses == ("127.0.0.1:9735",)
