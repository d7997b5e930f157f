"""askrene as the double serves it: layers, ``getroutes``, and the payment history calls
(``listinvoices``, ``listsendpays``), answering like CLN v25.12.1 (``/work/shared/cln-v25.12.1``).

Faithful points, each from a real capture:

* ``getroutes`` with source == destination aborted askrene and took lightningd down: the double
  answers ``-4 "Plugin terminated before replying to RPC call."`` and records the crash
  (``LightningdDouble.askrene_crashed``), so a test can assert it never happens;
* ``path[i].amount_msat`` / ``delay`` are what arrives at the node at the *start* of hop i: they
  include that node's own fee and CLTV delta on the hop's channel (the source's too, unless
  ``auto.sourcefree``);
* without ``auto.localchans`` our own channels count at capacity (askrene does not know our
  balance); with it, at our spendable balance;
* a layer named ``xpay`` exists from the start; unknown layers are -32602 with CLN's texts.

Routing is cheapest-fee (Dijkstra backwards from the destination, amounts grow with the fees),
over channels able to carry the amount, at most 20 hops. askrene's probability model is not
imitated: ``probability_ppm`` is fixed.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from lightningd_double.double import LightningdDouble
    from lightningd_double.network import Channel

INVALID_PARAMS = -32602
PLUGIN_TERMINATED = -4
PAY_ROUTE_NOT_FOUND = 205
AUTO_LAYERS = ("auto.localchans", "auto.sourcefree", "auto.no_mpp_support")
MAX_HOPS = 20
PROBABILITY_PPM = 989_999


@attrs.define
class Layer:
    name: str
    persistent: bool = False
    disabled_nodes: list[str] = attrs.Factory(list)
    # "scid/dir" -> updates (enabled, fee_base_msat, fee_proportional_millionths, ...)
    channel_updates: dict[str, dict[str, Any]] = attrs.Factory(dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "persistent": self.persistent,
            "disabled_nodes": list(self.disabled_nodes),
            "created_channels": [],
            "channel_updates": [
                {"short_channel_id_dir": k, **v} for k, v in self.channel_updates.items()
            ],
            "constraints": [],
            "biases": [],
            "node_biases": [],
        }


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _need(params: dict[str, Any], key: str) -> Any:
    if key not in params:
        raise RpcError(INVALID_PARAMS, f"missing required parameter: {key}")
    return params[key]


class Askrene:
    """The askrene and payment-history methods of one double."""

    def __init__(self, ld: LightningdDouble) -> None:
        self.ld = ld
        self.layers: dict[str, Layer] = {"xpay": Layer("xpay", persistent=True)}

    def methods(self) -> dict[str, Any]:
        return {
            "askrene-create-layer": self.create_layer,
            "askrene-remove-layer": self.remove_layer,
            "askrene-listlayers": self.listlayers,
            "askrene-disable-node": self.disable_node,
            "askrene-update-channel": self.update_channel,
            "getroutes": self.getroutes,
            "listinvoices": self.listinvoices,
            "listsendpays": self.listsendpays,
        }

    def _layer(self, params: dict[str, Any]) -> Layer:
        name = str(_need(params, "layer"))
        layer = self.layers.get(name)
        if layer is None:
            raise RpcError(INVALID_PARAMS, f"layer: Unknown layer: invalid token '\"{name}\"'")
        return layer

    # --- layers ----------------------------------------------------------------------------

    def create_layer(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(_need(params, "layer"))
        if name in self.layers:
            raise RpcError(INVALID_PARAMS, "Layer already exists")
        layer = Layer(name, persistent=bool(params.get("persistent", False)))
        self.layers[name] = layer
        return {"layers": [layer.to_json()]}

    def remove_layer(self, params: dict[str, Any]) -> dict[str, Any]:
        layer = self._layer(params)
        del self.layers[layer.name]
        return {}

    def listlayers(self, params: dict[str, Any]) -> dict[str, Any]:
        if "layer" in params:
            return {"layers": [self._layer(params).to_json()]}
        return {"layers": [layer.to_json() for layer in self.layers.values()]}

    def disable_node(self, params: dict[str, Any]) -> dict[str, Any]:
        layer = self._layer(params)
        node = str(_need(params, "node"))
        if node not in layer.disabled_nodes:
            layer.disabled_nodes.append(node)
        return {}

    def update_channel(self, params: dict[str, Any]) -> dict[str, Any]:
        layer = self._layer(params)
        scid_dir = str(_need(params, "short_channel_id_dir"))
        update = layer.channel_updates.setdefault(scid_dir, {})
        for key in (
            "enabled",
            "htlc_minimum_msat",
            "htlc_maximum_msat",
            "fee_base_msat",
            "fee_proportional_millionths",
            "cltv_expiry_delta",
        ):
            if key in params:
                update[key] = params[key]
        return {}

    # --- getroutes -------------------------------------------------------------------------

    def getroutes(self, params: dict[str, Any]) -> dict[str, Any]:
        source = str(_need(params, "source"))
        destination = str(_need(params, "destination"))
        amount = int(_need(params, "amount_msat"))
        layers = _need(params, "layers")
        maxfee = int(_need(params, "maxfee_msat"))
        final_cltv = int(params.get("final_cltv", 18))
        self.ld.getroutes_calls.append((source, destination))
        if source == destination:
            # v25.12.1: askrene aborted (get_augmenting_flow assertion) and lightningd stopped.
            self.ld.askrene_crashed = True
            raise RpcError(PLUGIN_TERMINATED, "Plugin terminated before replying to RPC call.")
        if not isinstance(layers, list):
            raise RpcError(INVALID_PARAMS, "layers: should be an array")
        used: list[Layer] = []
        for name in layers:
            if name in AUTO_LAYERS:
                continue
            if name not in self.layers:
                raise RpcError(INVALID_PARAMS, f"layers: unknown layer: invalid token '\"{name}\"'")
            used.append(self.layers[name])
        localchans = "auto.localchans" in layers
        sourcefree = "auto.sourcefree" in layers
        disabled = {n for layer in used for n in layer.disabled_nodes}
        updates: dict[str, dict[str, Any]] = {}
        for layer in used:
            for key, update in layer.channel_updates.items():
                updates.setdefault(key, {}).update(update)
        path = self._cheapest(source, destination, amount, disabled, updates, localchans)
        if path is None:
            raise RpcError(
                PAY_ROUTE_NOT_FOUND, "We could not find a usable set of paths.  No path found."
            )
        hops = self._hops(path, amount, final_cltv, updates, sourcefree)
        if hops[0]["amount_msat"] - amount > maxfee:
            raise RpcError(PAY_ROUTE_NOT_FOUND, "Could not find route without excessive cost")
        return {
            "probability_ppm": PROBABILITY_PPM,
            "routes": [
                {
                    "probability_ppm": PROBABILITY_PPM,
                    "amount_msat": amount,
                    "final_cltv": final_cltv,
                    "path": hops,
                }
            ],
        }

    def _policy(
        self, ch: Channel, frm: str, updates: dict[str, dict[str, Any]]
    ) -> tuple[bool, int, int, int]:
        side = ch.sides[frm]
        update = updates.get(f"{ch.scid}/{ch.direction_from(frm)}", {})
        return (
            bool(update.get("enabled", True)),
            int(update.get("fee_base_msat", side.fee_base_msat)),
            int(update.get("fee_proportional_millionths", side.fee_ppm)),
            int(update.get("cltv_expiry_delta", side.cltv_delta)),
        )

    def _cheapest(
        self,
        source: str,
        destination: str,
        amount: int,
        disabled: set[str],
        updates: dict[str, dict[str, Any]],
        localchans: bool,
    ) -> list[tuple[str, Channel]] | None:
        """[(from_node, channel)] from source to destination, cheapest for the sender."""
        net = self.ld.network
        me = self.ld.node_id
        # best[node] = amount that must arrive at node for the rest of the path
        best: dict[str, int] = {destination: amount}
        nxt: dict[str, tuple[str, Channel]] = {}
        hops: dict[str, int] = {destination: 0}
        queue: list[tuple[int, int, str]] = [(amount, 0, destination)]
        while queue:
            need, count, node = heapq.heappop(queue)
            if need > best.get(node, 1 << 62) or node == source:
                continue
            if count >= MAX_HOPS:
                continue
            for ch in net.channels_of(node):
                frm = ch.other(node)
                if frm in disabled or ch.state != "CHANNELD_NORMAL" or not ch.active:
                    continue
                enabled, base, ppm, _delta = self._policy(ch, frm, updates)
                if not enabled:
                    continue
                usable = (
                    ch.sides[frm].balance_msat if (localchans and frm == me) else ch.capacity_msat
                )
                if usable < need:
                    continue
                arriving = need + (base + need * ppm // 1_000_000 if frm != source else 0)
                if arriving < best.get(frm, 1 << 62):
                    best[frm] = arriving
                    nxt[frm] = (node, ch)
                    hops[frm] = count + 1
                    heapq.heappush(queue, (arriving, count + 1, frm))
        if source not in nxt:
            return None
        path: list[tuple[str, Channel]] = []
        node = source
        seen = {source}
        while node != destination:
            to, ch = nxt[node]
            path.append((node, ch))
            if to in seen:
                return None
            seen.add(to)
            node = to
        return path

    def _hops(
        self,
        path: list[tuple[str, Channel]],
        amount: int,
        final_cltv: int,
        updates: dict[str, dict[str, Any]],
        sourcefree: bool,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        carried, delay = amount, final_cltv
        for i in range(len(path) - 1, -1, -1):
            frm, ch = path[i]
            _enabled, base, ppm, delta = self._policy(ch, frm, updates)
            free = sourcefree and i == 0
            at_start = carried + (0 if free else base + carried * ppm // 1_000_000)
            start_delay = delay + (0 if free else delta)
            out.append(
                {
                    "short_channel_id_dir": f"{ch.scid}/{ch.direction_from(frm)}",
                    "next_node_id": ch.other(frm),
                    "amount_msat": at_start,
                    "delay": start_delay,
                }
            )
            carried, delay = at_start, start_delay
        out.reverse()
        return out

    # --- payment history -------------------------------------------------------------------

    def listinvoices(self, params: dict[str, Any]) -> dict[str, Any]:
        label = params.get("label")
        out = []
        for i, inv in enumerate(self.ld.invoices.values(), start=1):
            if label is not None and inv["label"] != label:
                continue
            entry: dict[str, Any] = {
                "label": inv["label"],
                "bolt11": "lnbcrt" + inv["payment_hash"][:40],
                "payment_hash": inv["payment_hash"],
                "status": inv["status"],
                "description": inv.get("description", ""),
                "expires_at": int(time.time()) + 600,
                "created_index": i,
            }
            if inv["amount_msat"] != "any":
                entry["amount_msat"] = int(inv["amount_msat"])
            if inv["status"] == "paid":
                entry["pay_index"] = i
                entry["amount_received_msat"] = int(
                    inv.get("received_msat", entry.get("amount_msat", 0))
                )
                entry["paid_at"] = int(time.time())
                entry["payment_preimage"] = inv["preimage"]
                entry["updated_index"] = i
            out.append(entry)
        return {"invoices": out}

    def listsendpays(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("payment_hash")
        payments = [
            {k: v for k, v in record.items() if k != "failure"}
            for record in self.ld.payments.values()
            if wanted is None or record["payment_hash"] == wanted
        ]
        return {"payments": payments}
