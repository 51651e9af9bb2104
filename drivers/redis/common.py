"""What redis-list, redis-pubsub and redis-stream share: the options (address, password, key, TLS), the client
(binary-safe, no hidden retries, TLS context from the Tls declaration), error translation, and the lease keeper.

The client library (redis-py) is imported only inside the functions that connect.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator

from core.errors import ProcxError, ProviderError
from core.options import Option
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


def _one_line(exc: BaseException) -> str:
    text = _SCRIPT_WHERE.sub("", " ".join(str(exc).split()))  # where in our Lua scripts: noise for the user
    return text or type(exc).__name__


@contextlib.contextmanager
def errors(config, what: str = "") -> Iterator[None]:
    """Turn redis-py's exceptions into one-line ProviderErrors naming the driver, host and port."""
    import redis.exceptions as rex

    host, port = address(config)
    where = f"driver {config.driver}: redis at {host}:{port}"
    doing = f" ({what})" if what else ""
    try:
        yield
    except ProcxError:
        raise
    except rex.AuthenticationError as exc:
        raise ProviderError(f"{where}: authentication failed{doing}: {_one_line(exc)}") from exc
    except (rex.ConnectionError, rex.TimeoutError) as exc:
        raise ProviderError(f"{where} is unreachable{doing}: {_one_line(exc)}") from exc
    except rex.ResponseError as exc:
        text = _one_line(exc)
        if text.startswith(("NOAUTH", "WRONGPASS")):
            raise ProviderError(f"{where}: authentication failed{doing}: {text}") from exc
        raise ProviderError(f"{where}: {what or 'command'} failed: {text}") from exc
    except rex.RedisError as exc:
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


def close_client(conn) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.connection_pool.disconnect()


class Keeper:
    """Keeps the leases of the items a Source holds alive while their children run.

    A background thread calls `renew(handle)` for every held item every `interval` seconds; when procx dies
    the thread dies with it and the leases expire, so the items come back. Errors are ignored (the next
    round retries; a lease that could not be renewed in time simply expires: at-least-once).
    """

    def __init__(self, interval: float, renew: Callable[[object], object]) -> None:
        self.interval = max(0.05, interval)
        self.renew = renew
        self.held: dict[int, object] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.tokens = itertools.count(1)

    def hold(self, handle: object) -> int:
        token = next(self.tokens)
        with self.lock:
            self.held[token] = handle
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="procx-redis-lease", daemon=True)
                self.thread.start()
        return token

    def release(self, token: int) -> None:
        with self.lock:
            self.held.pop(token, None)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                handles = list(self.held.values())
            for handle in handles:
                if self.stop.is_set():
                    return
                with contextlib.suppress(Exception):
                    self.renew(handle)

    def close(self) -> None:
        self.stop.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
