"""The tamper-evident audit log: events as leaves of an RFC 9162 Merkle tree with signed checkpoints."""
