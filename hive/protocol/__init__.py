"""Sans-I/O hive protocol, grouped by concern: ``wire`` (CBOR, codec, envelopes, replay guard,
fragments), ``membership`` (records, PKI, roster, tickets, the join handshake), ``gossip``
(state records and relaying), ``intents`` (intent locks), ``bans`` (signed bans) and
``strategy`` (strategy gossip); ``messages`` is the one registry of message kinds. Importing the
package registers every kind."""

from hive.protocol import bans as bans
from hive.protocol import membership as membership
from hive.protocol import strategy as strategy
from hive.protocol.gossip import relay as gossip_relay
from hive.protocol.gossip import state as gossip_state
from hive.protocol.intents import messages as intents

__all__ = ["bans", "gossip_relay", "gossip_state", "intents", "membership", "strategy"]
