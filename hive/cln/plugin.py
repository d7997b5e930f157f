"""The plugin process lightningd starts: ``python -m hive.cln`` (or the ``hive-plugin`` script).

Startup, in lightningd's order:

1. ``getmanifest`` (answered by pyln from what :func:`build_plugin` registered): options
   ``hive-data-dir``, ``hive-governance``, ``hive-log-level``; the ``custommsg`` hook; the
   ``openchannel`` and ``openchannel2`` hooks (a banned peer is refused, decided from memory); the
   ``connect``, ``disconnect``, ``channel_opened``, ``channel_state_changed``,
   ``forward_event`` and ``shutdown`` subscriptions; one RPC method per :class:`CommandSpec`;
   ``dynamic: false``.
2. ``init``: options are validated without any I/O (an invalid value disables the plugin with
   the reason), then handed to trio, which builds the RPC gateway, :class:`ClnNode` and the
   runtime, starts the runtime and binds the runtime's command handlers.

The RPC method names must be in the manifest before the runtime exists, so they come from a
static list of :class:`CommandSpec`; a call that arrives before the runtime is ready is
answered ``NOT_READY``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import trio

from hive.cln.bridge import CommandCall, PluginBridge, RawStdin
from hive.cln.check import check_params, split_check_params
from hive.cln.events import CUSTOMMSG, EVENT_TOPICS
from hive.cln.gateway import RpcGateway
from hive.cln.node import ClnNode
from hive.cln.pyln_glue import HivePlugin, answer_error, use_lightningd_levels
from hive.commands import CATALOGUE, Command, CommandError, CommandSpec, JsonDict
from hive.commands.strategy import OPTIONS as STRATEGY_OPTIONS
from hive.commands.strategy import strategy_from_options
from hive.config import GossipConfig, Governance, HiveConfig, RebalanceConfig, WebConfig
from hive.errors import NodeError, TransientError
from hive.governance.options import OPTIONS as DECISION_OPTIONS
from hive.governance.options import DecisionOptionError, decisions_from_options
from hive.web.access import DEFAULT_BIND, Bind, BindError, parse_bind

log = logging.getLogger(__name__)

# JSON-RPC 2.0 "internal error": a command failed in a way nobody anticipated (a bug).
INTERNAL_ERROR = -32603
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_DEFAULT_GOSSIP = GossipConfig()
SUBSCRIPTIONS = (*EVENT_TOPICS, "shutdown")


# The commands the production runtime serves: the one catalogue in hive.commands.
HIVE_COMMANDS: tuple[CommandSpec, ...] = CATALOGUE


class RuntimeLike(Protocol):
    """What the plugin needs of :class:`hive.runtime.Runtime`."""

    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    def commands(self) -> Sequence[Command]: ...


RuntimeFactory = Callable[[ClnNode, HiveConfig], RuntimeLike]


class OptionError(ValueError):
    """An option value lightningd passed in ``init`` is not acceptable."""


def config_from_init(options: Mapping[str, Any], configuration: Mapping[str, Any]) -> HiveConfig:
    """HiveConfig from ``init``'s options and configuration; pure, raises OptionError."""
    lightning_dir = configuration.get("lightning-dir")
    if not isinstance(lightning_dir, str):
        raise OptionError("init carries no lightning-dir")
    data_dir = options.get("hive-data-dir") or ""
    if not isinstance(data_dir, str):
        raise OptionError(f"hive-data-dir must be a path, got {data_dir!r}")
    governance = options.get("hive-governance") or Governance.ADVISOR.value
    try:
        gov = Governance(governance)
    except ValueError:
        choices = "|".join(g.value for g in Governance)
        raise OptionError(f"hive-governance must be {choices}, got {governance!r}") from None
    level = options.get("hive-log-level") or "info"
    if level not in LOG_LEVELS:
        raise OptionError(f"hive-log-level must be one of {sorted(LOG_LEVELS)}, got {level!r}")
    cap = _fraction(options, "hive-saturation-cap", _DEFAULT_GOSSIP.saturation_cap)
    release = _fraction(options, "hive-saturation-release", _DEFAULT_GOSSIP.saturation_release)
    if not release < cap:
        raise OptionError(
            f"hive-saturation-release ({release}) must be below hive-saturation-cap ({cap})"
        )
    try:
        decisions = decisions_from_options(options)
        strategy = strategy_from_options(options)
    except DecisionOptionError as exc:
        raise OptionError(str(exc)) from None
    return HiveConfig(
        data_dir=Path(data_dir) if data_dir else Path(lightning_dir) / "hive",
        governance=gov,
        log_level=level,
        gossip=GossipConfig(saturation_cap=cap, saturation_release=release),
        rebalance=RebalanceConfig(
            member_fee_ppm=_fee(options, "hive-member-fee-ppm", MAX_MEMBER_FEE_PPM),
            member_fee_base_msat=_fee(
                options, "hive-member-fee-base-msat", MAX_MEMBER_FEE_BASE_MSAT
            ),
        ),
        decisions=decisions,
        web=WebConfig(bind=_web_bind(options)),
        strategy=strategy,
    )


