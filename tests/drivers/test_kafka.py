"""kafka against two Kafka-compatible brokers started here (Tansu and noida-db, tests/drivers/kafka_servers.py):
the conformance suite on both, plus the fixes of the original's bugs (commit after success, fail brings the record
back, SASL that works, no hang on an unreachable broker) and the pushx extensions (key, headers, partitioner).

Backend.pending() is the group's lag (records past its committed offsets): a record taken but not yet committed
still counts, which is exactly what at-least-once promises. Every test uses a fresh topic (one partition unless
it says otherwise) and a fresh group id.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka", reason="pip install -e '.[kafka]'")

from core import api, settings  # noqa: E402
from core.options import PROCX, PUSHX  # noqa: E402
from drivers import kafka  # noqa: E402
from tests.conformance import Backend, Conformance, kill_mid_job  # noqa: E402
from tests.drivers.kafka_servers import Broker, each_broker, noida_server, tansu_server  # noqa: E402, F401 - fixtures
from tests.support import clean_env, command, run, wait_for  # noqa: E402

PASSWORD = "kafka-s3cret-pw"


class KafkaBackend(Backend):
    driver = "kafka"

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        # Kafka's default record limit (max.message.bytes 1048588) is below 1 MiB plus the record overhead, and
        # noida enforces it as Kafka does: the suite's 1 MiB payload needs a topic configured for it
        self.topic = broker.topic(**{"max.message.bytes": str(2 << 20)})
        self.group = broker.group()
        # a killed member's partition moves after the session timeout; joining again takes a little more
        self.redelivery_wait = broker.session_seconds + 5

    def common_args(self) -> list[str]:
        return ["-driver", "kafka", "-kafka-brokers", self.broker.bootstrap, "-kafka-topic", self.topic]

    def procx_args(self) -> list[str]:
        return ["-kafka-group", self.group, "-kafka-session-timeout", self.broker.session]

    def pending(self) -> int:
        return self.broker.lag(self.topic, self.group)


class TestKafkaConformance(Conformance):
    @pytest.fixture
    def backend(self, broker: Broker) -> KafkaBackend:
        return KafkaBackend(broker)

    @pytest.mark.slow
    def test_kill_between_get_and_clear_loses_nothing(self, backend: KafkaBackend, tmp_path: Path) -> None:
        """On Tansu, the suite's test: the killed member is expired after the session timeout and the next procx
        of the group takes the record. noida never expires a member that stopped heartbeating (checked for
        minutes), so its group can never rebalance after a kill -9: there the test shows what procx controls,
        that nothing was committed, and the record is still there at the group's position."""
        if backend.broker.name != "noida":
            super().test_kill_between_get_and_clear_loses_nothing(backend, tmp_path)
            return
        kill_mid_job(backend, tmp_path)
        assert backend.pending() == 1
        assert backend.broker.members(backend.group) == 1  # the dead member, which noida keeps
        [record] = backend.broker.records(backend.topic, 1)
        assert record.value() == b"precious"


def args(b: Broker, topic: str, *extra: str, group: str | None = None) -> list[str]:
    out = ["-driver", "kafka", "-kafka-brokers", b.bootstrap, "-kafka-topic", topic]
    if group:
        out += ["-kafka-group", group, "-kafka-session-timeout", b.session]
    return [*out, *extra]


def push(b: Broker, topic: str, *payloads: bytes, extra: tuple[str, ...] = ()) -> None:
    for payload in payloads:
        done = run("pushx", *args(b, topic, *extra), input=payload)
        assert done.returncode == 0, done.stderr.decode()


# -- the original's bugs: commit only after success ----------------------------------------------------------
def test_a_failed_record_is_not_committed_and_comes_back_first(broker: Broker) -> None:
    """The original committed as it read: a failed job was lost. Here nothing is committed; the next procx of
    the group gets the same record again, before the ones behind it."""
    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"first", b"second")
    done = run("procx", *args(broker, topic, group=group), "false")
    assert done.returncode == 1
    assert broker.lag(topic, group) == 2
    assert run("procx", *args(broker, topic, group=group)).stdout == b"first"
    assert broker.lag(topic, group) == 1
    assert run("procx", *args(broker, topic, group=group)).stdout == b"second"
    assert broker.lag(topic, group) == 0


