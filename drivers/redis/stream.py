"""redis-stream: procx reads one entry of a stream (XREADGROUP/XREAD); pushx adds one (XADD)."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.redis.common import EXTRA, REQUIRES, redis_options

SPEC = DriverSpec(
    "redis-stream",
    "a Redis stream: each entry (its fields as a JSON object) is one unit of work",
    [
        *redis_options("stream"),
        Option("redis-stream-consumer-group", sides=PROCX, group="retrieve",
               help="consumer group to read with (must already exist; empty: plain XREAD of new entries)"),
        Option("redis-steam-consumer-name", sides=PROCX, group="retrieve",
               aliases=("redis-stream-consumer-name",), env={"procx": "PROCX_REDIS_STREAM_CONSUMER_NAME"},
               help="consumer name within the group (flag spelled 'steam' as in the original)"),
        Option("redis-stream-value-keys", "list", sides=PROCX, group="retrieve",
               help="comma list of entry fields to keep in the payload (empty: all fields)"),
        Option("redis-stream-clear-op", sides=PROCX, choices=("ack", "del"),
               help="after success: ack (XACK, needs a group) or del (XDEL) the entry (empty: nothing)"),
        Option("redis-stream-fail-op", sides=PROCX, choices=("ack", "del"),
               help="after failure: ack (XACK, needs a group) or del (XDEL) the entry (empty: nothing)"),
        Option("redis-message-id", default="*", sides=PUSHX, group="push",
               help="entry ID for XADD (default *: let the server generate it)"),
    ],
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    family="redis",
)
