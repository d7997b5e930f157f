"""Parse lightningd's JSON-RPC answers into the node port's typed views, in one place.

Every parser takes the ``result`` object of one RPC call and tolerates what CLN adds or drops
between versions: unknown fields are ignored, a missing optional field takes its default, and a
missing or ill-typed *required* field raises :class:`~hive.errors.NodeError` naming the RPC and
the field, so a changed answer fails loudly at the border instead of deep inside an actor.

Amounts: CLN >= 23.x writes ``*_msat`` fields as integers; older versions wrote strings such as
``"123msat"``. :func:`msat` accepts both (and ``"5sat"`` / ``"0.1btc"`` for completeness).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from hive.errors import NodeError
from hive.node.port import (
    ChannelState,
    ChannelView,
    FeePolicy,
    NodeAnnouncement,
    NodeId,
    NodeInfo,
    OpenResult,
    PaymentResult,
    PaymentState,
    PaymentStatus,
    PeerView,
    PublicChannel,
    Route,
    RouteHop,
    StateCause,
)

log = logging.getLogger(__name__)

JsonObj = Mapping[str, Any]

# CLN channel states (lightningd/channel_state.h, listpeerchannels' schema) to the port's coarse
# life cycle. Unknown states fall back by prefix (see channel_state()).
_STATES: dict[str, ChannelState] = {
    "OPENINGD": ChannelState.OPENING,
    "CHANNELD_AWAITING_LOCKIN": ChannelState.OPENING,
    "DUALOPEND_OPEN_INIT": ChannelState.OPENING,
    "DUALOPEND_OPEN_COMMIT_READY": ChannelState.OPENING,
    "DUALOPEND_OPEN_COMMITTED": ChannelState.OPENING,
    "DUALOPEND_AWAITING_LOCKIN": ChannelState.OPENING,
    "CHANNELD_NORMAL": ChannelState.NORMAL,
    # A splice in progress keeps the channel usable.
    "CHANNELD_AWAITING_SPLICE": ChannelState.NORMAL,
    "CHANNELD_SHUTTING_DOWN": ChannelState.CLOSING,
    "CLOSINGD_SIGEXCHANGE": ChannelState.CLOSING,
    "CLOSINGD_COMPLETE": ChannelState.CLOSING,
    "AWAITING_UNILATERAL": ChannelState.CLOSING,
    "FUNDING_SPEND_SEEN": ChannelState.CLOSING,
    # The funding output is spent on chain: the channel is gone, only outputs are resolved.
    "ONCHAIN": ChannelState.CLOSED,
    "CLOSED": ChannelState.CLOSED,
}
_warned_states: set[str] = set()


def channel_state(state: str) -> ChannelState:
    """Map a CLN channel state name to :class:`ChannelState`.

    A state this table does not know (a newer CLN) is mapped by its daemon prefix, and
    otherwise to CLOSING: unusable for payments and not counted as a live channel, which is the
    safe reading. Each unknown name is logged once.
    """
    known = _STATES.get(state)
    if known is not None:
        return known
    if state.startswith(("OPENINGD", "DUALOPEND")):
        mapped = ChannelState.OPENING
    else:
        mapped = ChannelState.CLOSING
    if state not in _warned_states:
        _warned_states.add(state)
        log.warning("unknown CLN channel state %r, treated as %s", state, mapped.value)
    return mapped


# A unilateral close shows in channel_state_changed as AWAITING_UNILATERAL (we are about to
# broadcast our commitment, on our own decision or because the peer sent an error) or as
# FUNDING_SPEND_SEEN straight from a live channel (a commitment hit the chain without a
# negotiated close). FUNDING_SPEND_SEEN after a negotiated close (CLOSINGD_*), after our own
# AWAITING_UNILATERAL, or again on a reorg is not a new unilateral close.
_NOT_A_NEW_FORCE_CLOSE = frozenset(
    {
        "CLOSINGD_SIGEXCHANGE",
        "CLOSINGD_COMPLETE",
        "AWAITING_UNILATERAL",
        "FUNDING_SPEND_SEEN",
        "ONCHAIN",
        "CLOSED",
    }
)


def starts_unilateral_close(old_state: str | None, new_state: str) -> bool:
    """True when the CLN state change ``old_state`` -> ``new_state`` is the first step of a
    unilateral (force) close, so each close is counted once."""
    if new_state == "AWAITING_UNILATERAL":
        return old_state != "AWAITING_UNILATERAL"
    if new_state == "FUNDING_SPEND_SEEN":
        return old_state not in _NOT_A_NEW_FORCE_CLOSE
    return False


def state_cause(cause: object) -> StateCause:
    """CLN's ``cause`` (``unknown``, ``local``, ``user``, ``remote``, ``protocol``,
    ``onchain``); absent or a value this table does not know reads as UNKNOWN."""
    if not isinstance(cause, str):
        return StateCause.UNKNOWN
    try:
        return StateCause(cause)
    except ValueError:
        return StateCause.UNKNOWN


# ---------------------------------------------------------------------------------------------
# Field access


class _Fields:
    """Typed access to one JSON object of one RPC answer, with errors that name both."""

    def __init__(self, obj: object, rpc: str, where: str = "") -> None:
        if not isinstance(obj, Mapping):
            raise NodeError(f"{rpc}: expected an object{_at(where)}, got {type(obj).__name__}")
        self.obj: JsonObj = obj
        self.rpc = rpc
        self.where = where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _missing(self, key: str) -> NodeError:
        return NodeError(f"{self.rpc}: required field {self._path(key)!r} is missing")

    def _bad(self, key: str, want: str, value: object) -> NodeError:
        return NodeError(f"{self.rpc}: field {self._path(key)!r} should be {want}, got {value!r}")

    def text(self, key: str) -> str:
        if key not in self.obj:
            raise self._missing(key)
        value = self.obj[key]
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def opt_str(self, key: str, default: str | None = None) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def integer(self, key: str) -> int:
        if key not in self.obj:
            raise self._missing(key)
        return self._as_int(key, self.obj[key])

    def opt_int(self, key: str, default: int) -> int:
        value = self.obj.get(key)
        if value is None:
            return default
        return self._as_int(key, value)

    def _as_int(self, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer", value)
        return value

    def flag(self, key: str, default: bool | None = None) -> bool:
        value = self.obj.get(key)
        if value is None:
            if default is None:
                raise self._missing(key)
            return default
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean", value)
        return value

    def amount(self, key: str) -> int:
        if key not in self.obj:
            raise self._missing(key)
        return self._as_msat(key, self.obj[key])

    def opt_amount(self, key: str, default: int) -> int:
        value = self.obj.get(key)
        if value is None:
            return default
        return self._as_msat(key, value)

    def _as_msat(self, key: str, value: object) -> int:
        try:
            return msat(value)
        except ValueError as exc:
            raise self._bad(key, "an amount in msat", value) from exc

    def array(self, key: str) -> list[Any]:
        if key not in self.obj:
            raise self._missing(key)
        value = self.obj[key]
        if not isinstance(value, list):
            raise self._bad(key, "an array", value)
        return value

    def opt_array(self, key: str) -> list[Any]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(key, "an array", value)
        return value

    def hexbytes(self, key: str) -> bytes:
        value = self.opt_str(key, "")
        assert value is not None
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise self._bad(key, "hex", value) from exc

    def child(self, key: str, index: int | None = None) -> _Fields:
        where = self._path(key) if index is None else f"{self._path(key)}[{index}]"
        value = self.obj.get(key) if index is None else self.array(key)[index]
        if value is None:
            raise self._missing(key)
        return _Fields(value, self.rpc, where)

    def items(self, key: str) -> list[_Fields]:
        where = self._path(key)
        return [_Fields(v, self.rpc, f"{where}[{i}]") for i, v in enumerate(self.array(key))]


def _at(where: str) -> str:
    return f" at {where!r}" if where else ""


_UNIT_MSAT = {"msat": 1, "sat": 1000, "btc": 100_000_000_000}


def msat(value: object) -> int:
    """An amount in millisatoshi from CLN JSON: an integer, or a legacy string with a unit
    suffix (``"123msat"``, ``"5sat"``, ``"0.001btc"``). Raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative amount: {value}")
        return value
    if isinstance(value, str):
        for unit, factor in _UNIT_MSAT.items():
            if value.endswith(unit):
                number = value[: -len(unit)]
                try:
                    amount = Decimal(number) * factor
                except InvalidOperation as exc:
                    raise ValueError(f"not an amount: {value!r}") from exc
                if amount < 0 or amount != amount.to_integral_value() or not number:
                    raise ValueError(f"not a whole msat amount: {value!r}")
                return int(amount)
    raise ValueError(f"not an amount: {value!r}")


