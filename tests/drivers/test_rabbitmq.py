"""rabbitmq against the real RabbitMQ on 127.0.0.1:5672 (guest/guest): the conformance suite plus the fixes of
the original's bugs (ack after success, nack on failure, no exclusive declare, a working exchange flag).

Backend.pending() is the queue's ready count (a passive declare): AMQP does not report unacked messages. Every
pending() of the suite runs after procx has closed its connection (the broker has then requeued what it held),
except in the kill -9 test, where the broker requeues a moment after it notices the dead socket: that test is
overridden to wait for the message to be ready again.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pika = pytest.importorskip("pika", reason="pip install -e '.[rabbitmq]'")

from core import api  # noqa: E402
from tests.conformance import Backend, Conformance  # noqa: E402
from tests.support import clean_env, command, run, wait_for  # noqa: E402

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def admin():
    try:
        return pika.BlockingConnection(pika.URLParameters(URL))
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ is not reachable on 127.0.0.1:5672 ({exc!r}); start rabbitmq-server")


@pytest.fixture
def broker():
    """An admin connection; queues and exchanges named through `name()` are deleted afterwards."""
    conn = admin()
    made: list[tuple[str, str]] = []

    class Broker:
        channel = conn.channel()

        @staticmethod
        def queue(durable: bool = True, arguments: dict | None = None) -> str:
            name = f"procx-test-{uuid.uuid4().hex[:12]}"
            Broker.channel.queue_declare(name, durable=durable, arguments=arguments)
            made.append(("queue", name))
            return name

        @staticmethod
        def exchange(kind: str = "direct") -> str:
            name = f"procx-test-ex-{uuid.uuid4().hex[:12]}"
            Broker.channel.exchange_declare(name, kind)
            made.append(("exchange", name))
            return name

        @staticmethod
        def count(queue: str) -> int:
            return Broker.channel.queue_declare(queue, passive=True).method.message_count

        @staticmethod
        def consumers(queue: str) -> int:
            return Broker.channel.queue_declare(queue, passive=True).method.consumer_count

        @staticmethod
        def take(queue: str):
            method, props, body = Broker.channel.basic_get(queue, auto_ack=True)
            return (props, body) if method else (None, None)

    yield Broker
    channel = conn.channel()
    for kind, name in made:
        if kind == "queue":
            channel.queue_delete(name)
        else:
            channel.exchange_delete(name)
    conn.close()


class RabbitBackend(Backend):
    driver = "rabbitmq"
    redelivery_wait = 1.0  # nack and a dropped connection requeue at once

    def __init__(self, broker, queue: str) -> None:
        self.broker = broker
        self.queue = queue

    def common_args(self) -> list[str]:
        return ["-driver", "rabbitmq", "-rabbitmq-url", URL, "-rabbitmq-queue", self.queue]

    def pending(self) -> int:
        return self.broker.count(self.queue)


class TestRabbitmqConformance(Conformance):
    @pytest.fixture
    def backend(self, broker) -> RabbitBackend:
        return RabbitBackend(broker, broker.queue())


def args(queue: str, *extra: str, url: str = URL) -> list[str]:
    return ["-driver", "rabbitmq", "-rabbitmq-url", url, "-rabbitmq-queue", queue, *extra]


# -- the original's bugs -------------------------------------------------------------------------------------
def test_durable_and_quorum_queues_work_and_failures_count_attempts(broker) -> None:
    """The original's exclusive non-durable declare failed on these queues (procx.md §7.4 #29)."""
    quorum = broker.queue(arguments={"x-queue-type": "quorum"})
    api.pushx(b"q", args(quorum))
    done = run("procx", *args(quorum), "false")
    assert done.returncode == 1
    assert broker.count(quorum) == 1
    with api.work(args(quorum)) as work:
        assert work.payload == b"q"
        assert work.attempt == 2  # from the quorum queue's x-delivery-count
    assert broker.count(quorum) == 0