@pytest.mark.slow
def test_daemon_takes_a_failed_record_again_at_once(broker: Broker, tmp_path: Path) -> None:
    """In a daemon the same consumer seeks back to the failed record: it is retried before anything behind it."""
    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"a", b"b")
    log = tmp_path / "log"
    # fails the first time it sees "a", succeeds otherwise; appends what it saw
    script = ("import os, sys; p = os.environ['PROCX_PAYLOAD']; log = sys.argv[1]; "
              "seen = open(log).read().split() if os.path.exists(log) else []; "
              "open(log, 'a').write(p + '\\n'); sys.exit(3 if p == 'a' and 'a' not in seen else 0)")
    proc = subprocess.Popen([command("procx"), *args(broker, topic, "-daemon", group=group),
                             sys.executable, "-c", script, str(log)], env=clean_env(),
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: broker.lag(topic, group) == 0, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert log.read_text().split() == ["a", "a", "b"]


def test_max_attempts_moves_a_poison_record_to_a_dead_letter_topic(noida: Broker, tmp_path: Path) -> None:
    """Kafka keeps no delivery count: procx counts failures by the record's id (topic/partition/offset), and the
    last allowed failure pushes it to -dead-letter (here another topic) and commits it, unblocking its partition."""
    topic, dlq, group = noida.topic(), noida.topic(), noida.group()
    push(noida, topic, b"poison", b"fine")
    env = clean_env(PROCX_TUI_STATE=str(tmp_path))
    retry = ("-max-attempts", "2", "-dead-letter", f"-driver kafka -kafka-brokers {noida.bootstrap} -kafka-topic {dlq}")
    statuses = [run("procx", *args(noida, topic, *retry, group=group), "sh", "-c", '[ "$PROCX_PAYLOAD" = fine ]',
                    env=env).returncode for _ in range(3)]
    assert statuses == [1, 0, 0]  # failed, dead-lettered, then "fine" done
    assert noida.lag(topic, group) == 0
    assert [r.value() for r in noida.records(dlq, 1)] == [b"poison"]


def test_work_id_and_metadata(broker: Broker) -> None:
    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"{}", extra=("-kafka-key", "k-1", "-kafka-headers", '{"kind":"job"}'))
    with api.work(args(broker, topic, group=group), environ=clean_env()) as work:
        assert work is not None
        assert work.id == f"{topic}/0/0"
        assert work.meta["key"] == "k-1"
        assert work.meta["headers"] == {"kind": "job"}


def test_depth_is_the_group_lag_and_counts_held_records(broker: Broker) -> None:
    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"1", b"2", b"3")
    from core.api import _source, _take

    source = _source(args(broker, topic, group=group), clean_env())
    try:
        assert source.depth() == 3
        assert broker.members(group) == 0  # opening (procx-tui check) does not join the group
        work = _take(source, 0)
        assert work is not None and work.payload == b"1"
        assert source.depth() == 3  # held, not committed: still work to do
        source.clear(work)
        assert source.depth() == 2 == broker.lag(topic, group)
        work = _take(source, 0)
        wait_for(lambda: source.paused, timeout=5)  # as while a child runs: the pump paused the partitions
        source.fail(work)
        assert source.depth() == 2
        again = _take(source, 0)
        assert again.payload == b"2"  # the failed record first
        source.clear(again)
        assert source.depth() == 1
    finally:
        source.close()


def test_retry_backoff_delays_the_failed_record_in_this_process(broker: Broker) -> None:
    """-retry-backoff's delay: the failed record's partition stays paused that long (Kafka itself cannot delay a
    record, so a new procx process takes it at once)."""
    from core.api import _source, _take

    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"again")
    source = _source(args(broker, topic, group=group), clean_env())
    try:
        work = _take(source, 5)
        failed_at = time.monotonic()
        work.fail(1.5)
        assert _take(source, 0) is None  # not yet
        again = wait_for(lambda: _take(source, 0.2), timeout=10)
        assert again.payload == b"again" and again.id == work.id
        assert time.monotonic() - failed_at >= 1.5
        again.clear()
    finally:
        source.close()
    assert broker.lag(topic, group) == 0


