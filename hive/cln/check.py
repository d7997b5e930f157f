"""``lightning-cli check hive-...``: validate a command's parameters without running it.

lightningd forwards the ``check`` request with the params it was given: by name
(``{"command_to_check": "hive-invite", "valid_hours": 5}``) or by position
(``["hive-invite", "5"]``). :func:`check_params` resolves them against the command's usage like
a real call, refuses unknown and missing parameters, and parses each value with the same rules
the command applies (:class:`hive.commands.membership.Params`). Nothing else runs: no state is
read or changed, so a check cannot tell whether the command would then succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hive.commands import CommandError, CommandSpec, JsonDict
from hive.commands.membership import MAX_USES, MAX_VALID_HOURS, Params, parse_member_address

COMMAND_TO_CHECK = "command_to_check"


def _member_address(params: Params, name: str) -> None:
    text = params.text(name, max_len=400)
    if text is not None:
        parse_member_address(text)


# How each parameter name is parsed (the rules the commands themselves apply).
VALUE_CHECKS: dict[str, Callable[[Params, str], object]] = {
    "valid_hours": lambda p, n: p.integer(n, 24, low=1, high=MAX_VALID_HOURS),
    "max_uses": lambda p, n: p.integer(n, 1, low=1, high=MAX_USES),
    "req_splice": lambda p, n: p.flag(n),
    "delete_data": lambda p, n: p.flag(n),
    "min_version": lambda p, n: p.text(n, max_len=32),
    "for_node": lambda p, n: p.node_id(n, required=False),
    "node": lambda p, n: p.node_id(n, required=False),
    "name": lambda p, n: p.text(n, max_len=64),
    "ticket": lambda p, n: p.text(n, max_len=4000),
    "reason": lambda p, n: p.text(n, max_len=200),
}
# Per command where one name means something else.
COMMAND_VALUE_CHECKS: dict[tuple[str, str], Callable[[Params, str], object]] = {
    ("hive-join", "member"): _member_address,
    ("hive-state", "member"): lambda p, n: p.node_id(n, required=False),
}


def split_check_params(raw: Sequence[Any] | Mapping[str, Any]) -> tuple[str, Any]:
    """(command to check, its own params) from a ``check`` request's params."""
    if isinstance(raw, Mapping):
        command = raw.get(COMMAND_TO_CHECK)
        rest: Any = {k: v for k, v in raw.items() if k != COMMAND_TO_CHECK}
    else:
        command = raw[0] if raw else None
        rest = list(raw[1:])
    if not isinstance(command, str) or not command:
        raise CommandError(CommandError.INVALID_PARAMS, "check: command_to_check is needed")
    return command, rest


def check_params(spec: CommandSpec, params: Sequence[Any] | Mapping[str, Any]) -> JsonDict:
    """Validate ``params`` for ``spec``; returns ``{"command_to_check": name}`` or raises
    CommandError (INVALID_PARAMS) naming what is wrong."""
    names = spec.param_names
    if isinstance(params, Mapping):
        named = dict(params)
    else:
        if len(params) > len(names):
            raise CommandError(
                CommandError.INVALID_PARAMS,
                f"{spec.name} takes at most {len(names)} parameters ({spec.usage or 'none'}), "
                f"got {len(params)}",
            )
        named = dict(zip(names, params, strict=False))
    parsed = Params(spec.name, named, names)  # refuses unknown names
    required = [token for token in spec.usage.split() if not token.startswith("[")]
    for name in required:
        if parsed.values.get(name) is None:
            raise CommandError(CommandError.INVALID_PARAMS, f"{spec.name}: {name} is needed")
    for name in names:
        checker = COMMAND_VALUE_CHECKS.get((spec.name, name)) or VALUE_CHECKS.get(name)
        if checker is not None:
            checker(parsed, name)
    return {COMMAND_TO_CHECK: spec.name}


__all__ = ["COMMAND_TO_CHECK", "check_params", "split_check_params"]
