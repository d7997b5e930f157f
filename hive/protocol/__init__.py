"""Sans-I/O hive protocol, grouped by concern: ``wire`` (CBOR, codec, envelopes, replay guard,
fragments), ``membership`` (records, PKI, roster, tickets, the join handshake) and ``gossip``
(state records and relaying), ``bans`` (signed bans); ``messages`` is the one registry of
message kinds. Importing the package registers every kind."""

from hive.protocol import bans as bans
from hive.protocol import membership as membership
from hive.protocol.gossip import relay as gossip_relay
from hive.protocol.gossip import state as gossip_state

__all__ = ["bans", "gossip_relay", "gossip_state", "membership"]