# ---------------------------------------------------------------------------------------------
# Parsers, one per RPC answer


def parse_getinfo(result: object) -> NodeInfo:
    f = _Fields(result, "getinfo")
    return NodeInfo(
        node_id=f.text("id"),
        alias=f.opt_str("alias", "") or "",
        version=f.opt_str("version", "") or "",
        network=f.text("network"),
        blockheight=f.integer("blockheight"),
        features=_our_init_features(f),
        addresses=_our_addresses(f.obj),
    )


_WILDCARDS = {"0.0.0.0", "::", ""}


def _our_addresses(obj: Mapping[str, object]) -> tuple[str, ...]:
    """``host:port`` from ``address`` (announced), else from ``binding`` (skipping wildcard
    binds and local sockets); entries of unexpected shape are skipped, not fatal."""
    found: list[str] = []
    for key in ("address", "binding"):
        entries = obj.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            kind, host, port = entry.get("type"), entry.get("address"), entry.get("port")
            if kind not in ("ipv4", "ipv6", "torv2", "torv3", "dns") or not isinstance(host, str):
                continue
            if type(port) is not int or not 0 < port < 65536 or host in _WILDCARDS:
                continue
            text = f"[{host}]:{port}" if kind == "ipv6" else f"{host}:{port}"
            if text not in found:
                found.append(text)
        if found:
            break
    return tuple(found[:4])


