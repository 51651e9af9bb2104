"""activemq: the conformance suite on a queue, topics, fail modes, ERROR frames, credentials and TLS, against a
real ActiveMQ started by tests/drivers/conftest.py."""

from __future__ import annotations

import queue
import subprocess
import time

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.drivers.conftest import ActiveMQ
from tests.support import clean_env, command, run


def browse(server: ActiveMQ, destination: str) -> list:
    """The messages a queue holds, including those delivered but not acknowledged (a STOMP queue browser)."""
    import stomp

    frames: queue.Queue = queue.Queue()
    listener = stomp.ConnectionListener()
    listener.on_message = frames.put
    listener.on_error = frames.put
    conn = stomp.Connection12([(server.host, server.port)], auto_decode=False, prefer_localhost=False,
                              try_loopback_connect=False)
    conn.set_listener("browse", listener)
    conn.connect(server.user, server.password, wait=True)
    try:
        conn.subscribe(destination, id="browse", ack="auto", headers={"browser": "true"})
        found = []
        while True:
            frame = frames.get(timeout=10)
            if frame.cmd == "ERROR":
                raise AssertionError(frame.headers.get("message"))
            if frame.headers.get("browser") == "end":
                return found
            found.append(frame)
    finally:
        conn.disconnect()


class ActiveMQBackend(Backend):
    driver = "activemq"
    redelivery_wait = 1.0  # the broker redelivers as soon as the connection is gone

    def __init__(self, server: ActiveMQ, name: str) -> None:
        self.server, self.name = server, name

    def common_args(self) -> list[str]:
        return ["-driver", "activemq", "-activemq-address", self.server.address]

    def push_args(self, n: int) -> list[str]:
        return ["-activemq-name", f"/queue/{self.name}"]

    def procx_args(self) -> list[str]:
        return ["-activemq-type", "queue", "-activemq-name", self.name]

    def pending(self) -> int:
        return len(browse(self.server, f"/queue/{self.name}"))


class TestActiveMQConformance(Conformance):
    @pytest.fixture
    def backend(self, activemq: ActiveMQ, unique: str) -> ActiveMQBackend:
        return ActiveMQBackend(activemq, f"procx.conf-{unique}")


def base(server: ActiveMQ, *extra: str) -> list[str]:
    return ["-driver", "activemq", "-activemq-address", server.address, *extra]


def on_queue(server: ActiveMQ, name: str, *extra: str) -> list[str]:
    return base(server, "-activemq-type", "queue", "-activemq-name", name, *extra)


def test_a_requeued_message_comes_back_marked_as_redelivered(activemq: ActiveMQ, unique: str) -> None:
    name = f"procx.requeue-{unique}"
    api.pushx(b"job", base(activemq, "-activemq-name", f"/queue/{name}"))
    with pytest.raises(RuntimeError), api.work(on_queue(activemq, name)) as work:
        assert work.attempt == 1
        raise RuntimeError
    with api.work(on_queue(activemq, name)) as work:
        assert (work.payload, work.attempt) == (b"job", 2)
    assert browse(activemq, f"/queue/{name}") == []


def test_one_subscription_serves_every_message(activemq: ActiveMQ, unique: str) -> None:
    """The original subscribed again on every daemon iteration; here a source subscribes once."""
    name = f"procx.once-{unique}"
    with api.Producer(base(activemq, "-activemq-name", f"/queue/{name}")) as producer:
        producer.push_many([f"s{i}" for i in range(5)])
    subscriptions, seen = set(), []
    for work in api.consume(on_queue(activemq, name)):
        subscriptions.add(work.handle[1])
        seen.append(work.payload)
        work.clear()
    assert seen == [f"s{i}".encode() for i in range(5)]
    assert len(subscriptions) == 1


