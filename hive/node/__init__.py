"""The node port: what the hive asks of a Lightning node, and its implementations."""
