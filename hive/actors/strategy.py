"""The strategy actor: discovery, commitment and delayed reveal, spreading, verification, and
the revoke-member executor (issue 12, the learning engine; rules in docs/REPUTATION.md,
records in docs/PROTOCOL.md "Strategy gossip").

* **Observe**: settled forwards (node events) are summed per hour and per (member the HTLC
  came in from, peer it went out to), kept in SQLite for the longest window, with the hours
  this actor observed throughout (a restart leaves a gap no verdict relies on).
* **Discover and commit**: every ``check_s``, each outside peer whose public channels with
  us earned at least ``min_yield_ppm`` of their capacity over the window becomes a report; we
  store the report, a random salt and the signed :class:`StrategyCommit` in one transaction,
  then flood the commitment.
* **Reveal**: once ``delay_s`` has passed we sign the stored report with the stored salt (so a
  restart in between reveals the same report) and flood it; a report whose channel closed in
  the meantime is withdrawn (never revealed) rather than shown false.
* **Spread**: as for bans: flood to connected members, each forwards what it had not seen;
  digest repair every ``sync_interval_s`` and on connection. Members in ``leech`` standing
  (hive/fleet/reputation.py) receive reveals ``leech_delay_s`` later, or never when None.
* **Verify**: each received report is judged (:func:`hive.protocol.strategy.verify.judge`)
  against the public graph and our own observations; a report shown false becomes a
  reputation note in our state record and a ``revoke-member`` proposal with the evidence.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import nacl.signing
import trio

from hive.actors.governance.revoke import (
    REVOKE_MEMBER,
    REVOKE_MEMBER_SPEC,
    Revoke,
    RevokeMemberExecutor,
)
from hive.config import StrategyConfig
from hive.errors import NodeError, TransientError
from hive.fleet.reputation import Inputs, score
from hive.governance.api import EngineApi, ExecutionFailed, Refused
from hive.governance.proposal import Cost, Draft
from hive.node.port import ChannelState, Forwarded, NodeEvent, NodeId, NodePort, PeerConnected
from hive.protocol.gossip.state import ReputationNote
from hive.protocol.strategy import (
    CommitBody,
    InboundShare,
    ReportBody,
    ReportedChannel,
    StrategyBook,
    StrategyCommit,
    StrategyCommitAnnounce,
    StrategyDigest,
    StrategyRefused,
    StrategyReport,
    StrategyReportAnnounce,
    StrategyRules,
    StrategySync,
    commit_digest,
    commitment_of,
    report_digest,
    sign_commit,
    sign_report,
)
from hive.protocol.strategy.records import (
    MAX_CHANNELS,
    MAX_INBOUND,
    MAX_SYNC_COMMITS,
    MAX_SYNC_REPORTS,
)
from hive.protocol.strategy.verify import GraphChannel, Observed, Tolerance, Verdict, judge
from hive.protocol.wire.facade import Received
from hive.ratelimit import KeyedRateLimiter
from hive.store import Store
from hive.store import rebalance as rb
from hive.store import strategy as sql
from hive.supervisor import Inbox

log = logging.getLogger(__name__)

PROPOSER = "strategy"
TICK_S = 60.0
HOUR_MS = sql.HOUR_MS
SLACK_MS = HOUR_MS  # a member's forward settles a little after the issuer's
KEEP_MS = 32 * 86_400_000  # observations kept: the longest window plus the grace
MAX_BUCKETS = 20_000  # unsaved buckets between flushes (beyond: dropped and counted)
FALSE_NOTE = "strategy-false"


def _events_dropped(transport: Any) -> int:
    """Node events the transport dropped because a subscriber's inbox was full."""
    stats = getattr(transport, "stats", None)
    return 0 if stats is None else int(stats.dropped.get("event-subscriber-full", 0))


@attrs.define
class HeldVerdict:
    received_ms: int
    verdict: str
    checks: list[dict[str, str]]
    acted: bool = False


