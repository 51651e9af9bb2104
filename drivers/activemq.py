"""activemq: procx waits for one message of a queue or topic over STOMP (ACK after success); pushx sends one.

Fixes over the original: one subscription per connection (the original subscribed again on every daemon
iteration), with client-individual acknowledgement and a prefetch of one, so a message is held by one procx at a
time and comes back when the connection drops; ERROR frames are errors, never "no work"; pushx asks for a receipt,
so success means the broker has the message, and sends persistent messages to queues. A failed message goes back
to the queue by default (-activemq-fail-mode requeue: the subscription is dropped and made again): ActiveMQ turns a
STOMP NACK, which the original sent, into a poison acknowledgement that moves the message to its dead-letter queue
(ActiveMQ.DLQ) at once; -activemq-fail-mode nack keeps that behaviour. Extensions: -activemq-username and
-activemq-password (STOMP login/passcode; the original had no credentials).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
import uuid
from typing import Any

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import Tls

TLS = Tls("activemq")
CONNECT_TIMEOUT = 10.0
RECEIPT_TIMEOUT = 30.0
# STOMP pushes messages; there is no "is the queue empty?" request. When procx must not wait (-wait-for-work 0,
# the in-app API), it still gives the broker this long to dispatch a waiting message before saying "no work".
DISPATCH_GRACE = 0.3


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"-activemq-address: expected host:port, got {text!r}")
    return host, int(port)


def _validate(config) -> None:
    if not config["activemq-address"]:
        raise ValueError("-activemq-address is required: host:port of the STOMP listener, e.g. 127.0.0.1:61613")
    _address(config["activemq-address"])
    if config.side == PUSHX and not config["activemq-name"]:
        raise ValueError("-activemq-name is required: the destination, e.g. /queue/jobs")
    if config["activemq-password"] and not config["activemq-username"]:
        raise ValueError("-activemq-password needs -activemq-username")
    TLS.validate(config)


SPEC = DriverSpec(
    "activemq",
    "an ActiveMQ (STOMP) queue or topic: each message is one unit of work",
    [
        Option("activemq-address", help="host:port of the STOMP listener", placeholder="HOST:PORT"),
        Option("activemq-type", sides=PROCX, required=True, choices=("queue", "topic"),
               help="kind of destination to subscribe to: queue or topic"),
        Option("activemq-name", required=PROCX,
               help="procx: queue or topic name; pushx: the full destination, e.g. /queue/jobs"),
        Option("activemq-username", extension=True, group="auth",
               help="STOMP login (empty: connect without credentials, as the original)"),
        Option("activemq-password", secret=True, extension=True, group="auth", help="STOMP passcode"),
        Option("activemq-fail-mode", default="requeue", choices=("requeue", "nack"), sides=PROCX, extension=True,
               group="fail", help="after a failure: requeue (the message goes back to the queue) or nack (STOMP "
                                  "NACK, as the original: ActiveMQ moves it to its dead-letter queue)"),
        *TLS.options(),
    ],
    source="drivers.activemq:ActiveMQSource",
    sink="drivers.activemq:ActiveMQSink",
    extra="stomp",
    requires=("stomp",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once (queues); topics: only messages sent while procx is subscribed, lost on failure or crash",
        hold="unacknowledged delivery (client-individual ack, prefetch 1): the broker redelivers it when the "
             "connection drops",
        fail="requeue (default): back to the queue at once; -activemq-fail-mode nack: STOMP NACK (ActiveMQ: "
             "dead-letter queue)",
        dead_letter="ActiveMQ.DLQ (with -activemq-fail-mode nack, or the broker's redelivery policy)",
        pushx="SEND with a receipt: the broker has the message; persistent for /queue/ destinations",
        tested="real server: Apache ActiveMQ Classic 5.17 (Debian)",
    ),
)


def _quiet_library_logs() -> None:
    """stomp.py logs connection attempts as warnings; our errors say what went wrong, once."""
    logger = logging.getLogger("stomp.py")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _error_text(frame: Any) -> str:
    headers = getattr(frame, "headers", {}) or {}
    text = headers.get("message", "")
    body = getattr(frame, "body", b"")
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    detail = body.strip().splitlines()[0] if body and body.strip() else ""
    if detail and detail not in text:
        text = f"{text}: {detail}" if text else detail
    return text or "ERROR frame without a message"


class _Connection:
    """One STOMP 1.2 connection: a listener thread feeds received messages into a queue; requests that carry a
    receipt wait for it, and an ERROR frame fails the request it answers (or the next call)."""

    def __init__(self, config) -> None:
        self.config = config
        self.host, self.port = _address(config["activemq-address"])
        self.where = f"{self.host}:{self.port}"
        self.messages: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.receipts: dict[str, threading.Event] = {}
        self.errors: dict[str, str] = {}  # receipt id -> error message
        self.failure = ""  # why the connection is unusable (ERROR frame without receipt, or lost)
        self.connected = threading.Event()
        self.conn: Any = None

    # -- listener callbacks (stomp.py's receiver thread) ----------------------------------------
    def on_connected(self, frame: Any) -> None:
        self.connected.set()

    def on_message(self, frame: Any) -> None:
        self.messages.put(("message", frame))

    def on_receipt(self, frame: Any) -> None:
        with self.lock:
            event = self.receipts.get(frame.headers.get("receipt-id", ""))
        if event is not None:
            event.set()

    def on_error(self, frame: Any) -> None:
        message = _error_text(frame)
        rid = frame.headers.get("receipt-id", "")
        with self.lock:
            if rid in self.receipts:
                self.errors[rid] = message
                self.receipts[rid].set()
                return
            self.failure = self.failure or message
            for event in self.receipts.values():
                event.set()
        self.connected.set()
        self.messages.put(("error", message))

    def on_disconnected(self) -> None:
        with self.lock:
            self.failure = self.failure or "the broker closed the connection"
            for event in self.receipts.values():
                event.set()
        self.connected.set()
        self.messages.put(("lost", None))

    # -- requests ----------------------------------------------------------------------------------
    def open(self) -> None:
        import stomp
        from stomp.exception import ConnectFailedException

        _quiet_library_logs()
        c = self.config
        ctx = TLS.context(c)  # unreadable TLS files are usage errors, before any connection
        self.conn = stomp.Connection12([(self.host, self.port)], heartbeats=(0, 0), auto_decode=False,
                                       prefer_localhost=False, try_loopback_connect=False,
                                       reconnect_attempts_max=1, timeout=CONNECT_TIMEOUT)
        if ctx is not None:
            self.conn.set_ssl(for_hosts=[(self.host, self.port)], ca_certs=c[TLS.ca] or None,
                              cert_file=c[TLS.cert] or None, key_file=c[TLS.key] or None,
                              verify=not c[TLS.insecure])
        listener = stomp.ConnectionListener()
        for name in ("on_connected", "on_message", "on_receipt", "on_error", "on_disconnected"):
            setattr(listener, name, getattr(self, name))
        self.conn.set_listener("procx", listener)
        try:
            self.conn.connect(c["activemq-username"] or None, c["activemq-password"] or None, wait=False)
        except ConnectFailedException:
            self.close()
            raise ProviderError(f"driver activemq: cannot reach {self.where}: {self._diagnose(ctx)}") from None
        if not self.connected.wait(CONNECT_TIMEOUT):
            self.close()
            raise ProviderError(f"driver activemq: {self.where} did not answer the STOMP CONNECT "
                                f"within {CONNECT_TIMEOUT:.0f}s")
        if self.failure:
            failure = self.failure
            self.close()
            raise ProviderError(f"driver activemq: {self.where} refused the connection: {failure}")

    def _diagnose(self, ctx) -> str:
        """Why the connection failed, found by connecting once more without stomp.py (which only logs it)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT) as sock:
                if ctx is not None:
                    with ctx.wrap_socket(sock, server_hostname=self.host):
                        pass
        except OSError as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            return str(reason).replace("_", " ").lower()
        return "the connection failed"

    def request(self, what: str, send, **kwargs: Any) -> None:
        """Send one frame with a receipt and wait for it; an ERROR frame or a lost connection is a ProviderError."""
        rid = uuid.uuid4().hex
        event = threading.Event()
        with self.lock:
            if self.failure:
                raise ProviderError(f"driver activemq: cannot {what}: {self.failure}")
            self.receipts[rid] = event
        try:
            try:
                send(receipt=rid, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the socket may be gone
                raise ProviderError(f"driver activemq: cannot {what}: {exc or type(exc).__name__}") from None
            if not event.wait(RECEIPT_TIMEOUT):
                raise ProviderError(f"driver activemq: cannot {what}: no receipt from {self.where} "
                                    f"within {RECEIPT_TIMEOUT:.0f}s")
            with self.lock:
                error = self.errors.pop(rid, "") or self.failure
            if error:
                raise ProviderError(f"driver activemq: cannot {what}: {error}")
        finally:
            with self.lock:
                self.receipts.pop(rid, None)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if conn.is_connected() and not self.failure:
                conn.disconnect()
        with contextlib.suppress(Exception):
            conn.transport.stop()


class ActiveMQSource(Source):
    def open(self) -> None:
        c = self.config
        self.destination = f"/{c['activemq-type']}/{c['activemq-name']}"
        self.connection = _Connection(c)
        self.connection.open()
        self.subscription = ""
        try:
            self._subscribe()
        except BaseException:
            self.connection.close()
            raise

    def _subscribe(self) -> None:
        sub = uuid.uuid4().hex
        self.connection.request(f"subscribe to {self.destination}", self.connection.conn.subscribe,
                                destination=self.destination, id=sub, ack="client-individual",
                                headers={"activemq.prefetchSize": "1"})
        self.subscription = sub

    def get(self, wait: float) -> Work | None:
        if not self.subscription:
            self._subscribe()
        deadline = time.monotonic() + min(max(wait, DISPATCH_GRACE), 3600.0)
        while True:
            try:
                kind, frame = self.connection.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if kind == "error":
                raise ProviderError(f"driver activemq: {self.destination}: {frame}")
            if kind == "lost":
                raise ProviderError(f"driver activemq: connection to {self.connection.where} lost: "
                                    f"{self.connection.failure}")
            headers = frame.headers
            if headers.get("subscription") != self.subscription:
                continue  # dispatched to a subscription dropped by a requeue: the broker gives it again
            body = frame.body if isinstance(frame.body, bytes) else str(frame.body).encode()
            redelivered = headers.get("redelivered", "false") == "true"
            return Work(body, headers.get("message-id"), attempt=2 if redelivered else 1,
                        handle=(headers.get("ack") or headers.get("message-id"), self.subscription),
                        meta={"destination": headers.get("destination", self.destination)})

    def clear(self, work: Work) -> None:
        ack_id, sub = work.handle
        self._check(sub, "acknowledge")
        self.connection.request(f"acknowledge message {work.id}", self.connection.conn.ack, id=ack_id)

    def fail(self, work: Work) -> None:
        ack_id, sub = work.handle
        self._check(sub, "fail")
        if self.config["activemq-fail-mode"] == "nack":
            self.connection.request(f"nack message {work.id}", self.connection.conn.nack, id=ack_id)
            return
        # requeue: dropping the subscription gives its unacknowledged message back to the queue
        self.subscription = ""
        self.connection.request(f"unsubscribe from {self.destination}", self.connection.conn.unsubscribe, id=sub)

    def _check(self, sub: str, what: str) -> None:
        if sub != self.subscription:
            raise ProviderError(f"driver activemq: cannot {what}: the subscription that received the message is "
                                "gone (the broker redelivers it)")

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()


class ActiveMQSink(Sink):
    def open(self) -> None:
        self.destination = self.config["activemq-name"]
        self.connection = _Connection(self.config)
        self.connection.open()

    def push(self, payload: bytes) -> str | None:
        headers = {"persistent": "true"} if self.destination.startswith("/queue/") else {}
        self.connection.request(f"send to {self.destination}", self.connection.conn.send,
                                destination=self.destination, body=payload, content_type="text/plain",
                                headers=headers)
        return None

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()
