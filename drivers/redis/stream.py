"""redis-stream: procx reads one entry of a stream through a consumer group; pushx adds one (XADD).

procx always reads through a consumer group, so every entry is worked on once by one procx and comes back if
that procx fails or dies (at-least-once):

- the group (-redis-stream-consumer-group; empty: the group `procx`) is created when missing, with MKSTREAM and
  from the stream's first entry (id 0), so entries added before the first procx ran are worked on too; an
  existing group is used as it is. (The original read without a group with XREAD from `$`, i.e. only entries
  added while it was waiting, and required an existing group otherwise.)
- the consumer name defaults to `<hostname>-<pid>` (the original's documented default never applied); a
  defaulted consumer is removed from the group when procx closes, if it holds no pending entry.
- get: first XAUTOCLAIM an entry that has been pending longer than -redis-stream-claim-idle (its procx died or
  failed it), else XREADGROUP a new one (`>`), blocking up to the wait. While the child runs, procx keeps its
  entry's idle time at zero (XCLAIM JUSTID), so a long job is not claimed by another procx.
- clear: XACK (also when -redis-stream-clear-op is empty: an unacknowledged entry would be claimed again);
  `del` also deletes it (XDEL).
- fail: with an empty -redis-stream-fail-op the entry stays pending and is marked idle (XCLAIM IDLE), so the next
  get of any procx claims it again at once, with its delivery count (the work's attempt) increased; `ack` drops
  it (XACK), `del` drops and deletes it.

Payload: the entry's fields as a JSON object (keys sorted, Go encoding as the original; -redis-stream-value-keys
keeps only those fields, a missing one is an error that leaves the entry pending); or, with the extension
-redis-stream-payload-field, the raw bytes of that one field (binary-safe; pushx then writes the payload as
that single field instead of decoding a JSON object).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
from collections.abc import Sequence

from core.errors import ProviderError, UsageError
from core.options import BOTH, PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import Result, go_json
from core.work import Source, Work
from drivers.common import Keeper
from drivers.redis.common import (
    EXTRA,
    MAX_BLOCK,
    REQUIRES,
    RedisSink,
    client,
    close_client,
    errors,
    redis_options,
    validate_common,
)

DEFAULT_GROUP = "procx"

# KEYS: stream. ARGV: group, consumer, id. Keep the entry's idle time at zero while it is still ours.
RENEW = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] and p[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0
"""

