"""pulsar up to the client call: no broker runs here (a Java distribution in no reachable registry), so the
tests check the options, the client/consumer/producer configuration built from them, the messages sent and
the ack/nack decisions against a small RECORDING FAKE of pulsar-client's objects (Client, the Authentication
classes; pulsar's real exception classes). The shared conformance suite needs a broker and is not run.
Nothing here shows that the driver works with a real broker.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator

import pytest

pulsar = pytest.importorskip("pulsar", reason="pip install -e '.[pulsar]'")

from core import api  # noqa: E402
from core.errors import ProcxError  # noqa: E402
from tests.support import clean_env, run  # noqa: E402

TOKEN = "tok-S3CRET-value"


class FakeAuth:
    def __init__(self, kind: str, *args: object) -> None:
        self.kind, self.args = kind, args


class FakeMessage:
    def __init__(self, topic: str, data: bytes, n: int, key: str = "", props: dict | None = None) -> None:
        self._topic, self._data, self._id, self._key, self._props = topic, data, f"{n}:0:-1:0", key, props or {}
        self.redeliveries = 0

    def data(self) -> bytes:
        return self._data

    def message_id(self) -> str:
        return self._id

    def redelivery_count(self) -> int:
        return self.redeliveries

    def topic_name(self) -> str:
        return f"persistent://public/default/{self._topic}"

    def partition_key(self) -> str:
        return self._key

    def properties(self) -> dict:
        return self._props


class FakeBroker:
    """Topics as queues, and a record of every call the driver made."""

    def __init__(self) -> None:
        self.topics: dict[str, deque[FakeMessage]] = {}
        self.calls: list[tuple] = []
        self.fail_on: dict[str, Exception] = {}
        self.count = 0

    def check(self, what: str) -> None:
        if what in self.fail_on:
            raise self.fail_on[what]


class FakeConsumer:
    def __init__(self, broker: FakeBroker, topic: str) -> None:
        self.broker, self.topic, self.unacked = broker, topic, []

    def receive(self, timeout_millis: int | None = None) -> FakeMessage:
        self.broker.calls.append(("receive", timeout_millis))
        queue = self.broker.topics.setdefault(self.topic, deque())
        if not queue:
            raise pulsar.Timeout("Pulsar error: TimeOut")
        msg = queue.popleft()
        self.unacked.append(msg)
        return msg

    def acknowledge(self, msg: FakeMessage) -> None:
        self.broker.check("acknowledge")
        self.broker.calls.append(("acknowledge", msg.message_id()))
        self.unacked.remove(msg)

    def negative_acknowledge(self, msg: FakeMessage) -> None:
        self.broker.calls.append(("negative_acknowledge", msg.message_id()))

    def close(self) -> None:
        self.broker.calls.append(("consumer.close",))
        for msg in self.unacked:  # the broker redelivers what the closed consumer did not acknowledge
            msg.redeliveries += 1
            self.broker.topics[self.topic].appendleft(msg)
        self.unacked = []


class FakeProducer:
    def __init__(self, broker: FakeBroker, topic: str) -> None:
        self.broker, self.topic = broker, topic

    def send(self, content: bytes, **kwargs: object) -> str:
        self.broker.check("send")
        self.broker.calls.append(("send", content, kwargs))
        self.broker.count += 1
        msg = FakeMessage(self.topic, content, self.broker.count, str(kwargs.get("partition_key") or ""),
                          kwargs.get("properties"))  # type: ignore[arg-type]
        self.broker.topics.setdefault(self.topic, deque()).append(msg)
        return msg.message_id()

    def close(self) -> None:
        self.broker.calls.append(("producer.close",))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBroker]:
    fake = FakeBroker()

    class FakeClient:
        def __init__(self, **kwargs: object) -> None:
            fake.calls.append(("Client", kwargs))

        def subscribe(self, **kwargs: object) -> FakeConsumer:
            fake.check("subscribe")
            fake.calls.append(("subscribe", kwargs))
            topic = kwargs["topic"]
            return FakeConsumer(fake, topic if isinstance(topic, str) else "many")

        def create_producer(self, topic: str, **kwargs: object) -> FakeProducer:
            fake.check("create_producer")
            fake.calls.append(("create_producer", topic, kwargs))
            return FakeProducer(fake, topic)

        def close(self) -> None:
            fake.calls.append(("client.close",))

    monkeypatch.setattr(pulsar, "Client", FakeClient)
    monkeypatch.setattr(pulsar, "AuthenticationToken", lambda token: FakeAuth("token", token))
    monkeypatch.setattr(pulsar, "AuthenticationTLS", lambda cert, key: FakeAuth("tls", cert, key))
    monkeypatch.setattr(pulsar, "AuthenticationOauth2", lambda params: FakeAuth("oauth2", params))
    yield fake


def call(broker: FakeBroker, name: str) -> tuple:
    return next(c for c in broker.calls if c[0] == name)


BASE = ["-driver", "pulsar", "-pulsar-address", "broker:6650", "-pulsar-topic", "jobs"]
SUB = ["-pulsar-subscription", "procx"]


# -- configuration -------------------------------------------------------------------------------------------
def test_fake_client_and_consumer_configuration(broker: FakeBroker) -> None:
    api.procx([*BASE, *SUB, "-pulsar-subscription-type", "shared", "-pulsar-initial-position", "earliest",
               "-pulsar-nack-redelivery-delay", "5s"], environ=clean_env())
    client = call(broker, "Client")[1]
    assert client["service_url"] == "pulsar://broker:6650"
    assert client["authentication"] is None  # no OAuth2 params: the original crashed here
    assert (client["operation_timeout_seconds"], client["connection_timeout_ms"]) == (30, 30000)
    assert client["use_tls"] is False
    sub = call(broker, "subscribe")[1]
    assert sub["topic"] == "jobs"
    assert sub["subscription_name"] == "procx"
    assert sub["consumer_type"] == pulsar.ConsumerType.Shared
    assert sub["initial_position"] == pulsar.InitialPosition.Earliest
    assert sub["receiver_queue_size"] == 1
    assert sub["negative_ack_redelivery_delay_ms"] == 5000
    assert call(broker, "receive")[1] == 500  # -wait-for-work 0 still waits one round trip


def test_fake_defaults_are_the_originals(broker: FakeBroker) -> None:
    api.procx([*BASE, *SUB], environ=clean_env())
    sub = call(broker, "subscribe")[1]
    assert sub["consumer_type"] == pulsar.ConsumerType.Exclusive
    assert sub["initial_position"] == pulsar.InitialPosition.Latest


def test_fake_topics_list_wins_over_pattern_and_topic(broker: FakeBroker) -> None:
    api.procx([*BASE, *SUB, "-pulsar-topics", "a,b", "-pulsar-topics-pattern", "x.*"], environ=clean_env())
    assert call(broker, "subscribe")[1]["topic"] == ["a", "b"]
    broker.calls.clear()
    api.procx([*BASE, *SUB, "-pulsar-topics-pattern", "persistent://public/default/job-.*"], environ=clean_env())
    topic = call(broker, "subscribe")[1]["topic"]
    assert isinstance(topic, re.Pattern) and topic.pattern == "persistent://public/default/job-.*"


@pytest.mark.parametrize(("extra", "kind", "args"), [
    (["-pulsar-auth-token", TOKEN], "token", (TOKEN,)),
    (["-pulsar-auth-oauth-params", '{"type":"client_credentials","issuerUrl":"https://i","privateKey":"file:///k"}'],
     "oauth2", ('{"type": "client_credentials", "issuer_url": "https://i", "private_key": "file:///k"}',)),
])
def test_fake_authentication(broker: FakeBroker, extra: list[str], kind: str, args: tuple) -> None:
    api.pushx(b"x", [*BASE, *extra], environ=clean_env())
    auth = call(broker, "Client")[1]["authentication"]
    assert (auth.kind, auth.args) == (kind, args)


def test_fake_token_file_is_read_at_each_authentication(broker: FakeBroker, tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    api.pushx(b"x", [*BASE, "-pulsar-auth-token-file", str(path)], environ=clean_env())
    supplier = call(broker, "Client")[1]["authentication"].args[0]
    assert supplier() == "first"
    path.write_text("rotated")
    assert supplier() == "rotated"


def test_fake_client_certificate_switches_to_tls(broker: FakeBroker, tmp_path) -> None:
    cert, key, ca = (tmp_path / n for n in ("c.pem", "k.pem", "ca.pem"))
    for f in (cert, key, ca):
        f.write_text("x")
    api.pushx(b"x", [*BASE, "-pulsar-auth-cert-file", str(cert), "-pulsar-auth-key-file", str(key),
                     "-pulsar-tls-trust-certs-file", str(ca), "-pulsar-tls-validate-hostname"], environ=clean_env())
    client = call(broker, "Client")[1]
    assert client["service_url"] == "pulsar+ssl://broker:6650"
    assert client["use_tls"] is True
    assert client["tls_trust_certs_file_path"] == str(ca)
    assert client["tls_validate_hostname"] is True
    assert (client["authentication"].kind, client["authentication"].args) == ("tls", (str(cert), str(key)))


def test_fake_several_brokers_and_an_explicit_scheme(broker: FakeBroker) -> None:
    api.pushx(b"x", ["-driver", "pulsar", "-pulsar-address", "pulsar+ssl://a:6651, b:6651", "-pulsar-topic", "t",
                     "-pulsar-tls-allow-insecure-connection"], environ=clean_env())
    client = call(broker, "Client")[1]
    assert client["service_url"] == "pulsar+ssl://a:6651,b:6651"
    assert client["tls_allow_insecure_connection"] is True


# -- messages, ack and nack ------------------------------------------------------------------------------------
def test_fake_producer_name_key_and_properties(broker: FakeBroker) -> None:
    ident = api.pushx(b"\x00payload\xff", [*BASE, "-pulsar-producer-name", "loader", "-pulsar-message-key", "k1",
                                           "-pulsar-message-properties", "a=1,b=x=y"], environ=clean_env())
    assert ident == "1:0:-1:0"
    assert call(broker, "create_producer")[1:] == ("jobs", {"producer_name": "loader", "send_timeout_millis": 30000})
    sent = call(broker, "send")
    assert sent[1:] == (b"\x00payload\xff", {"partition_key": "k1", "properties": {"a": "1", "b": "x=y"}})
    assert ("producer.close",) in broker.calls and ("client.close",) in broker.calls


def test_fake_plain_send_has_no_key_or_properties(broker: FakeBroker) -> None:
    api.pushx(b"x", BASE, environ=clean_env())
    assert call(broker, "send")[2] == {}
    assert call(broker, "create_producer")[2]["producer_name"] is None


def test_fake_ack_after_success_nack_after_failure_and_attempts(broker: FakeBroker) -> None:
    api.pushx(b"job", [*BASE, "-pulsar-message-key", "k", "-pulsar-message-properties", "p=v"], environ=clean_env())
    with pytest.raises(RuntimeError), api.work([*BASE, *SUB], environ=clean_env()) as work:
        assert work.attempt == 1
        assert work.meta == {"topic": "persistent://public/default/jobs", "key": "k", "properties": {"p": "v"}}
        raise RuntimeError("child failed")
    assert ("negative_acknowledge", "1:0:-1:0") in broker.calls
    assert not any(c[0] == "acknowledge" for c in broker.calls)
    with api.work([*BASE, *SUB], environ=clean_env()) as work:
        assert work.payload == b"job"
        assert work.attempt == 2  # redelivery count + 1
        assert work.id == "1:0:-1:0"
    assert ("acknowledge", "1:0:-1:0") in broker.calls
    assert broker.topics["jobs"] == deque()


def test_fake_one_consumer_for_many_messages(broker: FakeBroker) -> None:
    """The original subscribed again in each daemon iteration ("consumer busy" on an exclusive subscription)."""
    for body in (b"a", b"b", b"c"):
        api.pushx(body, BASE, environ=clean_env())
    seen = []
    for work in api.consume([*BASE, *SUB], environ=clean_env()):
        seen.append(work.payload)
        work.clear()
    assert seen == [b"a", b"b", b"c"]
    assert sum(1 for c in broker.calls if c[0] == "subscribe") == 1
    assert [c[0] for c in broker.calls[-2:]] == ["consumer.close", "client.close"]


def test_fake_no_message_is_no_work(broker: FakeBroker) -> None:
    assert api.procx([*BASE, *SUB], environ=clean_env()) is None
    assert ("consumer.close",) in broker.calls


# -- errors ------------------------------------------------------------------------------------------------------
def test_fake_broker_errors_are_exit_69_naming_the_address_not_the_token(broker: FakeBroker) -> None:
    broker.fail_on["subscribe"] = pulsar.ConnectError("Pulsar error: ConnectError")
    with pytest.raises(ProcxError) as err:
        api.procx([*BASE, *SUB, "-pulsar-auth-token", TOKEN], environ=clean_env())
    assert err.value.exit_code == 69
    assert "broker:6650" in str(err.value) and "subscribe 'procx'" in str(err.value)
    assert TOKEN not in str(err.value)
    broker.fail_on["send"] = pulsar.ProducerQueueIsFull("full")
    with pytest.raises(ProcxError) as err:
        api.pushx(b"x", BASE, environ=clean_env())
    assert err.value.exit_code == 69 and "send to topic 'jobs'" in str(err.value)


def test_fake_failed_ack_is_an_error(broker: FakeBroker) -> None:
    api.pushx(b"x", BASE, environ=clean_env())
    broker.fail_on["acknowledge"] = pulsar.AlreadyClosed("closed")
    with pytest.raises(ProcxError) as err, api.work([*BASE, *SUB], environ=clean_env()):
        pass
    assert "acknowledge message" in str(err.value)


@pytest.mark.parametrize(("tool", "extra", "flag"), [
    ("procx", ["-driver", "pulsar", "-pulsar-topic", "t", *SUB], "-pulsar-address"),
    ("procx", [*BASE], "-pulsar-subscription"),
    ("procx", ["-driver", "pulsar", "-pulsar-address", "h:1", *SUB], "-pulsar-topic"),
    ("procx", [*BASE, *SUB, "-pulsar-topics-pattern", "("], "-pulsar-topics-pattern"),
    ("procx", [*BASE, *SUB, "-pulsar-subscription-type", "fanout"], "-pulsar-subscription-type"),
    ("pushx", [*BASE, "-pulsar-auth-cert-file", "/etc/hostname"], "-pulsar-auth-key-file"),
    ("pushx", [*BASE, "-pulsar-auth-token", "t", "-pulsar-auth-token-file", "/etc/hostname"], "authentication"),
    ("pushx", [*BASE, "-pulsar-auth-token-file", "/nonexistent"], "-pulsar-auth-token-file"),
    ("pushx", [*BASE, "-pulsar-auth-oauth-params", '{"a": 1}'], "-pulsar-auth-oauth-params"),
    ("pushx", [*BASE, "-pulsar-auth-oauth-params", "{bad"], "-pulsar-auth-oauth-params"),
    ("pushx", [*BASE, "-pulsar-tls-allow-insecure-connection"], "without TLS"),
    ("pushx", [*BASE, "-pulsar-message-properties", "novalue"], "-pulsar-message-properties"),
    ("pushx", ["-driver", "pulsar", "-pulsar-address", "http://h:1", "-pulsar-topic", "t"], "-pulsar-address"),
])
def test_usage_errors_exit_2_naming_the_flag(tool: str, extra: list[str], flag: str) -> None:
    done = run(tool, *extra, *(["-in", "x"] if tool == "pushx" else ["true"]))
    assert done.returncode == 2, done.stderr.decode()
    assert flag in done.stderr.decode()


def test_secret_options_are_masked() -> None:
    from core import settings

    _, config = settings.load("pushx", [*BASE, "-pulsar-auth-oauth-params", '{"client_secret":"S3CRET"}'],
                              clean_env())
    assert "S3CRET" not in str(config.masked())
    _, config = settings.load("pushx", [*BASE, "-pulsar-auth-token", TOKEN], clean_env())
    assert config.masked()["pulsar-auth-token"] == "********"
