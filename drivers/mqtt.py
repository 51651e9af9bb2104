"""mqtt (new, not in the Go originals): procx takes one message from a topic, pushx publishes one (paho-mqtt).

procx keeps a persistent session on the broker (clean session off, a stable client id) and subscribes with the
QoS asked for. A QoS 1 message is acknowledged (PUBACK) only after the child succeeded. Until then it stays
unacknowledged in the session: if procx dies, or after a failure (procx then reconnects, because MQTT has no
negative acknowledgement: the broker resends unacknowledged messages only on a new connection), the broker
delivers it again with the same client id. So QoS 1 is at-least-once; QoS 0 is at-most-once (the broker forgets
the message once sent, and does not keep QoS 0 messages for a disconnected client). QoS 2 is refused for procx:
the client acknowledges its receipt (PUBREC) before the child runs and keeps that state in memory only, so a
crash would lose the message.

The session must exist before messages are published: a broker keeps messages only for the subscriptions it
knows. Run procx once (e.g. `procx ... -wait-for-work 0`) before the first pushx, or subscribe the client id
yourself. With MQTT 5 (the default) procx asks for one unacknowledged message at a time (Receive Maximum 1), the
session never expires unless -mqtt-session-expiry says so, and retained messages are sent only when the
subscription is new. One client id = one session = one procx at a time: to share a topic between several procx,
give each its own -mqtt-client-id and subscribe to a shared topic ($share/GROUP/topic).

pushx publishes with the QoS asked for (default 1) and waits until the publish completed (PUBACK for QoS 1,
PUBCOMP for QoS 2, written to the socket for QoS 0); an MQTT 5 error reason code is an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import Tls

NAME = "mqtt"
TLS = Tls("mqtt")
SESSION_FOREVER = 0xFFFFFFFF
TIMEOUT = 15.0  # seconds to wait for CONNACK, SUBACK, a sync round trip or a publish


def _endpoint(config) -> tuple[str, int, bool, str, str]:
    """(host, port, tls, username, password) from -mqtt-url or -mqtt-host/-mqtt-port and the auth options."""
    host, port = config["mqtt-host"], int(config["mqtt-port"])
    tls = bool(config["mqtt-enable-tls"])
    user, password = config["mqtt-username"], config["mqtt-password"]
    if config["mqtt-url"]:
        parts = urlsplit(config["mqtt-url"])
        host = parts.hostname or host
        port = parts.port or port
        tls = tls or parts.scheme in ("mqtts", "ssl")
        if parts.username and not user:
            user, password = unquote(parts.username), unquote(parts.password or "")
    return host, port or (8883 if tls else 1883), tls, user, password


def default_client_id(config) -> str:
    """A stable id for procx's persistent session: the same host, port, topic and user give the same id."""
    host, port, _, user, _ = _endpoint(config)
    digest = hashlib.sha256(f"{host}:{port}|{config['mqtt-topic']}|{user}".encode()).hexdigest()
    return f"procx-{digest[:16]}"


