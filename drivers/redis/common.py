"""What redis-list, redis-pubsub and redis-stream share: the options (address, password, key, TLS), the client
(binary-safe, no hidden retries, TLS context from the Tls declaration), the wire client of the pushx sides (and
the Sink around it) and error translation.

The client library (redis-py) is imported only inside the functions that connect.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from core.errors import ProcxError, ProviderError
from core.options import Option
from core.work import Sink
from drivers.common import Tls

EXTRA = "redis"
REQUIRES = ("redis",)

TLS = Tls("redis", insecure="tls-skip-verify",
          insecure_env={"procx": "PROCX_REDIS_TLS_INSECURE", "pushx": "PUSHX_REDIS_TLS_INSECURE"})

CONNECT_TIMEOUT = 10.0  # seconds to establish a connection
READ_TIMEOUT = 30.0  # the original's read timeout; blocking commands wait at most MAX_BLOCK, well below it
MAX_BLOCK = 5.0  # one server-side wait (BLMOVE, XREADGROUP BLOCK) is cut into pieces of at most this long


def redis_options(what: str) -> list[Option]:
    """Connection, key (`what`: the list, channel or stream it names) and TLS options of every redis driver."""
    return [
        Option("redis-host", help="Redis server host name (empty: localhost)"),
        Option("redis-port", default="6379", help="Redis server port"),
        Option("redis-password", help="AUTH password (empty: no AUTH)", secret=True),
        Option("redis-key", help=f"name of the {what} (required)"),
        *TLS.options(),
    ]


def validate_common(config) -> None:
    """Rules shared by the three drivers (raise ValueError("-flag: what is wrong"))."""
    port = str(config["redis-port"]).strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"-redis-port: invalid port {config['redis-port']!r} (1-65535)")
    if not config["redis-key"]:
        raise ValueError(f"-redis-key ({config.options['redis-key'].variable(config.side)}) is required")


def address(config) -> tuple[str, int]:
    return (config["redis-host"] or "localhost", int(str(config["redis-port"]).strip()))


_SCRIPT_WHERE = re.compile(r"\s*script: [0-9a-f]{40}, on @user_script:\d+\.?")


AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "ERR AUTH", "ERR invalid password")  # how a server refuses credentials


def _one_line(exc: BaseException) -> str:
    text = _SCRIPT_WHERE.sub("", " ".join(str(exc).split()))  # where in our Lua scripts: noise for the user
    return text or type(exc).__name__


@contextlib.contextmanager
def errors(config, what: str = "") -> Iterator[None]:
    """Turn redis-py's and the wire client's exceptions into one-line ProviderErrors naming the driver, host and
    port (redis-py is imported only when one of its exceptions is to be told apart)."""
    from drivers.redis import wire

    host, port = address(config)
    where = f"driver {config.driver}: redis at {host}:{port}"
    doing = f" ({what})" if what else ""
    try:
        yield
    except ProcxError:
        raise
    except wire.WireError as exc:
        raise ProviderError(f"{where} is unreachable{doing}: {_one_line(exc)}") from exc
    except wire.ReplyError as exc:
        raise _reply_error(exc, where, what, doing) from exc
    except Exception as exc:
        _redis_py_error(exc, where, what, doing)
        raise


def _reply_error(exc: Exception, where: str, what: str, doing: str) -> ProviderError:
    """The ProviderError for an error reply of the server (either client's)."""
    text = _one_line(exc)
    if text.startswith(AUTH_REPLIES):
        return ProviderError(f"{where}: authentication failed{doing}: {text}")
    return ProviderError(f"{where}: {what or 'command'} failed: {text}")


def _redis_py_error(exc: Exception, where: str, what: str, doing: str) -> None:
    """Raise the ProviderError for one of redis-py's exceptions (return for anything else)."""
    import redis.exceptions as rex

    if isinstance(exc, rex.AuthenticationError):
        raise ProviderError(f"{where}: authentication failed{doing}: {_one_line(exc)}") from exc
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError):
        raise ProviderError(f"{where} is unreachable{doing}: {_one_line(exc)}") from exc
    if isinstance(exc, rex.ResponseError):
        raise _reply_error(exc, where, what, doing) from exc
    if isinstance(exc, rex.RedisError):
        raise ProviderError(f"{where}: {what or 'command'} failed: {_one_line(exc)}") from exc


def _tls_connection_class(context):
    """A redis-py Connection that wraps its socket with our ssl.SSLContext (built by drivers.common.Tls)."""
    from redis.connection import Connection

    class TlsConnection(Connection):
        def _connect(self):
            sock = super()._connect()
            try:
                sock.settimeout(self.socket_connect_timeout)  # the handshake is part of connecting
                wrapped = context.wrap_socket(sock, server_hostname=self.host)
                wrapped.settimeout(self.socket_timeout)
                return wrapped
            except BaseException:
                sock.close()
                raise

    return TlsConnection


def client(config, *, health_check: float = 0):
    """A connected, PINGed redis.Redis for DB 0 (the original's only DB), returning bytes (binary-safe).

    No automatic retries: a failed command becomes an error at once and procx's daemon reconnects with
    back-off, so a command that may have run is never silently sent twice.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.connection import Connection
    from redis.retry import Retry

    host, port = address(config)
    context = TLS.context(config)
    pool = redis.ConnectionPool(
        connection_class=_tls_connection_class(context) if context is not None else Connection,
        host=host, port=port, db=0, password=config["redis-password"] or None,
        socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=READ_TIMEOUT, socket_keepalive=True,
        retry=Retry(NoBackoff(), 0), health_check_interval=health_check, decode_responses=False,
    )
    conn = redis.Redis(connection_pool=pool)
    try:
        with errors(config, "connect"):
            conn.ping()
    except ProviderError:
        pool.disconnect()
        raise
    return conn


def wire_client(config):
    """A connected (AUTHed or PINGed) wire.Connection: what the pushx sides use (see drivers.redis.wire)."""
    from drivers.redis import wire

    host, port = address(config)
    with errors(config, "connect"):
        return wire.Connection(host, port, password=config["redis-password"] or None, context=TLS.context(config),
                               connect_timeout=CONNECT_TIMEOUT, timeout=READ_TIMEOUT)


def close_client(conn) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.connection_pool.disconnect()


class RedisSink(Sink):
    """The pushx side of every redis driver, over the wire client; each driver's push_many sends its command."""

    def open(self) -> None:
        self.conn = wire_client(self.config)

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            self.conn.close()
