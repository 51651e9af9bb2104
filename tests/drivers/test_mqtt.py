"""mqtt against the real Mosquitto on 127.0.0.1:1883 (anonymous), plus a Mosquitto of our own on free ports
with a password file and a TLS listener.

The conformance suite runs with QoS 1 and a persistent session. MQTT has no "pending" count, so
Backend.pending() connects with procx's own client id, counts what the broker sends for the session (up to the
broker's in-flight limit, 20 by default: enough for these tests) after one round trip, and disconnects without
acknowledging anything, so the messages stay in the session. That connection takes the session over: a procx
connected with the same id at that moment would be disconnected. So the suite's daemon test, which polls
pending() while the daemon runs, is replaced by an equivalent that waits for the daemon's results and checks
pending() after the daemon stopped.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

mqtt = pytest.importorskip("paho.mqtt.client", reason="pip install -e '.[mqtt]'")

from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from core import api, settings  # noqa: E402
from drivers.mqtt import default_client_id  # noqa: E402
from tests.conformance import PAYLOADS, Backend, Conformance, kill_mid_job  # noqa: E402
from tests.drivers.conftest import ca_signed_cert, free_port, listening, serving  # noqa: E402
from tests.support import clean_env, command, run, wait_for  # noqa: E402

HOST, PORT = "127.0.0.1", 1883


class Session:
    """A paho connection for administration: create, count or delete a client id's persistent session."""

    def __init__(self, client_id: str, *, clean: bool = False, port: int = PORT, v5: bool = True,
                 user: str = "", password: str = "") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else clean, manual_ack=True)
        self.messages: list = []
        self.acked: set[int] = set()
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_subscribe = self.client.on_unsubscribe = lambda c, u, mid, rc, p: self.acked.add(mid)
        if user:
            self.client.username_pw_set(user, password)
        kwargs = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if clean else 0xFFFFFFFF
            props.ReceiveMaximum = 100
            kwargs = {"clean_start": clean, "properties": props}
        try:
            self.client.connect(HOST, port, 30, **kwargs)
        except OSError as exc:
            pytest.fail(f"Mosquitto is not reachable on {HOST}:{port} ({exc}); start mosquitto")
        self.client.loop_start()
        wait_for(self.connected.is_set, timeout=10)

    def _wait(self, result) -> None:
        rc, mid = result
        assert rc == mqtt.MQTT_ERR_SUCCESS
        wait_for(lambda: mid in self.acked, timeout=10)

    def subscribe(self, topic: str, qos: int = 1) -> Session:
        self._wait(self.client.subscribe(topic, qos))
        return self

    def sync(self) -> Session:
        """A round trip: what the broker sent on connect has arrived."""
        self._wait(self.client.unsubscribe("procx/test/sync"))
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def create_session(client_id: str, topic: str, qos: int = 1, **kw) -> None:
    Session(client_id, **kw).subscribe(topic, qos).close()


def delete_session(client_id: str, **kw) -> None:
    with contextlib.suppress(Exception):
        Session(client_id, clean=True, **kw).close()


def session_messages(client_id: str, **kw) -> list:
    """What the broker holds for the session (sent after connect), left unacknowledged."""
    session = Session(client_id, **kw).sync()
    messages = list(session.messages)
    session.close()
    return messages


class MqttBackend(Backend):
    driver = "mqtt"
    redelivery_wait = 1.0  # the broker resends as soon as the client id reconnects

    def __init__(self, v5: bool = True) -> None:
        self.topic = f"procx-test/{uuid.uuid4().hex}/jobs"
        self.client_id = f"procx-test-{uuid.uuid4().hex[:12]}"
        self.v5 = v5
        create_session(self.client_id, self.topic, v5=v5)

    def common_args(self) -> list[str]:
        return ["-driver", "mqtt", "-mqtt-host", HOST, "-mqtt-port", str(PORT), "-mqtt-topic", self.topic,
                "-mqtt-version", "5" if self.v5 else "3.1.1"]

    def procx_args(self) -> list[str]:
        return ["-mqtt-client-id", self.client_id]

    def pending(self) -> int:
        return len(session_messages(self.client_id, v5=self.v5))

    def cleanup(self) -> None:
        delete_session(self.client_id, v5=self.v5)