@pytest.mark.slow
def test_a_long_child_keeps_the_consumer_in_its_group(broker: Broker) -> None:
    """The record is held longer than max.poll.interval.ms (two session timeouts): the pump keeps polling the
    paused consumer, so procx stays a member and the commit after the long job succeeds. (With the pump stopped,
    librdkafka leaves the group after the interval and the commit fails with "Unknown member".)"""
    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"long", b"next")
    with api.work(args(broker, topic, group=group), environ=clean_env()) as work:
        assert work.payload == b"long"
        time.sleep(2 * broker.session_seconds + 2)  # the "child" runs past the poll interval
        assert work.source.errors.last == ""  # librdkafka never reported "maximum poll interval exceeded"
    assert broker.lag(topic, group) == 1
    assert api.procx(args(broker, topic, group=group), environ=clean_env()) == b"next"


@pytest.mark.slow
def test_a_rebalance_while_a_record_is_held_keeps_it_or_reports_it_lost(broker: Broker) -> None:
    """A second member joins while the first holds a record (one partition). The group rebalances; the partition
    either comes back to the first member (its commit then works and the second gets nothing) or goes to the
    second: then the first's work is marked lost (procx would stop the child), its clear commits nothing and
    says so, and the second member gets the same record (at-least-once)."""
    from core.api import _source, _take
    from core.errors import ProviderError

    topic, group = broker.topic(), broker.group()
    push(broker, topic, b"held")
    first = _source(args(broker, topic, group=group), clean_env())
    second = None
    try:
        work = _take(first, 5)
        assert work is not None and work.payload == b"held"
        second = _source(args(broker, topic, group=group), clean_env())
        other = _take(second, 2)  # joining makes the group rebalance; the first member's pump takes part
        wait_for(lambda: first.held.reassigned or first.held.lost, timeout=30)
        if work.lost:
            assert other is not None and other.payload == b"held"
            assert "assigned to another member" in work.lost
            with pytest.raises(ProviderError, match="not committed"):
                first.clear(work)
        else:
            assert other is None
            first.clear(work)
            assert broker.lag(topic, group) == 0
    finally:
        first.close()
        if second is not None:
            second.close()


# -- without a group ----------------------------------------------------------------------------------------
def test_without_a_group_every_run_rereads_partition_0_from_the_start(broker: Broker) -> None:
    """The original's semantics, kept and documented: nothing is committed without a group, so each run starts
    again at the earliest record of partition 0 (other partitions are not read)."""
    topic = broker.topic(partitions=2)
    for partition_key in (b"p0-first", b"p0-second"):
        done = run("pushx", *args(broker, topic, "-kafka-partitioner", "consistent"), input=partition_key)
        assert done.returncode == 0
    records = broker.records(topic, 2)
    first = min((r for r in records if r.partition() == 0), key=lambda r: r.offset(), default=None)
    if first is None:
        pytest.skip("the random partitioner put both records in partition 1")
    for _ in range(2):
        assert run("procx", *args(broker, topic), "-wait-for-work", "0").stdout == first.value()


