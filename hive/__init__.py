"""Hive: coordinate independently owned Core Lightning nodes as one fleet."""

__version__ = "0.1.0"
