"""Who opens and closes which channel, when: the fleet's real decision path and the others.

**The fleet** (:class:`Fleet`) runs what the planner actor and the opener of
:mod:`hive.actors.opens.planner` do, member by member, in simulated time:

* every ``plan_every_s`` (the actor's interval; each member's timer has its own phase, after the
  actor's warm-up) a member with funds to spend computes the plan **from its own view**: its
  own channels and pending opens, the other members' channels as the fleet state gossips them
  (``gossip_lag_s`` after they confirm; a member silent for ``stale_after_s`` keeps its
  channels with no funds, as the planner actor treats a stale member), and the targets whose
  intent lock another member holds in its own lock book (``locked``). It takes the opens
  assigned to itself, at most ``max_live`` in flight, as the actor submits them (the engine
  is autonomous here: approved at once);
* each open claims its target through the real intent lock book
  (:class:`hive.protocol.intents.locks.LockBook`, one per member): Intents, Acks, Nacks, Aborts
  and Outcomes travel between members with a seeded delay each (log-normal, median
  ``delay_median_ms``), timers fire at the book's own deadlines, and an ``Execute`` runs the
  opener's re-check (the lock still ours, no channel of ours to the target, no other member's
  channel to it in our view unless it was there when we planned, the funds) before funding.
  Nothing else keeps two members off one target: what overlaps is what the product let through.

**Alone** (:class:`Solo`): each node decides by itself on the same timer, with no locks:
``independent`` and ``whale`` run the same planner with themselves as the only member,
``uncoordinated`` the CLBOSS-like :class:`~hive.scenarios.placement.Autopilot`.

**Revisiting** (every node, every ``review_every_s``): a channel that has forwarded nothing for
``grace_s`` since it confirmed is closed (the close is paid on chain) and its capital goes back
to the wallet, where the next planning round spends it; the node leaves a target it closed
alone for ``cooldown_s``. Channels between members are never judged.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence

import attrs

from hive.fleet.planner import Plan, PlanMember, PlannerConfig
from hive.protocol.intents.locks import Broadcast, Ended, Execute, HolderState, LockBook, Send
from hive.protocol.intents.messages import KIND_OPEN_CHANNEL, MAX_SCORE, Intent
from hive.protocol.messages import Message
from hive.scenarios.channels import Chan, ChannelBook
from hive.scenarios.events import Clock
from hive.scenarios.flow import Flow
from hive.scenarios.placement import Autopilot, Planner, can_open

LIVE = ("proposed", "executing", "opening")


@attrs.frozen
class DecisionConfig:
    plan_every_s: float = 3600.0  # PlannerSettings.interval_s
    warmup_s: float = 300.0  # PlannerSettings.warmup_s
    max_live: int = 2  # PlannerSettings.max_live
    lease_ms: int = 180_000  # the locks actor's DEFAULT_LEASE_MS
    delay_median_ms: float = 150.0
    delay_sigma: float = 1.0
    gossip_lag_s: float = 30.0
    stale_after_s: float = 900.0
    block_s: float = 600.0
    confirm_blocks: int = 6  # announced after 6 confirmations
    review_every_s: float = 86400.0
    grace_s: float = 2 * 86400.0
    cooldown_s: float = 7 * 86400.0
    close_fee_sat: int = 2_500
    revisit: bool = True


@attrs.define
class Stats:
    plans: int = 0
    intents: int = 0
    lock_refused: int = 0  # propose() refused: another intent held our promise, or taken
    yielded: int = 0  # our intent gave way to a stronger one, or the target was taken
    recheck_failed: int = 0
    opened: int = 0
    closed: int = 0


class _Base:
    """What every decider shares: the run's clock, channels, planner and close rule."""

    def __init__(
        self,
        *,
        clock: Clock,
        flow: Flow,
        book: ChannelBook,
        ids: Sequence[str],
        nodes: Sequence[int],
        planner: Planner,
        planner_cfg: PlannerConfig,
        config: DecisionConfig,
        rng: random.Random,
        label: str,
    ) -> None:
        self.clock, self.flow, self.book, self.ids = clock, flow, book, ids
        self.nodes = list(nodes)
        self.planner, self.planner_cfg, self.config = planner, planner_cfg, config
        self.rng = rng
        self.label = label
        self.stats = Stats()
        self.closed_targets: dict[int, dict[int, float]] = {n: {} for n in self.nodes}
        self.rows: dict[int, dict[int, str]] = {n: {} for n in self.nodes}  # target -> state
        self.last_plan: Plan | None = None

    def start(self) -> None:
        """Each node's planning and review timers. Their phases belong to the node (drawn from
        its id, not the seed): the seeds vary the payments, balances and message delays, and
        runs that reach the same state share the planner's memo."""
        cfg = self.config
        for n in self.nodes:
            own = random.Random(f"hive-scenarios/timers/{self.ids[n]}")
            phase = own.uniform(0.0, cfg.plan_every_s)
            self.clock.at(cfg.warmup_s + phase, functools.partial(self._timer, n))
            if cfg.revisit:
                review = own.uniform(0.0, cfg.review_every_s)
                self.clock.at(review, functools.partial(self._review, n))

    def _timer(self, node: int) -> None:
        if node in self.book.down:
            return
        self.decide(node)
        self.clock.at(self.clock.now_s + self.config.plan_every_s, lambda: self._timer(node))

    def decide(self, node: int) -> None:
        raise NotImplementedError

    # --- shared helpers -----------------------------------------------------------------------

    def live_count(self, node: int) -> int:
        return sum(1 for s in self.rows[node].values() if s in LIVE)

    def peers(self, node: int) -> set[int]:
        return {c.peer if c.owner == node else c.owner for c in self.book.of(node)}

    def cooling(self, node: int) -> set[int]:
        now = self.clock.now_s
        return {
            t for t, at in self.closed_targets[node].items() if now - at < self.config.cooldown_s
        }

    def graph_key(self) -> tuple[object, ...]:
        return (self.label, self.book.public(), frozenset(self.book.down))

    def fund(
        self, node: int, target: int, amount_sat: int, aware: frozenset[int] = frozenset()
    ) -> Chan:
        chan = self.book.open(node, target, amount_sat, self.clock.now_s, aware=aware)
        self.rows[node][target] = "opening"
        self.stats.opened += 1
        blocks = sum(self.rng.expovariate(1.0) for _ in range(self.config.confirm_blocks))
        self.clock.at(self.clock.now_s + blocks * self.config.block_s, lambda: self._confirm(chan))
        return chan

    def _confirm(self, chan: Chan) -> None:
        self.book.confirm(chan, self.clock.now_s)
        self.rows[chan.owner][chan.peer] = "confirmed"

    def _review(self, node: int) -> None:
        if node in self.book.down:
            return
        now, grace = self.clock.now_s, self.config.grace_s
        for chan in self.book.of(node, live_only=True):
            if chan.internal or chan.owner != node or chan.live_s is None:
                continue
            quiet_since = chan.last_forward_s if chan.last_forward_s is not None else chan.live_s
            if now - chan.live_s >= grace and now - quiet_since >= grace:
                self.book.close(chan, now)
                self.closed_targets[node][chan.peer] = now
                self.rows[node].pop(chan.peer, None)
                self.stats.closed += 1
        self.clock.at(now + self.config.review_every_s, lambda: self._review(node))