def test_without_a_group_a_daemon_walks_partition_0(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic()
    push(broker, topic, b"x", b"y")
    out = tmp_path / "out"
    script = "import os, sys; open(sys.argv[1], 'a').write(os.environ['PROCX_PAYLOAD'])"
    done = run("procx", *args(broker, topic, "-daemon", "-until-empty"), sys.executable, "-c", script, str(out))
    assert done.returncode == 0, done.stderr.decode()
    assert out.read_text() == "xy"


# -- pushx extensions ----------------------------------------------------------------------------------------
def test_pushx_key_template_headers_and_binary_value(broker: Broker) -> None:
    topic = broker.topic()
    payload = b'{"id": 42, "blob": "\xff"}'
    push(broker, topic, payload, extra=("-kafka-key", "job-{{id}}", "-kafka-headers", '{"kind":"job","n":1}'))
    [record] = broker.records(topic, 1)
    assert record.value() == payload
    assert record.key() == b"job-42"
    assert dict(record.headers()) == {"kind": b"job", "n": b"1"}


def test_pushx_returns_the_record_position_and_batches(broker: Broker) -> None:
    topic = broker.topic()
    with api.Producer(args(broker, topic), environ=clean_env()) as producer:
        assert producer.push(b"one") == f"{topic}/0/0"
        assert producer.push_many([b"two", b"three"]) == [f"{topic}/0/1", f"{topic}/0/2"]
    assert [r.value() for r in broker.records(topic, 3)] == [b"one", b"two", b"three"]


@pytest.mark.parametrize("partitioner", ["murmur2_random", "fnv1a"])
def test_pushx_partitioner_keeps_a_key_on_one_partition(broker: Broker, partitioner: str) -> None:
    topic = broker.topic(partitions=4)
    pushx_args = args(broker, topic, "-kafka-key", "user-7", "-kafka-partitioner", partitioner)
    with api.Producer(pushx_args, environ=clean_env()) as producer:
        for i in range(4):
            producer.push(f"same-{i}".encode())
    records = broker.records(topic, 4)
    assert sorted(r.value() for r in records) == [f"same-{i}".encode() for i in range(4)]
    assert len({r.partition() for r in records}) == 1


# -- configuration -----------------------------------------------------------------------------------------
def config(side: str, *extra: str):
    _, c = settings.load(side, ["-driver", "kafka", "-kafka-brokers", " b1:9092, b2:9093", "-kafka-topic", "t",
                                *extra], clean_env())
    return c


@pytest.mark.parametrize("sasl_type, mechanism", [("plain", "PLAIN"), ("scram", "SCRAM-SHA-512"),
                                                  ("SCRAM-SHA-256", "SCRAM-SHA-256")])
def test_sasl_maps_to_librdkafka(sasl_type: str, mechanism: str) -> None:
    c = config(PROCX, "-kafka-enable-sasl", "-kafka-sasl-type", sasl_type, "-kafka-sasl-username", "u",
               "-kafka-sasl-password", PASSWORD)
    conf = kafka.consumer_config(c)
    assert conf["bootstrap.servers"] == "b1:9092,b2:9093"
    assert conf["security.protocol"] == "SASL_PLAINTEXT"
    assert (conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (mechanism, "u", PASSWORD)
    assert not any(k.startswith("ssl.") for k in conf)
    from confluent_kafka import Consumer

    Consumer(conf).close()  # librdkafka accepts the settings (it connects only when used)


def test_tls_and_sasl_map_to_librdkafka(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("not read here")
    c = config(PUSHX, "-kafka-enable-tls", "-kafka-tls-ca-file", str(tmp_path / "ca.pem"),
               "-kafka-tls-cert-file", str(tmp_path / "cert.pem"), "-kafka-tls-key-file", str(tmp_path / "key.pem"),
               "-kafka-enable-sasl", "-kafka-sasl-type", "scram", "-kafka-sasl-username", "u",
               "-kafka-sasl-password", PASSWORD)
    conf = kafka.producer_config(c)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert conf["ssl.certificate.location"] == str(tmp_path / "cert.pem")
    assert conf["ssl.key.location"] == str(tmp_path / "key.pem")
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    assert "enable.ssl.certificate.verification" not in conf
    assert conf["acks"] == "all" and conf["partitioner"] == "murmur2_random"


def test_tls_insecure_turns_verification_off() -> None:
    conf = kafka.client_config(config(PROCX, "-kafka-enable-tls", "-kafka-tls-insecure"), PROCX)
    assert conf["security.protocol"] == "SSL"
    assert conf["enable.ssl.certificate.verification"] is False
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    assert kafka.client_config(config(PROCX), PROCX)["security.protocol"] == "PLAINTEXT"


def test_consumer_commits_only_by_hand() -> None:
    conf = kafka.consumer_config(config(PROCX, "-kafka-group", "g", "-kafka-session-timeout", "12s"))
    assert conf["group.id"] == "g"
    assert conf["enable.auto.commit"] is False and conf["enable.auto.offset.store"] is False
    assert conf["auto.offset.reset"] == "earliest"
    assert conf["session.timeout.ms"] == 12000 and conf["heartbeat.interval.ms"] == 4000
    assert conf["max.poll.interval.ms"] == 24000  # short: the consumer is polled all the time (see the long child)


def test_sasl_plain_reaches_the_broker(noida: Broker) -> None:
    """noida answers the SASL PLAIN handshake (it accepts any credentials: this shows the settings reach the wire,
    not that a wrong password is refused)."""
    topic, sasl = noida.topic(), ("-kafka-enable-sasl", "-kafka-sasl-type", "plain", "-kafka-sasl-username", "u",
                                  "-kafka-sasl-password", PASSWORD)
    push(noida, topic, b"over sasl", extra=sasl)
    done = run("procx", *args(noida, topic, *sasl, group=noida.group()))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"over sasl"


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_sasl_password_never_shown(broker: Broker, tool: str) -> None:
    """SCRAM fails on both brokers (Tansu without --authentication refuses SASL, noida speaks no SCRAM): the error
    names the brokers, never the password, even at debug level."""
    topic = broker.topic()
    done = run(tool, *args(broker, topic, "-kafka-enable-sasl", "-kafka-sasl-type", "scram", "-kafka-sasl-username",
                           "u", "-kafka-sasl-password", PASSWORD, "-log-format", "json"),
               *(["-in", "x"] if tool == "pushx" else ["true"]), env=clean_env(LOG_LEVEL="debug"))
    assert done.returncode == 69
    assert broker.bootstrap in done.stderr.decode()
    assert PASSWORD.encode() not in done.stderr + done.stdout


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_brokers_are_one_line_exit_69(tool: str) -> None:
    done = run(tool, "-driver", "kafka", "-kafka-brokers", "127.0.0.1:1,127.0.0.1:2", "-kafka-topic", "t",
               *(["-in", "x"] if tool == "pushx" else ["-kafka-group", "g", "true"]), timeout=kafka.CONNECT_TIMEOUT + 5)
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1, line
    assert "kafka" in line and "127.0.0.1:1, 127.0.0.1:2" in line


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_a_missing_topic_is_named(noida: Broker, tool: str) -> None:
    """Nothing asks for topic auto-creation (as the original pushx). noida honours that; Tansu creates any topic a
    client asks metadata for, so it cannot show this."""
    done = run(tool, *args(noida, "procx-no-such-topic", group=noida.group() if tool == "procx" else None),
               *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 69
    assert f"topic 'procx-no-such-topic' does not exist on {noida.bootstrap}" in done.stderr.decode()


def test_a_session_timeout_the_broker_refuses_is_named(noida: Broker) -> None:
    topic = noida.topic()
    done = run("procx", *args(noida, topic, "-kafka-group", noida.group(), "-kafka-session-timeout", "2s"), "true")
    assert done.returncode == 69
    assert b"-kafka-session-timeout 2s is outside the range the brokers allow" in done.stderr


@pytest.mark.parametrize("argv, message", [
    (["-kafka-topic", "t"], b"-kafka-brokers (PROCX_KAFKA_BROKERS) is required"),
    (["-kafka-brokers", ",", "-kafka-topic", "t"], b"-kafka-brokers is required"),
    (["-kafka-brokers", "localhost", "-kafka-topic", "t"], b"-kafka-brokers: 'localhost' is not host:port"),
    (["-kafka-brokers", "h:1"], b"-kafka-topic (PROCX_KAFKA_TOPIC) is required"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-enable-sasl"], b"-kafka-sasl-type is required"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-enable-sasl", "-kafka-sasl-type", "plain"],
     b"-kafka-sasl-username is required"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-sasl-type", "gssapi"], b"invalid value 'gssapi'"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-sasl-password", PASSWORD],
     b"-kafka-sasl-password has no effect without -kafka-enable-sasl"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-tls-insecure"],
     b"-kafka-tls-insecure has no effect without -kafka-enable-tls"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-enable-tls", "-kafka-tls-ca-file", "/nonexistent/ca"],
     b"-kafka-tls-ca-file: cannot read /nonexistent/ca"),
    (["-kafka-brokers", "h:1", "-kafka-topic", "t", "-kafka-session-timeout", "0"],
     b"-kafka-session-timeout: must be positive"),
])
def test_bad_settings_are_usage_errors(argv: list[str], message: bytes) -> None:
    done = run("procx", "-driver", "kafka", *argv, "true")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert PASSWORD.encode() not in done.stderr


@pytest.mark.parametrize("argv, message", [
    (["-kafka-headers", "[1]"], b"-kafka-headers: must be a JSON object"),
    (["-kafka-headers", "{"], b"-kafka-headers"),
    (["-kafka-partitioner", "roundrobin"], b"invalid value 'roundrobin'"),
])
def test_bad_pushx_settings_are_usage_errors(argv: list[str], message: bytes) -> None:
    done = run("pushx", "-driver", "kafka", "-kafka-brokers", "h:1", "-kafka-topic", "t", *argv, "-in", "x")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
