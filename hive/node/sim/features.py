"""BOLT 9 feature bit vectors as big-endian bytes (bit 0 is the lowest bit of the last byte).

Even bits mean "required", odd bits "optional"; a peer supports feature pair ``2k/2k+1`` when
either bit is set.
"""

from __future__ import annotations

from collections.abc import Iterable

# option_data_loss_protect, var_onion_optin, option_static_remotekey, payment_secret, basic_mpp,
# option_anchors, option_route_blinding, option_shutdown_anysegwit, option_channel_type:
# what a current CLN node typically advertises (all as optional bits here).
DEFAULT_FEATURE_BITS: frozenset[int] = frozenset({1, 9, 13, 15, 17, 23, 25, 27, 45})
SPLICE_REQUIRED = 62
SPLICE_OPTIONAL = 63


def features_from_bits(bits: Iterable[int]) -> bytes:
    """Big-endian feature bytes with exactly ``bits`` set (b"" for none)."""
    value = 0
    for bit in bits:
        if bit < 0:
            raise ValueError(f"feature bit must be >= 0, got {bit}")
        value |= 1 << bit
    if value == 0:
        return b""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def has_feature(features: bytes, bit: int) -> bool:
    """True when ``bit`` is set in big-endian ``features``."""
    return bool(int.from_bytes(features, "big") >> bit & 1)


def supports(features: bytes, pair_bit: int) -> bool:
    """True when either bit of the pair containing ``pair_bit`` is set (BOLT 9)."""
    even = pair_bit & ~1
    return has_feature(features, even) or has_feature(features, even + 1)