def test_one_connection_takes_many_messages(activemq: ActiveMQ, unique: str) -> None:
    name = f"procx.many-{unique}"
    with api.Producer(base(activemq, "-activemq-name", f"/queue/{name}")) as producer:
        producer.push_many([f"m{i}" for i in range(10)])
    seen = []
    for work in api.consume(on_queue(activemq, name)):
        seen.append(work.payload)
        work.clear() if len(seen) % 3 else work.fail()  # every third fails and comes back later
    assert sorted(set(seen)) == sorted(f"m{i}".encode() for i in range(10))
    assert browse(activemq, f"/queue/{name}") == []


def test_fail_mode_nack_dead_letters_as_the_original(activemq: ActiveMQ, unique: str) -> None:
    name = f"procx.nack-{unique}"
    api.pushx(b"poison", base(activemq, "-activemq-name", f"/queue/{name}"))
    done = run("procx", *on_queue(activemq, name, "-activemq-fail-mode", "nack"), "false")
    assert done.returncode == 1
    assert browse(activemq, f"/queue/{name}") == []
    dead = [f for f in browse(activemq, "/queue/ActiveMQ.DLQ") if f.headers.get("original-destination")
            == f"/queue/{name}"]
    assert [f.body for f in dead] == [b"poison"]


def test_pushx_sends_persistent_messages_to_queues(activemq: ActiveMQ, unique: str) -> None:
    name = f"procx.persist-{unique}"
    api.pushx(b"x", base(activemq, "-activemq-name", f"/queue/{name}"))
    [frame] = browse(activemq, f"/queue/{name}")
    assert frame.headers["persistent"] == "true"
    assert frame.body == b"x"
    api.procx(on_queue(activemq, name))


