"""rabbitmq: procx consumes one message from a queue; pushx publishes one (AMQP 0-9-1, pika).

Fixes over the original (procx.md §4.28, §7.4 #29; pushx.md §4.21):
- procx acks a message only after the child succeeded and nacks it with requeue after a failure (the original
  never acked: every message came back forever). Until then the delivery stays unacked on the connection, so a
  kill -9 of procx returns it to the queue (the broker requeues unacked deliveries when the connection drops).
- no exclusive, non-durable declare (which fails on any shared or durable queue): the queue is checked with a
  passive declare (it must exist), or, with -rabbitmq-declare durable, declared durable if it is missing.
- prefetch 1: at most one unacked message per procx; get() waits server-side (a consumer) up to `wait`.
- while the child runs, a small thread answers the broker's heartbeats, so a long job does not lose its
  connection (and its message) to a heartbeat timeout.
- pushx publishes persistent messages with publisher confirms and the mandatory flag: a successful pushx means
  the broker has routed the message to a queue and confirmed it. -rabbitmq-exchange works (the original ignored
  it); the routing key is the queue name (or -rabbitmq-routing-key).
- a missing queue or exchange is a clear error naming it (the original pushx created a throw-away queue).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work

NAME = "rabbitmq"
PUMP_INTERVAL = 1.0  # seconds between heartbeat checks while a message is held


def _where(url: str) -> str:
    """host:port (vhost) of an AMQP URL, without the credentials."""
    parts = urlsplit(url)
    tls = parts.scheme == "amqps"
    port = parts.port or (5671 if tls else 5672)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return f"{parts.hostname or 'localhost'}:{port} (vhost {vhost})"


def _user(url: str) -> str:
    return unquote(urlsplit(url).username or "guest")


def _describe(exc: BaseException) -> str:
    """A one-line reason from pika's nested exceptions (never the URL, which holds the password)."""
    import pika.exceptions as px

    if isinstance(exc, px.ChannelClosedByBroker):
        return f"{exc.reply_code} {exc.reply_text}"
    if isinstance(exc, px.ConnectionClosedByBroker):
        return f"{exc.reply_code} {exc.reply_text}"
    if isinstance(exc, px.AMQPConnectionError) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, BaseException):
            return _describe(inner)
        return str(inner)
    text = str(exc) or type(exc).__name__
    for prefix in ("AMQPConnectorSocketConnectError: ", "AMQPConnectorStackTimeout: "):
        text = text.replace(prefix, "")
    return text


def _connect(config, side: str):
    """A BlockingConnection, or a ProviderError naming host, port and vhost."""
    import pika
    import pika.exceptions as px

    url = config["rabbitmq-url"]
    where = _where(url)
    try:
        params = pika.URLParameters(url)
    except Exception as exc:  # noqa: BLE001 - pika raises various errors for malformed URLs
        raise ProviderError(f"driver {NAME}: invalid -rabbitmq-url: {type(exc).__name__}") from None
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.stack_timeout = 15
    params.blocked_connection_timeout = 60
    if config["rabbitmq-heartbeat"] > 0:
        params.heartbeat = max(1, int(config["rabbitmq-heartbeat"]))
    params.client_properties = {"connection_name": f"{side} {config['rabbitmq-queue'] or ''}".strip()}
    try:
        return pika.BlockingConnection(params)
    except (px.ProbableAuthenticationError, px.AuthenticationError):
        raise ProviderError(f"driver {NAME}: {where}: login refused for user {_user(url)!r} "
                            "(wrong user name or password?)") from None
    except px.ProbableAccessDeniedError:
        raise ProviderError(f"driver {NAME}: {where}: access to the vhost refused for user {_user(url)!r}") from None
    except px.AMQPError as exc:
        raise ProviderError(f"driver {NAME}: cannot connect to {where}: {_describe(exc)}") from None
    except OSError as exc:
        raise ProviderError(f"driver {NAME}: cannot connect to {where}: {exc.strerror or exc}") from None


