"""`hive demo`: N companions on one simulated network, with their live screen (`run.py`)."""