def test_topic_delivers_messages_sent_while_subscribed(activemq: ActiveMQ, unique: str) -> None:
    name = f"procx.topic-{unique}"
    proc = subprocess.Popen([command("procx"), *base(activemq, "-activemq-type", "topic", "-activemq-name", name,
                                                     "-wait-for-work", "20s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:  # a topic keeps only what subscribers get
            api.pushx(b"news", base(activemq, "-activemq-name", f"/topic/{name}"))
            time.sleep(0.1)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == b"news"


def test_wait_for_work_bounds_the_wait_on_an_empty_queue(activemq: ActiveMQ, unique: str) -> None:
    started = time.monotonic()
    done = run("procx", *on_queue(activemq, f"procx.empty-{unique}", "-wait-for-work", "0.5s"), "false")
    assert (done.returncode, done.stdout) == (0, b"")
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------------------- errors, auth
def test_error_frame_on_subscribe_is_an_error_not_no_work(activemq: ActiveMQ) -> None:
    done = run("procx", *on_queue(activemq, "secret.jobs"), "true")
    assert done.returncode == 69
    assert done.stderr == (b"procx: driver activemq: cannot subscribe to /queue/secret.jobs: "
                           b"User anonymous is not authorized to read from: queue://secret.jobs\n")


def test_error_frame_on_send_fails_the_push(activemq: ActiveMQ) -> None:
    done = run("pushx", *base(activemq, "-activemq-name", "/queue/secret.jobs"), "-out", "-", "-in", "x")
    assert done.returncode == 69
    assert b"not authorized to write to: queue://secret.jobs" in done.stderr
    assert done.stdout == b""  # not passed on: the broker does not have it


def test_credentials_reach_protected_queues(activemq: ActiveMQ, unique: str) -> None:
    creds = ("-activemq-username", activemq.user, "-activemq-password", activemq.password)
    name = f"secret.{unique}"
    assert run("pushx", *base(activemq, "-activemq-name", f"/queue/{name}", *creds), "-in", "s").returncode == 0
    done = run("procx", *on_queue(activemq, name, *creds))
    assert (done.returncode, done.stdout) == (0, b"s")


def test_wrong_password_is_refused_without_showing_it(activemq: ActiveMQ) -> None:
    done = run("procx", *on_queue(activemq, "procx.x", "-activemq-username", activemq.user,
                                  "-activemq-password", "Wr0ng-Pa55"))
    assert done.returncode == 69
    assert f"{activemq.address} refused the connection: User name [procx] or password is invalid".encode() \
        in done.stderr
    assert b"Wr0ng-Pa55" not in done.stderr


def test_unreachable_broker_names_host_and_port() -> None:
    done = run("pushx", "-driver", "activemq", "-activemq-address", "127.0.0.1:1", "-activemq-name", "/queue/x",
               "-in", "x")
    assert done.returncode == 69
    assert done.stderr == b"pushx: driver activemq: cannot reach 127.0.0.1:1: connection refused\n"


@pytest.mark.parametrize(("tool", "extra", "message"), [
    ("procx", ("-activemq-type", "queue", "-activemq-name", "q"), b"-activemq-address is required"),
    ("procx", ("-activemq-address", "localhost", "-activemq-type", "queue", "-activemq-name", "q"),
     b"-activemq-address: expected host:port"),
    ("procx", ("-activemq-address", "h:1", "-activemq-name", "q"), b"-activemq-type (PROCX_ACTIVEMQ_TYPE) is required"),
    ("procx", ("-activemq-address", "h:1", "-activemq-type", "box", "-activemq-name", "q"), b"-activemq-type"),
    ("procx", ("-activemq-address", "h:1", "-activemq-type", "queue", "-activemq-name", "q", "-activemq-tls-insecure"),
     b"-activemq-tls-insecure has no effect without -activemq-enable-tls"),
    ("pushx", ("-activemq-address", "h:1"), b"-activemq-name is required"),
    ("pushx", ("-activemq-address", "h:1", "-activemq-name", "/queue/q", "-activemq-password", "p"),
     b"-activemq-password needs -activemq-username"),
])
def test_bad_settings_are_usage_errors(tool: str, extra: tuple[str, ...], message: bytes) -> None:
    tail = ("-in", "x") if tool == "pushx" else ()
    done = run(tool, "-driver", "activemq", *extra, *tail)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


# ---------------------------------------------------------------------------------------------- TLS
def tls(server: ActiveMQ, *extra: str) -> list[str]:
    return ["-driver", "activemq", "-activemq-address", server.tls_address, "-activemq-enable-tls", *extra]


def test_tls_with_the_brokers_ca(activemq: ActiveMQ, tls_cert, unique: str) -> None:
    name = f"procx.tls-{unique}"
    opts = tls(activemq, "-activemq-tls-ca-file", str(tls_cert.cert))
    assert run("pushx", *opts, "-activemq-name", f"/queue/{name}", "-in", "secure").returncode == 0
    done = run("procx", *opts, "-activemq-type", "queue", "-activemq-name", name)
    assert (done.returncode, done.stdout) == (0, b"secure")


def test_tls_untrusted_certificate_fails_and_insecure_skips_the_check(activemq: ActiveMQ, tls_cert,
                                                                      unique: str) -> None:
    name = f"procx.tlsi-{unique}"
    done = run("pushx", *tls(activemq, "-activemq-tls-ca-file", str(tls_cert.other_ca), "-activemq-name",
                             f"/queue/{name}"), "-in", "x")
    assert done.returncode == 69
    assert f"cannot reach {activemq.tls_address}: certificate verify failed".encode() in done.stderr
    done = run("pushx", *tls(activemq, "-activemq-tls-insecure", "-activemq-name", f"/queue/{name}"), "-in", "x")
    assert done.returncode == 0, done.stderr
    assert len(browse(activemq, f"/queue/{name}")) == 1
    api.procx(on_queue(activemq, name))


def test_unreadable_tls_file_is_a_usage_error(activemq: ActiveMQ, tmp_path) -> None:
    done = run("pushx", *tls(activemq, "-activemq-tls-ca-file", str(tmp_path / "nope.pem"), "-activemq-name",
                             "/queue/procx.x"), "-in", "x")
    assert done.returncode == 2
    assert b"-activemq-enable-tls: cannot load the TLS files" in done.stderr