def _our_init_features(f: _Fields) -> bytes:
    """``our_features.init`` (absent when the node is still starting or on old versions)."""
    if not isinstance(f.obj.get("our_features"), Mapping):
        return b""
    return f.child("our_features").hexbytes("init")


def parse_peers(result: object) -> list[PeerView]:
    """``listpeers``: every peer we know, connected or not (``features`` only when connected)."""
    f = _Fields(result, "listpeers")
    return [
        PeerView(
            node_id=p.text("id"), connected=p.flag("connected"), features=p.hexbytes("features")
        )
        for p in f.items("peers")
    ]


def parse_peer_channels(result: object) -> list[ChannelView]:
    """``listpeerchannels``: our channels with balances and our own fee policy.

    ``local_msat`` is ``to_us_msat`` and ``remote_msat`` the rest of ``total_msat``, so the two
    add up to the capacity. Our fee is the top-level ``fee_base_msat`` /
    ``fee_proportional_millionths`` (CLN >= 23.02), else ``updates.local``, else 0/0 (a channel
    still opening may not have one yet).
    """
    f = _Fields(result, "listpeerchannels")
    views = []
    for c in f.items("channels"):
        total = c.opt_amount("total_msat", 0)
        to_us = c.opt_amount("to_us_msat", 0)
        views.append(
            ChannelView(
                peer_id=c.text("peer_id"),
                short_channel_id=c.opt_str("short_channel_id"),
                state=channel_state(c.text("state")),
                capacity_msat=total,
                local_msat=to_us,
                remote_msat=max(total - to_us, 0),
                our_fee=_our_fee(c),
                private=c.flag("private", False),
            )
        )
    return views


def _our_fee(c: _Fields) -> FeePolicy:
    if "fee_base_msat" in c.obj or "fee_proportional_millionths" in c.obj:
        return FeePolicy(
            base_msat=c.opt_amount("fee_base_msat", 0),
            ppm=c.opt_int("fee_proportional_millionths", 0),
        )
    updates = c.obj.get("updates")
    if isinstance(updates, Mapping) and isinstance(updates.get("local"), Mapping):
        local = c.child("updates").child("local")
        return FeePolicy(
            base_msat=local.opt_amount("fee_base_msat", 0),
            ppm=local.opt_int("fee_proportional_millionths", 0),
        )
    return FeePolicy(base_msat=0, ppm=0)


