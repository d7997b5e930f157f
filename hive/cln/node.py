"""`ClnNode`: the node port over Core Lightning's JSON-RPC.

Every method is one or a few RPC calls through :class:`~hive.cln.gateway.RpcGateway`, parsed
by :mod:`hive.cln.views`; CLN's error codes are mapped to the port's exact error types here.
Events arrive from the plugin bridge as :class:`~hive.cln.events.RawEvent` on a bounded trio
channel and leave as port events from :meth:`ClnNode.run_events`.
"""

from __future__ import annotations

import collections
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import trio

from hive.cln import views
from hive.cln.events import (
    HIVE_MESSAGE_TYPE,
    MAX_MESSAGE_LEN,
    EventRejected,
    RawEvent,
    to_node_event,
)
from hive.cln.gateway import RpcFailure, RpcGateway
from hive.errors import (
    InsufficientFunds,
    NodeError,
    PaymentFailed,
    PeerUnreachable,
    RouteNotFound,
)
from hive.node.ignores import OpenIgnores
from hive.node.port import (
    ChannelState,
    ChannelView,
    FeePolicy,
    NodeAnnouncement,
    NodeEvent,
    NodeId,
    NodeInfo,
    OpenResult,
    PaymentResult,
    PaymentStatus,
    PeerView,
    PublicChannel,
    Route,
    RouteHop,
)
from hive.protocol import lnsig

log = logging.getLogger(__name__)

# CLN's JSON-RPC error codes (common/jsonrpc_errors.h) that the port distinguishes.
INVALID_PARAMS = -32602
UNKNOWN_COMMAND = -32601
PAY_DESTINATION_PERM_FAIL = 203
PAY_TRY_OTHER_ROUTE = 204
PAY_ROUTE_NOT_FOUND = 205
FUND_CANNOT_AFFORD = 301
FUNDING_PEER_NOT_CONNECTED = 305
FUNDING_UNKNOWN_PEER = 306
FUND_CANNOT_AFFORD_WITH_EMERGENCY = 313

# getroute: how much to weigh the cost of locked funds; 10 is lightning-cli's usual choice.
RISKFACTOR = 10
# CLTV delta (blocks) the circular payment's last hop carries; the invoice asks for less.
FINAL_CLTV = 24
INVOICE_MIN_FINAL_CLTV = 18
PAY_TIMEOUT_S = 60
INVOICE_EXPIRY_S = 600
CLBOSS_UNMANAGE = "clboss-unmanage"
ASKRENE_CREATE_LAYER = "askrene-create-layer"
FLEET_LAYER = "hive-fleet"
# Fleet channels put at zero fee in one getroutes layer (each costs two RPC calls).
MAX_FREE_CHANNELS = 200