class _Connection:
    """A paho client driven by our own network thread (no automatic reconnect: a lost connection is an error
    the procx loop handles); CONNACK, SUBACK and UNSUBACK are waited for."""

    def __init__(self, config, client_id: str, *, clean: bool, receive_maximum: int = 0) -> None:
        self.config = config
        self.client_id = client_id
        self.clean = clean
        self.receive_maximum = receive_maximum
        self.host, self.port, self.tls, self.user, self.password = _endpoint(config)
        self.v5 = config["mqtt-version"] == "5"
        self.cond = threading.Condition()
        self.messages: deque = deque()
        self.acks: dict[int, object] = {}  # mid of SUBACK/UNSUBACK/PUBACK -> reason code(s)
        self.connack = None
        self.session_present = False
        self.lost: str = ""
        self.closing = False
        self.thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def error(self, what: str) -> ProviderError:
        return ProviderError(f"driver {NAME}: {what} on {self.where}")

    def connect_error(self, reason: str) -> ProviderError:
        return ProviderError(f"driver {NAME}: cannot connect to {self.where}: {reason}")

    # -- paho callbacks (network thread) --------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.cond:
            self.connack = reason_code
            self.session_present = bool(getattr(flags, "session_present", False))
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.cond:
            if not self.closing:
                self.lost = f"connection lost ({reason_code})"
            self.cond.notify_all()

    def _on_message(self, client, userdata, message) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def _on_ack(self, client, userdata, mid, reason_codes, properties) -> None:
        with self.cond:
            self.acks[mid] = reason_codes
            self.cond.notify_all()

    def _run(self) -> None:
        from paho.mqtt.client import MQTT_ERR_SUCCESS

        while True:
            rc = self.client.loop(timeout=0.2)
            if rc != MQTT_ERR_SUCCESS:
                break
        with self.cond:
            if not self.closing and not self.lost:
                self.lost = "connection lost"
            self.cond.notify_all()

    # -- operations (caller's thread) -------------------------------------------------------------------
    def open(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            clean_session=None if self.v5 else self.clean, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_unsubscribe = self._on_ack
        client.on_publish = self._on_ack
        if self.user:
            client.username_pw_set(self.user, self.password or None)
        context = TLS.context(self.config) if self.config["mqtt-enable-tls"] else None
        if self.tls:
            if context is None:
                import ssl

                context = ssl.create_default_context()
            client.tls_set_context(context)
            if not context.check_hostname:
                client.tls_insecure_set(True)
        kwargs: dict[str, object] = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            expiry = self.config["mqtt-session-expiry"] if self.config.side == PROCX else 0
            props.SessionExpiryInterval = 0 if self.clean else (int(expiry) or SESSION_FOREVER)
            if self.receive_maximum:
                props.ReceiveMaximum = self.receive_maximum
            kwargs = {"clean_start": self.clean, "properties": props}
        keepalive = max(1, math.ceil(self.config["mqtt-keepalive"]))
        try:
            client.connect(self.host, self.port, keepalive, **kwargs)
        except OSError as exc:
            raise self.connect_error(_os_reason(exc)) from None
        except ValueError as exc:
            raise self.connect_error(str(exc)) from None
        self.thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)
        self.thread.start()
        with self.cond:
            if not self.cond.wait_for(lambda: self.connack is not None or self.lost, TIMEOUT):
                self.close()
                raise self.connect_error("no CONNACK (is it an MQTT broker?)")
            if self.connack is None:
                lost = self.lost
                self.close()
                raise self.connect_error(lost)
        if self.connack.is_failure:
            reason = str(self.connack)
            self.close()
            raise self.error(f"the broker refused the connection: {reason}"
                             + (" (wrong user name or password?)" if "auth" in reason.lower()
                                or "password" in reason.lower() else ""))

    def _wait_ack(self, mid: int, what: str):
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.acks or self.lost, TIMEOUT):
                raise self.error(f"cannot {what}: no answer from the broker")
            if mid not in self.acks:
                raise self.error(f"cannot {what}: {self.lost}")
            return self.acks.pop(mid)

    def subscribe(self, topic: str, qos: int) -> None:
        import paho.mqtt.client as mqtt

        try:
            if self.v5:
                options = mqtt.SubscribeOptions(qos=qos, retainHandling=mqtt.SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
                rc, mid = self.client.subscribe(topic, options=options)
            else:
                rc, mid = self.client.subscribe(topic, qos)
        except ValueError as exc:
            raise ProviderError(f"driver {NAME}: invalid -mqtt-topic {topic!r}: {exc}") from None
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise self.error(f"cannot subscribe to {topic!r}: {mqtt.error_string(rc)}")
        granted = self._wait_ack(mid, f"subscribe to {topic!r}")[0]
        if granted.is_failure:
            raise self.error(f"the broker refused the subscription to {topic!r}: {granted}")
        if granted.value < qos:
            raise self.error(f"the broker granted QoS {granted.value} only for {topic!r} (asked for {qos}); "
                             f"use -mqtt-qos {granted.value} to accept at-most-once delivery")

    def sync(self, topic: str, qos: int) -> None:
        """One round trip, so that whatever the broker sent before has arrived. MQTT 5: the subscription again
        (allowed by any ACL that allowed it at first; retained messages are not resent for an existing one);
        3.1.1 (where a new SUBSCRIBE would resend retained messages): UNSUBSCRIBE of a topic never subscribed."""
        import paho.mqtt.client as mqtt

        if self.v5:
            self.subscribe(topic, qos)
            return
        rc, mid = self.client.unsubscribe(f"procx/sync/{self.client_id}")
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise self.error(f"lost the connection: {mqtt.error_string(rc)}")
        self._wait_ack(mid, "talk to the broker")

    def close(self) -> None:
        """Disconnect cleanly (a persistent session keeps unacknowledged messages for the next connection)."""
        with self.cond:
            self.closing = True
        client = getattr(self, "client", None)
        if client is None:
            return
        with contextlib.suppress(Exception):  # closing must not raise
            client.disconnect()
        if self.thread is not None:
            self.thread.join(5)
        try:
            client.loop_stop()
            if client.socket() is not None:
                client.socket().close()
        except Exception:  # noqa: BLE001
            pass


def _os_reason(exc: OSError) -> str:
    import os
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class _Held:
    """Receipt of one message: the connection it came on, its packet id and QoS."""

    __slots__ = ("conn", "mid", "qos")

    def __init__(self, conn: _Connection, mid: int, qos: int) -> None:
        self.conn, self.mid, self.qos = conn, mid, qos


class MqttSource(Source):
    conn: _Connection | None = None

    def open(self) -> None:
        self.topic = self.config["mqtt-topic"]
        self.qos = int(self.config["mqtt-qos"])
        self.client_id = self.config["mqtt-client-id"] or default_client_id(self.config)
        self.restart = False
        self._connect()

    def _connect(self) -> None:
        conn = _Connection(self.config, self.client_id, clean=bool(self.config["mqtt-clean-session"]),
                           receive_maximum=1)
        conn.open()
        try:
            conn.subscribe(self.topic, self.qos)
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def get(self, wait: float) -> Work | None:
        if self.restart:  # after a failure: a new connection makes the broker resend what was not acknowledged
            self.restart = False
            old, self.conn = self.conn, None
            old.close()
            self._connect()
        conn = self.conn
        deadline = time.monotonic() + wait
        with conn.cond:
            ready = bool(conn.messages)
        if not ready and not conn.lost:
            conn.sync(self.topic, self.qos)  # a message the broker sends right now (e.g. after our ack) arrives
        with conn.cond:
            conn.cond.wait_for(lambda: conn.messages or conn.lost, max(0.0, deadline - time.monotonic()))
            if not conn.messages:
                if conn.lost:
                    raise conn.error(f"cannot receive from {self.topic!r}: {conn.lost}")
                return None
            message = conn.messages.popleft()
        # no attempt count: MQTT has none, and DUP only says the broker sent it before, perhaps to a procx that
        # had not started it (after an ack the broker sends the next message at once, even to a procx closing)
        return Work(bytes(message.payload), None, handle=_Held(conn, message.mid, message.qos),
                    meta={"topic": message.topic, "qos": message.qos, "dup": bool(message.dup),
                          "retain": bool(message.retain)})

    def clear(self, work: Work) -> None:
        import paho.mqtt.client as mqtt

        held: _Held = work.handle
        if held.qos == 0:
            return
        if held.conn is not self.conn or held.conn.lost:
            raise held.conn.error("cannot acknowledge the message: the connection was lost since it was taken; "
                                  "the broker delivers it again")
        rc = held.conn.client.ack(held.mid, held.qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise held.conn.error(f"cannot acknowledge the message: {mqtt.error_string(rc)}")

    def fail(self, work: Work) -> None:
        held: _Held = work.handle
        if held.qos > 0:
            # no negative ack in MQTT: leave it unacknowledged; the next get reconnects and the broker resends it
            self.restart = True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class MqttSink(Sink):
    conn: _Connection | None = None

    def open(self) -> None:
        self.topic = self.config["mqtt-topic"]
        self.qos = int(self.config["mqtt-qos"])
        client_id = self.config["mqtt-client-id"] or f"pushx-{uuid.uuid4().hex[:16]}"
        self.conn = _Connection(self.config, client_id, clean=True)
        self.conn.open()

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        import paho.mqtt.client as mqtt

        conn = self.conn
        infos = []
        for payload in payloads:
            info = conn.client.publish(self.topic, payload, qos=self.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                raise conn.error(f"cannot publish to {self.topic!r}: {mqtt.error_string(info.rc)}")
            infos.append(info)
        deadline = time.monotonic() + TIMEOUT + len(payloads) * 0.1
        for info in infos:
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                raise conn.error(f"cannot publish to {self.topic!r}: {exc}") from None
            if not info.is_published():
                raise conn.error(f"cannot publish to {self.topic!r}: {conn.lost or 'no acknowledgement in time'}")
            with conn.cond:
                reason = conn.acks.pop(info.mid, None)
            if reason is not None and getattr(reason, "is_failure", False):
                raise conn.error(f"the broker refused the message on {self.topic!r}: {reason}")
        return [None] * len(payloads)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _extensions(options: list[Option]) -> list[Option]:
    for opt in options:
        opt.extension = True  # the whole driver is ours
    return options


def _validate(config) -> None:
    if config["mqtt-url"]:
        parts = urlsplit(config["mqtt-url"])
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError("-mqtt-url: use mqtt://host:1883 or mqtts://host:8883")
    elif not config["mqtt-host"]:
        raise ValueError("-mqtt-host or -mqtt-url is required")
    if not 0 <= config["mqtt-port"] <= 65535:
        raise ValueError("-mqtt-port: not a port number")
    topic = config["mqtt-topic"]
    if not topic:
        raise ValueError("-mqtt-topic is required")
    qos = config["mqtt-qos"]
    if qos not in (0, 1, 2):
        raise ValueError("-mqtt-qos: must be 0, 1 or 2")
    if config.side == PUSHX and ("+" in topic or "#" in topic):
        raise ValueError("-mqtt-topic: pushx publishes to one topic; wildcards (+, #) are for procx")
    if config.side == PROCX:
        if qos == 2:
            raise ValueError("-mqtt-qos: procx takes 0 or 1 (QoS 2 acknowledges receipt before the child runs, so "
                             "a crash would lose the message; QoS 1 is at-least-once)")
        if config["concurrency"] > 1:
            raise ValueError("-concurrency: one MQTT session serves one procx at a time; run several procx with "
                             "their own -mqtt-client-id on a shared topic ($share/GROUP/topic)")
        if config["mqtt-session-expiry"] < 0:
            raise ValueError("-mqtt-session-expiry: must not be negative")
    if config["mqtt-keepalive"] <= 0:
        raise ValueError("-mqtt-keepalive: must be positive")


SPEC = DriverSpec(
    NAME,
    "an MQTT topic (persistent session, QoS 1): each message is one unit of work",
    [
        Option("mqtt-url", secret=True, extension=True, placeholder="URL",
               help="broker URL, mqtt://[user:pass@]host:1883 or mqtts://host:8883 (wins over -mqtt-host/-port)"),
        Option("mqtt-host", default="localhost", extension=True, help="broker host (when -mqtt-url is not set)"),
        Option("mqtt-port", "int", 0, extension=True, help="broker port (0: 1883, or 8883 with TLS)"),
        Option("mqtt-topic", extension=True,
               help="topic to publish to (pushx); topic filter to subscribe to (procx: + and # allowed, "
                    "$share/GROUP/filter for shared subscriptions)"),
        Option("mqtt-qos", "int", 1, extension=True,
               help="QoS: 1 = at-least-once (procx acks after success), 0 = at-most-once; pushx also 2"),
        Option("mqtt-client-id", extension=True,
               help="client id; procx's persistent session belongs to it (empty: procx derives a stable id from "
                    "host, port, topic and user; pushx a random one)"),
        Option("mqtt-clean-session", "bool", False, sides=PROCX, extension=True, advanced=True,
               help="start procx with a clean session (unacknowledged messages of an earlier run are dropped)"),
        Option("mqtt-session-expiry", "duration", 0.0, sides=PROCX, extension=True, advanced=True,
               help="MQTT 5: how long the broker keeps procx's session while it is disconnected (0: forever)"),
        Option("mqtt-username", extension=True, help="user name"),
        Option("mqtt-password", secret=True, extension=True, help="password"),
        *_extensions(TLS.options()),
        Option("mqtt-keepalive", "duration", 60.0, extension=True, advanced=True,
               help="keepalive interval (whole seconds)"),
        Option("mqtt-version", default="5", choices=("5", "3.1.1"), extension=True, advanced=True,
               help="MQTT protocol version"),
    ],
    source="drivers.mqtt:MqttSource",
    sink="drivers.mqtt:MqttSink",
    extra="mqtt",
    requires=("paho.mqtt",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once with QoS 1 (a persistent session); QoS 0: at-most-once",
        hold="QoS 1: unacknowledged message in procx's persistent session; the broker resends it when the same "
             "client id connects again (after a crash, or at once after a failure)",
        fail="QoS 1: left unacknowledged and procx reconnects, so the broker resends it; QoS 0: lost",
        dead_letter="none in MQTT",
        pushx="QoS 1: PUBACK received; QoS 2: PUBCOMP received; QoS 0: written to the connection",
        tested="real server: Mosquitto 2.0 (MQTT 5 and 3.1.1)",
    ),
)