def parse_public_channels(result: object) -> list[PublicChannel]:
    """``listchannels``: one entry per channel direction in the gossip graph."""
    f = _Fields(result, "listchannels")
    return [
        PublicChannel(
            short_channel_id=c.text("short_channel_id"),
            source=c.text("source"),
            destination=c.text("destination"),
            capacity_msat=c.amount("amount_msat"),
            fee=FeePolicy(
                base_msat=c.integer("base_fee_millisatoshi"),
                ppm=c.integer("fee_per_millionth"),
            ),
            active=c.flag("active", default=True),
        )
        for c in f.items("channels")
    ]


def public_channel_delays(result: object) -> dict[tuple[str, str], int]:
    """``listchannels``: the CLTV delta of each (short_channel_id, source) direction."""
    f = _Fields(result, "listchannels")
    return {
        (c.text("short_channel_id"), c.text("source")): c.integer("delay")
        for c in f.items("channels")
    }


def parse_node_announcement(result: object, node_id: NodeId) -> NodeAnnouncement | None:
    """``listnodes id=...``: the node's announcement, or None when we have none.

    A node we know only from channel announcements is listed with its ``nodeid`` alone; that
    is "no announcement" too.
    """
    f = _Fields(result, "listnodes")
    for n in f.items("nodes"):
        if n.text("nodeid") != node_id:
            continue
        if "last_timestamp" not in n.obj:
            return None
        addresses = tuple(_address(a) for a in n.items("addresses") if "addresses" in n.obj)
        return NodeAnnouncement(
            node_id=node_id,
            alias=n.opt_str("alias", "") or "",
            features=n.hexbytes("features"),
            addresses=addresses,
        )
    return None


def _address(a: _Fields) -> str:
    host = a.opt_str("address")
    port = a.opt_int("port", 0)
    if host is None:
        return a.text("type")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def parse_route(result: object, rpc: str = "getroute") -> Route:
    """``getroute``: hops with the amount and CLTV each hop's node receives."""
    f = _Fields(result, rpc)
    hops = tuple(
        RouteHop(
            node_id=h.text("id"),
            short_channel_id=h.text("channel"),
            amount_msat=h.amount("amount_msat"),
            delay=h.integer("delay"),
        )
        for h in f.items("route")
    )
    if not hops:
        raise NodeError(f"{rpc}: the route is empty")
    return Route(hops=hops)


@attrs.frozen
class RouteLeg:
    """One ``getroutes`` route as sendpay hops, and what enters its first hop.

    ``start_amount_msat`` / ``start_delay`` are ``path[0]``'s: what the source node itself
    must receive (it forwards into the first channel), so a caller that prepends a hop *to*
    the source uses them for that hop."""

    start_amount_msat: int
    start_delay: int
    hops: tuple[RouteHop, ...]


def parse_getroutes(result: object) -> RouteLeg:
    """``getroutes`` (askrene): the most probable route, converted to sendpay hops.

    ``path[i].amount_msat`` and ``path[i].delay`` are what arrives at the node at the *start*
    of hop i, so sendpay hop i (to ``path[i].next_node_id`` over ``path[i]``'s channel) takes
    ``path[i + 1]``'s amount and delay, and the last hop the route's ``amount_msat`` and
    ``final_cltv`` (see the v25.12.1 fixtures' README)."""
    f = _Fields(result, "getroutes")
    routes = f.items("routes")
    if not routes:
        raise NodeError("getroutes: the answer holds no route")
    best = max(routes, key=lambda r: r.opt_int("probability_ppm", 0))
    path = best.items("path")
    if not path:
        raise NodeError("getroutes: the route's path is empty")
    final_amount = best.amount("amount_msat")
    final_cltv = best.integer("final_cltv")
    hops: list[RouteHop] = []
    for i, hop in enumerate(path):
        nxt: _Fields | None = path[i + 1] if i + 1 < len(path) else None
        hops.append(
            RouteHop(
                node_id=hop.text("next_node_id"),
                short_channel_id=_scid_of(hop.text("short_channel_id_dir"), hop),
                amount_msat=final_amount if nxt is None else nxt.amount("amount_msat"),
                delay=final_cltv if nxt is None else nxt.integer("delay"),
            )
        )
    return RouteLeg(
        start_amount_msat=path[0].amount("amount_msat"),
        start_delay=path[0].integer("delay"),
        hops=tuple(hops),
    )


