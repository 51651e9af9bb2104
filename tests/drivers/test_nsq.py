"""nsq against the FAKE nsqd/nsqlookupd of tests/drivers/nsq_fake.py (no real nsqd can be installed here).

The conformance suite runs through the fake, including kill -9 between get and clear (the fake requeues the
in-flight message when the connection drops, as nsqd does); then the driver's own behaviour: FIN after success,
REQ (with a delay) after failure, TOUCH while the child runs, heartbeats answered, attempts, nsqlookupd, MPUB,
TLS, and the usage/connection errors.
"""

from __future__ import annotations

import contextlib
import ssl
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from core import api
from drivers import nsq_wire as wire
from tests.conformance import NO_WAIT, Backend, Conformance
from tests.drivers.conftest import Cert, free_port
from tests.drivers.nsq_fake import FakeNsqd
from tests.support import clean_env, command, run, wait_for

CHANNEL = "work"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNsqd]:
    server = FakeNsqd()
    yield server
    server.stop()


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def args(server: FakeNsqd, topic: str, *extra: str, channel: str | None = CHANNEL) -> list[str]:
    out = ["-driver", "nsq", "-nsq-nsqd-address", server.address, "-nsq-topic", topic]
    return out + (["-nsq-channel", channel] if channel else []) + list(extra)


