"""redis-pubsub: procx waits for a message on a channel (SUBSCRIBE); pushx publishes (PUBLISH).

Pub/sub is fire-and-forget: Redis hands a message to the clients subscribed at the moment it is published and
keeps nothing. So delivery is at-most-once, whatever procx does: a message published while no procx is
subscribed, a failed job and the job of a procx that died are all lost (clear and fail do nothing). Use
redis-list or redis-stream for work that must not be lost.

procx subscribes once when it connects (and waits for the server's confirmation) and keeps that subscription
for every get of the run, instead of the original's subscribe/unsubscribe per message, so messages arriving
between two jobs of a daemon are buffered, not lost. After a lost connection the daemon reconnects and
subscribes again (messages published meanwhile are lost). Every subscriber receives every message, so one
procx runs one worker (-concurrency above 1 would run each message several times and is refused).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from core.errors import ProviderError
from core.options import PROCX, Delivery, DriverSpec
from core.work import Source, Work
from drivers.redis.common import (
    EXTRA,
    REQUIRES,
    RedisSink,
    client,
    close_client,
    errors,
    redis_options,
    validate_common,
)

HEALTH_CHECK = 15.0  # seconds of silence after which the subscribed connection is PINGed


def _validate(config) -> None:
    validate_common(config)
    if config.side == PROCX and int(config["concurrency"]) > 1:
        raise ValueError("-concurrency: redis-pubsub gives every message to every subscriber, so several workers "
                         "would run each message several times; run one worker per procx")


class RedisPubSubSource(Source):
    def open(self) -> None:
        self.conn = self.sub = None
        self.conn = client(self.config, health_check=HEALTH_CHECK)
        channel = self.config["redis-key"]
        with errors(self.config, "subscribe"):
            self.sub = self.conn.pubsub()
            self.sub.subscribe(channel)
            deadline = time.monotonic() + 10
            while True:  # the server confirms the subscription: from here on no message is missed
                msg = self.sub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if msg is not None and msg["type"] == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise ProviderError(f"driver {self.config.driver}: SUBSCRIBE {channel} was not confirmed")

    def get(self, wait: float) -> Work | None:
        deadline = time.monotonic() + wait
        with errors(self.config, "get work"):
            while True:
                msg = self.sub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if msg is not None and msg["type"] == "message":
                    return Work(bytes(msg["data"]), None)
                if time.monotonic() >= deadline:
                    return None

    def clear(self, work: Work) -> None:
        """Nothing to acknowledge: pub/sub keeps no message."""

    def fail(self, work: Work) -> None:
        """Nothing to give back: the message is gone (at-most-once)."""

    def close(self) -> None:
        sub = getattr(self, "sub", None)
        if sub is not None:
            with contextlib.suppress(Exception):  # closing the connection ends the subscription; must not raise
                sub.close()
        close_client(getattr(self, "conn", None))


class RedisPubSubSink(RedisSink):
    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        with errors(self.config, "publish"):
            self.conn.pipeline([("PUBLISH", self.config["redis-key"], payload) for payload in payloads])
        return [None] * len(payloads)


SPEC = DriverSpec(
    "redis-pubsub",
    "a Redis pub/sub channel: each message is one unit of work (fire-and-forget: at-most-once)",
    redis_options("channel"),
    source="drivers.redis.pubsub:RedisPubSubSource",
    sink="drivers.redis.pubsub:RedisPubSubSink",
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    validate=_validate,
    family="redis",
    delivery=Delivery(
        "at-most-once (pub/sub keeps nothing: a message published while no procx is subscribed, a failed job "
        "and the job of a killed procx are lost)",
        hold="none: the message exists only in the subscriber's buffer",
        fail="nothing (the message is gone)",
        pushx="PUBLISH accepted; delivered only to the subscribers connected at that moment (none is no error)",
        tested="real server: Redis 7.0",
    ),
)