def _declare_queue(conn, config, queue: str):
    """Check (passive) or declare (durable) the queue on a fresh channel; a clear error when it is missing."""
    import pika.exceptions as px

    channel = conn.channel()
    durable = config["rabbitmq-declare"] == "durable"
    try:
        if durable:
            channel.queue_declare(queue, durable=True)
        else:
            channel.queue_declare(queue, passive=True)
    except px.ChannelClosedByBroker as exc:
        where = _where(config["rabbitmq-url"])
        if exc.reply_code == 404:
            raise ProviderError(f"driver {NAME}: queue {queue!r} does not exist on {where} (declare it, or use "
                                "-rabbitmq-declare durable to create a durable queue)") from None
        if exc.reply_code == 406:
            raise ProviderError(f"driver {NAME}: queue {queue!r} on {where} exists with other settings than a "
                                f"plain durable queue ({exc.reply_text}); use -rabbitmq-declare passive") from None
        raise ProviderError(f"driver {NAME}: queue {queue!r} on {where}: {_describe(exc)}") from None
    return channel


def _close(conn) -> None:
    if conn is not None and conn.is_open:
        with contextlib.suppress(Exception):  # closing must not raise
            conn.close()


class _Held:
    """The receipt of one delivery: the channel it came on and its delivery tag."""

    __slots__ = ("channel", "tag")

    def __init__(self, channel, tag: int) -> None:
        self.channel = channel
        self.tag = tag


