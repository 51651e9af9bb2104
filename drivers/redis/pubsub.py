"""redis-pubsub: procx waits for one message on a channel (SUBSCRIBE); pushx publishes (PUBLISH)."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.redis.common import EXTRA, REQUIRES, redis_options

SPEC = DriverSpec(
    "redis-pubsub",
    "a Redis pub/sub channel: each message is one unit of work",
    redis_options("channel"),
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    family="redis",
)
