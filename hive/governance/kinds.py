"""The kind registry: which actions exist and how their parameters are checked.

A kind is a :class:`KindSpec`: a name, a pure ``validate`` that turns a draft's raw parameters
into normalised ones (or raises :class:`~hive.governance.proposal.ProposalInvalid`), and the
two facts cost accounting needs: whether the action spends on-chain funds (then the on-chain
reserve and the open feerate cap apply) and whether it is a payment (then the rebalance ppm
cap applies). The engine knows nothing else about a kind; the executor that performs it is
registered beside it (:meth:`hive.governance.api.EngineApi.register_kind`).

The built-in kinds are below (:data:`OPEN_CHANNEL` ... :data:`UNBAN_PEER`); a later concern adds
its own with ``KindSpec(name, validate, ...)`` and registers it with the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from hive.governance.proposal import MAX_SAT, ProposalInvalid

Params = dict[str, Any]
MAX_KIND_CHARS = 32


@attrs.frozen
class KindSpec:
    name: str
    validate: Callable[[Mapping[str, Any]], Params]
    description: str = ""
    # On-chain spending: the reserve (`onchain_reserve_sat`) and `max_open_feerate_perkw` apply.
    spends_onchain: bool = False
    # A payment: `max_rebalance_ppm` applies to its cost's ppm.
    is_payment: bool = False
    # Only the operator decides (`hive-approve`), whatever the mode: autonomous mode does not
    # execute it and an oracle is not asked; it waits, held by `operator_decides`. For actions
    # whose evidence can be wrong in ways no hard limit bounds (revoking a member).
    operator_decides: bool = False

    def __attrs_post_init__(self) -> None:
        name = self.name
        if not 0 < len(name) <= MAX_KIND_CHARS or not all(c.islower() or c == "-" for c in name):
            raise ValueError(f"kind names are lowercase words joined by '-', got {name!r}")


class KindRegistry:
    """Kinds by name; registering a name twice is refused unless ``replace=True``."""

    def __init__(self, kinds: tuple[KindSpec, ...] = ()) -> None:
        self._kinds: dict[str, KindSpec] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, spec: KindSpec, *, replace: bool = False) -> None:
        if spec.name in self._kinds and not replace:
            raise ValueError(f"kind {spec.name!r} is already registered")
        self._kinds[spec.name] = spec

    def get(self, name: str) -> KindSpec | None:
        return self._kinds.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[KindSpec]:
        return iter(sorted(self._kinds.values(), key=lambda k: k.name))

    def names(self) -> list[str]:
        return sorted(self._kinds)


# ---------------------------------------------------------------------------------------------
# Parameter checks shared by the built-in kinds


def _only(params: Mapping[str, Any], kind: str, required: set[str], optional: set[str]) -> None:
    keys = set(params)
    missing = required - keys
    if missing:
        raise ProposalInvalid(f"{kind}: missing parameter(s) {', '.join(sorted(missing))}")
    unknown = keys - required - optional
    if unknown:
        raise ProposalInvalid(f"{kind}: unknown parameter(s) {', '.join(sorted(unknown))}")


def node_id_param(params: Mapping[str, Any], name: str, kind: str) -> str:
    value = params.get(name)
    if not isinstance(value, str):
        raise ProposalInvalid(f"{kind}: {name} must be a node id")
    text = value.lower()
    if len(text) != 66 or text[:2] not in ("02", "03"):
        raise ProposalInvalid(f"{kind}: {name} must be a node id (66 hex characters)")
    try:
        bytes.fromhex(text)
    except ValueError:
        raise ProposalInvalid(f"{kind}: {name} is not hex") from None
    return text


def int_param(
    params: Mapping[str, Any], name: str, kind: str, *, low: int, high: int = MAX_SAT * 1000
) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProposalInvalid(f"{kind}: {name} must be a whole number from {low} to {high}")
    return value


def text_param(params: Mapping[str, Any], name: str, kind: str, *, max_len: int = 200) -> str:
    value = params.get(name, "")
    if not isinstance(value, str) or len(value) > max_len:
        raise ProposalInvalid(f"{kind}: {name} must be text of at most {max_len} characters")
    return value


# ---------------------------------------------------------------------------------------------
# Built-in kinds


def _open_channel(params: Mapping[str, Any]) -> Params:
    kind = "open-channel"
    _only(params, kind, {"peer", "amount_sat"}, {"feerate_perkw", "host", "port"})
    out: Params = {
        "peer": node_id_param(params, "peer", kind),
        "amount_sat": int_param(params, "amount_sat", kind, low=20_000, high=MAX_SAT),
    }
    if "feerate_perkw" in params:
        out["feerate_perkw"] = int_param(params, "feerate_perkw", kind, low=253, high=10_000_000)
    if "host" in params:
        out["host"] = text_param(params, "host", kind, max_len=255)
    if "port" in params:
        out["port"] = int_param(params, "port", kind, low=1, high=65535)
    return out


def _rebalance(params: Mapping[str, Any]) -> Params:
    kind = "rebalance"
    _only(params, kind, {"out_peer", "in_peer", "amount_sat"}, set())
    out = {
        "out_peer": node_id_param(params, "out_peer", kind),
        "in_peer": node_id_param(params, "in_peer", kind),
        "amount_sat": int_param(params, "amount_sat", kind, low=1, high=MAX_SAT),
    }
    if out["out_peer"] == out["in_peer"]:
        raise ProposalInvalid("rebalance: out_peer and in_peer must differ")
    return out


def _set_fee(params: Mapping[str, Any]) -> Params:
    kind = "set-fee"
    _only(params, kind, {"peer", "base_msat", "ppm"}, set())
    return {
        "peer": node_id_param(params, "peer", kind),
        "base_msat": int_param(params, "base_msat", kind, low=0, high=100_000_000),
        "ppm": int_param(params, "ppm", kind, low=0, high=1_000_000),
    }


def _ban_peer(params: Mapping[str, Any]) -> Params:
    kind = "ban-peer"
    _only(params, kind, {"peer"}, {"reason"})
    return {
        "peer": node_id_param(params, "peer", kind),
        "reason": text_param(params, "reason", kind),
    }


def _unban_peer(params: Mapping[str, Any]) -> Params:
    kind = "unban-peer"
    _only(params, kind, {"peer"}, set())
    return {"peer": node_id_param(params, "peer", kind)}


OPEN_CHANNEL = KindSpec(
    "open-channel",
    _open_channel,
    "Open a channel of amount_sat to peer (connecting to host:port first when given).",
    spends_onchain=True,
)
REBALANCE = KindSpec(
    "rebalance",
    _rebalance,
    "Move amount_sat of our liquidity out through out_peer and back in through in_peer.",
    is_payment=True,
)
SET_FEE = KindSpec(
    "set-fee", _set_fee, "Charge base_msat + ppm to forward out through our channels with peer."
)
BAN_PEER = KindSpec("ban-peer", _ban_peer, "Ban peer fleet-wide with the given reason.")
UNBAN_PEER = KindSpec("unban-peer", _unban_peer, "Lift a ban on peer.")

BUILTIN_KINDS: tuple[KindSpec, ...] = (OPEN_CHANNEL, REBALANCE, SET_FEE, BAN_PEER, UNBAN_PEER)