# Member fees are meant to be zero or near it; these bounds catch typos (a fee in sat
# written as msat), not policy.
MAX_MEMBER_FEE_PPM = 10_000
MAX_MEMBER_FEE_BASE_MSAT = 100_000


def _fee(options: Mapping[str, Any], name: str, maximum: int) -> int:
    """A whole number in [0, maximum]; empty means 0."""
    raw = options.get(name)
    if raw in (None, ""):
        return 0
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.isdigit():
        raise OptionError(f"{name} must be a whole number from 0 to {maximum}, got {raw!r}")
    value = int(text)
    if value > maximum:
        raise OptionError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def _web_bind(options: Mapping[str, Any]) -> Bind | None:
    """``hive-web-bind``: loopback by default, ``off`` for no web server."""
    raw = options.get("hive-web-bind")
    try:
        return parse_bind(DEFAULT_BIND if raw in (None, "") else str(raw))
    except BindError as exc:
        raise OptionError(str(exc)) from None


def _fraction(options: Mapping[str, Any], name: str, default: float) -> float:
    """A share in (0, 1], given as "0.25" or "25%"."""
    raw = options.get(name)
    if raw in (None, ""):
        return default
    text = str(raw).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise OptionError(f"{name} must be a share such as 0.25 or 25%, got {raw!r}") from None
    if not 0 < value <= 1:
        raise OptionError(f"{name} must be above 0 and at most 1 (100%), got {raw!r}")
    return value