class Strategy:
    def __init__(
        self,
        *,
        node: NodePort,
        transport: Any,
        membership: Any,
        statemap: Any,
        store: Store,
        engine: EngineApi,
        signing_key: nacl.signing.SigningKey,
        now_ms: Callable[[], int],
        config: StrategyConfig,
        salt: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.node = node
        self.transport = transport
        self.membership = membership
        self.statemap = statemap
        self.store = store
        self.engine = engine
        self.key = signing_key
        self.hive_key = bytes(signing_key.verify_key)
        self.now_ms = now_ms
        self.config = config
        self._salt = salt
        self.rules = StrategyRules(max_per_window=config.max_per_day)
        self.tolerance = Tolerance(config.tolerance, config.tolerance_floor_msat)
        self.inbox: Inbox[Received] = Inbox(256)
        self.events: Inbox[NodeEvent] = Inbox(1024)
        transport.subscribe(
            (StrategyCommitAnnounce, StrategyReportAnnounce, StrategyDigest, StrategySync),
            self.inbox,
        )
        transport.subscribe_events(self.events)
        # Set by the runtime: the hive-revoke path (an admin's node revokes through it).
        self.revoke: Revoke | None = None
        self.book: StrategyBook | None = None
        self._stored: tuple[list[StrategyCommit], list[StrategyReport]] = ([], [])
        self.own: dict[bytes, sql.OwnRow] = {}
        self.verdicts: dict[bytes, HeldVerdict] = {}  # report digest -> verdict
        self._buckets: dict[sql.Bucket, list[int]] = {}
        self._running_since_ms: int | None = None
        self._last_covered = -1
        self._dropped_seen = _events_dropped(transport)
        self._scids: dict[str, NodeId] = {}
        self._learned_ms = -(10**18)
        self._standing: dict[NodeId, str] = {}
        self._proposed: dict[NodeId, str] = {}  # member -> open revoke proposal id
        self._last_check_ms = 0
        self._last_digest_ms = 0
        self._wake = trio.Event()
        self.refusals: collections.Counter[str] = collections.Counter()
        # Repair answers (a whole book) per asking member: bounded, so a member sending digest
        # after digest cannot make us send our book over and over (amplification).
        self._sync_answers = KeyedRateLimiter(
            rate=1.0 / config.sync_answer_gap_s, burst=config.sync_answer_burst
        )
        self.false_reports: collections.Counter[NodeId] = collections.Counter()  # by issuer
        self.dropped_buckets = 0

    # --- life cycle ------------------------------------------------------------------------------

    async def load(self) -> None:
        commits, held = await self.store.run("load_strategy", sql.load_held)
        self._stored = (commits, [h.report for h in held])
        for h in held:
            self.verdicts[report_digest(h.report)] = HeldVerdict(
                h.received_ms, h.verdict, h.checks, acted=h.verdict == "false"
            )
        self.own = {r.commitment: r for r in await self.store.run("load_own", sql.load_own)}
        self._ensure_book()
        roster = self.membership.roster
        for h in held:
            record = None if roster is None else roster.by_hive_key(h.report.body.issuer)
            if h.verdict == "false" and record is not None:
                self.false_reports[record.body.cert.node_id.hex()] += 1

    def register(self) -> None:
        self.engine.register_kind(REVOKE_MEMBER_SPEC, RevokeMemberExecutor(self), replace=True)

    def _ensure_book(self) -> StrategyBook | None:
        if self.book is None and self.membership.roster is not None:
            book = StrategyBook(self.membership.roster.hive_id, self.rules)
            book.load(*self._stored)
            self.book = book
            self._stored = ([], [])
        return self.book

    def _is_member(self, key: bytes) -> bool:
        roster = self.membership.roster
        return roster is not None and roster.by_hive_key(key) is not None

    def _member_nodes(self) -> set[NodeId]:
        roster = self.membership.roster
        return set() if roster is None else {n.hex() for n in roster.active()}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        now = self.now_ms()
        self._running_since_ms = now
        self._last_covered = -(-now // HOUR_MS) - 1  # hours before the first whole one: not ours
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._messages)
            nursery.start_soon(self._node_events)
            task_status.started()
            while True:
                await self.tick()
                with trio.move_on_after(self._sleep_s()):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _sleep_s(self) -> float:
        """Until the next tick, or sooner when one of our reveals falls due."""
        wait = min(TICK_S, self.config.check_s, self.config.sync_interval_s)
        due = [r.reveal_ms for r in self.own.values() if r.state == "pending"]
        if due:
            wait = min(wait, max(0.0, (min(due) - self.now_ms()) / 1000))
        return max(wait, 0.01)

    async def tick(self) -> None:
        now = self.now_ms()
        await self._flush(now)
        book = self._ensure_book()
        if book is None or not self.membership.is_member:
            return
        commits, reports = book.prune(now)
        if commits or reports:
            await self.store.run(
                "prune_strategy",
                lambda c: sql.delete_records(
                    c, [commit_digest(x) for x in commits], [report_digest(x) for x in reports]
                ),
            )
            for rep in reports:
                self.verdicts.pop(report_digest(rep), None)
        old = [
            c for c, r in self.own.items() if r.state != "pending" and r.created_ms < now - KEEP_MS
        ]
        if old:
            await self.store.run("strategy_forget", lambda c: sql.forget_own(c, now - KEEP_MS))
            for commitment in old:
                del self.own[commitment]
        await self._refresh_standing(now)
        if now - self._last_check_ms >= self.config.check_s * 1000:
            self._last_check_ms = now
            await self.discover(now)
        await self._reveal_due(now)
        await self._verify_pending(now)
        if now - self._last_digest_ms >= self.config.sync_interval_s * 1000:
            self._last_digest_ms = now
            await self._send_digest(self.membership.fleet_peers())

    # --- observing -------------------------------------------------------------------------------

    async def _node_events(self) -> None:
        async for event in self.events.receive:
            if isinstance(event, Forwarded) and event.settled:
                await self._observe(event)
            elif (
                isinstance(event, PeerConnected) and event.peer_id in self.membership.fleet_peers()
            ):
                await self._send_digest([event.peer_id])

    async def _observe(self, event: Forwarded) -> None:
        out_peer = self._scids.get(event.out_channel)
        in_peer = self._scids.get(event.in_channel)
        if (out_peer is None or in_peer is None) and self.now_ms() - self._learned_ms > 10_000:
            await self._learn_channels()
            out_peer = self._scids.get(event.out_channel)
            in_peer = self._scids.get(event.in_channel)
        if out_peer is None:
            return
        source = in_peer if in_peer is not None and in_peer in self._member_nodes() else ""
        key = (self.now_ms() // HOUR_MS, source, out_peer)
        totals = self._buckets.get(key)
        if totals is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self.dropped_buckets += 1
                return
            totals = self._buckets[key] = [0, 0, 0]
        totals[0] += event.in_msat
        totals[1] += event.out_msat
        totals[2] += 1

    async def _learn_channels(self) -> None:
        self._learned_ms = self.now_ms()
        try:
            channels = await self.node.list_channels()
        except (NodeError, TransientError) as exc:
            log.debug("strategy: cannot list channels: %s", exc)
            return
        self._scids = {c.short_channel_id: c.peer_id for c in channels if c.short_channel_id}

    async def _flush(self, now: int) -> None:
        """Save the buckets and the hours observed throughout (once they are over)."""
        if self._running_since_ms is None:
            return
        dropped = _events_dropped(self.transport)
        if dropped != self._dropped_seen:
            # The transport dropped node events (ours or another subscriber's): we may have
            # missed forwards, so no hour up to the current one counts as observed.
            self._dropped_seen = dropped
            self._last_covered = max(self._last_covered, -(-now // HOUR_MS) - 1)
        done = now // HOUR_MS - 1  # the last whole hour
        covered = list(range(self._last_covered + 1, done + 1))
        if not self._buckets and not covered:
            return
        buckets, self._buckets = self._buckets, {}
        keep = (now - KEEP_MS) // HOUR_MS
        await self.store.run(
            "strategy_observe", lambda c: sql.add_observations(c, buckets, covered, keep)
        )
        if covered:
            self._last_covered = covered[-1]

    # --- discovering, committing, revealing ------------------------------------------------------

    async def discover(self, now: int) -> list[sql.OwnRow]:
        """Commit to the peers that earned best over the window; return what was committed."""
        book = self._ensure_book()
        if book is None:
            return []
        start_hour = (now - int(self.config.window_s * 1000)) // HOUR_MS
        first = await self.store.run(
            "strategy_first", lambda c: sql.first_covered_hour(c, start_hour)
        )
        # The window starts where our observation does: the first hour observed throughout,
        # or, before one is over, when this run started observing.
        start_ms = first * HOUR_MS if first is not None else self._running_since_ms
        if start_ms is None or start_ms >= now:
            return []
        from_hour = start_ms // HOUR_MS
        rows = await self.store.run("strategy_fwds", lambda c: sql.forwards_since(c, from_hour))
        members = self._member_nodes()
        totals: dict[NodeId, list[int]] = {}
        inbound: dict[NodeId, list[InboundShare]] = collections.defaultdict(list)
        for in_peer, out_peer, in_msat, out_msat, count in rows:
            if out_peer in members:
                continue
            t = totals.setdefault(out_peer, [0, 0, 0])
            t[0] += out_msat
            t[1] += count
            t[2] += in_msat - out_msat
            if in_peer:
                inbound[out_peer].append(InboundShare(bytes.fromhex(in_peer), in_msat, count))
        recent = now - int(self.config.repeat_s * 1000)
        skip = {r.peer for r in self.own.values() if r.created_ms >= recent}
        day = sum(1 for r in self.own.values() if r.created_ms > now - 86_400_000)
        try:
            channels = await self.node.list_channels()
        except (NodeError, TransientError) as exc:
            log.info("strategy: cannot list channels to discover: %s", exc)
            return []
        candidates = []
        for peer, (forwarded, count, earned) in totals.items():
            mine = [
                ReportedChannel(
                    c.short_channel_id, c.capacity_msat // 1000, c.our_fee.base_msat, c.our_fee.ppm
                )
                for c in channels
                if c.peer_id == peer
                and c.short_channel_id
                and c.state is ChannelState.NORMAL
                and not c.private
            ][:MAX_CHANNELS]
            capacity = sum(c.capacity_sat for c in mine)
            if peer in skip or not mine or capacity == 0 or count < self.config.min_forwards:
                continue
            yield_ppm = earned * 1000 // capacity
            if yield_ppm >= self.config.min_yield_ppm:
                candidates.append((yield_ppm, peer, mine, forwarded, count, earned))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        room = min(self.config.max_per_check, self.rules.max_per_window - day)
        made = []
        for _, peer, mine, forwarded, count, earned in candidates[: max(room, 0)]:
            shares = sorted(inbound[peer], key=lambda s: -s.forwarded_msat)[:MAX_INBOUND]
            body = ReportBody(
                hive_id=book.hive_id,
                issuer=self.hive_key,
                peer=bytes.fromhex(peer),
                channels=tuple(mine),
                forwarded_msat=forwarded,
                forwards=min(count, 2**32 - 1),
                earned_msat=earned,
                window_start_ms=start_ms,
                window_end_ms=now,
                inbound=tuple(sorted(shares, key=lambda s: s.member)),
            )
            made.append(await self.commit(body, now))
        return made

    async def commit(self, body: ReportBody, now: int | None = None) -> sql.OwnRow:
        """Commit to ``body`` now and reveal it after the delay (stored first, then flooded)."""
        book = self._ensure_book()
        if book is None:
            raise ExecutionFailed("this node is not a member of a hive")
        at = self.now_ms() if now is None else now
        salt = self._salt(32)
        commitment = commitment_of(body, salt)
        reveal = at + int(self.config.delay_s * 1000)
        commit = sign_commit(
            self.key, CommitBody(book.hive_id, self.hive_key, commitment, at, reveal)
        )
        row = sql.OwnRow(commitment, body.peer.hex(), salt, body, commit, reveal, "pending", "", at)
        await self.store.run(
            "strategy_own",
            functools.partial(sql.save_own, row=row, commit_digest=commit_digest(commit)),
        )
        self.own[commitment] = row
        try:
            book.add_commit(commit, at, self._is_member)
        except StrategyRefused as exc:
            await self._withdraw(row, exc.reason)
            return self.own[commitment]
        log.info("strategy: committed to a report on %s (reveal at %d)", row.peer, reveal)
        await self._flood(StrategyCommitAnnounce(commit), None)
        self._wake.set()
        return row

    async def _withdraw(self, row: sql.OwnRow, note: str) -> None:
        await self.store.run(
            "strategy_withdraw", lambda c: sql.set_own_state(c, row.commitment, "withdrawn", note)
        )
        self.own[row.commitment] = attrs.evolve(row, state="withdrawn", note=note)
        log.info("strategy: withdrew our report on %s: %s", row.peer, note)

    async def _reveal_due(self, now: int) -> None:
        due = [r for r in self.own.values() if r.state == "pending" and r.reveal_ms <= now]
        if not due:
            return
        try:
            channels = await self.node.list_channels()
        except (NodeError, TransientError) as exc:
            log.info("strategy: cannot check channels before revealing: %s", exc)
            return
        open_scids = {c.short_channel_id for c in channels if c.state is ChannelState.NORMAL}
        for row in due:
            closed = [
                c.short_channel_id
                for c in row.body.channels
                if c.short_channel_id not in open_scids
            ]
            if closed:
                await self._withdraw(row, f"channel {closed[0]} is no longer open")
                continue
            await self._reveal(row, now)

    async def _reveal(self, row: sql.OwnRow, now: int) -> None:
        book = self._ensure_book()
        assert book is not None
        report = sign_report(self.key, row.body, row.salt, now)
        try:
            book.check_report(report, now, self._is_member)
        except StrategyRefused as exc:
            await self._withdraw(row, exc.reason)
            return
        digest = report_digest(report)
        await self.store.run(
            "strategy_reveal",
            lambda c: sql.reveal_own(c, row.commitment, digest, report, now),
        )
        book.add_report(report, now, self._is_member)
        self.own[row.commitment] = attrs.evolve(row, state="revealed")
        self.verdicts[digest] = HeldVerdict(now, "own", [])
        log.info("strategy: revealed our report on %s", row.peer)
        await self._flood(StrategyReportAnnounce(report), None, report=report)

    # --- spreading -------------------------------------------------------------------------------

    async def _messages(self) -> None:
        async for received in self.inbox.receive:
            message = received.message
            if isinstance(message, StrategyCommitAnnounce):
                await self.accept([message.commit], [], came_from=received.peer_id)
            elif isinstance(message, StrategyReportAnnounce):
                await self.accept([], [message.report], came_from=received.peer_id)
            elif isinstance(message, StrategySync):
                await self.accept(list(message.commits), list(message.reports), came_from=None)
            elif isinstance(message, StrategyDigest):
                book = self._ensure_book()
                if book is None or message.digest == book.digest():
                    continue
                if not self._sync_answers.allow(received.peer_id, self.now_ms() / 1000):
                    self.refusals["sync-rate"] += 1
                    continue
                if book.commits():
                    await self._send(received.peer_id, self._sync_for(received.peer_id, book))
                if not message.answer:
                    await self._send_digest([received.peer_id], answer=True)

    def _withheld(self, peer: NodeId, report: StrategyReport, now: int) -> bool:
        """Whether ``peer`` (a member in leech standing) must not get ``report`` yet."""
        if self._standing.get(peer) != "leech":
            return False
        delay = self.config.leech_delay_s
        return delay is None or now < report.revealed_ms + int(delay * 1000)

    def _sync_for(self, peer: NodeId, book: StrategyBook) -> StrategySync:
        now = self.now_ms()
        reports = [r for r in book.reports() if not self._withheld(peer, r, now)]
        return StrategySync(
            commits=tuple(book.commits()[-MAX_SYNC_COMMITS:]),
            reports=tuple(reports[-MAX_SYNC_REPORTS:]),
        )

    async def _send_digest(self, peers: Sequence[NodeId], *, answer: bool = False) -> None:
        book = self._ensure_book()
        if book is None or not (answer or book.commits()):
            return
        digest = StrategyDigest(digest=book.digest(), count=len(book.commits()), answer=answer)
        for peer in peers:
            await self._send(peer, digest)

    async def _send(self, peer: NodeId, message: Any) -> None:
        await self.transport.send(peer, message)

    async def _flood(
        self, message: Any, came_from: NodeId | None, *, report: StrategyReport | None = None
    ) -> None:
        now = self.now_ms()
        for peer in self.membership.fleet_peers():
            if peer == came_from or peer not in self.membership.connected:
                continue
            if report is not None and self._withheld(peer, report, now):
                continue
            await self._send(peer, message)

    async def accept(
        self,
        commits: Sequence[StrategyCommit],
        reports: Sequence[StrategyReport],
        *,
        came_from: NodeId | None,
    ) -> list[str]:
        """Take commitments, then reports, through the book; keep, flood on, verify."""
        book = self._ensure_book()
        if book is None:
            return ["not-member"]
        now = self.now_ms()
        codes = []
        for commit in commits:
            try:
                digest = book.add_commit(commit, now, self._is_member)
            except StrategyRefused as exc:
                codes.append(self._refused(exc, came_from))
                continue
            await self.store.run(
                "strategy_commit",
                functools.partial(sql.save_commit, digest=digest, commit=commit, now_ms=now),
            )
            codes.append("added")
            await self._flood(StrategyCommitAnnounce(commit), came_from)
        for report in reports:
            try:
                digest = book.add_report(report, now, self._is_member)
            except StrategyRefused as exc:
                codes.append(self._refused(exc, came_from))
                continue
            await self.store.run(
                "strategy_report",
                functools.partial(
                    sql.save_report, digest=digest, report=report, now_ms=now, verdict="pending"
                ),
            )
            self.verdicts[digest] = HeldVerdict(now, "pending", [])
            codes.append("added")
            await self._flood(StrategyReportAnnounce(report), came_from, report=report)
            await self._verify(report, now)
        return codes

    def _refused(self, exc: StrategyRefused, came_from: NodeId | None) -> str:
        self.refusals[exc.reason] += 1
        if exc.reason != "known":
            log.info("strategy: refused a record from %s: %s", came_from, exc)
        return exc.reason

    # --- verifying -------------------------------------------------------------------------------

    async def _verify_pending(self, now: int) -> None:
        book = self._ensure_book()
        if book is None:
            return
        for report in book.reports():
            held = self.verdicts.get(report_digest(report))
            if held is not None and held.verdict == "pending":
                await self._verify(report, now)

    async def _verify(self, report: StrategyReport, now: int) -> None:
        digest = report_digest(report)
        held = self.verdicts.get(digest)
        if held is None or held.verdict != "pending":
            return
        roster = self.membership.roster
        record = None if roster is None else roster.by_hive_key(report.body.issuer)
        if record is None:
            return  # the issuer left or was revoked: nothing more to learn
        issuer = record.body.cert.node_id.hex()
        graph: list[GraphChannel] | None
        try:
            graph = [
                GraphChannel(
                    p.short_channel_id,
                    bytes.fromhex(p.destination),
                    p.capacity_msat // 1000,
                    p.fee.base_msat,
                    p.fee.ppm,
                )
                for p in await self.node.list_public_channels(issuer)
            ]
        except (NodeError, TransientError) as exc:
            log.debug("strategy: cannot read %s's channels: %s", issuer, exc)
            graph = None
        observed = await self._observed(report.body, issuer, now)
        past = now >= held.received_ms + int(self.config.verify_grace_s * 1000)
        verdict = judge(
            report.body,
            self.membership.node_id,
            graph,
            observed,
            past_grace=past,
            tolerance=self.tolerance,
        )
        checks = [c.to_json() for c in verdict.checks]
        if (verdict.verdict, checks) == (held.verdict, held.checks):
            return
        if verdict.verdict == "false" and not held.acted:
            # Proposed before the verdict is stored: a crash in between proposes again after
            # the restart rather than never.
            held.acted = True
            self.false_reports[issuer] += 1
            await self._act_on_lie(report, issuer, verdict)
        held.verdict, held.checks = verdict.verdict, checks
        await self.store.run(
            "strategy_verdict", lambda c: sql.set_verdict(c, digest, verdict.verdict, checks)
        )

    async def _observed(self, body: ReportBody, issuer: NodeId, now: int) -> Observed | None:
        """What we sent the issuer over the window: our forwards out to it and our own
        rebalances through it (the provided shares of our liquidity accounting)."""
        if not any(s.member == self.membership.node_id for s in body.inbound):
            return None
        start, end = body.window_start_ms, body.window_end_ms + SLACK_MS
        if now < end:
            return Observed(covered=False, sent_msat=0)
        whole = await self.store.run(
            "strategy_covered",
            lambda c: sql.covered(c, start // HOUR_MS, body.window_end_ms // HOUR_MS),
        )
        forwarded = await self.store.run(
            "strategy_sent", lambda c: sql.sent_to(c, issuer, start // HOUR_MS, end // HOUR_MS)
        )
        shares = await self.store.run(
            "strategy_shares", lambda c: rb.liquidity_totals(c, start, end)
        )
        own = sum(t.provided_msat for t in shares if t.member == issuer)
        return Observed(covered=whole, sent_msat=forwarded + own)

    async def _act_on_lie(self, report: StrategyReport, issuer: NodeId, verdict: Verdict) -> None:
        lies = [c.to_json() for c in verdict.lies]
        log.warning(
            "strategy: %s's report on %s is false: %s", issuer, report.body.peer.hex(), lies
        )
        open_id = self._proposed.get(issuer)
        if open_id is not None:
            status = self.engine.get(open_id)
            if status is not None and not status.state.final:
                return
        summary = "; ".join(f"{c['check']} {c['result']}: {c['detail']}" for c in lies)
        try:
            status = await self.engine.submit(
                Draft(
                    kind=REVOKE_MEMBER,
                    params={"member": issuer, "reason": f"false strategy report: {summary}"[:200]},
                    reason=f"strategy report shown false: {summary}"[:500],
                    cost=Cost(),
                    proposer=PROPOSER,
                    evidence={
                        "report": report_digest(report).hex(),
                        "commitment": commitment_of(report.body, report.salt).hex(),
                        "peer": report.body.peer.hex(),
                        "window_ms": [report.body.window_start_ms, report.body.window_end_ms],
                        "claimed_yield_ppm": report.body.yield_ppm,
                        "lies": lies,
                    },
                    target=issuer,
                )
            )
        except Refused as exc:
            log.warning("strategy: could not propose revoking %s: %s", issuer, exc)
            return
        self._proposed[issuer] = status.id

    def reputation(self) -> tuple[ReputationNote, ...]:
        """Members with a report we showed false (a note in our state record)."""
        return tuple(
            ReputationNote(peer=bytes.fromhex(node), reason=FALSE_NOTE, count=n)
            for node, n in sorted(self.false_reports.items())
        )

    async def _refresh_standing(self, now: int) -> None:
        """Every member's contribution standing (hive/fleet/reputation.py), for the gate."""
        roster = self.membership.roster
        if roster is None:
            return
        observed = {
            t.member: t.provided_msat
            for t in await self.store.run("liquidity_totals", rb.liquidity_totals)
        }
        standing = {}
        for node, record in roster.active().items():
            member = node.hex()
            entry = self.statemap.entry(member)
            held = None if entry is None else entry.state.rebalancing
            inputs = Inputs(
                member=member,
                admitted_ms=record.body.admitted_ms,
                claimed_provided_msat=None if held is None else held.provided_msat,
                claimed_consumed_msat=None if held is None else held.consumed_msat,
                observed_provided_msat=observed.get(member, 0),
            )
            standing[member] = score(inputs, now).standing
        self._standing = standing

    # --- reading ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counters for `hive-status` (the records themselves: `hive-strategies`)."""
        book = self.book
        states = collections.Counter(r.state for r in self.own.values())
        verdicts = collections.Counter(v.verdict for v in self.verdicts.values())
        return {
            "ours": dict(states),
            "commitments_held": 0 if book is None else len(book.commits()),
            "verdicts": dict(verdicts),
            "refusals": dict(self.refusals),
            "dropped_buckets": self.dropped_buckets,
        }

    def verified_peers(self) -> list[NodeId]:
        """Peers of revealed reports of other members that every check we could run
        confirmed (the planner's strategy bonus)."""
        book = self.book
        return sorted(
            {
                r.body.peer.hex()
                for r in ([] if book is None else book.reports())
                if (held := self.verdicts.get(report_digest(r))) is not None
                and held.verdict == "consistent"
            }
        )
