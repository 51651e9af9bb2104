"""kafka: procx takes one record of a topic (in a consumer group); pushx produces one (confluent-kafka).

Fixes over the original (procx.md §4.21, pushx.md §4.13):
- with -kafka-group, a record's offset is committed only after the child succeeded (the original committed as it
  read: a failed or killed job was lost). A failure commits nothing and seeks back to the record, so the same
  procx (daemon) takes it again at once; a procx that dies holding it leaves it uncommitted, and whoever gets the
  partition next (after -kafka-session-timeout for a killed member) reads it again: at-least-once.
- outside get() (while the child runs, and between jobs) a small thread pauses the assigned partitions and keeps
  polling the consumer, so a long job neither fetches more records nor overruns max.poll.interval.ms (which
  would throw procx out of the group and hand its partition, with the record, to another consumer). That lets
  max.poll.interval.ms, which is also how long a rebalance waits for members, stay short: 2 session timeouts.
- without -kafka-group nothing can be committed: as the original, procx reads partition 0 from its earliest
  offset, so every run starts again at the same first record (a daemon walks forward through partition 0 in
  memory). That is replay, not a work queue; the Delivery declaration and the help say so.
- SASL works (PLAIN, SCRAM-SHA-512 as the original's "scram", and SCRAM-SHA-256), with or without TLS; the
  original panicked as soon as SASL was enabled. Missing brokers or topic are usage errors (it panicked).
- an unreachable broker is one line naming the brokers after at most CONNECT_TIMEOUT seconds, exit 69.
- pushx extensions: a record key (a {{path}} template over the JSON payload), headers and the partitioner;
  a push returns once the brokers acknowledged the record (acks=all).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence

from core.errors import ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import fill
from core.work import Sink, Source, Work
from drivers.common import Tls

NAME = "kafka"
TLS = Tls("kafka")
CONNECT_TIMEOUT = 10.0  # seconds to reach the brokers (the original's dial timeout)
OP_TIMEOUT = 30.0  # seconds a commit, a metadata or an offsets request may take
JOIN_TIMEOUT = 60.0  # seconds to wait for the group to assign partitions at start
FETCH_TIMEOUT = 10.0  # seconds to wait for a record the offsets say is there
PUMP_INTERVAL = 1.0  # seconds between polls of the paused consumer outside get() (keeps procx in its group)
SASL_MECHANISMS = {"plain": "PLAIN", "scram": "SCRAM-SHA-512", "scram-sha-512": "SCRAM-SHA-512",
                   "scram-sha-256": "SCRAM-SHA-256"}
PARTITIONERS = ("murmur2_random", "murmur2", "consistent_random", "consistent", "fnv1a_random", "fnv1a", "random")
NO_GROUP_ID = "procx-no-group"  # librdkafka wants a group.id; without -kafka-group it is never joined or committed


def _quiet():
    """librdkafka's own log lines go nowhere: its errors reach procx as exceptions."""
    import logging

    log = logging.getLogger("procx.kafka.librdkafka")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def brokers(config) -> list[str]:
    """The -kafka-brokers entries, trimmed (the original did not trim), empty ones dropped."""
    return [b.strip() for b in config["kafka-brokers"] if b.strip()]


def _where(config) -> str:
    return ", ".join(brokers(config))