class CommandTable:
    """Runs our RPC methods: NOT_READY until :meth:`bind`, then the runtime's handlers."""

    def __init__(self, specs: Sequence[CommandSpec], *, ready_timeout_s: float = 10.0) -> None:
        self.specs = {s.name: s for s in specs}
        self.ready_timeout_s = ready_timeout_s
        self._handlers: dict[str, Command] | None = None
        self._bound = trio.Event()

    def bind(self, commands: Sequence[Command]) -> None:
        handlers = {c.name: c for c in commands}
        for name in sorted(set(handlers) - set(self.specs)):
            log.warning(
                "runtime command %s is not in the manifest; lightningd cannot call it", name
            )
        self._handlers = handlers
        self._bound.set()

    async def execute(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> JsonDict:
        """Run one command; raises CommandError for anything the caller should read.

        A call that arrives while the runtime is starting waits for it up to
        ``ready_timeout_s``, then fails with NOT_READY.
        """
        with trio.move_on_after(self.ready_timeout_s):
            await self._bound.wait()
        if self._handlers is None:
            raise CommandError(CommandError.NOT_READY, "the hive companion is still starting")
        command = self._handlers.get(name)
        if command is None:
            raise CommandError(CommandError.NOT_FOUND, f"{name} is not served by this runtime")
        params = self._params(self.specs[name], args, kwargs)
        try:
            return await command.handler(params)
        except CommandError:
            raise
        except (NodeError, TransientError) as exc:
            raise CommandError(CommandError.NODE_ERROR, f"{name}: {exc}") from exc

    @staticmethod
    def _params(spec: CommandSpec, args: Sequence[Any], kwargs: Mapping[str, Any]) -> JsonDict:
        if args and kwargs:
            raise CommandError(CommandError.INVALID_PARAMS, "mixed positional and named params")
        if not args:
            return dict(kwargs)
        names = spec.param_names
        if len(args) > len(names):
            raise CommandError(
                CommandError.INVALID_PARAMS,
                f"{spec.name} takes at most {len(names)} parameters ({spec.usage or 'none'}), "
                f"got {len(args)}",
            )
        return dict(zip(names, args, strict=False))


class PluginApp:
    """The plugin process: pyln's Plugin, the bridge, and the trio side."""

    def __init__(
        self,
        runtime_factory: RuntimeFactory,
        specs: Sequence[CommandSpec] = HIVE_COMMANDS,
        *,
        plugin: Any = None,
        stdin_fd: int = 0,
    ) -> None:
        self.plugin = plugin if plugin is not None else HivePlugin(dynamic=False)
        use_lightningd_levels()
        self.plugin.stdin = RawStdin(stdin_fd)
        self.bridge = PluginBridge(self.plugin)
        self.table = CommandTable(specs)
        self._runtime_factory = runtime_factory
        self.node: ClnNode | None = None
        self.runtime: RuntimeLike | None = None
        _register(self.plugin, self.bridge, specs)

    async def run(self) -> None:
        """Serve until stdin EOF or the shutdown notification; then return promptly."""
        async with trio.open_nursery() as nursery:

            async def loop_then_stop() -> None:
                await self.bridge.run()
                nursery.cancel_scope.cancel()

            async def shutdown_then_stop() -> None:
                await self.bridge.shutdown.wait()
                log.info("shutdown notification: exiting")
                nursery.cancel_scope.cancel()

            nursery.start_soon(loop_then_stop)
            nursery.start_soon(shutdown_then_stop)
            nursery.start_soon(self._serve_commands)
            await self.bridge.init_received.wait()
            await self._start_runtime(nursery)

    async def _start_runtime(self, nursery: trio.Nursery) -> None:
        init = self.bridge.init
        assert init is not None
        config = config_from_init(init.options, init.configuration)  # validated in init
        logging.getLogger("hive").setLevel(LOG_LEVELS[config.log_level])
        rpc_path = os.path.join(
            str(init.configuration["lightning-dir"]), str(init.configuration["rpc-file"])
        )
        await trio.to_thread.run_sync(lambda: config.data_dir.mkdir(parents=True, exist_ok=True))
        self.node = ClnNode(RpcGateway(rpc_path), self.bridge.events)
        self.runtime = self._runtime_factory(self.node, config)
        await nursery.start(self._run_runtime, self.runtime)
        self.table.bind(self.runtime.commands())
        bans = getattr(self.runtime, "bans", None)
        if bans is not None:
            self.bridge.open_gate = bans.refuse_open
        log.info("hive companion started (governance %s)", config.governance.value)

    @staticmethod
    async def _run_runtime(
        runtime: RuntimeLike, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await runtime.run(task_status=task_status)

    async def _serve_commands(self) -> None:
        async with trio.open_nursery() as nursery:
            async for call in self.bridge.calls:
                nursery.start_soon(self._answer, call)

    async def _answer(self, call: CommandCall) -> None:
        error: tuple[int, str] | None = None
        result: JsonDict = {}
        try:
            result = await self.table.execute(call.name, call.args, call.kwargs)
        except CommandError as exc:
            log.info("%s failed: %s (code %d)", call.name, exc.message, exc.code)
            error = (exc.code, exc.message)
        except Exception as exc:  # any other failure: answered clearly, logged with traceback
            log.exception("%s failed unexpectedly", call.name)
            error = (INTERNAL_ERROR, f"{call.name} failed: {type(exc).__name__}: {exc}")

        def answer() -> None:
            if error is None:
                call.request.set_result(result)
            else:
                answer_error(call.request, *error)

        # The answer is a blocking write to lightningd's pipe: keep it off the trio thread.
        await trio.to_thread.run_sync(answer)


def _register(plugin: Any, bridge: PluginBridge, specs: Sequence[CommandSpec]) -> None:
    """Options, hook, subscriptions, init and our RPC methods, before ``getmanifest``."""
    plugin.add_option(
        "hive-data-dir",
        "",
        "Hive data directory (default: <lightning-dir>/hive)",
        opt_type="string",
    )
    plugin.add_option(
        "hive-governance",
        Governance.ADVISOR.value,
        "Who decides: advisor (the operator approves), autonomous (within hard limits), "
        "oracle (an external program)",
        opt_type="string",
    )
    plugin.add_option(
        "hive-log-level", "info", "Hive log level: debug|info|warn|error", opt_type="string"
    )
    plugin.add_option(
        "hive-saturation-cap",
        str(_DEFAULT_GOSSIP.saturation_cap),
        "Fleet share of a target's public capacity above which members without a channel to it "
        "stop considering it for opens (0.25 or 25%)",
        opt_type="string",
    )
    plugin.add_option(
        "hive-saturation-release",
        str(_DEFAULT_GOSSIP.saturation_release),
        "Fleet share below which a saturated target is considered for opens again; below the cap",
        opt_type="string",
    )
    plugin.add_option(
        "hive-member-fee-ppm",
        "0",
        "Proportional fee (ppm) charged to fleet members on our channels with them (0..10000)",
        opt_type="string",
    )
    plugin.add_option(
        "hive-member-fee-base-msat",
        "0",
        "Base fee (msat) charged to fleet members on our channels with them (0..100000)",
        opt_type="string",
    )

    plugin.add_option(
        "hive-web-bind",
        DEFAULT_BIND,
        "Where the live fleet view, its API, feeds and /metrics listen (HOST:PORT, [IPv6]:PORT, "
        "or off); anything but loopback exposes them to whoever holds the token (hive-web-token)",
        opt_type="string",
    )

    for option in (*DECISION_OPTIONS, *STRATEGY_OPTIONS):
        plugin.add_option(
            option.name, option.default, option.description, opt_type="string", multi=option.multi
        )

    def on_init(options: Mapping[str, Any], configuration: Mapping[str, Any], **_: Any) -> Any:
        try:
            config_from_init(options, configuration)
        except OptionError as exc:
            # lightningd logs "disabled itself" at debug only: say it where an operator looks.
            plugin.log(f"hive plugin disabled: {exc}", level="unusual")
            return {"disable": str(exc)}
        bridge.from_loop_init(options, configuration)
        return None

    plugin.init()(on_init)

    def on_custommsg(**params: Any) -> JsonDict:
        bridge.from_loop_event(CUSTOMMSG, params)
        return {"result": "continue"}

    plugin.add_hook(CUSTOMMSG, on_custommsg)
    for hook, key in (("openchannel", "openchannel"), ("openchannel2", "openchannel2")):
        plugin.add_hook(hook, _open_hook(bridge, key))

    for topic in EVENT_TOPICS:
        plugin.add_subscription(topic, _notification_handler(bridge, topic))

    def on_shutdown(**_: Any) -> None:
        bridge.from_loop_shutdown()

    plugin.add_subscription("shutdown", on_shutdown)

    for spec in specs:
        plugin.add_method(
            spec.name, _method_handler(bridge, spec), background=True, description=spec.description
        )
        # pyln derives usage from the handler's signature; ours takes anything, so state it.
        plugin.methods[spec.name].get_usage = lambda usage=spec.usage: usage
    if isinstance(plugin, HivePlugin):
        plugin.set_check(_check_handler({spec.name: spec for spec in specs}))


def _check_handler(specs: Mapping[str, CommandSpec]) -> Callable[..., None]:
    """``check``: parameter validation only, answered at once from pyln's thread (pure: no
    I/O, no runtime state), so it works even while the runtime is starting."""

    def handler(request: Any, *args: Any, **kwargs: Any) -> None:
        try:
            name, params = split_check_params(list(args) if args else kwargs)
            spec = specs.get(name)
            if spec is None:
                raise CommandError(CommandError.INVALID_PARAMS, f"{name} is not a hive command")
            result = check_params(spec, params)
        except CommandError as exc:
            answer_error(request, exc.code, exc.message)
            return
        request.set_result(result)

    return handler


def _open_hook(bridge: PluginBridge, key: str) -> Callable[..., JsonDict]:
    """The ``openchannel``/``openchannel2`` hook: refuse a banned peer, decided in the loop's
    thread from the ban actor's in-memory snapshot (never waits on trio or the RPC)."""

    def handler(**params: Any) -> JsonDict:
        body = params.get(key)
        peer = body.get("id") if isinstance(body, Mapping) else None
        gate = bridge.open_gate
        reason = gate(peer) if gate is not None and isinstance(peer, str) else None
        if reason is not None:
            return {"result": "reject", "error_message": reason}
        return {"result": "continue"}

    return handler


def _notification_handler(bridge: PluginBridge, topic: str) -> Callable[..., None]:
    def handler(**params: Any) -> None:
        bridge.from_loop_event(topic, params)

    return handler


def _method_handler(bridge: PluginBridge, spec: CommandSpec) -> Callable[..., None]:
    def busy(call: CommandCall) -> None:
        answer_error(
            call.request, CommandError.NOT_READY, f"{spec.name}: too many commands in flight"
        )

    def handler(request: Any, *args: Any, **kwargs: Any) -> None:
        bridge.from_loop_command(
            CommandCall(name=spec.name, args=args, kwargs=kwargs, request=request), busy
        )

    return handler


def main(
    runtime_factory: RuntimeFactory | None = None, specs: Sequence[CommandSpec] = HIVE_COMMANDS
) -> None:
    """Entry point of the plugin process."""
    if runtime_factory is None:
        from hive.runtime import Runtime

        runtime_factory = Runtime
    app = PluginApp(runtime_factory, specs)
    trio.run(app.run)
    sys.stdout.flush()