def test_a_held_message_is_not_given_to_a_second_consumer(broker) -> None:
    queue = broker.queue()
    api.pushx(b"only", args(queue))
    with api.work(args(queue)) as first:
        assert first.payload == b"only"
        assert api.procx(args(queue)) is None  # unacked on the first connection, not offered again
    assert broker.count(queue) == 0  # acked when the block ended


def test_failed_message_is_dead_lettered_without_requeue(broker) -> None:
    dlq = broker.queue()
    queue = broker.queue(arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    api.pushx(b"poison", args(queue))
    done = run("procx", *args(queue, "-rabbitmq-fail-requeue=false"), "false")
    assert done.returncode == 1
    assert broker.count(queue) == 0
    props, body = broker.take(dlq)
    assert body == b"poison"
    assert props.headers["x-death"][0]["reason"] == "rejected"


@pytest.mark.slow
def test_long_child_keeps_its_connection_through_heartbeats(broker) -> None:
    """The child outlives several heartbeat timeouts: procx answers heartbeats meanwhile, so the ack works."""
    queue = broker.queue()
    api.pushx(b"long", args(queue))
    done = run("procx", *args(queue, "-rabbitmq-heartbeat", "1s"), sys.executable, "-c", "import time; time.sleep(4)")
    assert done.returncode == 0, done.stderr.decode()
    assert broker.count(queue) == 0


def test_get_waits_server_side_for_a_message(broker) -> None:
    queue = broker.queue()
    proc = subprocess.Popen([command("procx"), *args(queue)],
                            stdout=subprocess.PIPE, env=clean_env())
    try:
        wait_for(lambda: broker.consumers(queue) == 1, timeout=15)
        api.pushx(b"late", args(queue))
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert out == b"late"
    assert broker.count(queue) == 0


def test_no_wait_returns_at_once(broker) -> None:
    queue = broker.queue()
    started = time.monotonic()
    done = run("procx", *args(queue, "-wait-for-work", "0"), "false")
    assert done.returncode == 0
    assert time.monotonic() - started < 5


# -- pushx ---------------------------------------------------------------------------------------------------
def test_pushx_publishes_persistent_messages_with_an_id(broker) -> None:
    queue = broker.queue()
    ident = api.pushx(b"\x00bytes\xff", args(queue))
    props, body = broker.take(queue)
    assert body == b"\x00bytes\xff"
    assert props.delivery_mode == 2
    assert props.message_id == ident
    assert props.content_type == "text/plain"  # as the original


def test_pushx_exchange_flag_routes_through_the_exchange(broker) -> None:
    """-rabbitmq-exchange is inert in the original (pushx.md §4.21); here it publishes to that exchange with the
    queue name (or -rabbitmq-routing-key) as routing key."""
    exchange = broker.exchange("direct")
    queue = broker.queue()
    broker.channel.queue_bind(queue, exchange, routing_key="jobs.key")
    done = run("pushx", "-driver", "rabbitmq", "-rabbitmq-url", URL, "-rabbitmq-exchange", exchange,
               "-rabbitmq-queue", "jobs.key", "-in", "via-exchange")
    assert done.returncode == 0, done.stderr.decode()
    done = run("pushx", "-driver", "rabbitmq", "-rabbitmq-url", URL, "-rabbitmq-exchange", exchange,
               "-rabbitmq-routing-key", "jobs.key", "-in", "via-key")
    assert done.returncode == 0, done.stderr.decode()
    assert [broker.take(queue)[1] for _ in range(2)] == [b"via-exchange", b"via-key"]


def test_pushx_unroutable_message_is_an_error_and_out_gets_nothing(broker, tmp_path: Path) -> None:
    exchange = broker.exchange("direct")
    out = tmp_path / "out"
    done = run("pushx", "-driver", "rabbitmq", "-rabbitmq-url", URL, "-rabbitmq-exchange", exchange,
               "-rabbitmq-queue", "nobody-bound", "-in", "x", "-out", str(out))
    assert done.returncode == 69
    assert b"no queue is bound" in done.stderr
    assert not out.exists()


def test_declare_durable_creates_a_missing_queue(broker) -> None:
    queue = f"procx-test-{uuid.uuid4().hex[:12]}"
    try:
        api.pushx(b"new", args(queue, "-rabbitmq-declare", "durable"))
        assert broker.count(queue) == 1
        assert api.procx(args(queue)) == b"new"  # passive procx on the now existing durable queue
    finally:
        broker.channel.queue_delete(queue)


def test_declare_durable_on_an_incompatible_queue_is_a_clear_error(broker) -> None:
    quorum = broker.queue(arguments={"x-queue-type": "quorum"})
    done = run("pushx", *args(quorum, "-rabbitmq-declare", "durable"), "-in", "x")
    assert done.returncode == 69
    assert b"exists with other settings" in done.stderr
    assert broker.count(quorum) == 0


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_missing_queue_is_a_clear_error(tool: str) -> None:
    queue = f"procx-test-missing-{uuid.uuid4().hex[:8]}"
    done = run(tool, *args(queue), *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1
    assert f"queue {queue!r} does not exist" in line
    assert "127.0.0.1:5672" in line


def test_pushx_missing_exchange_is_a_clear_error() -> None:
    done = run("pushx", "-driver", "rabbitmq", "-rabbitmq-url", URL, "-rabbitmq-exchange", "no-such-exchange-x",
               "-rabbitmq-queue", "k", "-in", "x")
    assert done.returncode == 69
    assert b"exchange 'no-such-exchange-x' does not exist" in done.stderr


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_port_is_one_line_naming_driver_host_and_port(tool: str) -> None:
    done = run(tool, *args("q", url="amqp://guest:s3cret@127.0.0.1:1/%2F"),
               *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1, line
    assert "rabbitmq" in line and "127.0.0.1:1" in line
    assert "s3cret" not in line


def test_wrong_password_consumes_nothing(broker) -> None:
    queue = broker.queue()
    api.pushx(b"keep", args(queue))
    done = run("procx", *args(queue, url="amqp://guest:wrong-pass@127.0.0.1:5672/%2F"), "true")
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert "login refused for user 'guest'" in line
    assert "wrong-pass" not in line
    assert broker.count(queue) == 1


@pytest.mark.parametrize("argv, message", [
    (["-rabbitmq-url", URL], b"-rabbitmq-queue is required"),
    (["-rabbitmq-url", "http://x", "-rabbitmq-queue", "q"], b"must start with amqp://"),
    (["-rabbitmq-queue", "q"], b"-rabbitmq-url (PROCX_RABBITMQ_URL) is required"),
    (["-rabbitmq-url", URL, "-rabbitmq-queue", "q", "-rabbitmq-declare", "exclusive"], b"invalid value"),
])
def test_bad_settings_are_usage_errors(argv: list[str], message: bytes) -> None:
    done = run("procx", "-driver", "rabbitmq", *argv, "true")
    assert done.returncode == 2
    assert message in done.stderr


# -- queue depth (procx-tui depth / check; the number KEDA's rabbitmq scaler reads in QueueLength mode) ------
def test_depth_is_the_ready_count_without_unacked_deliveries(broker) -> None:
    queue = broker.queue()
    for i in range(4):
        api.pushx(f"job-{i}".encode(), args(queue))
    from core.api import _source, _take

    source = _source(args(queue), clean_env())
    try:
        assert source.depth() == 4 == broker.count(queue)
        work = _take(source, 0)
        assert work is not None
        assert source.depth() == 3 == broker.count(queue)  # the unacked delivery is not ready
        source.fail(work)  # requeued: ready again
        assert wait_for(lambda: source.depth() == 4, timeout=10)
        for _ in range(4):
            taken = _take(source, 0)
            assert taken is not None
            source.clear(taken)
        assert source.depth() == 0 == broker.count(queue)
    finally:
        source.close()