def client_config(config, side: str) -> dict[str, object]:
    """The librdkafka settings for one side: brokers, TLS and SASL; the caller adds the consumer/producer ones."""
    conf: dict[str, object] = {"bootstrap.servers": ",".join(brokers(config)), "client.id": f"{side}-tui",
                               "logger": _quiet(), "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT * 1000)}
    tls, sasl = bool(config["kafka-enable-tls"]), bool(config["kafka-enable-sasl"])
    conf["security.protocol"] = ("SASL_" if sasl else "") + ("SSL" if tls else "PLAINTEXT")
    if tls:
        for option, key in (("kafka-tls-ca-file", "ssl.ca.location"),
                            ("kafka-tls-cert-file", "ssl.certificate.location"),
                            ("kafka-tls-key-file", "ssl.key.location")):
            if config[option]:
                conf[key] = config[option]
        if config["kafka-tls-insecure"]:
            conf["enable.ssl.certificate.verification"] = False
            conf["ssl.endpoint.identification.algorithm"] = "none"
        else:
            conf["ssl.endpoint.identification.algorithm"] = "https"
    if sasl:
        conf["sasl.mechanism"] = SASL_MECHANISMS[config["kafka-sasl-type"]]
        conf["sasl.username"] = config["kafka-sasl-username"]
        conf["sasl.password"] = config["kafka-sasl-password"]
    return conf


def consumer_config(config) -> dict[str, object]:
    session = int(config["kafka-session-timeout"] * 1000)
    return {
        **client_config(config, PROCX),
        "group.id": config["kafka-group"] or NO_GROUP_ID,
        "enable.auto.commit": False,  # offsets are committed by clear(), after the child succeeded
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",  # a new group starts at the oldest record, as the original's reader
        "session.timeout.ms": session,
        "heartbeat.interval.ms": max(100, session // 3),
        # the consumer is polled every PUMP_INTERVAL however long the child runs, so this only catches a procx
        # that hangs; it is also how long a rebalance waits for the members to join again (a broker may wait
        # that long for a killed member)
        "max.poll.interval.ms": 2 * session,
        "queued.min.messages": 10,  # little prefetch: records fetched but not taken are simply fetched again
        "allow.auto.create.topics": False,
    }


def producer_config(config) -> dict[str, object]:
    return {
        **client_config(config, PUSHX),
        "acks": "all",
        "partitioner": config["kafka-partitioner"],
        "message.timeout.ms": int(OP_TIMEOUT * 1000),
        "linger.ms": 5,
        "message.max.bytes": 64 << 20,  # the broker's limit applies (its error is reported), not a smaller one here
        "allow.auto.create.topics": False,  # as the original: the topic must exist
    }


def _build(kind, conf: dict[str, object]):
    """A librdkafka client; a configuration it refuses (e.g. an unreadable TLS file) is a usage error."""
    from confluent_kafka import KafkaException

    try:
        return kind(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        raise UsageError(f"driver {NAME}: invalid client configuration: {one_line(_reason(exc))}") from None


def _reason(exc: BaseException) -> str:
    """The text of a KafkaError / KafkaException (never the configuration, which holds the password)."""
    err = exc.args[0] if exc.args else exc
    text = err.str() if hasattr(err, "str") else str(err)
    return text or type(exc).__name__


class _Errors:
    """Collects librdkafka's error callbacks (connection refused, authentication failed, ...)."""

    def __init__(self) -> None:
        self.last = ""
        self.down = False

    def __call__(self, err) -> None:
        from confluent_kafka import KafkaError

        if err.code() != KafkaError._ALL_BROKERS_DOWN or not self.last:  # keep the reason they are down
            self.last = err.str()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION, KafkaError._SSL):
            self.down = True


def _metadata(client, config, errors: _Errors, serve) -> object:
    """The topic's metadata, or a ProviderError naming the brokers: fails early when every broker refused,
    at the latest after CONNECT_TIMEOUT. `serve` lets librdkafka deliver its error callbacks."""
    from confluent_kafka import KafkaError, KafkaException

    topic = config["kafka-topic"]
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            md = client.list_topics(topic, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            serve()
            if errors.down or time.monotonic() >= deadline:
                reason = errors.last or _reason(exc)
                raise ProviderError(f"driver {NAME}: cannot connect to the brokers {_where(config)}: "
                                    f"{one_line(reason)}") from None
            continue
        found = md.topics.get(topic)
        if found is None or (found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise ProviderError(f"driver {NAME}: topic {topic!r} does not exist on {_where(config)}")
        if found.error is not None:
            raise ProviderError(f"driver {NAME}: topic {topic!r} on {_where(config)}: {found.error.str()}")
        return found


class _Held:
    """The receipt of one record: where it is, and what rebalances did to its partition meanwhile: `revoked`
    during a rebalance, `reassigned` when the rebalance gave it back to this consumer, `lost` when it went to
    another one (or the membership itself was lost)."""

    __slots__ = ("partition", "offset", "work", "revoked", "reassigned", "lost")

    def __init__(self, partition: int, offset: int) -> None:
        self.partition = partition
        self.offset = offset
        self.work: Work | None = None
        self.revoked = self.reassigned = self.lost = False

    def lose(self, reason: str) -> None:
        """The partition is gone: procx stops the child (the record will be processed by its new owner)."""
        self.lost = True
        if self.work is not None:
            self.work.lose(reason)


class KafkaSource(Source):
    """One consumer (a group member, or partition 0 without a group); one record held at a time."""

    consumer = None
    pump = None

    def open(self) -> None:
        from confluent_kafka import Consumer

        self.topic = self.config["kafka-topic"]
        self.group = self.config["kafka-group"]
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.held: _Held | None = None
        self.fetching = False  # inside get()
        self.paused = False  # the pump paused the assigned partitions (get() resumes them)
        self.delayed: dict[int, float] = {}  # partition -> monotonic time its failed record may come again
        self.assigned: set[int] | None = None  # None: the group has not assigned partitions yet
        self.joined = False
        self.errors = _Errors()
        self.consumer = _build(Consumer, {**consumer_config(self.config), "error_cb": self.errors})
        try:
            found = _metadata(self.consumer, self.config, self.errors, lambda: self.consumer.poll(0))
            if not self.group and 0 not in found.partitions:
                raise ProviderError(f"driver {NAME}: topic {self.topic!r} has no partition 0")
        except BaseException:
            self._close_consumer()
            raise
        self.pump = threading.Thread(target=self._pump, name="kafka-poll", daemon=True)
        self.pump.start()

    # -- group membership (callbacks run inside poll(), so under self.lock) -----------------------------------
    def _join(self) -> None:
        """Subscribe in the group (or take partition 0 from its start without one), at the first get: opening
        alone (`procx-tui check`, depth) never joins the group, so it never makes the group rebalance."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        if self.group:
            self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                    on_lost=self._on_lost)
        else:
            self.consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            self.assigned = {0}
        self.joined = True

    def _on_assign(self, consumer, partitions) -> None:
        consumer.assign(partitions)
        self.assigned = {p.partition for p in partitions}
        if self.paused and not self.fetching:
            consumer.pause(partitions)
        held = self.held
        if held is not None and held.revoked and not held.lost:
            held.revoked = False
            if held.partition in self.assigned:  # an eager rebalance revokes everything, then gives it back
                held.reassigned = True
            else:
                held.lose(f"partition {held.partition} of {self.topic!r} was assigned to another member of group "
                          f"{self.group!r}")

    def _on_revoke(self, consumer, partitions) -> None:
        gone = {p.partition for p in partitions}
        self.assigned = (self.assigned or set()) - gone
        if self.held is not None and self.held.partition in gone:
            self.held.revoked = True
        with contextlib.suppress(Exception):
            consumer.unassign()

    def _on_lost(self, consumer, partitions) -> None:
        self._on_revoke(consumer, partitions)
        if self.held is not None and self.held.revoked:
            self.held.lose(f"procx lost its membership of group {self.group!r} (session timeout or poll interval "
                           f"exceeded): partition {self.held.partition} may be with another member")

    def _pump(self) -> None:
        """Outside get(), pause the partitions and poll the consumer: rebalances go on, and max.poll.interval.ms
        is never exceeded however long the child runs or the daemon sleeps between jobs. (A quick job never
        meets the pump: the records fetched meanwhile stay queued for the next get.)"""
        while not self.stop.wait(PUMP_INTERVAL):
            if not self.lock.acquire(blocking=False):
                continue  # get() or clear/fail is using the consumer
            try:
                if self.consumer is not None:
                    if not self.paused:
                        self.consumer.pause(self.consumer.assignment())
                        self.paused = True
                    msg = self.consumer.poll(0)
                    if msg is not None and msg.error() is not None:
                        self.errors.last = msg.error().str()
                    elif msg is not None:  # paused partitions deliver nothing; just in case, it comes again
                        self._seek(msg.partition(), msg.offset())
            except Exception:  # noqa: BLE001 - the next get/clear reports a broken consumer
                pass
            finally:
                self.lock.release()

    # -- work ------------------------------------------------------------------------------------------------
    def _failed(self, what: str, reason: str) -> ProviderError:
        return ProviderError(f"driver {NAME}: {what} (topic {self.topic!r} on {_where(self.config)}): "
                             f"{one_line(reason)}")

    def _poll(self, until: float):
        """The next record before `until` (monotonic), or None; fatal and topic errors raise."""
        from confluent_kafka import KafkaError

        while True:
            msg = self.consumer.poll(max(0.0, min(PUMP_INTERVAL, until - time.monotonic())))
            if msg is not None:
                err = msg.error()
                if err is None:
                    return msg
                if err.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                    raise self._failed(f"-kafka-session-timeout {self.config['kafka-session-timeout']:g}s is outside "
                                       "the range the brokers allow", err.str())
                if err.fatal() or err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._ALL_BROKERS_DOWN,
                                                 KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                 KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError._AUTHENTICATION):
                    raise self._failed("cannot read", err.str())
            if time.monotonic() >= until:
                return None

    def _backlog(self) -> bool:
        """Whether an assigned partition holds records past procx's position (so a get that may not wait
        still waits for the fetch instead of reporting no work)."""
        from confluent_kafka import KafkaException, TopicPartition

        parts = [TopicPartition(self.topic, p) for p in sorted(set(self.assigned or ()) - set(self.delayed))]
        if not parts:
            return False
        try:
            positions = self.consumer.position(parts)
            unknown = [tp for tp in positions if tp.offset < 0]
            committed = ({tp.partition: tp.offset for tp in self.consumer.committed(unknown, timeout=OP_TIMEOUT)}
                         if unknown and self.group else {})
            for tp in positions:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=OP_TIMEOUT)
                at = tp.offset if tp.offset >= 0 else committed.get(tp.partition, -1)
                if (at if at >= 0 else low) < high:
                    return True
        except KafkaException as exc:
            raise self._failed("cannot read the offsets", _reason(exc)) from None
        return False

    def get(self, wait: float) -> Work | None:
        with self.lock:
            self.fetching = True
            try:
                msg = self._fetch(wait)
            finally:
                self.fetching = False
            if msg is None:
                return None
            held = self.held = _Held(msg.partition(), msg.offset())
            key = msg.key()
            held.work = Work(msg.value() or b"", f"{self.topic}/{msg.partition()}/{msg.offset()}", handle=held,
                             meta={"topic": self.topic, "partition": msg.partition(), "offset": msg.offset(),
                                   "key": key.decode(errors="replace") if key is not None else None,
                                   "headers": {k: (v or b"").decode(errors="replace")
                                               for k, v in (msg.headers() or [])}})
            return held.work

    def _fetch(self, wait: float):
        """The next record, waiting up to `wait` seconds (longer for the first join and for a record the
        offsets say is there)."""
        self.errors.last = ""
        if not self.joined:
            self._join()
        if self.paused:
            self.consumer.resume(self.consumer.assignment())
            self.paused = False
        self._hold_delayed()
        msg = None
        if self.assigned is None:  # the first get waits for the group to hand out partitions
            joined = time.monotonic() + JOIN_TIMEOUT
            while self.assigned is None and msg is None and time.monotonic() < joined:
                msg = self._poll(min(joined, time.monotonic() + 0.2))
            if self.assigned is None and msg is None:
                raise self._failed(f"group {self.group!r} assigned no partitions within {JOIN_TIMEOUT:.0f}s",
                                   self.errors.last or "no answer from the group coordinator")
        if msg is None:
            msg = self._poll(time.monotonic() + wait)
        if msg is None and self._backlog():
            msg = self._poll(time.monotonic() + FETCH_TIMEOUT)
        return msg

    def _hold_delayed(self) -> None:
        """Keep the partitions of records failed with a -retry-backoff delay paused until the delay is over."""
        from confluent_kafka import TopicPartition

        now = time.monotonic()
        for partition, until in list(self.delayed.items()):
            tp = [TopicPartition(self.topic, partition)]
            if until > now and partition in (self.assigned or ()):
                self.consumer.pause(tp)
                continue
            del self.delayed[partition]
            with contextlib.suppress(Exception):
                self.consumer.resume(tp)

    def _seek(self, partition: int, offset: int) -> None:
        from confluent_kafka import TopicPartition

        self.consumer.seek(TopicPartition(self.topic, partition, offset))

    def _settle(self, work: Work, done: bool) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        held: _Held = work.handle
        with self.lock:
            if held is not self.held:
                raise ProviderError(f"driver {NAME}: record {work.id} is not the one this consumer holds")
            try:
                self._finish_rebalance(held)
                if held.lost:
                    if done:
                        raise ProviderError(f"driver {NAME}: record {work.id} done, but its partition was given "
                                            "to another consumer of the group meanwhile: not committed, it will "
                                            "be processed again")
                    return
                if done and self.group:
                    self.consumer.commit(offsets=[TopicPartition(self.topic, held.partition, held.offset + 1)],
                                         asynchronous=False)
                    if held.reassigned:  # the new assignment restarted at the old committed offset
                        self._seek(held.partition, held.offset + 1)
                elif not done:
                    self._seek(held.partition, held.offset)  # the same record comes next
                    if work.retry_delay > 0:  # -retry-backoff: its partition waits that long (in this process)
                        self.delayed[held.partition] = time.monotonic() + work.retry_delay
            except KafkaException as exc:
                what = "commit" if done else "seek back to"
                raise self._failed(f"cannot {what} record {work.id}", _reason(exc)) from None
            finally:
                self.held = None

    def _finish_rebalance(self, held: _Held) -> None:
        """A rebalance revoked the held record's partition and is not over: wait (bounded) to learn whether it
        comes back, so that the commit goes to the new generation; records fetched meanwhile are put back."""
        until = time.monotonic() + JOIN_TIMEOUT
        while held.revoked and not held.lost and time.monotonic() < until:
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                self._seek(msg.partition(), msg.offset())
        if held.revoked and not held.lost:
            held.lose("the group's rebalance did not end")

    def clear(self, work: Work) -> None:
        self._settle(work, True)

    def fail(self, work: Work) -> None:
        self._settle(work, False)

    def depth(self) -> int:
        """The group's lag on the topic: records past its committed offsets (a partition without one counts
        from its oldest record, as procx starts there). Without a group: the records of partition 0."""
        from confluent_kafka import KafkaException, TopicPartition

        with self.lock:
            try:
                found = self.consumer.list_topics(self.topic, timeout=OP_TIMEOUT).topics[self.topic]
                parts = [TopicPartition(self.topic, p) for p in sorted(found.partitions)] if self.group else \
                    [TopicPartition(self.topic, 0)]
                committed = self.consumer.committed(parts, timeout=OP_TIMEOUT) if self.group else parts
                lag = 0
                for tp in committed:
                    low, high = self.consumer.get_watermark_offsets(tp, timeout=OP_TIMEOUT)
                    start = tp.offset if self.group and tp.offset >= 0 else low
                    lag += max(0, high - start)
                return lag
            except KafkaException as exc:
                raise self._failed("cannot read the group's lag", _reason(exc)) from None

    def _close_consumer(self) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # closing must not raise; nothing is committed here
                self.consumer.close()
            self.consumer = None

    def close(self) -> None:
        if self.pump is not None:
            self.stop.set()
            self.pump.join(timeout=5)
        with self.lock:
            self._close_consumer()  # leaves the group: its partitions go to the other members at once


def _headers(config) -> list[tuple[str, bytes]]:
    return [(str(k), str(v).encode()) for k, v in (config["kafka-headers"] or {}).items()]


class KafkaSink(Sink):
    """A producer waiting for acks from all in-sync replicas: one flush per push (or per batch)."""

    producer = None

    def open(self) -> None:
        from confluent_kafka import Producer

        self.topic = self.config["kafka-topic"]
        self.headers = _headers(self.config)
        self.errors = _Errors()
        self.producer = _build(Producer, {**producer_config(self.config), "error_cb": self.errors})
        _metadata(self.producer, self.config, self.errors, lambda: self.producer.poll(0))

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        from confluent_kafka import KafkaException

        key_template = self.config["kafka-key"]
        results: list[object] = [None] * len(payloads)

        def delivered(index: int):
            def report(err, msg) -> None:
                results[index] = err if err is not None else f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
            return report

        for i, payload in enumerate(payloads):
            key = fill(key_template, payload) if "{{" in key_template else key_template
            try:
                self.producer.produce(self.topic, value=bytes(payload), key=key.encode() if key else None,
                                      headers=self.headers or None, on_delivery=delivered(i))
            except BufferError:
                self.producer.flush(OP_TIMEOUT)
                self.producer.produce(self.topic, value=bytes(payload), key=key.encode() if key else None,
                                      headers=self.headers or None, on_delivery=delivered(i))
            except KafkaException as exc:
                raise ProviderError(f"driver {NAME}: cannot produce to topic {self.topic!r}: "
                                    f"{one_line(_reason(exc))}") from None
        left = self.producer.flush(OP_TIMEOUT + 5)
        for result in results:
            if result is None or not isinstance(result, str):
                reason = result.str() if result is not None else f"{left} record(s) not acknowledged in time"
                raise ProviderError(f"driver {NAME}: cannot produce to topic {self.topic!r} on "
                                    f"{_where(self.config)}: {one_line(reason)}")
        return list(results)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.producer is not None:
            with contextlib.suppress(Exception):
                self.producer.flush(5)
            self.producer = None


def _validate(config) -> None:
    if not brokers(config):
        raise ValueError("-kafka-brokers is required: comma list of host:port")
    for entry in brokers(config):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"-kafka-brokers: {entry!r} is not host:port")
    TLS.validate(config)
    for option in ("kafka-tls-ca-file", "kafka-tls-cert-file", "kafka-tls-key-file"):
        path = config[option]
        if config["kafka-enable-tls"] and path and not os.access(path, os.R_OK):
            raise ValueError(f"-{option}: cannot read {path}")
    if config["kafka-enable-sasl"]:
        if not config["kafka-sasl-type"]:
            raise ValueError("-kafka-sasl-type is required with -kafka-enable-sasl: plain, scram (SCRAM-SHA-512) "
                             "or scram-sha-256")
        if not config["kafka-sasl-username"]:
            raise ValueError("-kafka-sasl-username is required with -kafka-enable-sasl")
    else:
        given = [n for n in ("kafka-sasl-type", "kafka-sasl-username", "kafka-sasl-password") if config[n]]
        if given:
            raise ValueError(f"-{given[0]} has no effect without -kafka-enable-sasl")
    if config.side == PROCX and config["kafka-session-timeout"] <= 0:
        raise ValueError("-kafka-session-timeout: must be positive")
    if config.side == PUSHX:
        headers = config["kafka-headers"]
        if headers is not None and (not isinstance(headers, dict) or not all(
                isinstance(v, str | int | float | bool) for v in headers.values())):
            raise ValueError('-kafka-headers: must be a JSON object of names to strings, e.g. {"kind":"job"}')


SPEC = DriverSpec(
    NAME,
    "a Kafka topic: each record's value is one unit of work",
    [
        Option("kafka-brokers", "list", required=True, placeholder="HOST:PORT",
               help="comma list of broker addresses (host:port)"),
        Option("kafka-topic", required=True, help="topic to read from (procx) or write to (pushx)"),
        Option("kafka-group", sides=PROCX, group="retrieve",
               help="consumer group; a record's offset is committed after the child succeeded (empty: no "
                    "commits, every run re-reads partition 0 from its earliest offset)"),
        Option("kafka-session-timeout", "duration", 10.0, sides=PROCX, group="retrieve", extension=True,
               advanced=True,
               help="how long the group waits for a silent member (a killed procx) before giving its partitions, "
                    "with the record it held, to another one (brokers allow 6s-30m by default)"),
        *TLS.options(),
        Option("kafka-enable-sasl", "bool", help="authenticate with SASL", group="auth"),
        Option("kafka-sasl-type", choices=tuple(SASL_MECHANISMS),
               help="SASL mechanism: plain, scram (SCRAM-SHA-512, as the original) or scram-sha-256"),
        Option("kafka-sasl-username", help="SASL user name"),
        Option("kafka-sasl-password", help="SASL password", secret=True),
        Option("kafka-key", sides=PUSHX, group="push", extension=True,
               help="record key (empty: none); {{path}} takes a field of the JSON payload"),
        Option("kafka-headers", "json", sides=PUSHX, group="push", extension=True,
               help='record headers, a JSON object: {"kind":"job"}'),
        Option("kafka-partitioner", default="murmur2_random", choices=PARTITIONERS, sides=PUSHX, group="push",
               extension=True, advanced=True,
               help="how a key picks the partition (murmur2_random: as Java clients; keyless records are "
                    "spread at random)"),
    ],
    source="drivers.kafka:KafkaSource",
    sink="drivers.kafka:KafkaSink",
    extra="kafka",
    requires=("confluent_kafka",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once with -kafka-group; without a group nothing is stored: every run re-reads partition 0 "
        "from its earliest offset (replay, not a work queue)",
        hold="the record's offset stays uncommitted while the child runs; the consumer keeps polling (partitions "
             "paused), so a long child keeps its group membership; if a rebalance gives the partition to another "
             "member, procx stops the child and commits nothing; a killed procx's partitions move to another "
             "member after -kafka-session-timeout, which reads from the last committed offset",
        fail="nothing committed; the consumer seeks back, so the same record is taken again next (after "
             "-retry-backoff, in the same process); records behind it in its partition wait until it succeeds "
             "or is dropped/dead-lettered (-exit-codes, -max-attempts with -dead-letter)",
        dead_letter="none native (Kafka has no dead-letter topic); -dead-letter can push to another topic",
        pushx="acks=all: every in-sync replica has the record; -kafka-key, -kafka-headers, -kafka-partitioner",
        tested="emulators: Tansu 0.6.0 and noida-db 0.2.3 (Kafka protocol; redelivery after a kill -9 on Tansu "
               "only: noida never expires a dead group member); SASL PLAIN handshake against noida (it accepts any "
               "credentials); SCRAM and TLS checked as librdkafka configuration only",
    ),
)
