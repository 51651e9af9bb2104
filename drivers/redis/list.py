"""redis-list: a reliable work queue on a Redis list.

Order: the head of the list is its left end. pushx appends at the tail (RPUSH, as the original) and procx takes
from the head (the original's LPOP end), so the list is a FIFO queue.

Unlike the original (LPOP: the item is gone before the child runs, a failed job is lost), procx moves the head
item atomically into a processing list (LMOVE <key> <processing> LEFT RIGHT; with a wait, BLMOVE instead of
polling) and leases it in a sorted set (`<processing>:leases`, item -> deadline in server time). While the child
runs, procx renews the lease; clear removes the item from the processing list (LREM); fail moves it back to the
tail of the list, so it is retried after the items already waiting. If procx dies, its lease is no longer
renewed: after -redis-visibility-timeout the next procx (any get) moves the item back to the tail of the list.
An item found in the processing list without a lease (procx died between BLMOVE and leasing it) gets one, and
so comes back one visibility timeout later.

Items are identified by value: two equal payloads in flight at once share one lease entry (it expires only when
neither is renewed any more); a clear or fail removes one copy. Every step is one Lua script, atomic on the
server (Redis 6.2 or later: LMOVE, ZADD GT).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from core.options import PROCX, Delivery, DriverSpec, Option
from core.work import Source, Work
from drivers.common import Keeper
from drivers.redis.common import (
    EXTRA,
    MAX_BLOCK,
    REQUIRES,
    RedisSink,
    errors,
    redis_options,
    validate_common,
    wire_client,
)
from drivers.redis.wire import Script

ORPHAN_SCAN = 100  # processing-list items checked for a missing lease per scan

# KEYS: list, processing, leases. ARGV: visibility ms, scan for orphans (0/1), take one (0/1), orphan scan size.
# Every lease names an item of the processing list, so an item without a lease can exist only while the processing
# list is longer than the lease set: only then is it scanned (equal payloads in flight also make it longer).
TAKE = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local vt = tonumber(ARGV[1])
if ARGV[2] == '1' and redis.call('LLEN', KEYS[2]) > redis.call('ZCARD', KEYS[3]) then
  for _, v in ipairs(redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[4]) - 1)) do
    if not redis.call('ZSCORE', KEYS[3], v) then redis.call('ZADD', KEYS[3], 'NX', now + vt, v) end
  end
end
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)) do
  local n = redis.call('LREM', KEYS[2], 0, v)
  for i = 1, n do redis.call('RPUSH', KEYS[1], v) end
  redis.call('ZREM', KEYS[3], v)
end
if ARGV[3] == '1' then
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if v then
    redis.call('ZADD', KEYS[3], 'GT', now + vt, v)
    return v
  end
end
return false
""")

# KEYS: leases. ARGV: visibility ms, item, only-if-present (0/1): lease (or renew) one item from now.
LEASE = Script("""
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
if ARGV[3] == '1' then return redis.call('ZADD', KEYS[1], 'XX', 'GT', 'CH', deadline, ARGV[2]) end
return redis.call('ZADD', KEYS[1], 'GT', deadline, ARGV[2])
""")

# KEYS: list, processing, leases. ARGV: item, back (0 clear / 1 fail: to the tail of the list), delay ms. A fail
# with a delay leaves the item in the processing list with its lease set to expire after the delay: the next get
# after that moves it back to the tail of the list, as for a procx that died.
FINISH = Script("""
if ARGV[2] == '1' and tonumber(ARGV[3]) > 0 and redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], 'XX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3]),
             ARGV[1])
  return 1
end
local n = redis.call('LREM', KEYS[2], 1, ARGV[1])
if n > 0 and ARGV[2] == '1' then redis.call('RPUSH', KEYS[1], ARGV[1]) end
if not redis.call('LPOS', KEYS[2], ARGV[1]) then redis.call('ZREM', KEYS[3], ARGV[1]) end
return n
""")


def keys(config) -> tuple[str, str, str]:
    """(list, processing list, lease sorted set) of a procx configuration."""
    key = config["redis-key"]
    processing = config["redis-processing-key"] or f"{key}:processing"
    return key, processing, f"{processing}:leases"


def _validate(config) -> None:
    validate_common(config)
    if config.side == PROCX:
        key, processing, leases = keys(config)
        if processing == key:
            raise ValueError("-redis-processing-key: must differ from -redis-key")
        if config["redis-visibility-timeout"] < 0.01:
            raise ValueError("-redis-visibility-timeout: must be at least 10ms")