class TestMqttConformance(Conformance):
    @pytest.fixture
    def backend(self):
        backend = MqttBackend()
        yield backend
        backend.cleanup()

    def test_daemon_processes_all_then_drains_on_sigterm(self, backend: MqttBackend, tmp_path: Path) -> None:
        """As the suite's, but waiting for the daemon's "cleared" events instead of polling pending() (which
        would take the session over); pending() once the daemon stopped."""
        items = [f"d-{i}".encode() for i in range(5)]
        for n, item in enumerate(items):
            backend.pushx(item, n)
        results = tmp_path / "results"
        results.mkdir()
        script = ("import os, sys, uuid; d = sys.argv[1]; "
                  "open(os.path.join(d, uuid.uuid4().hex), 'wb').write(sys.stdin.buffer.read())")
        log = tmp_path / "log"
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                backend.procx_argv(sys.executable, "-c", script, str(results),
                                   extra=("-daemon", "-pass-work-as-stdin", "-log-format", "json")),
                env=backend.env(), stderr=stderr)
        try:
            wait_for(lambda: log.read_bytes().count(b'"event": "cleared"') == len(items), timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert backend.pending() == 0
        assert sorted(p.read_bytes() for p in results.iterdir()) == sorted(items)


@pytest.fixture
def backend():
    backend = MqttBackend()
    yield backend
    backend.cleanup()


def pushx_args(topic: str, *extra: str, port: int = PORT) -> list[str]:
    return ["-driver", "mqtt", "-mqtt-host", HOST, "-mqtt-port", str(port), "-mqtt-topic", topic, *extra]


# -- delivery ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_mqtt_3_1_1_session_survives_a_kill(tmp_path: Path) -> None:
    backend = MqttBackend(v5=False)
    try:
        kill_mid_job(backend, tmp_path)
        assert backend.pending() == 1
        assert backend.procx("false").returncode == 1  # fail: still there
        assert backend.procx().stdout == b"precious"
        assert backend.pending() == 0
    finally:
        backend.cleanup()


def test_wildcard_filter_and_qos2_publish(backend: MqttBackend) -> None:
    base = f"procx-test/{uuid.uuid4().hex}"
    client_id = f"procx-test-{uuid.uuid4().hex[:12]}"
    create_session(client_id, f"{base}/+/jobs")
    try:
        api.pushx(b"via-qos2", pushx_args(f"{base}/eu/jobs", "-mqtt-qos", "2"))
        with api.work(pushx_args(f"{base}/+/jobs", "-mqtt-client-id", client_id)) as work:
            assert work.payload == b"via-qos2"
            assert work.meta["topic"] == f"{base}/eu/jobs"
            assert work.meta["qos"] == 1  # delivered at the subscription's QoS
    finally:
        delete_session(client_id)


def test_default_client_id_is_stable_so_the_session_is_found_again() -> None:
    topic = f"procx-test/{uuid.uuid4().hex}/jobs"
    args = pushx_args(topic)
    _, config = settings.load("procx", args, clean_env())
    client_id = default_client_id(config)
    try:
        assert run("procx", *args, "-wait-for-work", "0").returncode == 0  # creates the session
        api.pushx(b"kept for me", args)
        done = run("procx", *args)
        assert done.returncode == 0 and done.stdout == b"kept for me"
    finally:
        delete_session(client_id)


def test_qos0_is_at_most_once_but_delivered_to_a_subscriber_up(tmp_path: Path) -> None:
    topic = f"procx-test/{uuid.uuid4().hex}/jobs"
    out = tmp_path / "got"
    copy = [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())", str(out)]
    client_id = f"procx-test-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen([command("procx"), *pushx_args(topic, "-mqtt-qos", "0", "-mqtt-client-id", client_id,
                                                            "-pass-work-as-stdin"), *copy], env=clean_env())
    try:
        with api.Producer(pushx_args(topic, "-mqtt-qos", "0")) as producer:
            while proc.poll() is None:
                producer.push(PAYLOADS["non-utf8"])
                time.sleep(0.02)
        assert proc.returncode == 0
        assert out.read_bytes() == PAYLOADS["non-utf8"]
    finally:
        if proc.poll() is None:
            proc.kill()
        delete_session(client_id)


def test_consume_without_waiting_sees_every_queued_message(backend: MqttBackend) -> None:
    """With one unacknowledged message at a time, the broker sends the next only after our ack: get(0) makes
    one round trip first, so that a message on its way is not mistaken for "no work"."""
    items = [f"c{i}".encode() for i in range(5)]
    with api.Producer(backend.common_args()) as producer:
        producer.push_many(items)
    seen = []
    for work in api.consume(backend.api_args("procx")):
        seen.append(work.payload)
        work.clear()
    assert seen == items
    assert backend.pending() == 0


def test_pushx_waits_for_the_broker(backend: MqttBackend) -> None:
    with api.Producer(backend.common_args()) as producer:
        producer.push_many([b"one", b"two"])
    assert [m.payload for m in session_messages(backend.client_id)] == [b"one", b"two"]


