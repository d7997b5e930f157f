"""The hive plugin process with a tiny test runtime instead of hive.runtime.Runtime.

Run by the lightningd double as ``python tests/cln/echo_plugin.py``: the same
:func:`hive.cln.plugin.main`, bridge, ClnNode and gateway as production, only the runtime is
this one, with commands that expose what the plugin saw.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from hive.cln.node import ClnNode
from hive.cln.plugin import CommandSpec, main
from hive.commands import Command, CommandError, JsonDict
from hive.config import HiveConfig
from hive.node.port import CustomMessage, NodeEvent

SPECS = (
    CommandSpec("hive-echo", "[text]", "Echo the params back."),
    CommandSpec("hive-info", "", "getinfo through the node port."),
    CommandSpec("hive-send", "peer_id hex", "Send a custom message through the node port."),
    CommandSpec("hive-events", "[count]", "Events received, once there are at least count."),
    CommandSpec("hive-stats", "", "ClnNode statistics and the config."),
    CommandSpec("hive-slow", "seconds", "Sleep, then answer."),
    CommandSpec("hive-fail", "", "Raise an unexpected exception."),
    CommandSpec("hive-unbound", "", "In the manifest, not served by the runtime."),
    CommandSpec("hive-warn", "", "Log a warning, an error and a Python warning."),
)


class EchoRuntime:
    def __init__(self, node: ClnNode, config: HiveConfig) -> None:
        self.node = node
        self.config = config
        self.events: list[NodeEvent] = []
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[NodeEvent](100)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.node.run_events, send)
            task_status.started()
            async for event in receive:
                self.events.append(event)
                self._changed.set()
                self._changed = trio.Event()

    async def _warn(self, params: Mapping[str, Any]) -> JsonDict:
        logging.getLogger("hive.echo").warning("a warning for the operator")
        logging.getLogger("hive.echo").error("an error for the operator")
        warnings.warn("a python warning", UserWarning, stacklevel=1)
        return {}

    def commands(self) -> Sequence[Command]:
        handlers = {
            "hive-echo": self._echo,
            "hive-info": self._info,
            "hive-send": self._send,
            "hive-events": self._events,
            "hive-stats": self._stats,
            "hive-slow": self._slow,
            "hive-fail": self._fail,
            "hive-warn": self._warn,
        }
        return [Command(CommandSpec(name, "", name), handler) for name, handler in handlers.items()]

    async def _echo(self, params: Mapping[str, Any]) -> JsonDict:
        return {"echo": dict(params)}

    async def _info(self, params: Mapping[str, Any]) -> JsonDict:
        info = await self.node.get_info()
        return {"node_id": info.node_id, "alias": info.alias, "network": info.network}

    async def _send(self, params: Mapping[str, Any]) -> JsonDict:
        try:
            message = bytes.fromhex(params["hex"])
        except (KeyError, ValueError) as exc:
            raise CommandError(CommandError.INVALID_PARAMS, f"hex: {exc}") from exc
        await self.node.send_custommsg(params["peer_id"], message)
        return {"sent": len(message)}

    async def _events(self, params: Mapping[str, Any]) -> JsonDict:
        with trio.move_on_after(10):
            while len(self.events) < int(params.get("count", 0)):
                await self._changed.wait()
        out = []
        for event in self.events:
            entry: JsonDict = {"type": type(event).__name__}
            if isinstance(event, CustomMessage):
                entry.update(peer_id=event.peer_id, message=event.message.hex())
            else:
                entry.update(repr=repr(event))
            out.append(entry)
        return {"events": out}

    async def _stats(self, params: Mapping[str, Any]) -> JsonDict:
        return {
            "node": self.node.statistics(),
            "data_dir": str(self.config.data_dir),
            "governance": self.config.governance.value,
            "log_level": self.config.log_level,
        }

    async def _slow(self, params: Mapping[str, Any]) -> JsonDict:
        await trio.sleep(float(params["seconds"]))
        return {"slept": params["seconds"]}

    async def _fail(self, params: Mapping[str, Any]) -> JsonDict:
        raise RuntimeError("deliberate failure")


if __name__ == "__main__":
    main(EchoRuntime, SPECS)
