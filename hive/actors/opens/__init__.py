"""Coordinated channel opens: intent locks (`locks.py`) and the planner with its lock-taking opener
(`planner.py`)."""