# -- our own broker: password and TLS ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def private_broker(tmp_path_factory):
    """Mosquitto with a password file (alice / right-pass) on a plain and a TLS listener."""
    folder = tmp_path_factory.mktemp("mosquitto")
    certs = ca_signed_cert(folder)
    passwd = folder / "passwd"
    done = subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "alice", "right-pass"], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"mosquitto_passwd failed: {done.stderr.decode(errors='replace')}")
    plain, tls = free_port(), free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"""user root
allow_anonymous false
password_file {passwd}
persistence false
listener {plain} 127.0.0.1
listener {tls} 127.0.0.1
cafile {certs["ca"]}
certfile {certs["server"]}
keyfile {certs["server-key"]}
""")
    with serving(["mosquitto", "-c", str(conf)], lambda: listening(tls), "mosquitto", folder / "mosquitto.log"):
        yield {"plain": plain, "tls": tls, "certs": certs}


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_port_is_one_line_naming_driver_host_and_port(tool: str) -> None:
    done = run(tool, *pushx_args("t", "-mqtt-password", "pw-secret", "-mqtt-username", "u", port=1),
               *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1, line
    assert "mqtt" in line and "127.0.0.1:1" in line and "refused" in line
    assert "pw-secret" not in line


def test_wrong_password_consumes_nothing(private_broker) -> None:
    port = private_broker["plain"]
    topic = f"procx-test/{uuid.uuid4().hex}/jobs"
    client_id = f"procx-test-{uuid.uuid4().hex[:12]}"
    auth = ("-mqtt-username", "alice", "-mqtt-password")
    create_session(client_id, topic, port=port, user="alice", password="right-pass")
    api.pushx(b"keep", pushx_args(topic, *auth, "right-pass", port=port))
    done = run("procx", *pushx_args(topic, *auth, "wrong-pass", "-mqtt-client-id", client_id, port=port), "true")
    assert done.returncode == 69
    line = done.stderr.decode().strip()
    assert len(line.splitlines()) == 1
    assert "refused the connection" in line and "wrong-pass" not in line
    done = run("procx", *pushx_args(topic, *auth, "right-pass", "-mqtt-client-id", client_id, port=port))
    assert done.returncode == 0 and done.stdout == b"keep"


def test_credentials_in_the_url_are_used_and_hidden(private_broker) -> None:
    url = f"mqtt://alice:right-pass@127.0.0.1:{private_broker['plain']}"
    done = run("pushx", "-driver", "mqtt", "-mqtt-url", url, "-mqtt-topic", "t", "-in", "x")
    assert done.returncode == 0, done.stderr.decode()
    bad = f"mqtt://alice:wrong-pass@127.0.0.1:{private_broker['plain']}"
    done = run("pushx", "-driver", "mqtt", "-mqtt-url", bad, "-mqtt-topic", "t", "-in", "x")
    assert done.returncode == 69
    assert b"wrong-pass" not in done.stderr


def test_tls_with_a_ca_file(private_broker) -> None:
    port, certs = private_broker["tls"], private_broker["certs"]
    auth = ("-mqtt-username", "alice", "-mqtt-password", "right-pass")
    done = run("pushx", *pushx_args("t", *auth, "-mqtt-enable-tls", "-mqtt-tls-ca-file", str(certs["ca"]),
                                    port=port), "-in", "x")
    assert done.returncode == 0, done.stderr.decode()
    done = run("pushx", *pushx_args("t", *auth, "-mqtt-enable-tls", port=port), "-in", "x")  # not trusted
    assert done.returncode == 69
    assert b"certificate" in done.stderr.lower()
    done = run("pushx", *pushx_args("t", *auth, "-mqtt-enable-tls", "-mqtt-tls-insecure", port=port), "-in", "x")
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("tool, argv, message", [
    ("procx", ["-mqtt-host", HOST], b"-mqtt-topic is required"),
    ("procx", ["-mqtt-topic", "t", "-mqtt-qos", "2"], b"-mqtt-qos: procx takes 0 or 1"),
    ("procx", ["-mqtt-topic", "t", "-mqtt-qos", "3"], b"-mqtt-qos: must be 0, 1 or 2"),
    ("procx", ["-mqtt-topic", "t", "-concurrency", "2"], b"-concurrency: one MQTT session"),
    ("procx", ["-mqtt-url", "http://x", "-mqtt-topic", "t"], b"-mqtt-url: use mqtt://"),
    ("pushx", ["-mqtt-topic", "a/+/b"], b"wildcards"),
    ("pushx", ["-mqtt-topic", "t", "-mqtt-version", "4"], b"invalid value"),
])
def test_bad_settings_are_usage_errors(tool: str, argv: list[str], message: bytes) -> None:
    done = run(tool, "-driver", "mqtt", *argv, *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 2
    assert message in done.stderr
