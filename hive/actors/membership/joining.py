"""The candidate side of the join handshake, driven for `hive-join`.

The pure :class:`~hive.protocol.membership.candidate.CandidateSession` decides; this driver
carries out its actions (send the Hello and the answer, have the node key sign the challenge,
adopt the roster of a verified Welcome) and lets the waiting command return.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from hive.actors.membership.probe import offers_splicing
from hive.commands import CommandError
from hive.errors import HiveError, NodeError
from hive.node.port import ChannelState, NodeId
from hive.protocol.errors import ProtocolError
from hive.protocol.membership import (
    Certificate,
    Challenge,
    Hello,
    Manifest,
    Refuse,
    Welcome,
    cert_text,
    decode_ticket,
)
from hive.protocol.membership.candidate import (
    CandidateAction,
    CandidateSession,
    Failed,
    Joined,
    Refused,
    SendAnswer,
    SendHello,
    SignChallenge,
)
from hive.protocol.wire.facade import Received

if TYPE_CHECKING:
    from hive.actors.membership.roster import Membership

log = logging.getLogger(__name__)


@attrs.frozen
class JoinResult:
    hive_id: str
    via: NodeId
    members: int


class CandidateDriver:
    """At most one join at a time; the command waits for its outcome."""

    def __init__(self, membership: Membership) -> None:
        self._m = membership
        self.session: CandidateSession | None = None
        self._done = trio.Event()
        self._outcome: CandidateAction | None = None

    def forget(self) -> None:
        """Forget a finished join (we left the hive it joined)."""
        if self.session is not None and self.session.terminal:
            self.session = None

    def status(self) -> dict[str, Any] | None:
        session = self.session
        if session is None:
            return None
        return {
            "via": session.member_id.hex(),
            "state": session.state.value,
            "hive_id": session.hive_id.hex(),
        }

    async def join(
        self, ticket_text: str, member: NodeId | None, host: str | None, port: int | None
    ) -> JoinResult:
        m = self._m
        if m.is_member:
            raise CommandError(CommandError.REFUSED, "this node is a member of a hive already")
        if self.session is not None and not self.session.terminal:
            raise CommandError(CommandError.REFUSED, "a join is in progress already")
        try:
            ticket = decode_ticket(ticket_text)
        except ProtocolError as exc:
            raise CommandError(CommandError.INVALID_PARAMS, f"bad ticket: {exc.detail}") from exc
        target = member or ticket.body.issuer_node.hex()
        try:
            await m.node.connect(target, host, port)
            if host is not None:
                # Kept, so that we find this member again after a restart (no channel needed).
                shown = f"[{host}]" if ":" in host else host
                await m.contact.learn(target, [f"{shown}:{port or 9735}"], "join")
            hive_id = ticket.body.hive_id
            node_sig = await m.node.sign_message(cert_text(hive_id, m.node_id, m.hive_key))
            manifest = await self._manifest()
        except HiveError as exc:
            raise CommandError(CommandError.NODE_ERROR, f"cannot start the join: {exc}") from exc
        m.connected.add(target)
        cert = Certificate(
            hive_id=hive_id, node_id=m.node_id, hive_key=m.hive_key, node_sig=node_sig
        )
        hello = Hello(session=m.rng.randbytes(16), ticket=ticket, cert=cert, manifest=manifest)
        self.session = CandidateSession(member_id=bytes.fromhex(target), hello=hello)
        self._done = trio.Event()
        self._outcome = None
        log.info("joining hive %s through %s", hive_id.hex()[:16], target)
        await self._carry_out(self.session.start(m.now_ms()))
        await self._done.wait()
        return self._result(target)

    def _result(self, target: NodeId) -> JoinResult:
        outcome = self._outcome
        if isinstance(outcome, Joined):
            roster = outcome.roster
            return JoinResult(roster.hive_id.hex(), target, len(roster.active()))
        if isinstance(outcome, Refused | Failed):
            word = "refused" if isinstance(outcome, Refused) else "failed"
            raise CommandError(
                CommandError.REFUSED, f"join {word}: {outcome.reason}: {outcome.detail}"
            )
        raise AssertionError(f"join ended without an outcome: {outcome!r}")

    async def _manifest(self) -> Manifest:
        node = self._m.node
        info = await node.get_info()
        channels = [c for c in await node.list_channels() if c.state is ChannelState.NORMAL]
        public = await node.list_public_channels(info.node_id)
        announced = await node.get_node_announcement(info.node_id) is not None
        return Manifest(
            node_version=info.version[:64],
            hive_version=self._m.config.hive_version,
            features=info.features[:64],
            splicing=offers_splicing(info.features),
            channels=len(channels),
            capacity_sat=sum(c.capacity_msat for c in public) // 1000,
            public=announced,
        )

    async def on_message(self, received: Received, message: Challenge | Welcome | Refuse) -> None:
        session = self.session
        if session is None or received.peer_id != session.member_id.hex():
            self._m.stats.rejected["no-join-session"] += 1
            return
        now = self._m.now_ms()
        if isinstance(message, Challenge):
            actions = session.on_challenge(message, now)
        elif isinstance(message, Welcome):
            actions = session.on_welcome(message, now)
        else:
            actions = session.on_refuse(message, now)
        await self._carry_out(actions)

    async def tick(self) -> None:
        if self.session is not None and not self.session.terminal:
            await self._carry_out(self.session.tick(self._m.now_ms()))

    async def _carry_out(self, actions: tuple[CandidateAction, ...]) -> None:
        m = self._m
        for action in actions:
            if isinstance(action, SendHello | SendAnswer):
                await m.transport.send(action.member_id.hex(), action.message)
            elif isinstance(action, SignChallenge):
                assert self.session is not None
                try:
                    node_sig = await m.node.sign_message(action.text)
                except NodeError as exc:
                    self._finish(
                        Failed("node-error", f"the node did not sign the challenge: {exc}")
                    )
                    continue
                await self._carry_out(self.session.on_signed(node_sig, m.now_ms()))
            elif isinstance(action, Joined):
                await m.adopt(action.roster)
                log.info("joined hive %s", action.roster.hive_id.hex()[:16])
                self._finish(action)
            elif isinstance(action, Refused | Failed):
                log.warning("join did not succeed: %s (%s)", action.reason, action.detail)
                self._finish(action)

    def _finish(self, outcome: CandidateAction) -> None:
        self._outcome = outcome
        self._done.set()
