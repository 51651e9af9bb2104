"""CQL drivers: cassandra, scylla."""
