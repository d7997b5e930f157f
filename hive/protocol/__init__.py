"""Sans-I/O hive protocol. Importing the package registers every message kind (the membership
and state-gossip kinds live outside :mod:`hive.protocol.messages`)."""

from hive.protocol import gossip as gossip
from hive.protocol import membership as membership
