"""Options shared by redis-list, redis-pubsub and redis-stream: server address, password, key, TLS."""

from __future__ import annotations

from core.options import Option
from drivers.common import tls_options

EXTRA = "redis"
REQUIRES = ("redis",)


def redis_options(what: str) -> list[Option]:
    """Connection, key (`what`: the list, channel or stream it names) and TLS options of every redis driver."""
    return [
        Option("redis-host", help="Redis server host name (empty: localhost)"),
        Option("redis-port", default="6379", help="Redis server port"),
        Option("redis-password", help="AUTH password (empty: no AUTH)", secret=True),
        Option("redis-key", help=f"name of the {what}"),
        *tls_options(
            "redis",
            insecure="tls-skip-verify",
            insecure_env={"procx": "PROCX_REDIS_TLS_INSECURE", "pushx": "PUSHX_REDIS_TLS_INSECURE"},
        ),
    ]
