"""Oracle agents over websocket: ``/oracle``, each connected agent one decider of the engine.

An agent connects with the token (and ``?name=NAME``, default ``agent-N``), receives the
decision packets of ``docs/ORACLE.md`` as text messages, and answers each with
``hive.decision-answer``. While it is connected it is attached to the engine's
:class:`~hive.actors.governance.deciders.DeciderPanel`, which asks every attached decider at once:
any DENY
denies, otherwise the first APPROVE approves; no answer by the deadline is DENY. A malformed
answer is refused (``hive.answer-refused`` with the reason goes back to the agent), counted, and
counts as that agent's DENY; an agent that disconnects with questions open denies them.
"""

from __future__ import annotations

import collections
import json
import re
from typing import Any

import trio

from hive.governance.api import EngineApi
from hive.governance.decider import DeciderError, Verdict
from hive.governance.packet import MAX_ANSWER_BYTES, PACKET_VERSION, encode_packet, parse_answer
from hive.web.hub import CLOSE_BAD_MESSAGES

Scope = dict[str, Any]
REFUSED_TYPE = "hive.answer-refused"
HELLO_TYPE = "hive.agent-hello"
MAX_AGENTS = 8
MAX_OPEN_QUESTIONS = 16
MAX_REFUSALS = 32  # refused answers in a row before the agent is closed
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class WsAgent:
    """One connected agent, as a :class:`~hive.governance.decider.Decider`."""

    def __init__(self, name: str, send: Any) -> None:
        self._name = f"agent:{name}"
        self._send = send
        self._lock = trio.Lock()  # one writer at a time on the socket
        self._waiting: dict[str, trio.MemorySendChannel[Verdict | DeciderError]] = {}
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    async def decide(self, packet: dict[str, Any]) -> Verdict:
        pid = str(packet["proposal_id"])
        if self._closed:
            raise DeciderError("disconnected", "the agent is gone")
        if len(self._waiting) >= MAX_OPEN_QUESTIONS or pid in self._waiting:
            raise DeciderError("busy", f"{len(self._waiting)} questions already open")
        send, receive = trio.open_memory_channel[Verdict | DeciderError](1)
        self._waiting[pid] = send
        try:
            await self.write(encode_packet(packet).decode())
            try:
                result = await receive.receive()
            except trio.EndOfChannel:
                raise DeciderError("disconnected", "the agent left before answering") from None
        finally:
            self._waiting.pop(pid, None)
        if isinstance(result, DeciderError):
            raise result
        return result

    async def write(self, text: str) -> None:
        async with self._lock:
            await self._send({"type": "websocket.send", "text": text})

    def answer(self, raw: str | bytes) -> tuple[str, str] | None:
        """Route one answer to its question; (reason code, message) when it is refused."""
        pid = _proposal_id(raw)
        if pid not in self._waiting:
            if pid is None and len(self._waiting) == 1:
                pid = next(iter(self._waiting))  # the only open question: it is that answer
            else:
                return "unknown-proposal", f"no open question for proposal {pid!r}"
        try:
            verdict: Verdict | DeciderError = parse_answer(raw, pid)
        except DeciderError as exc:
            verdict = exc
        self._waiting[pid].send_nowait(verdict)
        if isinstance(verdict, DeciderError):
            return verdict.reason, verdict.message
        return None

    def close(self) -> None:
        self._closed = True
        for channel in self._waiting.values():
            channel.close()


def _proposal_id(raw: str | bytes) -> str | None:
    if len(raw) > MAX_ANSWER_BYTES:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    pid = data.get("proposal_id") if isinstance(data, dict) else None
    return pid if isinstance(pid, str) else None


class AgentEndpoint:
    """The ``/oracle`` websocket route: attaches each agent to the engine while connected."""

    def __init__(self, engine: EngineApi, mode: str) -> None:
        self.engine = engine
        self.mode = mode
        self.agents: dict[str, WsAgent] = {}
        self.connections = 0
        self.refused: collections.Counter[str] = collections.Counter()  # answers, by reason
        self.answers = 0
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return when an agent next connects or leaves."""
        await self._changed.wait()

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def status(self) -> dict[str, Any]:
        return {
            "agents": sorted(self.agents),
            "connections": self.connections,
            "answers": self.answers,
            "answers_refused": dict(self.refused),
        }

    def check(self, scope: Scope) -> tuple[int, str] | str:
        """The agent's name, or the HTTP status and reason to refuse the handshake."""
        query = dict(
            part.partition("=")[::2] for part in scope.get("query_string", b"").decode().split("&")
        )
        name = query.get("name") or f"agent-{self.connections + 1}"
        if not _NAME.match(name):
            return 400, "name must be 1 to 32 letters, digits, '.', '_' or '-'"
        if f"agent:{name}" in self.agents or f"agent:{name}" in self.engine.deciders.names:
            return 409, f"an agent named {name!r} is already connected"
        if len(self.agents) >= MAX_AGENTS:
            return 503, f"at most {MAX_AGENTS} agents; try again later"
        return name

    async def serve(self, name: str, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        agent = WsAgent(name, send)
        self.agents[agent.name] = agent
        self.connections += 1
        hello = {"type": HELLO_TYPE, "version": PACKET_VERSION, "name": agent.name}
        await agent.write(json.dumps({**hello, "mode": self.mode}))
        refusals = 0
        try:
            async with self.engine.deciders.attached(agent):
                self._note_change()
                while True:
                    event = await receive()
                    if event["type"] == "websocket.disconnect":
                        return
                    raw = event.get("text") if event.get("text") is not None else event["bytes"]
                    refused = agent.answer(raw or "")
                    if refused is None:
                        self.answers += 1
                        refusals = 0
                        continue
                    refusals += 1
                    self.refused[refused[0]] += 1
                    reply = {
                        "type": REFUSED_TYPE,
                        "version": PACKET_VERSION,
                        "proposal_id": _proposal_id(raw or ""),
                        "reason": f"{refused[0]}: {refused[1]}",
                    }
                    await agent.write(json.dumps(reply))
                    if refusals >= MAX_REFUSALS:
                        await send(
                            {
                                "type": "websocket.close",
                                "code": CLOSE_BAD_MESSAGES,
                                "reason": "too many refused answers",
                            }
                        )
                        return
        finally:
            agent.close()
            self.agents.pop(agent.name, None)
            self._note_change()


__all__ = ["AgentEndpoint", "WsAgent"]