class RabbitmqSource(Source):
    """One connection and one channel with prefetch 1; deliveries are acked/nacked by clear/fail."""

    conn = None
    channel = None

    def open(self) -> None:
        self.queue = self.config["rabbitmq-queue"]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.conn = _connect(self.config, PROCX)
        try:
            self.channel = _declare_queue(self.conn, self.config, self.queue)
            self.channel.basic_qos(prefetch_count=1)
        except BaseException:
            _close(self.conn)
            raise
        # pika answers heartbeats only while it is called: keep the connection alive while the child runs
        self.pump = threading.Thread(target=self._pump, name="rabbitmq-heartbeat", daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        while not self.stop.wait(PUMP_INTERVAL):
            if self.lock.acquire(blocking=False):
                try:
                    if self.conn.is_open:
                        self.conn.process_data_events(time_limit=0)
                except Exception:  # noqa: BLE001 - the next get/clear reports a dead connection
                    pass
                finally:
                    self.lock.release()

    def _failed(self, what: str, exc: BaseException) -> ProviderError:
        return ProviderError(f"driver {NAME}: {what} on {_where(self.config['rabbitmq-url'])}: {_describe(exc)}")

    def get(self, wait: float) -> Work | None:
        import pika.exceptions as px

        with self.lock:
            try:
                method, props, body = self.channel.basic_get(self.queue, auto_ack=False)
                if method is None and wait > 0:
                    method, props, body = self._consume(wait)
            except (px.AMQPError, OSError) as exc:
                raise self._failed(f"cannot get a message from queue {self.queue!r}", exc) from None
        if method is None:
            return None
        headers = props.headers or {}
        count = headers.get("x-delivery-count")  # quorum queues count deliveries
        attempt = count + 1 if isinstance(count, int) else 2 if method.redelivered else 1
        return Work(bytes(body), props.message_id or None, attempt=attempt, exact=isinstance(count, int),
                    handle=_Held(self.channel, method.delivery_tag),
                    meta={"exchange": method.exchange, "routing_key": method.routing_key})

    def _consume(self, wait: float):
        """Wait up to `wait` seconds for one delivery through a consumer (prefetch 1), then cancel it."""
        got: list[tuple] = []

        def on_message(channel, method, props, body) -> None:
            got.append((method, props, body))

        tag = self.channel.basic_consume(self.queue, on_message, auto_ack=False)
        deadline = time.monotonic() + wait
        try:
            while not got:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.conn.process_data_events(time_limit=left)
        finally:
            # cancelling a manual-ack consumer requeues what reached pika but not the callback; the message
            # handed to the callback stays unacked on the channel until clear/fail
            if self.channel.is_open:
                self.channel.basic_cancel(tag)
        return got[0] if got else (None, None, None)

    def _settle(self, work: Work, what: str, settle) -> None:
        import pika.exceptions as px

        held: _Held = work.handle
        with self.lock:
            if held.channel is not self.channel or not self.channel.is_open:
                raise ProviderError(f"driver {NAME}: cannot {what} message {work.id or held.tag}: the channel "
                                    "was closed since it was taken; the broker has requeued it")
            try:
                settle(held)
                self.conn.process_data_events(time_limit=0)  # send it now
            except (px.AMQPError, OSError) as exc:
                raise self._failed(f"cannot {what} message {work.id or held.tag}", exc) from None

    def clear(self, work: Work) -> None:
        self._settle(work, "ack", lambda held: held.channel.basic_ack(held.tag))

    def fail(self, work: Work) -> None:
        requeue = bool(self.config["rabbitmq-fail-requeue"])
        self._settle(work, "nack", lambda held: held.channel.basic_nack(held.tag, requeue=requeue))

    def dead_letter(self, work: Work) -> None:
        """Reject the message without requeue: the queue's dead-letter exchange (x-dead-letter-exchange, as an
        argument or a policy) receives it. RabbitMQ does not tell procx whether the queue has one, and a queue
        without one discards the message: give it one, or use procx's -dead-letter target instead."""
        self._settle(work, "reject", lambda held: held.channel.basic_nack(held.tag, requeue=False))

    def depth(self) -> int:
        """Ready messages of the queue (a passive declare's message count), as KEDA's rabbitmq scaler reads it in
        QueueLength mode over AMQP: unacked deliveries (work being done) are not counted."""
        import pika.exceptions as px

        with self.lock:
            try:
                return int(self.channel.queue_declare(self.queue, passive=True).method.message_count)
            except (px.AMQPError, OSError) as exc:
                raise self._failed(f"cannot read the length of queue {self.queue!r}", exc) from None

    def close(self) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()
            self.pump.join(timeout=5)
        _close(self.conn)  # unacked deliveries go back to the queue


class RabbitmqSink(Sink):
    """Persistent, mandatory publishes with publisher confirms (a batch: in one transaction)."""

    conn = None
    tx_channel = None

    def open(self) -> None:
        import pika.exceptions as px

        self.exchange = self.config["rabbitmq-exchange"]
        queue = self.config["rabbitmq-queue"]
        self.routing_key = self.config["rabbitmq-routing-key"] or queue
        self.conn = _connect(self.config, PUSHX)
        try:
            if not self.exchange:
                self.channel = _declare_queue(self.conn, self.config, queue)
            else:
                self.channel = self.conn.channel()
                try:
                    self.channel.exchange_declare(self.exchange, passive=True)
                except px.ChannelClosedByBroker as exc:
                    where = _where(self.config["rabbitmq-url"])
                    if exc.reply_code == 404:
                        raise ProviderError(f"driver {NAME}: exchange {self.exchange!r} does not exist on "
                                            f"{where}") from None
                    raise ProviderError(f"driver {NAME}: exchange {self.exchange!r} on {where}: "
                                        f"{_describe(exc)}") from None
                if queue and self.config["rabbitmq-declare"] == "durable":
                    _declare_queue(self.conn, self.config, queue).close()
            self.channel.confirm_delivery()
        except BaseException:
            _close(self.conn)
            raise

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        """One payload: published and confirmed. Several (pushx -bulk): published in one transaction on a
        channel of their own, stored together when the commit is acknowledged (one round trip per batch)."""
        import pika
        import pika.exceptions as px

        ids = [uuid.uuid4().hex for _ in payloads]
        props = [pika.BasicProperties(content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent,
                                      message_id=i) for i in ids]
        target = f"exchange {self.exchange!r}" if self.exchange else "the default exchange"
        unroutable = (f"no queue is bound to {target} for routing key {self.routing_key!r}: the message was "
                      "returned, not stored")
        try:
            if len(payloads) == 1:
                # with confirms on, this returns once the broker confirmed; mandatory: unroutable is an error
                self.channel.basic_publish(self.exchange, self.routing_key, payloads[0], properties=props[0],
                                           mandatory=True)
                return ids
            channel = self._batch_channel()
            self.returned.clear()
            for payload, prop in zip(payloads, props, strict=True):
                channel.basic_publish(self.exchange, self.routing_key, payload, properties=prop, mandatory=True)
            channel.tx_commit()
            self.conn.process_data_events(0)  # the broker returns unroutable messages before it commits
        except px.UnroutableError:
            raise ProviderError(f"driver {NAME}: {unroutable}") from None
        except px.NackError:
            raise ProviderError(f"driver {NAME}: the broker refused the message (nack) on {target}") from None
        except px.AMQPError as exc:
            raise ProviderError(f"driver {NAME}: cannot publish to {target} on "
                                f"{_where(self.config['rabbitmq-url'])}: {_describe(exc)}") from None
        if self.returned:
            raise ProviderError(f"driver {NAME}: {len(self.returned)} of {len(payloads)} messages of the batch: "
                                f"{unroutable}")
        return ids

    def _batch_channel(self):
        if self.tx_channel is None:
            self.returned: list[bytes] = []
            self.tx_channel = self.conn.channel()
            self.tx_channel.add_on_return_callback(lambda channel, method, props, body: self.returned.append(body))
            self.tx_channel.tx_select()
        return self.tx_channel

    def close(self) -> None:
        _close(self.conn)


def _validate(config) -> None:
    url = config["rabbitmq-url"]
    scheme = urlsplit(url).scheme
    if scheme not in ("amqp", "amqps"):
        raise ValueError("-rabbitmq-url: must start with amqp:// or amqps:// (amqp://user:pass@host:5672/vhost)")
    if config.side == PROCX and not config["rabbitmq-queue"]:
        raise ValueError("-rabbitmq-queue is required: the queue to consume from")
    if config.side == PUSHX and not config["rabbitmq-exchange"] and not config["rabbitmq-queue"]:
        raise ValueError("-rabbitmq-queue is required (or -rabbitmq-exchange with a routing key)")
    if config["rabbitmq-heartbeat"] < 0:
        raise ValueError("-rabbitmq-heartbeat: must not be negative")


SPEC = DriverSpec(
    NAME,
    "a RabbitMQ queue: each message is one unit of work",
    [
        Option("rabbitmq-url", secret=True, placeholder="URL", required=True,
               help="AMQP URL with credentials, amqp://user:pass@host:5672/vhost (amqps:// for TLS)"),
        Option("rabbitmq-queue", help="queue to consume from (procx) or publish to (pushx)"),
        Option("rabbitmq-exchange", sides=PUSHX, group="push",
               help="exchange to publish to (empty: the default exchange, routing straight to the queue)"),
        Option("rabbitmq-routing-key", sides=PUSHX, group="push", extension=True,
               help="routing key of the published message (empty: the queue name)"),
        Option("rabbitmq-declare", default="passive", choices=("passive", "durable"), extension=True,
               advanced=True,
               help="passive: the queue must exist (any type or arguments); durable: create a durable queue "
                    "if it is missing"),
        Option("rabbitmq-fail-requeue", "bool", True, sides=PROCX, group="fail", extension=True,
               help="after a failure, requeue the message (false: reject it, so the queue's dead-letter "
                    "exchange gets it; a queue without one drops it)"),
        Option("rabbitmq-heartbeat", "duration", 0.0, extension=True, advanced=True,
               help="AMQP heartbeat interval (0: the broker's, usually 60s)"),
    ],
    source="drivers.rabbitmq:RabbitmqSource",
    sink="drivers.rabbitmq:RabbitmqSink",
    extra="rabbitmq",
    requires=("pika",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="unacked delivery (prefetch 1), requeued by the broker if procx's connection drops; heartbeats are "
             "answered while the child runs (a broker-side delivery acknowledgement timeout still applies)",
        fail="nack with requeue (immediately offered again); -rabbitmq-fail-requeue=false rejects it instead",
        dead_letter="-exit-codes …=dead-letter and -max-attempts reject the message (no requeue), and so does every "
                    "failure with -rabbitmq-fail-requeue=false: the queue's x-dead-letter-exchange receives it (a "
                    "queue without one discards it)",
        pushx="persistent message, mandatory routing, publisher confirm received (a -bulk batch: its transaction "
              "committed)",
        tested="real server: RabbitMQ 3.10",
    ),
)