def _scid_of(scid_dir: str, where: _Fields) -> str:
    scid, sep, direction = scid_dir.partition("/")
    if not sep or direction not in ("0", "1") or scid.count("x") != 2:
        raise where._bad("short_channel_id_dir", "SCID/0|1", scid_dir)
    return scid


def parse_setchannel(result: object) -> dict[str, FeePolicy]:
    """``setchannel``: the fee each touched channel now has, by short channel id."""
    out: dict[str, FeePolicy] = {}
    for c in _Fields(result, "setchannel").items("channels"):
        scid = c.opt_str("short_channel_id")
        if scid is None:
            continue  # not yet confirmed: CLN has no scid for it
        out[scid] = FeePolicy(
            base_msat=c.amount("fee_base_msat"), ppm=c.integer("fee_proportional_millionths")
        )
    return out


def sendpay_route(route: Route) -> list[dict[str, Any]]:
    """The port's route as ``sendpay``'s ``route`` parameter."""
    return [
        {
            "id": h.node_id,
            "channel": h.short_channel_id,
            "amount_msat": h.amount_msat,
            "delay": h.delay,
        }
        for h in route.hops
    ]


def parse_payment_status(
    label: str, invoices: object, sendpays: object | None = None
) -> PaymentStatus:
    """What became of the circular payment to our own invoice ``label``.

    ``invoices`` is ``listinvoices label=LABEL``; ``sendpays`` is ``listsendpays
    payment_hash=H`` for that invoice's hash (None when not asked). The invoice being paid is
    the proof the circle closed; otherwise the sendpay parts say whether HTLCs are still in
    flight (pending), all failed, or none was ever sent."""
    found = _Fields(invoices, "listinvoices").items("invoices")
    mine = [i for i in found if i.opt_str("label") == label]
    if not mine:
        return PaymentStatus(label, PaymentState.UNKNOWN)
    inv = mine[0]
    payment_hash = inv.text("payment_hash")
    parts = [] if sendpays is None else _Fields(sendpays, "listsendpays").items("payments")
    parts = [p for p in parts if p.opt_str("payment_hash") == payment_hash]
    sent = sum(
        p.opt_amount("amount_sent_msat", 0) for p in parts if p.opt_str("status") == "complete"
    )
    if inv.opt_str("status") == "paid":
        received = inv.opt_amount("amount_received_msat", inv.opt_amount("amount_msat", 0))
        return PaymentStatus(
            label,
            PaymentState.COMPLETE,
            payment_hash=payment_hash,
            amount_msat=received,
            fee_msat=max(0, sent - received) if sent else None,
        )
    statuses = {p.opt_str("status") for p in parts}
    if "pending" in statuses:
        state = PaymentState.PENDING
    elif "complete" in statuses:
        # Settled at the hop level but our invoice is not marked paid (yet): not a failure.
        state = PaymentState.PENDING
    elif statuses:
        state = PaymentState.FAILED
    else:
        state = PaymentState.UNKNOWN
    return PaymentStatus(label, state, payment_hash=payment_hash)


def parse_payment(result: object, route: Route, rpc: str = "waitsendpay") -> PaymentResult:
    """``waitsendpay`` success: the amount delivered and the fee actually paid."""
    f = _Fields(result, rpc)
    status = f.opt_str("status", "complete")
    if status != "complete":
        raise NodeError(f"{rpc}: payment status is {status!r}, not 'complete'")
    delivered = f.opt_amount("amount_msat", route.amount_msat)
    sent = f.opt_amount("amount_sent_msat", route.hops[0].amount_msat)
    return PaymentResult(
        payment_hash=f.text("payment_hash"),
        amount_msat=delivered,
        fee_msat=max(sent - delivered, 0),
        route=route,
    )


