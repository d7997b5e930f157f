"""Membership actors: the roster and its records (`roster.py`), joins, leaves, member contact
addresses, the join probe and liveness pings."""