# KEYS: stream. ARGV: group, consumer. Remove the consumer from the group if it holds no pending entry.
FORGET = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1
"""


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _value_keys(config) -> list[str]:
    return [k for k in config["redis-stream-value-keys"] if k]


def _validate(config) -> None:
    validate_common(config)
    if config.side == PROCX:
        if config["redis-stream-payload-field"] and _value_keys(config):
            raise ValueError("-redis-stream-value-keys: cannot be combined with -redis-stream-payload-field")
        if config["redis-stream-claim-idle"] < 0.01:
            raise ValueError("-redis-stream-claim-idle: must be at least 10ms")


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def entry_payload(config, entry_id: str, fields: dict[bytes, bytes]) -> bytes:
    """The work payload of one entry: one raw field, or the fields as a Go-style JSON object."""
    raw_field = config["redis-stream-payload-field"]
    if raw_field:
        value = fields.get(raw_field.encode())
        if value is None:
            raise ProviderError(f"driver {config.driver}: entry {entry_id} has no field {raw_field!r} "
                                "(-redis-stream-payload-field); it stays pending")
        return bytes(value)
    obj = {_text(k): _text(v) for k, v in fields.items()}
    wanted = _value_keys(config)
    if wanted:
        missing = [k for k in wanted if k not in obj]
        if missing:
            raise ProviderError(f"driver {config.driver}: entry {entry_id} has no field {missing[0]!r} "
                                "(-redis-stream-value-keys); it stays pending")
        obj = {k: obj[k] for k in wanted}
    return go_json(obj).encode()


class RedisStreamSource(Source):
    def open(self) -> None:
        self.conn = None
        self.keeper = None
        self.key = self.config["redis-key"]
        self.group = self.config["redis-stream-consumer-group"] or DEFAULT_GROUP
        self.named = bool(self.config["redis-steam-consumer-name"])
        self.consumer = self.config["redis-steam-consumer-name"] or default_consumer()
        self.idle_ms = max(10, int(self.config["redis-stream-claim-idle"] * 1000))
        self.cursor = "0-0"
        self.conn = client(self.config)
        self.renew = self.conn.register_script(RENEW)
        self.forget = self.conn.register_script(FORGET)
        with errors(self.config, "create the consumer group"):
            self._create_group()
        self.keeper = Keeper(self.idle_ms / 3000, self._renew)

    def _create_group(self) -> None:
        import redis.exceptions as rex

        try:
            self.conn.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except rex.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _renew(self, work: Work) -> None:
        """Keep the entry looking busy; an entry no longer pending to us (another consumer claimed it after it
        looked idle) is reported to procx, which stops the child (Work.lose)."""
        if not self.renew(keys=[self.key], args=[self.group, self.consumer, work.handle[0]]):
            work.lose(f"entry {work.id} was claimed by another consumer of group {self.group!r}")

    def _claim(self) -> tuple[bytes, dict, int] | None:
        """An entry pending longer than the claim idle time (its procx died or failed it), now ours."""
        next_id, entries, *_ = self.conn.xautoclaim(self.key, self.group, self.consumer, self.idle_ms,
                                                    start_id=self.cursor, count=1)
        self.cursor = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
        for entry_id, fields in entries:
            if fields is None:
                continue
            info = self.conn.xpending_range(self.key, self.group, entry_id, entry_id, 1)
            attempt = int(info[0]["times_delivered"]) if info else 1
            return entry_id, fields, attempt
        return None

    def _read(self, block_ms: int | None) -> tuple[bytes, dict, int] | None:
        found = self.conn.xreadgroup(self.group, self.consumer, {self.key: ">"}, count=1, block=block_ms)
        for _, entries in found or ():
            for entry_id, fields in entries:
                return entry_id, fields, 1
        return None

    def _next(self, block_ms: int | None) -> tuple[bytes, dict, int] | None:
        import redis.exceptions as rex

        try:
            return self._claim() or self._read(block_ms)
        except rex.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()  # the stream or the group was deleted (or the server restarted empty)
            self.cursor = "0-0"
            return self._claim() or self._read(block_ms)

    def get(self, wait: float) -> Work | None:
        deadline = time.monotonic() + wait
        with errors(self.config, "get work"):
            found = self._next(None)
            while found is None:
                left = deadline - time.monotonic()
                if left < 0.001:
                    return None
                found = self._next(max(1, int(min(left, MAX_BLOCK, self.idle_ms / 1000) * 1000)))
        entry_id, fields, attempt = found
        text_id = entry_id.decode()
        work = Work(entry_payload(self.config, text_id, fields), text_id, attempt=attempt, exact=True)
        work.handle = (entry_id, self.keeper.hold(work))
        return work

    def _finish(self, work: Work, op: str, failed: bool) -> None:
        entry_id, token = work.handle
        self.keeper.release(token)
        if failed and work.lost:  # another consumer has the entry now: it is theirs to finish
            return
        with errors(self.config, "fail work" if failed else "clear work"):
            if failed and not op:
                # stay pending, but look idle for long enough that the next get (of any procx) claims it: at once,
                # or after procx's -retry-backoff delay (at most -redis-stream-claim-idle)
                idle = max(0, self.idle_ms - int(work.retry_delay * 1000))
                self.conn.xclaim(self.key, self.group, self.consumer, 0, [entry_id], idle=idle, justid=True)
                self.cursor = "0-0"
                return
            pipe = self.conn.pipeline(transaction=True)
            pipe.xack(self.key, self.group, entry_id)
            if op == "del":
                pipe.xdel(self.key, entry_id)
            pipe.execute()

    def clear(self, work: Work) -> None:
        self._finish(work, self.config["redis-stream-clear-op"], failed=False)

    def fail(self, work: Work) -> None:
        self._finish(work, self.config["redis-stream-fail-op"], failed=True)

    def depth(self) -> int:
        """Entries not yet delivered to the group (XINFO GROUPS lag, Redis 7+), the number KEDA's redis-streams
        scaler reads in lagCount mode: entries delivered but not acknowledged are not counted."""
        with errors(self.config, "read the consumer group's lag"):
            for info in self.conn.xinfo_groups(self.key):
                name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                if name != self.group:
                    continue
                if info.get("lag") is not None:
                    return int(info["lag"])
                # Redis cannot tell the lag after entries were deleted in the middle: count what follows the
                # group's last delivered entry instead
                last = info["last-delivered-id"]
                last = last.decode() if isinstance(last, bytes) else last
                return len(self.conn.xrange(self.key, f"({last}", "+"))
            return int(self.conn.xlen(self.key))

    def close(self) -> None:
        if getattr(self, "keeper", None) is not None:
            self.keeper.close()
        conn = getattr(self, "conn", None)
        if conn is not None and not self.named:
            with contextlib.suppress(Exception):  # best effort: an idle consumer left behind is harmless
                self.forget(keys=[self.key], args=[self.group, self.consumer])
        close_client(conn)


PUSH_ERROR = "driver redis-stream: the payload must be a JSON object of the entry's fields"


def _field_value(name: str, value: object) -> str:
    """A JSON value as the original's client stored it: strings as is, numbers as text (integers exactly),
    true/false as 1/0, null as the empty string; objects and arrays are refused."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, _Number):
        return Result("n", str(value)).text()
    if isinstance(value, str):
        return value
    kind = "object" if isinstance(value, dict) else "array"
    raise UsageError(f"driver redis-stream: field {name!r} holds a JSON {kind}; a stream entry's values are "
                     "strings, numbers, booleans or null")


