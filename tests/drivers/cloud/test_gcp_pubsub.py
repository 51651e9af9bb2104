"""gcp-pubsub against cloudbox's Pub/Sub gRPC emulator: the conformance suite and the fixes of the original (ack
after success, nack on failure, ack-deadline extension while the child runs, one unary pull per get, clear
errors), plus pushx attributes, ordering key and batches.

Each test gets its own topic and subscription (uuid names) with a 2 s ack deadline, so a message held by a
killed procx comes back quickly (cloudbox accepts deadlines under the service's 10 s minimum). pending() reads
cloudbox's admin API (queue depth + unacked count of the subscription): a pull without ack would itself take the
message (and bump its delivery attempt), and would not see the messages procx holds.
The driver reaches the emulator only through PUBSUB_EMULATOR_HOST (the client library then uses plain-text gRPC
and anonymous credentials by itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.drivers.cloud.cloudbox_server import Cloudbox
from tests.support import clean_env, command, run, wait_for

PROJECT = "px-test"
DEADLINE = 2


def _env(box: Cloudbox, **extra: str) -> dict[str, str]:
    env = clean_env(PUBSUB_EMULATOR_HOST=box.pubsub_host, **extra)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        env.pop(name, None)
    return env


class Names:
    """A fresh topic and subscription, with test-side clients."""

    def __init__(self, box: Cloudbox, publisher, subscriber, ordering: bool = False) -> None:
        tag = uuid.uuid4().hex[:12]
        self.box, self.publisher, self.subscriber = box, publisher, subscriber
        self.topic, self.sub = f"t-{tag}", f"s-{tag}"
        self.topic_path = f"projects/{PROJECT}/topics/{self.topic}"
        self.sub_path = f"projects/{PROJECT}/subscriptions/{self.sub}"
        publisher.create_topic(name=self.topic_path)
        subscriber.create_subscription(request={"name": self.sub_path, "topic": self.topic_path,
                                                "ack_deadline_seconds": DEADLINE,
                                                "enable_message_ordering": ordering})

    def pending(self) -> int:
        for sub in self.box.admin("/api/pubsub/subscriptions"):  # type: ignore[union-attr]
            if sub["name"] == self.sub_path:
                return sub["queueDepth"] + sub["unackedCount"]
        raise AssertionError(f"subscription {self.sub_path} is gone")

    def delete(self) -> None:
        self.subscriber.delete_subscription(request={"subscription": self.sub_path})
        self.publisher.delete_topic(request={"topic": self.topic_path})


@pytest.fixture
def clients(cloudbox: Cloudbox, monkeypatch: pytest.MonkeyPatch):
    """Test-side publisher and subscriber; in-process procx/pushx calls see the same variable."""
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", cloudbox.pubsub_host)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield publisher, subscriber
    subscriber.close()


@pytest.fixture
def names(cloudbox: Cloudbox, clients) -> Iterator[Names]:
    made = Names(cloudbox, *clients)
    yield made
    made.delete()


class PubsubBackend(Backend):
    driver = "gcp-pubsub"
    redelivery_wait = float(DEADLINE)

    def __init__(self, names: Names) -> None:
        self.names = names

    def env(self) -> dict[str, str]:
        return _env(self.names.box)

    def common_args(self) -> list[str]:
        return ["-driver", "gcp-pubsub", "-gcp-project-id", PROJECT]

    def push_args(self, n: int) -> list[str]:
        return ["-gcp-pubsub-topic", self.names.topic]

    def procx_args(self) -> list[str]:
        return ["-gcp-pubsub-subscription", self.names.sub]

    def pending(self) -> int:
        return self.names.pending()


class TestPubsubConformance(Conformance):
    @pytest.fixture
    def backend(self, names: Names) -> PubsubBackend:
        return PubsubBackend(names)


def procx_args(names: Names, *extra: str) -> list[str]:
    return ["-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, "-gcp-pubsub-subscription", names.sub, *extra]


def pushx_args(names: Names, *extra: str) -> list[str]:
    return ["-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, "-gcp-pubsub-topic", names.topic, *extra]


def events(stderr: bytes, kind: str) -> list[dict]:
    found = []
    for line in stderr.splitlines():
        if line.startswith(b"{"):
            event = json.loads(line)
            if event.get("event") == kind:
                found.append(event)
    return found


@pytest.mark.slow
def test_ack_deadline_is_extended_while_the_child_runs(cloudbox, names: Names, tmp_path) -> None:
    names.publisher.publish(names.topic_path, b"long job").result()
    stolen: list[bytes] = []
    stop = threading.Event()

    def thief() -> None:  # another consumer of the same subscription: must not get the held message
        while not stop.is_set():
            got = names.subscriber.pull(request={"subscription": names.sub_path, "max_messages": 1}, timeout=5)
            stolen.extend(m.message.data for m in got.received_messages)
            stop.wait(0.2)

    started = tmp_path / "started"
    child = f"import time; open({str(started)!r}, 'w').close(); time.sleep({DEADLINE * 2 + 1})"
    proc = subprocess.Popen(
        [command("procx"), *procx_args(names), sys.executable, "-c", child], env=_env(cloudbox))
    t = threading.Thread(target=thief)
    try:
        wait_for(started.exists)
        t.start()  # procx holds the message now
        assert proc.wait(timeout=30) == 0
    finally:
        stop.set()
        if t.is_alive():
            t.join()
        if proc.poll() is None:
            proc.kill()
    assert stolen == []
    assert names.pending() == 0


@pytest.mark.slow
def test_a_lapsed_ack_deadline_stops_the_child_and_leaves_the_message_to_its_new_holder(cloudbox, names: Names,
                                                                                         tmp_path) -> None:
    """procx cannot extend the deadline in time (SIGSTOP): another consumer gets the message; procx then stops its
    child (lease-lost) and does not nack the message over its new holder."""
    import signal

    names.publisher.publish(names.topic_path, b"long job").result()
    started = tmp_path / "started"
    child = [sys.executable, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(60)"]
    with open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen([command("procx"), *procx_args(names, "-gcp-pubsub-ack-deadline", "1s",
                                                               "-log-format", "json"), *child],
                                stderr=err, env=_env(cloudbox))

    def pull() -> list:
        return list(names.subscriber.pull(request={"subscription": names.sub_path, "max_messages": 1},
                                          timeout=5).received_messages)

    try:
        wait_for(started.exists, timeout=15)
        proc.send_signal(signal.SIGSTOP)
        got = wait_for(pull, timeout=15)[0]  # redelivered once the deadline ran out
        names.subscriber.modify_ack_deadline(request={"subscription": names.sub_path, "ack_ids": [got.ack_id],
                                                      "ack_deadline_seconds": 60})
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(timeout=15) == 143  # the child got SIGTERM
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
    assert got.message.data == b"long job"
    assert pull() == []  # not offered again while its new holder has it
    names.subscriber.acknowledge(request={"subscription": names.sub_path, "ack_ids": [got.ack_id]})
    assert names.pending() == 0
    err = (tmp_path / "err").read_bytes()
    assert [e["event"] for e in (json.loads(line) for line in err.splitlines() if line.startswith(b"{"))
            if e["event"] in ("lease-lost", "failed", "cleared", "error")] == ["lease-lost", "failed"]


def test_fail_nacks_at_once_and_the_attempt_counts_up(cloudbox, names: Names) -> None:
    names.publisher.publish(names.topic_path, b"flaky").result()
    env = _env(cloudbox)
    started = time.monotonic()
    first = run("procx", *procx_args(names, "-log-format", "json"), "false", env=env)
    second = run("procx", *procx_args(names, "-log-format", "json", "-wait-for-work", "5s"), "true", env=env)
    assert time.monotonic() - started < DEADLINE + 3  # nack: no waiting out the ack deadline
    assert [e["attempt"] for e in events(first.stderr, "got") + events(second.stderr, "got")] == [1, 2]
    assert names.pending() == 0


def test_pushx_attributes_ordering_key_and_message_id(cloudbox, clients) -> None:
    ordered = Names(cloudbox, *clients, ordering=True)
    try:
        done = run("pushx", *pushx_args(ordered, "-gcp-pubsub-attributes", '{"kind":"job","n":"1"}',
                                        "-gcp-pubsub-ordering-key", "customer-7", "-log-format", "json"),
                   input=b"payload", env=_env(cloudbox))
        assert done.returncode == 0, done.stderr
        message_id = events(done.stderr, "pushed")[0]["id"]
        got = ordered.subscriber.pull(request={"subscription": ordered.sub_path, "max_messages": 5},
                                      timeout=5).received_messages
        assert len(got) == 1
        message = got[0].message
        assert (message.data, dict(message.attributes), message.ordering_key, message.message_id) == (
            b"payload", {"kind": "job", "n": "1"}, "customer-7", message_id)
        ordered.subscriber.acknowledge(request={"subscription": ordered.sub_path, "ack_ids": [got[0].ack_id]})
    finally:
        ordered.delete()


def test_procx_passes_attributes_in_the_work_meta(names: Names) -> None:
    names.publisher.publish(names.topic_path, b"m", kind="job").result()
    with api.work(procx_args(names)) as work:
        assert work is not None
        assert work.meta["attributes"] == {"kind": "job"}
        assert work.attempt == 1 and work.id
    assert names.pending() == 0


def test_push_many_publishes_in_batches_in_order(names: Names) -> None:
    payloads = [f"batch-{i:02d}".encode() for i in range(30)]
    with api.Producer(pushx_args(names)) as producer:
        ids = producer.push_many(payloads)
    assert len(set(ids)) == 30 and all(ids)
    assert [w.payload for w in _drain(names)] == payloads


def _drain(names: Names) -> list:
    taken = []
    for work in api.consume(procx_args(names)):
        taken.append(work)
        work.clear()
    return taken


def test_unary_pull_waits_up_to_wait_and_leaks_no_receiver(names: Names) -> None:
    from core import settings
    from core.options import PROCX
    from drivers.gcp.pubsub import PubsubSource

    _, config = settings.load(PROCX, procx_args(names), {})
    source = PubsubSource(config)
    source.open()
    try:
        started = time.monotonic()
        assert source.get(0) is None
        assert time.monotonic() - started < 1.0  # wait=0: answered at once
        threads = threading.active_count()
        for i in range(5):
            names.publisher.publish(names.topic_path, f"m{i}".encode()).result()
            work = source.get(0)
            assert work is not None and work.payload == f"m{i}".encode()
            source.clear(work)
        assert threading.active_count() <= threads  # the keeper of each message ended with its ack
        timer = threading.Timer(0.4, lambda: names.publisher.publish(names.topic_path, b"late").result())
        timer.start()
        started = time.monotonic()
        work = source.get(3.0)
        timer.join()
        assert work is not None and work.payload == b"late"
        assert 0.3 < time.monotonic() - started < 3.0
        source.clear(work)
        started = time.monotonic()
        assert source.get(0.5) is None
        assert 0.4 < time.monotonic() - started < 2.0
    finally:
        source.close()
    assert names.pending() == 0


def test_the_originals_irregular_variables(cloudbox, names: Names) -> None:
    env = _env(cloudbox, PUSHX_GCP_TOPIC=names.topic, PUSHX_GCP_PROJECT_ID=PROJECT,
               PROCX_GCP_SUBSCRIPTION=names.sub, PROCX_GCP_PROJECT_ID=PROJECT)
    assert run("pushx", "-driver", "gcp-pubsub", input=b"via env", env=env).returncode == 0
    assert run("procx", "-driver", "gcp-pubsub", env=env).stdout == b"via env"
    env = _env(cloudbox, PUSHX_GCP_PUBSUB_TOPIC=names.topic, PROCX_GCP_PUBSUB_SUBSCRIPTION=names.sub)
    assert run("pushx", "-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, input=b"derived",
               env=env).returncode == 0
    assert run("procx", "-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, env=env).stdout == b"derived"
    assert names.pending() == 0


def test_full_paths_need_no_project(cloudbox, names: Names) -> None:
    env = _env(cloudbox)
    assert run("pushx", "-driver", "gcp-pubsub", "-gcp-pubsub-topic", names.topic_path, input=b"p",
               env=env).returncode == 0
    assert run("procx", "-driver", "gcp-pubsub", "-gcp-pubsub-subscription", names.sub_path, env=env).stdout == b"p"


def test_missing_subscription_and_topic_are_clear_errors(cloudbox, names: Names) -> None:
    names.publisher.publish(names.topic_path, b"keep").result()
    env = _env(cloudbox)
    done = run("procx", "-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, "-gcp-pubsub-subscription", "nope",
               env=env)
    assert done.returncode == 69
    assert done.stderr == (f"procx: driver gcp-pubsub: subscription projects/{PROJECT}/subscriptions/nope does not "
                           f"exist on {cloudbox.pubsub_host}\n").encode()
    done = run("pushx", "-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, "-gcp-pubsub-topic", "nope",
               input=b"x", env=env)
    assert done.returncode == 69
    assert b"topic projects/px-test/topics/nope does not exist" in done.stderr
    assert done.stderr.count(b"\n") == 1
    assert names.pending() == 1


@pytest.mark.parametrize(("side", "args", "message"), [
    ("procx", ("-gcp-pubsub-subscription", "s"), b"-gcp-project-id (PROCX_GCP_PROJECT_ID) is required"),
    ("procx", ("-gcp-project-id", PROJECT), b"-gcp-pubsub-subscription (PROCX_GCP_SUBSCRIPTION) is required"),
    ("pushx", ("-gcp-project-id", PROJECT), b"-gcp-pubsub-topic (PUSHX_GCP_TOPIC) is required"),
    ("pushx", ("-gcp-project-id", PROJECT, "-gcp-pubsub-topic", "t", "-gcp-pubsub-attributes", "[1]"),
     b"-gcp-pubsub-attributes: must be a JSON object"),
    ("procx", ("-gcp-project-id", PROJECT, "-gcp-pubsub-subscription", "s", "-gcp-pubsub-ack-deadline", "20m"),
     b"-gcp-pubsub-ack-deadline: must be between 0 and 600s"),
])
def test_bad_settings_are_usage_errors(cloudbox, side: str, args: tuple[str, ...], message: bytes) -> None:
    done = run(side, "-driver", "gcp-pubsub", *args, input=b"x", env=_env(cloudbox))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.slow
def test_unreachable_emulator_is_one_line_naming_the_host() -> None:
    env = clean_env(PUBSUB_EMULATOR_HOST="127.0.0.1:9")
    for side, target in (("procx", ("-gcp-pubsub-subscription", "s")), ("pushx", ("-gcp-pubsub-topic", "t"))):
        done = run(side, "-driver", "gcp-pubsub", "-gcp-project-id", PROJECT, *target, input=b"x", env=env)
        assert done.returncode == 69
        assert done.stderr.startswith(f"{side}: driver gcp-pubsub: cannot reach 127.0.0.1:9".encode())
        assert done.stderr.count(b"\n") == 1


def test_daemon_with_ack_deadline_option_keeps_going_after_a_failed_job(cloudbox, names: Names, tmp_path) -> None:
    for payload in (b"bad", b"good"):
        names.publisher.publish(names.topic_path, payload).result()
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    script = ("import os, sys; p = os.environ['PROCX_PAYLOAD']; "
              "sys.exit(3) if p == 'bad' and not os.path.exists(sys.argv[1] + '/bad-seen') "
              "and not open(sys.argv[1] + '/bad-seen', 'w').close() else open(sys.argv[1] + '/' + p, 'w').close()")
    proc = subprocess.Popen([command("procx"), *procx_args(names, "-daemon", "-gcp-pubsub-ack-deadline", "3s"),
                             sys.executable, "-c", script, str(done_dir)], env=_env(cloudbox))
    try:
        wait_for(lambda: {p.name for p in done_dir.iterdir()} == {"bad-seen", "bad", "good"}
                 and names.pending() == 0, timeout=20)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
