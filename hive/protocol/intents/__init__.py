"""Intent locks: the messages (kinds 0x0060..0x0064) and the lock state machine, so that two
members never open to the same target at once."""

from hive.protocol.intents import messages as messages
from hive.protocol.intents.locks import LockBook as LockBook

__all__ = ["LockBook", "messages"]