class _Number(str):
    """A JSON number's literal text (so large integers keep every digit)."""


def _constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def entry_fields(payload: bytes) -> dict[str, str]:
    """pushx's payload -> the fields of one entry: the first JSON value, which must be an object."""
    try:
        text = payload.decode("utf-8")
        decoder = json.JSONDecoder(parse_float=_Number, parse_int=_Number, parse_constant=_constant)
        obj, _ = decoder.raw_decode(text.lstrip(" \t\r\n"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{PUSH_ERROR} ({exc})") from None
    if not isinstance(obj, dict):
        kind = {list: "array", _Number: "number", str: "string", bool: "boolean"}.get(type(obj), "null")
        raise UsageError(f"{PUSH_ERROR}, not a JSON {kind}")
    if not obj:
        raise UsageError(f"{PUSH_ERROR}: {{}} has no field, and a stream entry needs at least one")
    return {name: _field_value(name, value) for name, value in obj.items()}


class RedisStreamSink(RedisSink):
    def _fields(self, payload: bytes) -> dict:
        field = self.config["redis-stream-payload-field"]
        return {field: payload} if field else entry_fields(payload)

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        entries = [self._fields(p) for p in payloads]  # every payload is checked before anything is added
        message_id = self.config["redis-message-id"] or "*"
        key = self.config["redis-key"]
        with errors(self.config, "push"):
            ids = self.conn.pipeline([("XADD", key, message_id, *itertools.chain.from_iterable(fields.items()))
                                      for fields in entries])
        return [self._decode(i) for i in ids]

    @staticmethod
    def _decode(ident: object) -> str | None:
        return ident.decode() if isinstance(ident, bytes) else None if ident is None else str(ident)


SPEC = DriverSpec(
    "redis-stream",
    "a Redis stream read through a consumer group: each entry (its fields as a JSON object) is one unit of work",
    [
        *redis_options("stream"),
        Option("redis-stream-consumer-group", sides=PROCX, group="retrieve",
               help=f"consumer group to read with, created from the first entry if missing (empty: "
                    f"{DEFAULT_GROUP})"),
        Option("redis-steam-consumer-name", sides=PROCX, group="retrieve",
               aliases=("redis-stream-consumer-name",), env={"procx": "PROCX_REDIS_STREAM_CONSUMER_NAME"},
               help="consumer name within the group (empty: HOSTNAME-PID, unique per procx; the flag is spelled "
                    "'steam' as in the original)"),
        Option("redis-stream-value-keys", "list", sides=PROCX, group="retrieve",
               help="comma list of entry fields to keep in the payload (empty: all fields; a missing one is an "
                    "error)"),
        Option("redis-stream-clear-op", sides=PROCX, choices=("ack", "del"),
               help="after success: ack (XACK) or del (XACK and XDEL) the entry (empty: ack)"),
        Option("redis-stream-fail-op", sides=PROCX, choices=("ack", "del"),
               help="after failure: ack (XACK: dropped) or del (XACK and XDEL) the entry (empty: it stays pending "
                    "and is claimed again at once, by this or another procx)"),
        Option("redis-stream-claim-idle", "duration", 30.0, sides=PROCX, extension=True, group="retrieve",
               help="claim (XAUTOCLAIM) entries pending this long without renewal: those of a procx that died; "
                    "procx renews its own while the child runs"),
        Option("redis-stream-payload-field", sides=BOTH, extension=True, group="retrieve",
               help="entry field holding the raw payload, byte for byte (pushx writes the payload as this one "
                    "field; empty: the payload is the JSON object of the entry's fields, as the original)"),
        Option("redis-message-id", default="*", sides=PUSHX, group="push",
               help="entry ID for XADD (default *: let the server generate it)"),
    ],
    source="drivers.redis.stream:RedisStreamSource",
    sink="drivers.redis.stream:RedisStreamSink",
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    validate=_validate,
    family="redis",
    delivery=Delivery(
        "at-least-once",
        hold="consumer-group pending entry, kept fresh while the child runs; a dead procx's entries are claimed "
             "(XAUTOCLAIM) after -redis-stream-claim-idle",
        fail="stays pending and is claimed again at once, or after -retry-backoff (at most the claim idle time); "
             "the delivery count is the attempt (-max-attempts); fail-op ack/del drop it",
        pushx="XADD acknowledged by the server (durable only as far as the server persists)",
        tested="real server: Redis 7.0",
    ),
)