def settled(server: FakeNsqd, topic: str) -> int:
    """The channel's pending count once the fake has seen the last procx disconnect (FIN/REQ come before the
    close on the same connection); a still-connected consumer (a running daemon) is not waited for long."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: server.subscribers(topic, CHANNEL) == 0, timeout=1.0)
    return server.pending(topic, CHANNEL)


class NsqBackend(Backend):
    driver = "nsq"
    supports_empty = False  # nsqd refuses an empty message (E_BAD_MESSAGE)
    redelivery_wait = 1.0  # REQ and a dropped connection requeue at once

    def __init__(self, server: FakeNsqd, topic: str) -> None:
        self.server = server
        self.topic = topic

    def common_args(self) -> list[str]:
        return ["-driver", "nsq", "-nsq-nsqd-address", self.server.address, "-nsq-topic", self.topic]

    def procx_args(self) -> list[str]:
        return ["-nsq-channel", CHANNEL]

    def pending(self) -> int:
        return settled(self.server, self.topic)


class TestNsqConformanceOnFake(Conformance):
    @pytest.fixture
    def backend(self, fake: FakeNsqd, topic: str) -> NsqBackend:
        return NsqBackend(fake, topic)


# -- delivery ----------------------------------------------------------------------------------------------
def test_fake_fin_after_success_req_after_failure_and_attempts(fake: FakeNsqd, topic: str, tmp_path) -> None:
    api.pushx(b"job", args(fake, topic, channel=None))
    out = tmp_path / "attempt"
    script = f"import os, sys; open({str(out)!r}, 'w').write(os.environ.get('PROCX_ATTEMPT', '')); sys.exit(3)"
    done = run("procx", *args(fake, topic), sys.executable, "-c", script)
    assert done.returncode == 3
    assert out.read_text() == "1"
    assert settled(fake, topic) == 1
    with api.work(args(fake, topic)) as work:
        assert work.payload == b"job"
        assert work.attempt == 2  # nsqd's delivery count
        assert len(work.id) == 16
    assert settled(fake, topic) == 0
    assert any(c.startswith(b"REQ ") for c in fake.commands)
    assert any(c.startswith(b"FIN ") for c in fake.commands)


def test_fake_one_message_in_flight_and_no_prefetch(fake: FakeNsqd, topic: str) -> None:
    """RDY 1 while waiting, RDY 0 once a message came: a second message is not taken while one is held."""
    for body in (b"a", b"b"):
        api.pushx(body, args(fake, topic, channel=None))
    with api.work(args(fake, topic)) as work:
        assert work.payload == b"a"
        assert fake.in_flight(topic, CHANNEL) == 1
        with api.work(args(fake, topic)) as other:  # a second consumer gets the other one
            assert other.payload == b"b"
    assert settled(fake, topic) == 0


def test_fake_requeue_delay(fake: FakeNsqd, topic: str) -> None:
    api.pushx(b"later", args(fake, topic, channel=None))
    done = run("procx", *args(fake, topic, "-nsq-requeue-delay", "3s"), "false")
    assert done.returncode == 1
    assert settled(fake, topic) == 1
    assert fake.queued(topic) == []  # deferred by nsqd, not offered yet
    assert any(c.startswith(b"REQ ") and c.endswith(b" 3000") for c in fake.commands)
    assert run("procx", *args(fake, topic), "-wait-for-work", "10s").stdout == b"later"


@pytest.mark.slow
def test_fake_touch_keeps_a_long_job_and_heartbeats_are_answered(topic: str) -> None:
    """msg_timeout 1.5s and heartbeats every 0.5s: a 3.5 s child keeps its message (TOUCH) and its connection
    (NOP answers)."""
    server = FakeNsqd(msg_timeout=1.5, heartbeat=0.5)
    try:
        api.pushx(b"long", args(server, topic, channel=None))
        done = run("procx", *args(server, topic), sys.executable, "-c", "import time; time.sleep(3.5)")
        assert done.returncode == 0, done.stderr.decode()
        assert settled(server, topic) == 0
        assert [c for c in server.commands if c.startswith(b"FIN ")]  # FIN on the same, still open connection
        assert any(c.startswith(b"TOUCH ") for c in server.commands)
        assert b"NOP" in server.commands
    finally:
        server.stop()


@pytest.mark.parametrize(("lose", "reason"), [("kick", "connection to nsqd"), ("expire", "E_TOUCH_FAILED")])
def test_fake_a_lost_lease_stops_the_child_and_the_message_comes_back_once(topic: str, tmp_path, lose: str,
                                                                           reason: str) -> None:
    """The connection drops (nsqd requeues what was in flight on it) or the message times out (the next TOUCH gets
    E_TOUCH_FAILED): procx stops the child and sends no REQ; the message is delivered once more."""
    import json

    server = FakeNsqd(msg_timeout=1.0)  # TOUCH every 0.5 s
    try:
        api.pushx(b"long job", args(server, topic, channel=None))
        started = tmp_path / "started"
        child = [sys.executable, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"]
        with open(tmp_path / "err", "wb") as err:
            proc = subprocess.Popen([command("procx"), *args(server, topic, "-log-format", "json"), *child],
                                    stderr=err, env=clean_env())
        try:
            wait_for(started.exists, timeout=15)
            if lose == "kick":
                server.kick()
            else:
                server.expire(topic, CHANNEL)
            assert proc.wait(timeout=15) == 143  # the child got SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
        found = [json.loads(line) for line in (tmp_path / "err").read_text().splitlines() if line.startswith("{")]
        found = [e for e in found if e["event"] in ("lease-lost", "failed", "cleared", "error")]
        assert [e["event"] for e in found] == ["lease-lost", "failed"]
        assert reason in found[0]["reason"]
        assert not [c for c in server.commands if c.startswith(b"REQ ")]
        with api.work(args(server, topic)) as work:
            assert (work.payload, work.attempt) == (b"long job", 2)
        assert settled(server, topic) == 0
    finally:
        server.stop()


def test_fake_in_flight_timeout_requeues_without_touch(topic: str) -> None:
    """The fake itself: a message nobody touches comes back after msg_timeout with its attempts counted."""
    server = FakeNsqd(msg_timeout=0.3)
    try:
        api.pushx(b"x", args(server, topic, channel=None))
        conn = wire.Connection("127.0.0.1", server.port, identify={})
        got: list[wire.Message] = []
        conn.on_message = lambda c, m: got.append(m)
        conn.connect()
        conn.call(b"SUB", topic.encode(), CHANNEL.encode())
        conn.send(b"RDY", b"1")
        wait_for(lambda: len(got) == 2, timeout=5)
        assert [m.attempts for m in got] == [1, 2]
        conn.send(b"FIN", got[1].id)
        conn.close()
        assert settled(server, topic) == 0
    finally:
        server.stop()


def test_fake_daemon_keeps_one_subscription(fake: FakeNsqd, topic: str) -> None:
    """The original registered a handler again on the second daemon iteration and panicked."""
    for n in range(3):
        api.pushx(f"m{n}".encode(), args(fake, topic, channel=None))
    proc = subprocess.Popen([command("procx"), *args(fake, topic, "-daemon", "-until-empty"), "true"],
                            env=clean_env(), stderr=subprocess.PIPE)
    try:
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert settled(fake, topic) == 0
    subs = [c for c in fake.commands if c.startswith(b"SUB " + topic.encode())]
    assert len(subs) == 1


@pytest.mark.slow
def test_fake_daemon_reconnects_after_losing_nsqd(fake: FakeNsqd, topic: str, tmp_path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    script = "import sys, uuid; open(sys.argv[1] + '/' + uuid.uuid4().hex, 'wb').write(sys.stdin.buffer.read())"
    proc = subprocess.Popen([command("procx"), *args(fake, topic, "-daemon", "-pass-work-as-stdin"),
                             sys.executable, "-c", script, str(results)], env=clean_env())
    try:
        api.pushx(b"before", args(fake, topic, channel=None))
        wait_for(lambda: len(list(results.iterdir())) == 1 and fake.pending(topic, CHANNEL) == 0, timeout=15)
        fake.kick()  # after the FIN: a kick before it would (rightly) bring "before" back
        api.pushx(b"after", args(fake, topic, channel=None))
        wait_for(lambda: len(list(results.iterdir())) == 2 and fake.pending(topic, CHANNEL) == 0, timeout=20)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert sorted(p.read_bytes() for p in results.iterdir()) == [b"after", b"before"]
    assert settled(fake, topic) == 0


# -- nsqlookupd ------------------------------------------------------------------------------------------------
def test_fake_procx_finds_nsqd_through_lookupd(fake: FakeNsqd, topic: str) -> None:
    api.pushx(b"via lookupd", args(fake, topic, channel=None))
    done = run("procx", "-driver", "nsq", "-nsq-nsqlookupd-address", fake.lookupd_address, "-nsq-topic", topic,
               "-nsq-channel", CHANNEL)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"via lookupd"


def test_fake_lookupd_unknown_topic_is_no_work(fake: FakeNsqd, topic: str) -> None:
    done = run("procx", "-driver", "nsq", "-nsq-nsqlookupd-address", fake.lookupd_address, "-nsq-topic", topic,
               "-nsq-channel", CHANNEL, *NO_WAIT, "false")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


def test_fake_pushx_lookupd_url_and_the_originals_nsqd_address_in_the_lookupd_flag(fake: FakeNsqd, topic: str
                                                                                  ) -> None:
    base = ["-driver", "nsq", "-nsq-topic", topic]
    done = run("pushx", *base, "-nsq-nsqlookupd-address", f"http://{fake.lookupd_address}", "-in", "one")
    assert done.returncode == 0, done.stderr.decode()
    done = run("pushx", *base, "-nsq-nsqlookupd-address", fake.address, "-in", "two")  # what the original needed
    assert done.returncode == 0, done.stderr.decode()
    done = run("pushx", *base, "-nsq-nsqlookupd-address", fake.lookupd_address, "-in", "three")  # README's example
    assert done.returncode == 0, done.stderr.decode()
    assert fake.queued(topic) == [b"one", b"two", b"three"]


def test_fake_nsqd_address_that_answers_in_http(fake: FakeNsqd, topic: str) -> None:
    for tool, extra in (("procx", ["-nsq-channel", CHANNEL]), ("pushx", ["-in", "x"])):
        done = run(tool, "-driver", "nsq", "-nsq-nsqd-address", fake.lookupd_address, "-nsq-topic", topic, *extra)
        assert done.returncode == 69
        assert f"{fake.lookupd_address} answered in HTTP: give nsqd's TCP address" in done.stderr.decode()


def test_fake_mpub_for_several_payloads(fake: FakeNsqd, topic: str) -> None:
    with api.Producer(args(fake, topic, channel=None)) as producer:
        producer.push_many([b"x", b"z", bytes(range(256))])
    assert fake.queued(topic) == [b"x", b"z", bytes(range(256))]
    assert any(c.startswith(b"MPUB ") for c in fake.commands)


# -- TLS -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_fake(tls_cert: Cert) -> Iterator[FakeNsqd]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_cert.cert, tls_cert.key)
    server = FakeNsqd(tls=ctx)
    yield server
    server.stop()


def test_fake_tls_upgrade_after_identify(tls_fake: FakeNsqd, tls_cert: Cert, topic: str) -> None:
    tls = ["-nsq-enable-tls", "-nsq-tls-ca-file", str(tls_cert.cert)]
    done = run("pushx", *args(tls_fake, topic, *tls, channel=None), "-in", "secure")
    assert done.returncode == 0, done.stderr.decode()
    done = run("procx", *args(tls_fake, topic, *tls))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"secure"
    assert tls_fake.identifies[-1]["tls_v1"] is True


def test_fake_tls_untrusted_certificate_and_skip_verify(tls_fake: FakeNsqd, tls_cert: Cert, topic: str) -> None:
    other = ["-nsq-enable-tls", "-nsq-tls-ca-file", str(tls_cert.other_ca)]
    done = run("pushx", *args(tls_fake, topic, *other, channel=None), "-in", "x")
    assert done.returncode == 69
    assert f"nsqd {tls_fake.address}" in done.stderr.decode()
    assert "certificate verify failed" in done.stderr.decode()
    env = clean_env(PUSHX_NSQ_TLS_INSECURE="true")  # the original's variable name
    done = run("pushx", *args(tls_fake, topic, *other, channel=None), "-in", "x", env=env)
    assert done.returncode == 0, done.stderr.decode()


def test_fake_tls_asked_but_not_offered(fake: FakeNsqd, topic: str) -> None:
    done = run("pushx", *args(fake, topic, "-nsq-enable-tls", channel=None), "-in", "x")
    assert done.returncode == 69
    assert "does not offer TLS" in done.stderr.decode()


# -- errors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "flag"), [
    (["-nsq-nsqd-address", "127.0.0.1:4150", "-nsq-channel", "c"], "-nsq-topic"),
    (["-nsq-nsqd-address", "127.0.0.1:4150", "-nsq-topic", "t"], "-nsq-channel"),
    (["-nsq-topic", "t", "-nsq-channel", "c"], "-nsq-nsqlookupd-address or -nsq-nsqd-address"),
    (["-nsq-nsqd-address", "127.0.0.1:4150", "-nsq-topic", "bad topic!", "-nsq-channel", "c"], "-nsq-topic"),
    (["-nsq-nsqd-address", "127.0.0.1:x", "-nsq-topic", "t", "-nsq-channel", "c"], "-nsq-nsqd-address"),
    (["-nsq-nsqd-address", "h:1", "-nsq-topic", "t", "-nsq-channel", "c", "-nsq-tls-ca-file", "/x"],
     "-nsq-tls-ca-file"),
    (["-nsq-nsqd-address", "h:1", "-nsq-topic", "t", "-nsq-channel", "c", "-nsq-requeue-delay", "2h"],
     "-nsq-requeue-delay"),
])
def test_usage_errors_exit_2_naming_the_flag(extra: list[str], flag: str) -> None:
    done = run("procx", "-driver", "nsq", *extra, "true")
    assert done.returncode == 2, done.stderr.decode()
    assert flag in done.stderr.decode()


def test_unreachable_nsqd_and_lookupd_exit_69() -> None:
    port = free_port()
    done = run("procx", "-driver", "nsq", "-nsq-nsqd-address", f"127.0.0.1:{port}", "-nsq-topic", "t",
               "-nsq-channel", "c")
    assert done.returncode == 69
    assert f"nsqd 127.0.0.1:{port}" in done.stderr.decode()
    done = run("procx", "-driver", "nsq", "-nsq-nsqlookupd-address", f"127.0.0.1:{port}", "-nsq-topic", "t",
               "-nsq-channel", "c")
    assert done.returncode == 69
    assert f"nsqlookupd 127.0.0.1:{port}" in done.stderr.decode()
    done = run("pushx", "-driver", "nsq", "-nsq-nsqd-address", f"127.0.0.1:{port}", "-nsq-topic", "t", "-in", "x")
    assert done.returncode == 69
    assert f"127.0.0.1:{port}" in done.stderr.decode()


def test_fake_empty_payload_is_refused_by_nsqd(fake: FakeNsqd, topic: str) -> None:
    done = run("pushx", *args(fake, topic, channel=None), input=b"")
    assert done.returncode == 69
    assert "E_BAD_MESSAGE" in done.stderr.decode()
    assert fake.queued(topic) == []


# -- the wire format ----------------------------------------------------------------------------------------------
def test_wire_encoding() -> None:
    assert wire.command(b"SUB", b"t", b"c") == b"SUB t c\n"
    assert wire.command(b"PUB", b"t", body=b"ab") == b"PUB t\n\x00\x00\x00\x02ab"
    assert wire.mpub_body([b"a", b"bc"]) == b"\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x02bc"
    msg = wire.Message(struct.pack(">qH", 123, 7) + b"0123456789abcdef" + b"body")
    assert (msg.timestamp, msg.attempts, msg.id, msg.body) == (123, 7, b"0123456789abcdef", b"body")
    assert wire.split_address("[::1]:4150", 1) == ("::1", 4150)
    assert wire.split_address("http://h:4161/", 1) == ("h", 4161)
    assert wire.split_address("h", 4150) == ("h", 4150)
    assert wire.valid_name("a.b_c-d#ephemeral") and not wire.valid_name("a b") and not wire.valid_name("x" * 65)
