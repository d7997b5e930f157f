"""Frames on the wire: deterministic CBOR, the codec, field bounds, signed envelopes, the replay
guard, fragments, and the facade the transport uses (:mod:`hive.protocol.wire.facade`)."""