class Solo(_Base):
    """Each node alone: the planner with one member (``independent``, ``whale``) or the
    autopilot (``uncoordinated``)."""

    def __init__(self, *, autopilot: Autopilot | None = None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.autopilot = autopilot

    def decide(self, node: int) -> None:
        cfg = self.planner_cfg
        room = self.config.max_live - self.live_count(node)
        if room <= 0 or not can_open(self.book.spare_sat(node), cfg):
            return
        if self.autopilot is not None:
            self._autopilot(node, room)
            return
        own = frozenset(self.ids[p] for p in self.peers(node))
        pending = frozenset(self.ids[t] for t, s in self.rows[node].items() if s in LIVE)
        me = PlanMember(self.ids[node], own, self.book.spare_sat(node), pending=pending - own)
        banned = [self.ids[t] for t in self.cooling(node)]
        result = self.planner.plan(self.flow, self.ids, self.graph_key(), [me], cfg, banned=banned)
        self.stats.plans += 1
        self.last_plan = result
        index = {self.ids[t]: t for t in range(len(self.ids))} if result.opens else {}
        for planned in result.for_member(self.ids[node])[:room]:
            target = index[planned.target]
            if target in self.peers(node):
                continue
            self.fund(node, target, planned.amount_sat)

    def _autopilot(self, node: int, room: int) -> None:
        assert self.autopilot is not None
        cfg = self.planner_cfg
        spare = self.book.spare_sat(node)
        # Spread what is left over the channels it still funds, at most max_channel_sat each.
        count = max(1, -(-(spare - cfg.reserve_sat) // (cfg.max_channel_sat + cfg.open_fee_sat)))
        size = min(cfg.max_channel_sat, (spare - cfg.reserve_sat) // count - cfg.open_fee_sat)
        if size < cfg.min_channel_sat:
            return
        for _ in range(min(room, count)):
            mine = self.peers(node) | {t for t, s in self.rows[node].items() if s in LIVE}
            earned: dict[int, int] = {}
            for chan in self.book.of(node):
                earned[chan.peer] = earned.get(chan.peer, 0) + chan.earned_msat
            target = self.autopilot.choose(self.flow, mine, self.rng, self.cooling(node), earned)
            if target is None:
                return
            self.fund(node, target, int(size))


@attrs.define
class _Member:
    node: int
    key: bytes
    book: LockBook
    tick_at: set[int] = attrs.Factory(set)
    intents: dict[bytes, tuple[int, int, frozenset[str]]] = attrs.Factory(dict)
    # intent id -> (target, amount, members that reached the target when it planned)


class Fleet(_Base):
    """The fleet's members on the real decision path (see the module docstring)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        keys = [bytes([0x48, i]) + bytes(30) for i in range(len(self.nodes))]
        now = self.clock.now_ms
        self.members = {
            n: _Member(n, keys[i], LockBook(keys[i], keys, now_ms=now))
            for i, n in enumerate(self.nodes)
        }
        self.by_key = {m.key: m for m in self.members.values()}
        self.down_since: dict[int, float] = {}

    def set_down(self, node: int) -> None:
        self.book.set_down(node)
        self.down_since[node] = self.clock.now_s

    # --- planning (the planner actor) ---------------------------------------------------------

    def view(self, me: int) -> list[PlanMember]:
        now, lag = self.clock.now_s, self.config.gossip_lag_s
        own = frozenset(self.ids[p] for p in self.peers(me))
        pending = frozenset(self.ids[t] for t, s in self.rows[me].items() if s in LIVE)
        out = [PlanMember(self.ids[me], own, self.book.spare_sat(me), pending=pending - own)]
        for n in self.nodes:
            if n == me:
                continue
            since = self.down_since.get(n)
            stale = since is not None and now - since >= self.config.stale_after_s
            seen = frozenset(
                self.ids[c.peer if c.owner == n else c.owner]
                for c in self.book.of(n, live_only=True)
                if c.live_s is not None and c.live_s + lag <= now
            )
            # A stale member keeps its last gossiped channels, with no funds (the planner
            # actor's rule: the opener's re-check counts its channels too).
            out.append(PlanMember(self.ids[n], seen, 0 if stale else self.book.spare_sat(n)))
        return out

    def assess(self) -> Plan:
        """The plan as the fleet stands now (a member's full view, no locks): its
        ``importance_ppm`` names the member whose loss costs most, ``kept_without_top`` what
        the planner expects the fleet to keep without it."""
        live = [n for n in self.nodes if n not in self.book.down]
        view = self.view(live[0]) if live else []
        return self.planner.plan(self.flow, self.ids, self.graph_key(), view, self.planner_cfg)

    def decide(self, node: int) -> None:
        member = self.members[node]
        room = self.config.max_live - self.live_count(node)
        if room <= 0 or not can_open(self.book.spare_sat(node), self.planner_cfg):
            return
        view = self.view(node)
        locked = {
            target.hex(): self.ids[self.by_key[p.holder].node]
            for target, p in member.book.promises.items()
            if p.holder != member.key and p.holder in self.by_key
        }
        banned = [self.ids[t] for t in self.cooling(node)]
        result = self.planner.plan(
            self.flow, self.ids, self.graph_key(), view, self.planner_cfg,
            banned=banned, locked=locked,
        )  # fmt: skip
        self.stats.plans += 1
        self.last_plan = result
        mine = result.for_member(self.ids[node])
        if not mine:
            return
        index = {self.ids[n]: n for n in range(len(self.ids))}
        for planned in mine:
            if room <= 0:
                break
            target = index[planned.target]
            if self.rows[node].get(target) in LIVE:
                continue
            served = frozenset(m.node_id for m in view if planned.target in m.peers)
            intent = Intent(
                intent_id=self.rng.randbytes(16),
                kind=KIND_OPEN_CHANNEL,
                target=bytes.fromhex(planned.target),
                amount_sat=planned.amount_sat,
                score=min(MAX_SCORE, int(max(0.0, planned.score_ppm) * 1000)),
                lease_ms=self.config.lease_ms,
            )
            self.rows[node][target] = "proposed"
            actions, refused = member.book.propose(intent, self.clock.now_ms)
            self.stats.intents += 1
            room -= 1
            if refused is not None:
                self.stats.lock_refused += 1
                self.rows[node][target] = "failed"
                continue
            member.intents[intent.intent_id] = (target, planned.amount_sat, served)
            self._act(member, actions)

    # --- the lock book, its messages and timers -----------------------------------------------

    def _delay_s(self) -> float:
        cfg = self.config
        ms = cfg.delay_median_ms * math.exp(self.rng.gauss(0.0, cfg.delay_sigma))
        return min(ms, 10_000.0) / 1000.0

    def _send(self, src: _Member, dst: _Member, message: Message) -> None:
        def deliver() -> None:
            if dst.node in self.book.down or src.node in self.book.down:
                return
            self._act(dst, dst.book.receive(src.key, message, self.clock.now_ms))

        self.clock.at(self.clock.now_s + self._delay_s(), deliver)

    def _act(self, member: _Member, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                for other in self.members.values():
                    if other is not member:
                        self._send(member, other, action.message)
            elif isinstance(action, Send):
                self._send(member, self.by_key[action.to], action.message)
            elif isinstance(action, Execute):
                self._execute(member, action.intent)
            elif isinstance(action, Ended):
                self._ended(member, action)
        self._schedule_tick(member)

    def _schedule_tick(self, member: _Member) -> None:
        due = member.book.next_deadline(self.clock.now_ms)
        if due is None or due in member.tick_at:
            return
        member.tick_at.add(due)

        def tick() -> None:
            member.tick_at.discard(due)
            if member.node not in self.book.down:
                self._act(member, member.book.tick(self.clock.now_ms))

        self.clock.at(due / 1000.0, tick)

    def _ended(self, member: _Member, ended: Ended) -> None:
        known = member.intents.pop(ended.intent.intent_id, None)
        if known is None or ended.state is HolderState.OPENED:
            return
        target = known[0]
        if self.rows[member.node].get(target) in ("proposed", "executing"):
            self.rows[member.node][target] = "failed"
        if ended.state is HolderState.ABORTED:
            self.stats.yielded += 1

    # --- the opener ---------------------------------------------------------------------------

    def _recheck(self, member: _Member, intent: Intent) -> str | None:
        """FleetOpener._recheck, over this run's state."""
        own = member.book.own.get(intent.intent_id)
        if own is None or own.state is not HolderState.EXECUTING:
            return "the intent lock is no longer ours"
        target, amount, served = member.intents[intent.intent_id]
        if target in self.peers(member.node):
            return "we already have a channel to the target"
        now, lag = self.clock.now_s, self.config.gossip_lag_s
        for n in self.nodes:
            if n == member.node or self.ids[n] in served:
                continue
            for c in self.book.of(n, live_only=True):
                peer = c.peer if c.owner == n else c.owner
                if peer == target and c.live_s is not None and c.live_s + lag <= now:
                    return "another member already has a channel to the target"
        if self.book.spare_sat(member.node) < amount + self.planner_cfg.open_fee_sat:
            return "on-chain funds are short"
        return None

    def _execute(self, member: _Member, intent: Intent) -> None:
        target, amount, _served = member.intents[intent.intent_id]
        self.rows[member.node][target] = "executing"
        refusal = self._recheck(member, intent)
        now = self.clock.now_ms
        if refusal is not None:
            self.stats.recheck_failed += 1
            self.rows[member.node][target] = "failed"
            actions = member.book.executed(
                intent.intent_id, opened=False, result="", reason=refusal[:64], now_ms=now
            )
        else:
            _, _, served = member.intents[intent.intent_id]
            aware = frozenset(n for n in self.nodes if self.ids[n] in served)
            chan = self.fund(member.node, target, amount, aware)
            actions = member.book.executed(
                intent.intent_id, opened=True, result=str(chan.index), reason="", now_ms=now
            )
        self._act(member, actions)
