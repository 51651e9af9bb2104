"""redis-list: procx pops the head of a list (LPOP); pushx appends to its tail (RPUSH)."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.redis.common import EXTRA, REQUIRES, redis_options

SPEC = DriverSpec(
    "redis-list",
    "a Redis list: each element is one unit of work",
    redis_options("list"),
    extra=EXTRA,
    requires=REQUIRES,
    blocking=False,
    family="redis",
)
