"""Redis drivers: redis-list, redis-pubsub and redis-stream (declarations in the submodules)."""
