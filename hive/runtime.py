"""The companion runtime: builds one node's actors, wires their channels, supervises them.

One :class:`Runtime` serves one Lightning node, whichever implementation of the node port it is
given (the CLN front or a simulated node). ``run`` blocks until cancelled; cancelling it (Ctrl-C,
SIGTERM, lightningd's shutdown) ends every actor, because every actor lives in the nursery that
``run`` owns.

Wiring (all channels bounded, each receive side owned by exactly one actor)::

    node port --events--> transport --Received(Ping, Pong)------------> liveness
                            ^  |  +--Received(Hello, ..., RosterSync)--> membership
                            |  |  +--Received(State*, Relayed)--------> gossip --> fleetstate
                            |  +----NodeEvent(peers)-------------------> membership
                            |  +----NodeEvent(peers, channels, fwds)---> gossip
                            +------------------ outbox <---------------- (every actor)

    producers --Draft--> engine --Executor--> node port      engine --EngineEvent--> hub
    operator commands --approve/reject/pause--> engine         (decision-http: webhooks,
    deciders (HTTP oracle, agents) <--packet-- engine           the HTTP oracle)

The transport asks membership whether each verified frame may pass (members only, except the
join handshake). Supervision policy (see ARCHITECTURE.md): actors restart with backoff on
transient errors (the node's RPC timing out, a peer vanishing); any other exception is a bug
and brings the runtime down with its original traceback.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import nacl.signing
import trio

from hive import keys
from hive.actors.bans import Bans
from hive.actors.gossip.fleetstate import FleetState
from hive.actors.gossip.publisher import Gossip
from hive.actors.governance.decision_http import DecisionHttp, wanted
from hive.actors.governance.engine import Engine
from hive.actors.governance.executors import register_builtin
from hive.actors.membership.contact import AddressBook
from hive.actors.membership.liveness import Liveness
from hive.actors.membership.roster import Membership
from hive.actors.opens.locks import Locks
from hive.actors.opens.planner import Planner, PlannerSettings
from hive.actors.rebalancing.feepolicy import FeePolicyActor
from hive.actors.rebalancing.rebalancer import Rebalancer
from hive.actors.strategy import Strategy
from hive.actors.wire.admission import wire_admission
from hive.actors.wire.replaystate import keep_replay_saved, load_replay
from hive.actors.wire.sequence import keep_reserved, starting_seq
from hive.actors.wire.transport import Transport
from hive.commands import Command, CommandError, JsonDict, spec
from hive.commands.bans import ban_command, bans_command, unban_command
from hive.commands.governance import GovernanceCommands
from hive.commands.membership import MembershipCommands, Params
from hive.commands.rebalancing import rebalance_command
from hive.commands.reputation import reputation_command
from hive.commands.strategy import strategies_command
from hive.config import HiveConfig
from hive.errors import TransientError
from hive.events import EventSink, LogSink
from hive.governance.api import ExecutionFailed
from hive.node.port import NodeInfo, NodePort
from hive.protocol.wire.facade import HiveWire
from hive.store import open_store
from hive.supervisor import Backoff, Supervisor, actor
from hive.web.server import WebServer

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Runtime:
    """One companion: its identity, its actors and its operator commands."""

    def __init__(
        self,
        node: NodePort,
        config: HiveConfig,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        signing_key: nacl.signing.SigningKey | None = None,
        store_inline: bool = False,
        events: EventSink | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self._now_ms = now_ms
        self._rng = rng or random.Random()
        self._backoff = backoff or Backoff()
        # Tests inject a key to stay off threads (autojump clocks jump while a thread runs).
        self._signing_key = signing_key
        # Tests under autojump clocks run SQLite on the trio thread for the same reason.
        self._store_inline = store_inline
        # Operator-facing events (hive/events.py): actors that report to the operator get it.
        self.events: EventSink = events or LogSink()
        self.membership: Membership | None = None
        self._admin: MembershipCommands | None = None
        self._supervisor: Supervisor | None = None
        self.info: NodeInfo | None = None
        self.transport: Transport | None = None
        self.liveness: Liveness | None = None
        self.fleet: FleetState | None = None
        self.gossip: Gossip | None = None
        self.engine: Engine | None = None
        self.locks: Locks | None = None
        self.planner: Planner | None = None
        self.planner_settings = PlannerSettings()
        self.decision_http: DecisionHttp | None = None
        self.feepolicy: FeePolicyActor | None = None
        self.rebalancer: Rebalancer | None = None
        self.web: WebServer | None = None
        # The web token; None: loaded from (or created in) the data directory.
        self.web_token: str | None = None
        self.bans: Bans | None = None
        self.strategy: Strategy | None = None
        self.ready = trio.Event()

    # ------------------------------------------------------------------------------------------
    # Life cycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        signing_key = self._signing_key
        if signing_key is None:
            signing_key = await trio.to_thread.run_sync(keys.load_or_create, self.config.data_dir)
        info = await self._node_info()
        self.info = info
        async with open_store(self.config.data_dir, run_inline=self._store_inline) as store:
            # Monotonic across restarts without a disk write per message (hive/actors/sequence).
            wire = HiveWire(
                signing_key,
                first_seq=await starting_seq(store, self._now_ms()),
                replay=await load_replay(store, now_ms=self._now_ms()),
            )
            transport = Transport(self.node, wire, now_ms=self._now_ms, rng=self._rng)
            contact = AddressBook(store, self._now_ms, own=info.addresses)
            membership = Membership(
                node=self.node,
                transport=transport,
                store=store,
                signing_key=signing_key,
                info=info,
                now_ms=self._now_ms,
                rng=self._rng,
                config=self.config.membership,
                contact=contact,
            )
            await membership.load()
            wire_admission(transport, membership)  # before decoding, and after
            liveness = Liveness(
                transport,
                membership.fleet_peers,
                interval_s=self.config.ping_interval_s,
                now_ms=self._now_ms,
                rng=self._rng,
            )
            fleet = FleetState(
                node=self.node,
                store=store,
                membership=membership,
                node_id=info.node_id,
                now_ms=self._now_ms,
                config=self.config.gossip,
            )
            await fleet.load()
            gossip = Gossip(
                node=self.node,
                transport=transport,
                membership=membership,
                fleet=fleet,
                store=store,
                node_id=info.node_id,
                now_ms=self._now_ms,
                rng=self._rng,
                config=self.config.gossip,
            )
            await gossip.load()
            engine = Engine(
                node=self.node,
                store=store,
                config=self.config.decisions,
                mode=self.config.governance,
                node_id=info.node_id,
                alias=info.alias,
                now_ms=self._now_ms,
                rng=self._rng,
            )
            register_builtin(engine, self.node)
            bans = Bans(
                node=self.node,
                transport=transport,
                membership=membership,
                store=store,
                engine=engine,
                signing_key=signing_key,
                now_ms=self._now_ms,
                config=self.config.bans,
            )
            bans.register()
            await bans.load()
            self.bans = bans
            set_gate = getattr(self.node, "set_open_gate", None)  # the simulator's openchannel
            if set_gate is not None:  # hook (CLN's is the plugin bridge's, hive/cln/plugin.py)
                set_gate(bans.refuse_open)
            await engine.load()
            self.engine = engine
            feepolicy = FeePolicyActor(
                node=self.node,
                transport=transport,
                membership=membership,
                store=store,
                node_id=info.node_id,
                now_ms=self._now_ms,
                config=self.config.rebalance,
            )
            await feepolicy.load()
            rebalancer = Rebalancer(
                node=self.node,
                transport=transport,
                membership=membership,
                statemap=fleet.statemap,
                store=store,
                node_id=info.node_id,
                now_ms=self._now_ms,
                governance=self.config.governance,
                config=self.config.rebalance,
                engine=engine,
            )
            rebalancer.fee_policy = feepolicy
            rebalancer.is_banned = bans.is_banned
            rebalancer.standings.rules = self.config.reputation
            await rebalancer.load()
            gossip.rebalancing = rebalancer
            self.feepolicy, self.rebalancer = feepolicy, rebalancer
            locks = Locks(
                node=self.node,
                transport=transport,
                membership=membership,
                store=store,
                now_ms=self._now_ms,
                rng=self._rng,
            )
            await locks.load()
            # Registers the lock-taking opener as the engine's open-channel executor.
            planner = Planner(
                node=self.node,
                transport=transport,
                membership=membership,
                fleet=fleet,
                engine=engine,
                locks=locks,
                store=store,
                node_id=info.node_id,
                now_ms=self._now_ms,
                settings=self.planner_settings,
                run_inline=self._store_inline,
            )
            self.locks, self.planner = locks, planner
            planner.banned_peers = bans.banned_peers
            planner.leeches = rebalancer.standings.leeches
            planner.opener.is_banned = bans.is_banned
            self.transport, self.liveness, self.membership = transport, liveness, membership
            self.fleet, self.gossip = fleet, gossip
            self._admin = MembershipCommands(membership, liveness)
            strategy = Strategy(
                node=self.node,
                transport=transport,
                membership=membership,
                statemap=fleet.statemap,
                store=store,
                engine=engine,
                signing_key=signing_key,
                now_ms=self._now_ms,
                config=self.config.strategy,
            )
            strategy.register()
            strategy.revoke = self._revoke_for(self._admin)
            await strategy.load()
            gossip.note_sources.append(strategy.reputation)
            planner.strategy_peers = strategy.verified_peers
            self.strategy = strategy
            async with trio.open_nursery() as nursery:
                supervisor = Supervisor(nursery, backoff=self._backoff)
                self._supervisor = supervisor
                await supervisor.start("sequence", actor(keep_reserved, wire, store))
                await supervisor.start("replay-state", actor(keep_replay_saved, wire, store))
                await supervisor.start("transport", transport.run, inbox=transport.events)
                await supervisor.start("membership", membership.run, inbox=membership.inbox)
                await supervisor.start("liveness", liveness.run, inbox=liveness.inbox)
                await supervisor.start("fleetstate", fleet.run)
                await supervisor.start("gossip", gossip.run, inbox=gossip.inbox)
                await supervisor.start("engine", engine.run, inbox=engine.inbox)
                await supervisor.start("locks", locks.run, inbox=locks.inbox)
                await supervisor.start("planner", planner.run, inbox=planner.inbox)
                if wanted(self.config.decisions):
                    self.decision_http = DecisionHttp(engine, self.config.decisions)
                    await supervisor.start("decision-http", self.decision_http.run)
                await supervisor.start("feepolicy", feepolicy.run, inbox=feepolicy.events)
                await supervisor.start("rebalancer", rebalancer.run, inbox=rebalancer.events)
                if self.config.web.bind is not None:
                    self.web = WebServer(
                        self,
                        self.config.web,
                        data_dir=self.config.data_dir,
                        now_ms=self._now_ms,
                        token=self.web_token,
                    )
                    await supervisor.start("web", self.web.run)
                await supervisor.start("bans", bans.run, inbox=bans.inbox)
                await supervisor.start("strategy", strategy.run, inbox=strategy.inbox)
                log.info("hive companion for %s is running", info.node_id)
                self.events.emit("started", f"companion running for node {info.node_id}")
                self.ready.set()
                task_status.started()

    async def _node_info(self) -> NodeInfo:
        """Ask the node who it is, retrying with backoff while it is unavailable."""
        failures = 0
        while True:
            try:
                return await self.node.get_info()
            except TransientError as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning("node not answering (%s); retrying in %.1fs", exc, delay)
                await trio.sleep(delay)

    # ------------------------------------------------------------------------------------------
    # Operator commands

    def commands(self) -> Sequence[Command]:
        """Every command of :data:`hive.commands.CATALOGUE`, bound to this runtime."""
        handlers: dict[str, Callable[[MembershipCommands, Mapping[str, Any]], Awaitable[JsonDict]]]
        handlers = {
            "hive-genesis": MembershipCommands.genesis,
            "hive-invite": MembershipCommands.invite,
            "hive-join": MembershipCommands.join,
            "hive-members": MembershipCommands.members,
            "hive-leave": MembershipCommands.leave,
            "hive-revoke": MembershipCommands.revoke,
        }
        bound = [
            Command(spec("hive-status"), self._cmd_status),
            Command(spec("hive-state"), self._cmd_state),
            Command(spec("hive-rebalance"), self._cmd_rebalance),
            Command(spec("hive-web-token"), self._cmd_web_token),
            Command(spec("hive-reputation"), self._cmd_reputation),
            Command(spec("hive-bans"), self._bans_handler(bans_command)),
            Command(spec("hive-ban"), self._bans_handler(ban_command)),
            Command(spec("hive-unban"), self._bans_handler(unban_command)),
            Command(spec("hive-strategies"), self._cmd_strategies),
        ]
        for name, method in handlers.items():
            bound.append(Command(spec(name), self._membership_handler(name, method)))
        governance = {
            "hive-pending": GovernanceCommands.pending,
            "hive-approve": GovernanceCommands.approve,
            "hive-reject": GovernanceCommands.reject,
            "hive-pause": GovernanceCommands.pause,
            "hive-resume": GovernanceCommands.resume,
            "hive-budget": GovernanceCommands.budget,
            "hive-ledger": GovernanceCommands.ledger,
            "hive-why": GovernanceCommands.why,
        }
        for name, g_method in governance.items():
            bound.append(Command(spec(name), self._governance_handler(name, g_method)))
        bound.append(Command(spec("hive-plan"), self._planner_handler("hive-plan")))
        bound.append(Command(spec("hive-open"), self._planner_handler("hive-open")))
        return bound

    async def _cmd_reputation(self, params: Mapping[str, Any]) -> JsonDict:
        if self.membership is None or self.rebalancer is None:
            raise CommandError(CommandError.NOT_READY, "the companion is still starting")
        return await reputation_command(self.membership, self.rebalancer, params)

    async def _cmd_strategies(self, params: Mapping[str, Any]) -> JsonDict:
        if self.strategy is None:
            raise CommandError(CommandError.NOT_READY, "the companion is still starting")
        return await strategies_command(self.strategy, params)

    @staticmethod
    def _revoke_for(
        admin: MembershipCommands,
    ) -> Callable[[str, str], Awaitable[JsonDict]]:
        """The hive-revoke path for the revoke-member executor (its refusal: a failed action)."""

        async def revoke(node: str, reason: str) -> JsonDict:
            try:
                return await admin.revoke({"node": node, "reason": reason})
            except CommandError as exc:
                raise ExecutionFailed(f"hive-revoke refused: {exc}") from exc

        return revoke

    def _bans_handler(
        self, method: Callable[[Bans, Mapping[str, Any]], Awaitable[JsonDict]]
    ) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]:
        async def handler(params: Mapping[str, Any]) -> JsonDict:
            if self.bans is None:
                raise CommandError(CommandError.NOT_READY, "the companion is still starting")
            return await method(self.bans, params)

        return handler

    def _planner_handler(self, name: str) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]:
        async def handler(params: Mapping[str, Any]) -> JsonDict:
            planner = self.planner
            if planner is None:
                raise CommandError(CommandError.NOT_READY, f"{name}: the companion is starting")
            if name == "hive-open":
                return await planner.open_command(params)
            return await planner.command(params)

        return handler

    def _governance_handler(
        self,
        name: str,
        method: Callable[[GovernanceCommands, Mapping[str, Any]], Awaitable[JsonDict]],
    ) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]:
        async def handler(params: Mapping[str, Any]) -> JsonDict:
            if self.engine is None:
                raise CommandError(CommandError.NOT_READY, f"{name}: the companion is starting")
            return await method(GovernanceCommands(self.engine), params)

        return handler

    def _membership_handler(
        self,
        name: str,
        method: Callable[[MembershipCommands, Mapping[str, Any]], Awaitable[JsonDict]],
    ) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]:
        async def handler(params: Mapping[str, Any]) -> JsonDict:
            if self._admin is None:
                raise CommandError(CommandError.NOT_READY, f"{name}: the companion is starting")
            return await method(self._admin, params)

        return handler

    async def _cmd_status(self, params: Mapping[str, Any]) -> JsonDict:
        if params:
            raise CommandError(
                CommandError.INVALID_PARAMS,
                f"hive-status takes no parameters, got {sorted(params)}",
            )
        return self.status()

    async def _cmd_state(self, params: Mapping[str, Any]) -> JsonDict:
        """`hive-state`: the fleet view; `hive-state MEMBER`: one member's record and age."""
        member = Params("hive-state", params, ("member",)).node_id("member", required=False)
        fleet = self.fleet
        if fleet is None or self.membership is None:
            raise CommandError(CommandError.NOT_READY, "hive-state: the companion is starting")
        if not self.membership.is_member:
            raise CommandError(CommandError.NOT_FOUND, "hive-state: this node is in no hive")
        if member is None:
            view = fleet.view().to_json()
            view["ignored"] = dict(sorted(fleet.ignore_reasons.items()))
            return view
        record = fleet.describe(member)
        if record is None:
            raise CommandError(
                CommandError.NOT_FOUND, f"hive-state: no state record of {member} is held"
            )
        return record

    async def _cmd_rebalance(self, params: Mapping[str, Any]) -> JsonDict:
        if self.rebalancer is None or self.feepolicy is None:
            raise CommandError(CommandError.NOT_READY, "hive-rebalance: the companion is starting")
        return await rebalance_command(self.rebalancer, self.feepolicy, params)

    async def _cmd_web_token(self, params: Mapping[str, Any]) -> JsonDict:
        """`hive-web-token`: the token every web client presents, and the page's address."""
        Params("hive-web-token", params, ())
        web = self.web
        if web is None:
            raise CommandError(
                CommandError.NOT_FOUND, "hive-web-token: the web server is off (hive-web-bind=off)"
            )
        if web.token is None:
            raise CommandError(CommandError.NOT_READY, "hive-web-token: the web server is starting")
        return {"token": web.token, "url": web.view_url(), "listening": web.url, "error": web.error}

    def command(self, name: str) -> Callable[[Mapping[str, Any]], Awaitable[JsonDict]]:
        """The handler of one command (for in-process callers such as the demo and tests)."""
        for bound in self.commands():
            if bound.name == name:
                return bound.handler
        raise KeyError(name)

    def status(self) -> JsonDict:
        """A JSON-able snapshot for `hive-status`, the demo table and the live view."""
        if (
            self.info is None
            or self.transport is None
            or self.liveness is None
            or self.membership is None
            or self.gossip is None
            or self.fleet is None
        ):
            raise CommandError(CommandError.NOT_READY, "the hive companion is still starting")
        supervisor = self._supervisor
        actors = [
            {
                "name": s.name,
                "running": s.running,
                "restarts": s.restarts,
                "last_error": s.last_error,
                "inbox_depth": s.inbox.depth if s.inbox else None,
                "inbox_peak": s.inbox.peak if s.inbox else None,
                "inbox_capacity": s.inbox.capacity if s.inbox else None,
            }
            for s in (supervisor.stats() if supervisor else [])
        ]
        t = self.transport.stats
        now = self._now_ms()
        peers = [
            {
                "node_id": p.node_id,
                "last_seen_s_ago": None
                if p.last_seen_ms is None
                else (now - p.last_seen_ms) / 1000,
                "rtt_ms": p.rtt_ms,
                "pings_sent": p.pings_sent,
                "pongs_received": p.pongs_received,
            }
            for p in self.liveness.peers.values()
        ]
        decisions = None if self.engine is None else self.engine.status()
        if decisions is not None and self.decision_http is not None:
            decisions.update(self.decision_http.status())
        return {
            # The kill switch first: an operator must see at once that nothing executes.
            "paused": None if self.engine is None else self.engine.pause_info,
            "node_id": self.info.node_id,
            "alias": self.info.alias,
            "hive_key": self.transport.wire.hive_key.hex(),
            "governance": self.config.governance.value,
            "hive": self.membership.status(),
            "node": self.node.statistics(),
            "actors": actors,
            "messages": {
                "received": t.received,
                "sent": t.sent,
                "fragments_sent": t.fragments_sent,
                "rejected": dict(t.rejected),
                "dropped": dict(t.dropped),
            },
            "peers": peers,
            "gossip": {**self.gossip.status(), **self.fleet.status()},
            "planner": None if self.planner is None else self.planner.status(),
            "locks": None if self.locks is None else self.locks.status(),
            "decisions": decisions,
            "member_fees": self.feepolicy.status() if self.feepolicy else None,
            "strategy": self.strategy.status() if self.strategy else None,
            **({"web": self.web.status()} if self.web is not None else {}),
        }