def parse_invoice(result: object) -> tuple[str, str | None]:
    """``invoice``: the payment hash and (CLN >= 0.11) the payment secret."""
    f = _Fields(result, "invoice")
    return f.text("payment_hash"), f.opt_str("payment_secret")


def parse_fundchannel(
    result: object, *, peer_id: NodeId, amount_sat: int, onchain_fee_sat: int
) -> OpenResult:
    f = _Fields(result, "fundchannel")
    return OpenResult(
        peer_id=peer_id, amount_sat=amount_sat, txid=f.text("txid"), onchain_fee_sat=onchain_fee_sat
    )


def parse_opening_feerate(result: object) -> int:
    """``feerates style=perkw``: the node's feerate estimate for opening a channel."""
    return _Fields(result, "feerates").child("perkw").integer("opening")


def parse_onchain_balance_sat(result: object) -> int:
    """``listfunds``: confirmed, unreserved wallet outputs, in satoshi."""
    f = _Fields(result, "listfunds")
    total_msat = 0
    for o in f.items("outputs"):
        if o.opt_str("status") != "confirmed" or o.flag("reserved", default=False):
            continue
        total_msat += o.amount("amount_msat")
    return total_msat // 1000


def parse_signature(result: object) -> str:
    return _Fields(result, "signmessage").text("zbase")


def parse_checkmessage(result: object) -> tuple[bool, str | None]:
    f = _Fields(result, "checkmessage")
    return f.flag("verified"), f.opt_str("pubkey")


def parse_help_commands(result: object) -> set[str]:
    """``help``: the names of the commands lightningd (and its plugins) serve."""
    f = _Fields(result, "help")
    names = set()
    for h in f.items("help"):
        command = h.text("command")
        names.add(command.split(" ", 1)[0])
    return names


def funding_fee_sat(rpc: str, tx_hex: str, wallet_before: object) -> int:
    """The on-chain fee of a funding transaction we built: inputs minus outputs.

    ``fundchannel`` reports the raw ``tx`` but not its fee; the inputs are our own wallet
    outputs, whose values ``listfunds`` (taken before the open) reports. Raises NodeError when
    the transaction cannot be read or spends an output the wallet did not list.
    """
    values: dict[tuple[str, int], int] = {}
    for o in _Fields(wallet_before, "listfunds").items("outputs"):
        values[(o.text("txid"), o.integer("output"))] = o.amount("amount_msat") // 1000
    try:
        inputs, outputs = _tx_inputs_outputs(bytes.fromhex(tx_hex))
    except (ValueError, IndexError) as exc:
        raise NodeError(f"{rpc}: cannot read the funding transaction: {exc}") from exc
    spent = 0
    for prevout in inputs:
        if prevout not in values:
            raise NodeError(f"{rpc}: funding input {prevout[0]}:{prevout[1]} is not in listfunds")
        spent += values[prevout]
    return spent - sum(outputs)


def _tx_inputs_outputs(raw: bytes) -> tuple[list[tuple[str, int]], list[int]]:
    """Prevouts (txid as displayed, index) and output values (sat) of a serialized tx."""
    pos = 4  # version
    if raw[pos] == 0 and raw[pos + 1] == 1:  # segwit marker and flag
        pos += 2

    def varint() -> int:
        nonlocal pos
        first = raw[pos]
        pos += 1
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        value = int.from_bytes(raw[pos : pos + size], "little")
        pos += size
        return value

    inputs = []
    for _ in range(varint()):
        txid = raw[pos : pos + 32][::-1].hex()
        index = int.from_bytes(raw[pos + 32 : pos + 36], "little")
        pos += 36
        script_len = varint()
        pos += script_len + 4  # scriptSig, sequence
        inputs.append((txid, index))
    outputs = []
    for _ in range(varint()):
        outputs.append(int.from_bytes(raw[pos : pos + 8], "little"))
        pos += 8
        script_len = varint()
        pos += script_len
    if pos > len(raw):
        raise ValueError("truncated transaction")
    return inputs, outputs
