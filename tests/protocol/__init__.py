"""Tests of the sans-I/O wire protocol (hive.protocol)."""