class RedisListSource(Source):
    """Takes items with the TAKE script over the wire client; the keeper thread renews leases on a connection of
    its own (a wire connection serves one thread)."""

    def open(self) -> None:
        self.conn = self.keeper_conn = self.keeper = None
        self.keys = keys(self.config)
        self.vt_ms = max(10, int(self.config["redis-visibility-timeout"] * 1000))
        self.conn = wire_client(self.config)
        self.keeper = Keeper(self.vt_ms / 3000, self._renew)
        self.next_scan = 0.0  # the first get looks for orphans at once

    def _renew(self, work: Work) -> None:
        """Extend the lease of a held item; a lease that is gone (it expired and the item went back to the list,
        where another procx may take it) is reported to procx, which stops the child (Work.lose)."""
        if self.keeper_conn is None:
            self.keeper_conn = wire_client(self.config)
        try:
            kept = LEASE(self.keeper_conn, [self.keys[2]], [self.vt_ms, work.handle[0], 1])
        except Exception:
            self.keeper_conn.close()  # the next round connects again
            self.keeper_conn = None
            raise
        if not kept:
            work.lose(f"the lease on this item of list {self.keys[0]!r} expired: it went back to the list and "
                      "another consumer may have it")

    def _take(self, take: bool) -> bytes | None:
        now = time.monotonic()
        scan = now >= self.next_scan
        if scan:
            self.next_scan = now + self.vt_ms / 2000
        return TAKE(self.conn, self.keys, [self.vt_ms, int(scan), int(take), ORPHAN_SCAN])

    def get(self, wait: float) -> Work | None:
        key, processing, leases = self.keys
        with errors(self.config, "get work"):
            value = self._take(True)
            deadline = time.monotonic() + wait
            while value is None:
                left = deadline - time.monotonic()
                if left < 0.01:
                    return None
                block = round(max(0.01, min(left, MAX_BLOCK, self.vt_ms / 1000)), 3)  # 0 would block forever
                value = self.conn.call("BLMOVE", key, processing, "LEFT", "RIGHT", block)
                if value is None:
                    self._take(False)  # bring expired items back while waiting
                    continue
                LEASE(self.conn, [leases], [self.vt_ms, value, 0])
        work = Work(bytes(value), None)
        work.handle = (value, self.keeper.hold(work))
        return work

    def _finish(self, work: Work, back: bool) -> None:
        value, token = work.handle
        self.keeper.release(token)
        if back and work.lost:  # the item went back to the list when its lease expired: nothing to give back
            return
        with errors(self.config, "fail work" if back else "clear work"):
            delay_ms = int(work.retry_delay * 1000) if back else 0
            FINISH(self.conn, self.keys, [value, int(back), delay_ms])

    def clear(self, work: Work) -> None:
        self._finish(work, back=False)

    def fail(self, work: Work) -> None:
        self._finish(work, back=True)

    def depth(self) -> int:
        """Items waiting in the list (LLEN), as KEDA's redis scaler reads it: the items in the processing list
        (being worked on, or of a procx that died and not yet moved back) are not counted."""
        with errors(self.config, "read the list length"):
            return int(self.conn.call("LLEN", self.keys[0]))

    def close(self) -> None:
        if getattr(self, "keeper", None) is not None:
            self.keeper.close()
        for conn in (getattr(self, "conn", None), getattr(self, "keeper_conn", None)):
            if conn is not None:
                conn.close()


class RedisListSink(RedisSink):
    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        if payloads:
            with errors(self.config, "push"):
                self.conn.call("RPUSH", self.config["redis-key"], *payloads)
        return [None] * len(payloads)


SPEC = DriverSpec(
    "redis-list",
    "a Redis list as a FIFO work queue: pushx appends (RPUSH), procx takes the head into a processing list",
    [
        *redis_options("list"),
        Option("redis-processing-key", sides=PROCX, extension=True, group="retrieve",
               help="list that holds the items being worked on (default: the list's name + ':processing'); "
                    "their leases are kept in the sorted set named like it + ':leases'"),
        Option("redis-visibility-timeout", "duration", 30.0, sides=PROCX, extension=True, group="retrieve",
               help="how long a taken item stays leased without renewal (procx renews it while the child runs); "
                    "items of a procx that died come back to the list after this long"),
    ],
    source="drivers.redis.list:RedisListSource",
    sink="drivers.redis.list:RedisListSink",
    extra=EXTRA,
    requires=REQUIRES,
    blocking=False,
    validate=_validate,
    family="redis",
    delivery=Delivery(
        "at-least-once",
        hold="LMOVE into a processing list + a lease renewed while the child runs; a dead procx's items come "
             "back after -redis-visibility-timeout",
        fail="moved back to the tail of the list (retried after the items already waiting); with -retry-backoff it "
             "stays leased for the delay, then the next get moves it back",
        pushx="RPUSH acknowledged by the server (durable only as far as the server persists)",
        tested="real server: Redis 7.0",
    ),
)
