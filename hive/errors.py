"""Error types shared across the hive.

The runtime's supervision policy keys on these: a :class:`TransientError` escaping an actor
restarts that actor with backoff; anything else is a programming error and brings the whole
runtime down with its original traceback.
"""

from __future__ import annotations


class HiveError(Exception):
    """Base of every error the hive raises on purpose."""


class TransientError(HiveError):
    """A failure of the outside world that a retry may cure (RPC timeout, a vanished peer)."""


class NodeError(HiveError):
    """The Lightning node refused or failed a request; ``code`` is the node's own error code."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NodeUnavailable(TransientError):
    """The node did not answer in time, or the connection to it broke."""


class PeerUnreachable(TransientError):
    """The peer is not connected, so a custom message cannot reach it."""


class RouteNotFound(NodeError):
    """No route with enough liquidity exists for the payment."""


class PaymentFailed(NodeError):
    """A payment was attempted and failed at some hop."""

    def __init__(self, message: str, *, failing_node: str | None = None, code: int | None = None):
        super().__init__(message, code=code)
        self.failing_node = failing_node


class InsufficientFunds(NodeError):
    """Not enough on-chain funds for a channel open."""
