"""The active probe: check a candidate's manifest against what our node observes itself.

Each contradiction is a specific refusal: a candidate that claims splicing must have offered the
splicing feature on the live connection to us; one that claims to be public must have a node
announcement, and cannot claim more public capacity than its public channels hold. The custom
message round trip is the challenge exchange that precedes the probe.
"""

from __future__ import annotations

import logging

from hive.errors import HiveError
from hive.node.port import NodeId, NodePort
from hive.protocol.errors import MANIFEST_LIE, PROBE_FAILED, ProtocolError
from hive.protocol.membership import Hello

log = logging.getLogger(__name__)

SPLICE_BITS = (62, 63)


def offers_splicing(features: bytes) -> bool:
    """True when the big-endian feature bits include splicing (required or optional)."""
    value = int.from_bytes(features, "big")
    return any(value >> bit & 1 for bit in SPLICE_BITS)


async def probe_candidate(node: NodePort, peer_id: NodeId, hello: Hello) -> ProtocolError | None:
    """None when every claim matches what we observe, else the first contradiction."""
    try:
        return await _probe(node, peer_id, hello)
    except HiveError as exc:
        return ProtocolError(PROBE_FAILED, f"our node could not observe the candidate: {exc}")


async def _probe(node: NodePort, peer_id: NodeId, hello: Hello) -> ProtocolError | None:
    manifest = hello.manifest
    peer = next((p for p in await node.list_peers() if p.node_id == peer_id), None)
    if peer is None or not peer.connected:
        return ProtocolError(PROBE_FAILED, "the candidate disconnected during the probe")
    if manifest.splicing and not offers_splicing(peer.features):
        return ProtocolError(
            MANIFEST_LIE,
            "splicing claimed, but the live connection's features "
            f"({peer.features.hex() or 'none'}) do not offer it",
        )
    if manifest.public:
        announcement = await node.get_node_announcement(peer_id)
        if announcement is None:
            return ProtocolError(MANIFEST_LIE, "public node claimed, but no node announcement")
        public = await node.list_public_channels(peer_id)
        public_sat = sum(c.capacity_msat for c in public) // 1000
        if manifest.capacity_sat > public_sat:
            return ProtocolError(
                MANIFEST_LIE,
                f"capacity {manifest.capacity_sat} sat claimed, public channels hold {public_sat}",
            )
        log.info("probe: %s announces itself as %r", peer_id, announcement.alias)
    return None
