"""The double's JSON-RPC methods, answering in the shape CLN 25.x documents.

Each method takes the params object (positional params are named by :data:`POSITIONAL`) and
returns the ``result`` object or raises :class:`RpcFail` (-> a JSON-RPC error object).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hive.protocol import lnsig

if TYPE_CHECKING:
    from lightningd_double.double import LightningdDouble

# CLN error codes used below (common/jsonrpc_errors.h).
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
LIGHTNINGD = -1
PAY_TRY_OTHER_ROUTE = 204
PAY_ROUTE_NOT_FOUND = 205
PAY_NO_SUCH_PAYMENT = 208
FUND_CANNOT_AFFORD = 301
FUNDING_PEER_NOT_CONNECTED = 305
CONNECT_ALL_ADDRESSES_FAILED = 401
INVOICE_LABEL_ALREADY_EXISTS = 900

# Message types lightningd handles itself (a sample of BOLT 1/2/7 types).
INTERNAL_TYPES = {
    16,
    17,
    18,
    19,
    32,
    33,
    34,
    35,
    36,
    38,
    39,
    128,
    130,
    131,
    132,
    133,
    136,
    256,
    257,
    258,
}

POSITIONAL: dict[str, tuple[str, ...]] = {
    "getinfo": (),
    "listpeers": ("id", "level"),
    "listpeerchannels": ("id",),
    "listchannels": ("short_channel_id", "source", "destination"),
    "listnodes": ("id",),
    "listfunds": ("spent",),
    "connect": ("id", "host", "port"),
    "disconnect": ("id", "force"),
    "sendcustommsg": ("node_id", "msg"),
    "fundchannel": ("id", "amount", "feerate", "announce"),
    "setchannel": ("id", "feebase", "feeppm"),
    "getroute": ("id", "amount_msat", "riskfactor", "cltv", "fromid", "fuzzpercent", "exclude"),
    "invoice": ("amount_msat", "label", "description", "expiry"),
    "sendpay": ("route", "payment_hash", "label", "amount_msat"),
    "waitsendpay": ("payment_hash", "timeout"),
    "signmessage": ("message",),
    "checkmessage": ("message", "zbase", "pubkey"),
    "help": ("command",),
    "clboss-unmanage": ("nodeid", "tags"),
    "feerates": ("style",),
}


class RpcFail(Exception):
    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


def _need(params: dict[str, Any], key: str) -> Any:
    if key not in params:
        raise RpcFail(INVALID_PARAMS, f"missing required parameter: {key}")
    return params[key]


class Methods:
    """RPC methods of one double; ``table()`` maps names to callables."""

    def __init__(self, ld: LightningdDouble) -> None:
        self.ld = ld

    def table(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        table: dict[str, Callable[[dict[str, Any]], Any]] = {
            name: getattr(self, name.replace("-", "_")) for name in POSITIONAL
        }
        if not self.ld.clboss:
            del table["clboss-unmanage"]
        return table

    @property
    def net(self) -> Any:
        return self.ld.network

    # ------------------------------------------------------------------------------------------

    def getinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        ld = self.ld
        channels = self.net.channels_of(ld.node_id)
        return {
            "id": ld.node_id,
            "alias": ld.alias,
            "color": ld.node_id[2:8],
            "num_peers": len(self.net.peers_of(ld.node_id)),
            "num_pending_channels": sum(c.state != "CHANNELD_NORMAL" for c in channels),
            "num_active_channels": sum(c.state == "CHANNELD_NORMAL" for c in channels),
            "num_inactive_channels": 0,
            "address": [],
            "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": ld.port}],
            "version": "v25.02",
            "blockheight": self.net.blockheight,
            "network": "regtest",
            "fees_collected_msat": 0,
            "lightning-dir": str(ld.lightning_dir),
            "our_features": {
                "init": "08a0000a8a5961",
                "node": "88a0000a8a5961",
                "channel": "",
                "invoice": "02000002024100",
            },
        }

    def listpeers(self, params: dict[str, Any]) -> dict[str, Any]:
        me = self.ld.node_id
        wanted = params.get("id")
        peers = []
        for peer in sorted(self.net.peers_of(me)):
            if wanted and peer != wanted:
                continue
            connected = self.net.connected(me, peer)
            entry: dict[str, Any] = {
                "id": peer,
                "connected": connected,
                "num_channels": len([c for c in self.net.channels_of(me) if peer in (c.a, c.b)]),
            }
            if connected:
                entry["netaddr"] = ["127.0.0.1:9735"]
                entry["features"] = "08a0000a8a5961"
            peers.append(entry)
        return {"peers": peers}

    def listpeerchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        me = self.ld.node_id
        wanted = params.get("id")
        out = []
        for c in self.net.channels_of(me):
            peer = c.other(me)
            if wanted and peer != wanted:
                continue
            ours, theirs = c.sides[me], c.sides[peer]
            entry = {
                "peer_id": peer,
                "peer_connected": self.net.connected(me, peer),
                "state": c.state,
                "channel_id": hashlib.sha256(c.funding_txid.encode()).hexdigest(),
                "funding_txid": c.funding_txid,
                "funding_outnum": 0,
                "opener": "local" if c.opener == me else "remote",
                "private": False,
                "to_us_msat": ours.balance_msat,
                "min_to_us_msat": ours.balance_msat,
                "max_to_us_msat": ours.balance_msat,
                "total_msat": c.capacity_msat,
                "fee_base_msat": ours.fee_base_msat,
                "fee_proportional_millionths": ours.fee_ppm,
                "dust_limit_msat": 546000,
                "their_reserve_msat": c.capacity_msat // 100,
                "our_reserve_msat": c.capacity_msat // 100,
                "spendable_msat": max(ours.balance_msat - c.capacity_msat // 100, 0),
                "receivable_msat": max(theirs.balance_msat - c.capacity_msat // 100, 0),
                "updates": {
                    "local": {
                        "htlc_minimum_msat": 0,
                        "htlc_maximum_msat": c.capacity_msat,
                        "cltv_expiry_delta": ours.cltv_delta,
                        "fee_base_msat": ours.fee_base_msat,
                        "fee_proportional_millionths": ours.fee_ppm,
                    },
                    "remote": {
                        "htlc_minimum_msat": 0,
                        "htlc_maximum_msat": c.capacity_msat,
                        "cltv_expiry_delta": theirs.cltv_delta,
                        "fee_base_msat": theirs.fee_base_msat,
                        "fee_proportional_millionths": theirs.fee_ppm,
                    },
                },
                "status": [f"{c.state}:Channel ready for use."],
                "in_payments_offered": 0,
                "out_payments_offered": 0,
                "htlcs": [],
            }
            if c.state != "OPENINGD" and c.state != "CHANNELD_AWAITING_LOCKIN":
                entry["short_channel_id"] = c.scid
                entry["direction"] = c.direction_from(me)
                entry["alias"] = {"local": "1x2x3", "remote": "4x5x6"}
            out.append(entry)
        return {"channels": out}

    def listchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        out = []
        for c in self.net.channels.values():
            if c.state not in ("CHANNELD_NORMAL", "CHANNELD_SHUTTING_DOWN"):
                continue
            if params.get("short_channel_id") not in (None, c.scid):
                continue
            for source in (c.a, c.b):
                dest = c.other(source)
                if params.get("source") not in (None, source):
                    continue
                if params.get("destination") not in (None, dest):
                    continue
                side = c.sides[source]
                out.append(
                    {
                        "source": source,
                        "destination": dest,
                        "short_channel_id": c.scid,
                        "direction": c.direction_from(source),
                        "public": True,
                        "amount_msat": c.capacity_msat,
                        "message_flags": 1,
                        "channel_flags": c.direction_from(source),
                        "active": c.active,
                        "last_update": 1_700_000_000,
                        "base_fee_millisatoshi": side.fee_base_msat,
                        "fee_per_millionth": side.fee_ppm,
                        "delay": side.cltv_delta,
                        "htlc_minimum_msat": 0,
                        "htlc_maximum_msat": c.capacity_msat,
                        "features": "",
                    }
                )
        return {"channels": out}

    def listnodes(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("id")
        nodes = []
        for node_id, ann in sorted(self.net.announcements.items()):
            if wanted and node_id != wanted:
                continue
            nodes.append(
                {
                    "nodeid": node_id,
                    "alias": ann.alias,
                    "color": node_id[2:8],
                    "last_timestamp": 1_700_000_000,
                    "features": ann.features,
                    "addresses": ann.addresses,
                }
            )
        return {"nodes": nodes}

    def listfunds(self, params: dict[str, Any]) -> dict[str, Any]:
        me = self.ld.node_id
        channels = [
            {
                "peer_id": c.other(me),
                "connected": self.net.connected(me, c.other(me)),
                "state": c.state,
                "short_channel_id": c.scid,
                "our_amount_msat": c.sides[me].balance_msat,
                "amount_msat": c.capacity_msat,
                "funding_txid": c.funding_txid,
                "funding_output": 0,
            }
            for c in self.net.channels_of(me)
        ]
        return {"outputs": [dict(o) for o in self.ld.wallet], "channels": channels}

    def disconnect(self, params: dict[str, Any]) -> dict[str, Any]:
        """As v25.12.1 (rpc.disconnect.*.json): refused while a channel exists unless force."""
        target = str(_need(params, "id"))
        me = self.ld.node_id
        if not self.net.connected(me, target):
            raise RpcFail(-1, "Peer not connected")
        live = [c for c in self.net.channels_of(me) if c.other(me) == target]
        if live and not params.get("force"):
            raise RpcFail(-1, f"Peer has (at least one) channel in state {live[0].state}")
        self.net.disconnect(me, target)
        self.ld.notify_soon("disconnect", {"id": target})
        other = self.net.doubles.get(target)
        if other is not None:
            other.notify_soon("disconnect", {"id": me})
        return {}

    def connect(self, params: dict[str, Any]) -> dict[str, Any]:
        target = str(_need(params, "id")).split("@")[0]
        me = self.ld.node_id
        other = self.net.doubles.get(target)
        if other is None or target == me:
            raise RpcFail(
                CONNECT_ALL_ADDRESSES_FAILED,
                f"Unable to connect, no address known for peer {target}",
            )
        newly = not self.net.connected(me, target)
        self.net.connect(me, target)
        if newly:
            self.ld.notify_soon("connect", {"id": target, "direction": "out", "address": {}})
            other.notify_soon("connect", {"id": me, "direction": "in", "address": {}})
        return {
            "id": target,
            "features": "08a0000a8a5961",
            "direction": "out",
            "address": {"type": "ipv4", "address": "127.0.0.1", "port": other.port},
        }

    def sendcustommsg(self, params: dict[str, Any]) -> dict[str, Any]:
        dest = str(_need(params, "node_id"))
        try:
            msg = bytes.fromhex(str(_need(params, "msg")))
        except ValueError:
            raise RpcFail(INVALID_PARAMS, "msg: should be a hex string") from None
        if len(msg) < 2:
            raise RpcFail(INVALID_PARAMS, "msg: should be at least 2 bytes")
        msg_type = int.from_bytes(msg[:2], "big")
        if msg_type in INTERNAL_TYPES:
            raise RpcFail(
                INVALID_REQUEST,
                f"Cannot send messages of type {msg_type}. It is not possible to send messages "
                "that have a type managed internally since that might cause issues with the "
                "internal state tracking.",
            )
        me = self.ld.node_id
        if dest not in self.net.peers_of(me):
            raise RpcFail(INVALID_REQUEST, f"No such peer: {dest}")
        if not self.net.connected(me, dest):
            raise RpcFail(INVALID_REQUEST, "Peer is not connected")
        self.ld.sent_custommsgs.append((dest, msg))
        target = self.net.doubles.get(dest)
        if target is not None:
            target.deliver_custommsg_soon(me, msg.hex())
        return {"status": "Message sent to connectd for delivery"}

    def feerates(self, params: dict[str, Any]) -> dict[str, Any]:
        """Shaped like rpc.feerates.perkw.json; the opening estimate is ``ld.opening_feerate``."""
        if params.get("style") != "perkw":
            raise RpcFail(INVALID_PARAMS, "style: should be 'perkw' or 'perkb'")
        rate = getattr(self.ld, "opening_feerate", 253)
        return {
            "perkw": {
                "opening": rate,
                "mutual_close": rate,
                "unilateral_close": rate,
                "penalty": rate,
                "min_acceptable": 253,
                "max_acceptable": rate * 10,
                "floor": 253,
            },
            "onchain_fee_estimates": {"opening_channel_satoshis": rate * 700 // 1000},
        }

    def fundchannel(self, params: dict[str, Any]) -> dict[str, Any]:
        peer = str(_need(params, "id"))
        amount_sat = int(_need(params, "amount"))
        me = self.ld.node_id
        if not self.net.connected(me, peer):
            raise RpcFail(FUNDING_PEER_NOT_CONNECTED, "Peer not connected")
        fee_sat = 1530
        utxo = next(
            (
                o
                for o in sorted(self.ld.wallet, key=lambda o: -int(o["amount_msat"]))
                if o["status"] == "confirmed" and o["amount_msat"] // 1000 >= amount_sat + fee_sat
            ),
            None,
        )
        if utxo is None:
            raise RpcFail(
                FUND_CANNOT_AFFORD,
                f"Could not afford {amount_sat}sat using all 1 available UTXOs: "
                f"{self.ld.onchain_sat()}sat available",
            )
        change_sat = utxo["amount_msat"] // 1000 - amount_sat - fee_sat
        tx = _raw_tx(utxo["txid"], utxo["output"], [amount_sat, change_sat])
        txid = _txid(tx)
        self.ld.wallet.remove(utxo)
        self.ld.wallet.append(
            {
                "txid": txid,
                "output": 1,
                "amount_msat": change_sat * 1000,
                "scriptpubkey": "0014" + "00" * 20,
                "address": "bcrt1qchange",
                "status": "unconfirmed",
                "reserved": False,
            }
        )
        channel = self.net.open_channel(me, peer, amount_sat)
        channel.funding_txid = txid
        channel_id = hashlib.sha256(txid.encode()).hexdigest()
        return {
            "tx": tx.hex(),
            "txid": txid,
            "outnum": 0,
            "channel_type": {"bits": [12, 22], "names": ["static_remotekey/even", "anchors/even"]},
            "channel_id": channel_id,
        }

    def setchannel(self, params: dict[str, Any]) -> dict[str, Any]:
        target = str(_need(params, "id"))
        me = self.ld.node_id
        touched = [
            c
            for c in self.net.channels_of(me)
            if target in ("all", c.scid, c.other(me)) and c.state == "CHANNELD_NORMAL"
        ]
        if not touched:
            raise RpcFail(LIGHTNINGD, "Could not find any active channels of peer with that id")
        out = []
        for c in touched:
            side = c.sides[me]
            if params.get("feebase") is not None:
                side.fee_base_msat = int(params["feebase"])
            if params.get("feeppm") is not None:
                side.fee_ppm = int(params["feeppm"])
            out.append(
                {
                    "peer_id": c.other(me),
                    "channel_id": hashlib.sha256(c.funding_txid.encode()).hexdigest(),
                    "short_channel_id": c.scid,
                    "fee_base_msat": side.fee_base_msat,
                    "fee_proportional_millionths": side.fee_ppm,
                    "minimum_htlc_out_msat": 0,
                    "maximum_htlc_out_msat": c.capacity_msat,
                    "ignore_fee_limits": False,
                }
            )
        return {"channels": out}

    def getroute(self, params: dict[str, Any]) -> dict[str, Any]:
        dest = str(_need(params, "id"))
        amount = int(_need(params, "amount_msat"))
        _need(params, "riskfactor")
        source = params.get("fromid") or self.ld.node_id
        hops = self.net.route(
            source,
            dest,
            amount,
            final_cltv=int(params.get("cltv") or 9),
            exclude=params.get("exclude") or (),
        )
        if hops is None:
            raise RpcFail(PAY_ROUTE_NOT_FOUND, "Could not find a route")
        return {"route": hops}

    def invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        label = str(_need(params, "label"))
        _need(params, "description")
        amount = _need(params, "amount_msat")
        if label in self.ld.invoices:
            raise RpcFail(INVOICE_LABEL_ALREADY_EXISTS, "Duplicate label")
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        invoice = {
            "label": label,
            "amount_msat": amount,
            "payment_hash": payment_hash,
            "payment_secret": secrets.token_hex(32),
            "preimage": preimage.hex(),
            "status": "unpaid",
            "description": str(params["description"]),
        }
        self.ld.invoices[label] = invoice
        expiry = int(params.get("expiry") or 604800)
        return {
            "payment_hash": payment_hash,
            "expires_at": int(time.time()) + expiry,
            "bolt11": "lnbcrt" + secrets.token_hex(40),
            "payment_secret": invoice["payment_secret"],
            "created_index": len(self.ld.invoices),
        }

    def sendpay(self, params: dict[str, Any]) -> dict[str, Any]:
        route = _need(params, "route")
        payment_hash = str(_need(params, "payment_hash"))
        if not isinstance(route, list) or not route:
            raise RpcFail(INVALID_PARAMS, "route: Empty route")
        for hop in route:
            for key in ("id", "channel", "amount_msat", "delay"):
                if key not in hop:
                    raise RpcFail(INVALID_PARAMS, f"route: hop is missing {key}")
        me = self.ld.node_id
        destination = route[-1]["id"]
        delivered = int(params.get("amount_msat") or route[-1]["amount_msat"])
        record: dict[str, Any] = {
            "created_index": len(self.ld.payments) + 1,
            "id": len(self.ld.payments) + 1,
            "payment_hash": payment_hash,
            "groupid": 1,
            "destination": destination,
            "amount_msat": delivered,
            "amount_sent_msat": int(route[0]["amount_msat"]),
            "created_at": int(time.time()),
            "status": "pending",
        }
        if params.get("label") is not None:
            record["label"] = str(params["label"])
        invoice = next(
            (i for i in self.ld.invoices.values() if i["payment_hash"] == payment_hash), None
        )
        failure = self.net.settle(me, route)
        if failure is not None:
            index, node, channel = failure
            record["status"] = "failed"
            record["failure"] = {
                "erring_index": index,
                "erring_node": node,
                "erring_channel": channel,
                "failcode": 4103,
                "failcodename": "WIRE_TEMPORARY_CHANNEL_FAILURE",
            }
        elif destination == me and invoice is not None:
            invoice["status"] = "paid"
            invoice["received_msat"] = delivered
            record["status"] = "complete"
            record["payment_preimage"] = invoice["preimage"]
        else:
            record["status"] = "complete"
            record["payment_preimage"] = "00" * 32
        self.ld.payments[payment_hash] = record
        answer = {k: v for k, v in record.items() if k not in ("failure", "payment_preimage")}
        answer["status"] = "pending"
        answer["message"] = "Monitor status with listpays or waitsendpay"
        return answer

    def waitsendpay(self, params: dict[str, Any]) -> dict[str, Any]:
        payment_hash = str(_need(params, "payment_hash"))
        record = self.ld.payments.get(payment_hash)
        if record is None:
            raise RpcFail(PAY_NO_SUCH_PAYMENT, "Never attempted payment part 0")
        if record["status"] == "failed":
            data = {k: v for k, v in record.items() if k != "failure"}
            data.update(record["failure"])
            raise RpcFail(
                PAY_TRY_OTHER_ROUTE,
                f"failed: {record['failure']['failcodename']} (reply from remote)",
                data,
            )
        return {k: v for k, v in record.items() if k != "failure"}

    def signmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(_need(params, "message"))
        zbase = lnsig.sign_message(self.ld.secret, text)
        raw = lnsig.zbase32_decode(zbase)
        return {"signature": raw[1:].hex(), "recid": f"{raw[0] - 31:02x}", "zbase": zbase}

    def checkmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(_need(params, "message"))
        zbase = str(_need(params, "zbase"))
        pubkey = params.get("pubkey")
        recovered = lnsig.recover_node_id(text, zbase)
        if pubkey:
            return {"pubkey": pubkey, "verified": recovered == pubkey}
        if recovered is None or recovered not in self.net.announcements:
            raise RpcFail(LIGHTNINGD, "pubkey not found in the graph")
        return {"pubkey": recovered, "verified": True}

    def help(self, params: dict[str, Any]) -> dict[str, Any]:
        names = sorted(
            set(self.table()) | set(self.ld.askrene.methods()) | set(self.ld.plugin_methods)
        )
        wanted = params.get("command")
        if wanted is not None:
            if wanted not in names:
                raise RpcFail(METHOD_NOT_FOUND, f"Unknown command {wanted}")
            names = [wanted]
        return {
            "help": [
                {"command": f"{n} ...", "category": "plugin", "description": n, "verbose": n}
                for n in names
            ],
            "format-hint": "simple",
        }

    def clboss_unmanage(self, params: dict[str, Any]) -> dict[str, Any]:
        node = str(_need(params, "nodeid"))
        tags = str(_need(params, "tags"))
        self.ld.clboss_unmanaged[node] = tags
        return {}


def _raw_tx(prev_txid: str, prev_index: int, outputs_sat: list[int]) -> bytes:
    """A minimal segwit transaction spending one output (empty witness)."""
    body = bytearray()
    body += (2).to_bytes(4, "little")
    body += b"\x00\x01"
    body += b"\x01" + bytes.fromhex(prev_txid)[::-1] + prev_index.to_bytes(4, "little")
    body += b"\x00" + b"\xfd\xff\xff\xff"
    body += bytes([len(outputs_sat)])
    for value in outputs_sat:
        script = b"\x00\x20" + b"\x11" * 32
        body += value.to_bytes(8, "little") + bytes([len(script)]) + script
    body += b"\x00"  # witness: zero items for the one input
    body += (0).to_bytes(4, "little")
    return bytes(body)


def _txid(raw: bytes) -> str:
    """txid of a transaction from ``_raw_tx`` (hash of the serialization without witness)."""
    stripped = raw[:4] + raw[6:-5] + raw[-4:]
    return hashlib.sha256(hashlib.sha256(stripped).digest()).digest()[::-1].hex()
