"""State gossip: state records, deltas, snapshots, digests, and relaying between members."""