class ClnNode:
    """The node port for a Core Lightning node.

    ``events`` is the receive side of the bounded channel the plugin bridge feeds with hook
    calls and notifications; ``message_types`` are the custom message types that are ours.
    """

    def __init__(
        self,
        gateway: RpcGateway,
        events: trio.MemoryReceiveChannel[RawEvent],
        *,
        message_types: Collection[int] = (HIVE_MESSAGE_TYPE,),
    ) -> None:
        self.gateway = gateway
        self._events = events
        self._message_types = frozenset(message_types)
        self._node_id: NodeId | None = None
        self._open_ignored = OpenIgnores()
        self._clboss: bool | None = None
        self._clboss_tags: dict[NodeId, set[str]] = {}
        self._askrene: bool | None = None
        self._layer_lock = trio.Lock()
        self._layer_scids: frozenset[str] | None = None  # what FLEET_LAYER holds now
        self.events_delivered = 0
        self.events_rejected: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------------------------------
    # Identity, peers, channels

    async def get_info(self) -> NodeInfo:
        info = views.parse_getinfo(await self.gateway.call("getinfo"))
        self._node_id = info.node_id
        return info

    async def _our_id(self) -> NodeId:
        if self._node_id is None:
            await self.get_info()
        assert self._node_id is not None
        return self._node_id

    async def list_peers(self) -> Sequence[PeerView]:
        return views.parse_peers(await self.gateway.call("listpeers"))

    async def list_channels(self) -> Sequence[ChannelView]:
        return views.parse_peer_channels(await self.gateway.call("listpeerchannels"))

    async def list_public_channels(self, node_id: NodeId) -> Sequence[PublicChannel]:
        result = await self.gateway.call("listchannels", {"source": node_id})
        return views.parse_public_channels(result)

    async def list_graph(self) -> Sequence[PublicChannel]:
        return views.parse_public_channels(await self.gateway.call("listchannels", timeout_s=120))

    async def get_node_announcement(self, node_id: NodeId) -> NodeAnnouncement | None:
        result = await self.gateway.call("listnodes", {"id": node_id})
        return views.parse_node_announcement(result, node_id)

    async def onchain_balance_sat(self) -> int:
        return views.parse_onchain_balance_sat(await self.gateway.call("listfunds"))

    # ------------------------------------------------------------------------------------------
    # Peers and custom messages

    async def connect(
        self, node_id: NodeId, host: str | None = None, port: int | None = None
    ) -> None:
        try:
            await self.gateway.call("connect", {"id": node_id, "host": host, "port": port})
        except NodeError as exc:
            if exc.code == INVALID_PARAMS:
                raise
            raise PeerUnreachable(f"cannot connect to {node_id}: {exc}") from exc

    async def disconnect(self, peer_id: NodeId) -> None:
        await self.gateway.call("disconnect", {"id": peer_id})

    async def send_custommsg(self, peer_id: NodeId, message: bytes) -> None:
        if not 2 <= len(message) <= MAX_MESSAGE_LEN:
            raise ValueError(f"a custom message is 2..{MAX_MESSAGE_LEN} bytes, got {len(message)}")
        try:
            await self.gateway.call("sendcustommsg", {"node_id": peer_id, "msg": message.hex()})
        except NodeError as exc:
            text = str(exc)
            if "No such peer" in text or "not connected" in text:
                raise PeerUnreachable(f"custom message to {peer_id}: {exc}") from exc
            raise

    async def run_events(
        self,
        send: trio.MemorySendChannel[NodeEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Turn the bridge's hook calls and notifications into port events, until cancelled.

        Custom messages of other types (other plugins' protocols) and malformed payloads are
        dropped, counted per reason and logged. The receive channel is not closed on exit, so a
        supervisor may restart this method.
        """
        task_status.started()
        while True:
            try:
                raw = await self._events.receive()
            except trio.EndOfChannel:
                log.info("the plugin bridge closed its event channel")
                await trio.sleep_forever()
            try:
                event = to_node_event(raw, message_types=self._message_types)
            except EventRejected as exc:
                self.events_rejected[exc.reason] += 1
                level = logging.DEBUG if exc.reason == "foreign_type" else logging.WARNING
                log.log(level, "dropped %s (%s): %s", raw.topic, exc.reason, exc.detail)
                continue
            if event is not None:
                await send.send(event)
                self.events_delivered += 1

    # ------------------------------------------------------------------------------------------
    # Channels and fees

    async def open_channel(
        self,
        peer_id: NodeId,
        amount_sat: int,
        *,
        feerate_perkw: int | None = None,
        max_feerate_perkw: int | None = None,
    ) -> OpenResult:
        if feerate_perkw is None and max_feerate_perkw is not None:
            estimate = views.parse_opening_feerate(
                await self.gateway.call("feerates", {"style": "perkw"})
            )
            if estimate > max_feerate_perkw:
                raise NodeError(
                    f"opening feerate {estimate} perkw is above the limit {max_feerate_perkw}"
                )
            feerate_perkw = estimate
        wallet_before = await self.gateway.call("listfunds")
        params: dict[str, Any] = {"id": peer_id, "amount": amount_sat}
        if feerate_perkw is not None:
            params["feerate"] = f"{feerate_perkw}perkw"
        try:
            result = await self.gateway.call("fundchannel", params, timeout_s=120)
        except NodeError as exc:
            if exc.code in (FUND_CANNOT_AFFORD, FUND_CANNOT_AFFORD_WITH_EMERGENCY):
                raise InsufficientFunds(str(exc), code=exc.code) from exc
            if exc.code in (FUNDING_PEER_NOT_CONNECTED, FUNDING_UNKNOWN_PEER):
                raise PeerUnreachable(f"cannot open to {peer_id}: {exc}") from exc
            raise
        fee_sat = 0
        tx = result.get("tx") if isinstance(result, Mapping) else None
        if isinstance(tx, str):
            try:
                fee_sat = views.funding_fee_sat("fundchannel", tx, wallet_before)
            except NodeError as exc:
                log.warning("channel to %s opened; its on-chain fee is unknown: %s", peer_id, exc)
        return views.parse_fundchannel(
            result, peer_id=peer_id, amount_sat=amount_sat, onchain_fee_sat=fee_sat
        )

    async def set_fee_policy(self, peer_id: NodeId, policy: FeePolicy) -> None:
        result = await self.gateway.call(
            "setchannel", {"id": peer_id, "feebase": policy.base_msat, "feeppm": policy.ppm}
        )
        applied = views.parse_setchannel(result)
        wrong = {scid: fee for scid, fee in applied.items() if fee != policy}
        if wrong:
            raise NodeError(f"setchannel left other fees than {policy} on {wrong}")

    # ------------------------------------------------------------------------------------------
    # Routes and payments

    async def find_route(
        self, destination: NodeId, amount_msat: int, *, exclude_channels: Sequence[str] = ()
    ) -> Route:
        exclude = [f"{scid}/{d}" for scid in exclude_channels for d in (0, 1)]
        params: dict[str, Any] = {
            "id": destination,
            "amount_msat": amount_msat,
            "riskfactor": RISKFACTOR,
        }
        if exclude:
            params["exclude"] = exclude
        return await self._getroute(params)

    async def _getroute(self, params: Mapping[str, Any]) -> Route:
        try:
            return views.parse_route(await self.gateway.call("getroute", params))
        except NodeError as exc:
            if exc.code == PAY_ROUTE_NOT_FOUND:
                raise RouteNotFound(str(exc), code=exc.code) from exc
            raise

    async def find_circular_route(
        self,
        out_peer: NodeId,
        in_peer: NodeId,
        amount_msat: int,
        *,
        free_channels: Sequence[str] = (),
        max_fee_msat: int | None = None,
    ) -> Route:
        """Leave through our channel with ``out_peer``, come back through ``in_peer``'s.

        The middle part is routed from ``out_peer`` to ``in_peer`` (the far sides of our two
        channels) by askrene's ``getroutes`` where it runs, with our layer ``hive-fleet`` that
        disables this node (so the middle never passes through us) and sets every channel of
        ``free_channels`` to zero fee (rebuilt when that set changes); without askrene by
        ``getroute`` with us excluded. The two hops through our own channels are added
        around it. ``getroutes`` is never asked
        for a route from a node to itself: on v25.12.1 that aborted askrene and took
        lightningd down.
        """
        us = await self._our_id()
        if us in (out_peer, in_peer):
            raise RouteNotFound("a circular route leaves and returns through peers, not us")
        free = set(free_channels)
        out_chan = await self._pick_channel(out_peer, amount_msat, outgoing=True)
        in_chan = await self._pick_channel(in_peer, amount_msat, outgoing=False, avoid=out_chan)
        in_fee, in_delay = await self._policy(in_chan, in_peer)
        if in_chan in free:
            in_fee = FeePolicy(base_msat=0, ppm=0)
        last = RouteHop(
            node_id=us, short_channel_id=in_chan, amount_msat=amount_msat, delay=FINAL_CLTV
        )
        at_in_peer = amount_msat + in_fee.fee_msat(amount_msat)
        if out_peer == in_peer:
            first = RouteHop(
                node_id=out_peer,
                short_channel_id=out_chan,
                amount_msat=at_in_peer,
                delay=FINAL_CLTV + in_delay,
            )
            route = Route(hops=(first, last))
        else:
            budget = amount_msat if max_fee_msat is None else max_fee_msat
            leg_budget = budget - (at_in_peer - amount_msat)
            if leg_budget < 0:
                raise RouteNotFound(
                    f"the last hop alone costs {at_in_peer - amount_msat} msat, above {budget}"
                )
            if await self._askrene_present():
                middle = await self._getroutes(
                    us, out_peer, in_peer, at_in_peer, FINAL_CLTV + in_delay, leg_budget, free
                )
                first = RouteHop(
                    node_id=out_peer,
                    short_channel_id=out_chan,
                    amount_msat=middle.start_amount_msat,
                    delay=middle.start_delay,
                )
                route = Route(hops=(first, *middle.hops, last))
            else:
                route = await self._getroute_circle(
                    us, out_peer, in_peer, out_chan, at_in_peer, in_delay, last
                )
        if max_fee_msat is not None and route.fee_msat > max_fee_msat:
            raise RouteNotFound(
                f"cheapest circular route costs {route.fee_msat} msat, above {max_fee_msat}"
            )
        return route

    async def _getroutes(
        self,
        us: NodeId,
        source: NodeId,
        destination: NodeId,
        amount_msat: int,
        final_cltv: int,
        maxfee_msat: int,
        free: Collection[str],
    ) -> views.RouteLeg:
        if source == destination or us in (source, destination):
            # Never: getroutes from a node to itself crashed lightningd (v25.12.1).
            raise RouteNotFound(f"refusing getroutes from {source} to {destination}")
        wanted = frozenset(sorted(free)[:MAX_FREE_CHANNELS])
        params = {
            "source": source,
            "destination": destination,
            "amount_msat": amount_msat,
            "layers": ["auto.localchans", FLEET_LAYER],
            "maxfee_msat": maxfee_msat,
            "final_cltv": final_cltv,
        }
        async with self._layer_lock:
            for attempt in (1, 2):
                if self._layer_scids != wanted:
                    await self._build_fleet_layer(us, wanted)
                try:
                    return views.parse_getroutes(await self.gateway.call("getroutes", params))
                except NodeError as exc:
                    if exc.code == PAY_ROUTE_NOT_FOUND:
                        raise RouteNotFound(str(exc), code=exc.code) from exc
                    if exc.code == INVALID_PARAMS and "layer" in str(exc) and attempt == 1:
                        self._layer_scids = None  # askrene lost it (restarted): build it again
                        continue
                    raise
        raise AssertionError("unreachable")

    async def _build_fleet_layer(self, us: NodeId, scids: frozenset[str]) -> None:
        """Our askrene layer: this node disabled (a circle's middle never passes through us)
        and every fleet channel at zero fee. Rebuilt whole when the fleet's channels change,
        so a channel that left the fleet does not stay free in it."""
        self._layer_scids = None
        try:
            await self.gateway.call("askrene-remove-layer", {"layer": FLEET_LAYER})
        except NodeError as exc:
            if exc.code != INVALID_PARAMS:  # "Unknown layer": nothing to remove
                raise
        await self.gateway.call(ASKRENE_CREATE_LAYER, {"layer": FLEET_LAYER})
        await self.gateway.call("askrene-disable-node", {"layer": FLEET_LAYER, "node": us})
        for scid in sorted(scids):
            for direction in (0, 1):
                await self.gateway.call(
                    "askrene-update-channel",
                    {
                        "layer": FLEET_LAYER,
                        "short_channel_id_dir": f"{scid}/{direction}",
                        "fee_base_msat": 0,
                        "fee_proportional_millionths": 0,
                    },
                )
        self._layer_scids = scids
        log.info("askrene layer %s: %d fleet channels at zero fee", FLEET_LAYER, len(scids))

    async def _getroute_circle(
        self,
        us: NodeId,
        out_peer: NodeId,
        in_peer: NodeId,
        out_chan: str,
        at_in_peer: int,
        in_delay: int,
        last: RouteHop,
    ) -> Route:
        """The middle part by ``getroute`` (CLN without askrene)."""
        middle = await self._getroute(
            {
                "id": in_peer,
                "amount_msat": at_in_peer,
                "riskfactor": RISKFACTOR,
                "cltv": FINAL_CLTV + in_delay,
                "fromid": out_peer,
                "exclude": [us],
            }
        )
        head = middle.hops[0]
        out_fee, out_delay = await self._policy(head.short_channel_id, out_peer)
        first = RouteHop(
            node_id=out_peer,
            short_channel_id=out_chan,
            amount_msat=head.amount_msat + out_fee.fee_msat(head.amount_msat),
            delay=head.delay + out_delay,
        )
        return Route(hops=(first, *middle.hops, last))

    async def _askrene_present(self) -> bool:
        if self._askrene is None:
            try:
                await self.gateway.call("help", {"command": "getroutes"})
                self._askrene = True
            except NodeError:
                self._askrene = False
            log.info("askrene %s", "found: routing with getroutes" if self._askrene else "absent")
        return self._askrene

    async def _pick_channel(
        self, peer: NodeId, amount_msat: int, *, outgoing: bool, avoid: str | None = None
    ) -> str:
        """Our usable channel with ``peer`` with the most liquidity on the needed side."""
        result = await self.gateway.call("listpeerchannels", {"id": peer})
        best: tuple[int, str] | None = None
        for c in views.parse_peer_channels(result):
            if c.peer_id != peer or c.state is not ChannelState.NORMAL:
                continue
            if c.short_channel_id is None or c.short_channel_id == avoid:
                continue
            side = c.local_msat if outgoing else c.remote_msat
            if side >= amount_msat and (best is None or side > best[0]):
                best = (side, c.short_channel_id)
        if best is None:
            direction = "out to" if outgoing else "in from"
            raise RouteNotFound(
                f"no usable channel with {amount_msat} msat {direction} {peer} for a circular route"
            )
        return best[1]

    async def _policy(self, scid: str, source: NodeId) -> tuple[FeePolicy, int]:
        """The fee and CLTV delta ``source`` charges to forward out through ``scid``."""
        result = await self.gateway.call("listchannels", {"short_channel_id": scid})
        delays = views.public_channel_delays(result)
        for channel in views.parse_public_channels(result):
            if channel.source == source:
                return channel.fee, delays[(scid, source)]
        raise RouteNotFound(f"the gossip graph has no policy of {source} on channel {scid}")

    async def pay_route(self, route: Route, *, label: str | None = None) -> PaymentResult:
        """Pay a circular ``route`` (one ending at this node) with a fresh invoice to ourselves.

        Paying another node's invoice along a fixed route needs that invoice's hash and secret,
        which the port does not carry: such a route raises NodeError.
        """
        us = await self._our_id()
        if route.destination != us:
            raise NodeError(
                f"pay_route pays circular routes only; this one ends at {route.destination}"
            )
        label = label or f"hive-rebalance-{secrets.token_hex(8)}"
        invoice = await self.gateway.call(
            "invoice",
            {
                "amount_msat": route.amount_msat,
                "label": label,
                "description": "hive circular rebalance",
                "expiry": INVOICE_EXPIRY_S,
                "cltv": INVOICE_MIN_FINAL_CLTV,
            },
        )
        payment_hash, payment_secret = views.parse_invoice(invoice)
        hops = views.sendpay_route(route)
        try:
            await self.gateway.call(
                "sendpay",
                {
                    "route": hops,
                    "payment_hash": payment_hash,
                    "payment_secret": payment_secret,
                    "amount_msat": route.amount_msat,
                    "label": label,
                },
            )
            result = await self.gateway.call(
                "waitsendpay",
                {"payment_hash": payment_hash, "timeout": PAY_TIMEOUT_S},
                timeout_s=PAY_TIMEOUT_S + 10,
            )
        except NodeError as exc:
            raise _payment_failed(exc) from exc
        return views.parse_payment(result, route)

    async def payment_status(self, label: str) -> PaymentStatus:
        """From our invoice ``label`` (paid: the circle closed) and its sendpay parts."""
        invoices = await self.gateway.call("listinvoices", {"label": label})
        status = views.parse_payment_status(label, invoices)
        if status.payment_hash is None:
            return status
        sendpays = await self.gateway.call("listsendpays", {"payment_hash": status.payment_hash})
        return views.parse_payment_status(label, invoices, sendpays)

    # ------------------------------------------------------------------------------------------
    # Signatures

    async def sign_message(self, text: str) -> str:
        return views.parse_signature(await self.gateway.call("signmessage", {"message": text}))

    async def check_message(self, text: str, zbase: str, node_id: NodeId) -> bool:
        """Verified locally (secp256k1 recovery): no RPC, and no dependence on whether
        lightningd knows ``node_id`` from gossip."""
        return lnsig.check_message(text, zbase, node_id)

    # ------------------------------------------------------------------------------------------
    # Coexistence with other automation

    async def set_open_ignored(
        self, peer_id: NodeId, ignored: bool, reason: str, *, holder: str = ""
    ) -> None:
        """Keep our own list, and tell CLBOSS (``clboss-unmanage <node> open``) where it runs.

        Holds are per ``holder`` (:mod:`hive.node.ignores`): CLBOSS is told to resume opens
        only when the last holder releases. Releasing sends ``clboss-unmanage <node> ""``,
        which is how CLBOSS resumes full management; it also clears other tags an operator may
        have set by hand for that node.
        """
        ignored = self._open_ignored.set(peer_id, ignored, reason, holder)
        if not ignored:
            reason = "no holder left"
        if not await self._clboss_tag(peer_id, "open", ignored):
            log.info("open %s for %s (%s); no CLBOSS to tell", _verb(ignored), peer_id, reason)
            return
        log.info("open %s for %s (%s); CLBOSS told", _verb(ignored), peer_id, reason)

    async def set_fee_unmanaged(self, peer_id: NodeId, unmanaged: bool) -> None:
        """``clboss-unmanage <node> lnfee`` while the fleet sets that peer's fees."""
        told = await self._clboss_tag(peer_id, "lnfee", unmanaged)
        log.info(
            "fees of %s %s; %s",
            peer_id,
            "unmanaged by CLBOSS" if unmanaged else "given back to CLBOSS",
            "CLBOSS told" if told else "no CLBOSS to tell",
        )

    async def _clboss_tag(self, peer_id: NodeId, tag: str, on: bool) -> bool:
        """Set or clear one of our tags for ``peer_id`` and send CLBOSS the whole set.

        ``clboss-unmanage`` replaces a node's tags, so opens and fees, set by different
        actors, are sent together ("lnfee,open"); an empty set gives the node back to CLBOSS.
        Returns whether CLBOSS runs."""
        tags = self._clboss_tags.setdefault(peer_id, set())
        if on:
            tags.add(tag)
        else:
            tags.discard(tag)
        if not tags:
            del self._clboss_tags[peer_id]
        if not await self._clboss_present():
            return False
        await self.gateway.call(
            CLBOSS_UNMANAGE, {"nodeid": peer_id, "tags": ",".join(sorted(tags))}
        )
        return True

    def open_ignored(self) -> Mapping[NodeId, str]:
        """Peers we do not open channels to, with the reasons given."""
        return self._open_ignored.reasons()

    async def _clboss_present(self) -> bool:
        if self._clboss is None:
            try:
                await self.gateway.call("help", {"command": CLBOSS_UNMANAGE})
                self._clboss = True
            except NodeError:
                self._clboss = False
            log.info("CLBOSS %s", "detected" if self._clboss else "not running")
        return self._clboss

    # ------------------------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """RPC and event counters for ``hive-status``."""
        return {
            "rpc": self.gateway.stats(),
            "events": {
                "delivered": self.events_delivered,
                "rejected": dict(self.events_rejected),
            },
            "open_ignored": self.open_ignored(),
            "clboss": self._clboss,
            "clboss_unmanaged": {p: ",".join(sorted(t)) for p, t in self._clboss_tags.items()},
            "askrene": self._askrene,
        }


def _verb(ignored: bool) -> str:
    return "ignored" if ignored else "released"


def _payment_failed(exc: NodeError) -> PaymentFailed:
    data = exc.data if isinstance(exc, RpcFailure) else None
    failing = data.get("erring_node") if data else None
    return PaymentFailed(
        str(exc), failing_node=failing if isinstance(failing, str) else None, code=exc.code
    )
