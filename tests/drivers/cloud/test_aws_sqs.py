"""aws-sqs against the moto server: the conformance suite plus long polling, fail = visible at once, the
heartbeat, include-id, byte-for-byte bodies (no trimming), message attributes, FIFO ids and batches of 10.

Queues are created with a VisibilityTimeout of 2 s so that the kill -9 test sees the message again quickly.
SQS bodies are XML text: the suite's payloads with NUL bytes or non-UTF-8 bytes (and its 1 MiB binary payload)
cannot be SQS messages; pushx refuses them with a clear error (tested below) and the suite skips them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import api
from core.errors import ProviderError
from tests.conformance import PAYLOADS, Backend, Conformance
from tests.drivers.cloud.conftest import Moto, free_port
from tests.support import command, run, wait_for

UNSENDABLE = {"nul-bytes", "non-utf8", "one-mib"}


def make_queue(moto: Moto, unique: str, visibility: int = 2, fifo: bool = False, **attrs: str) -> str:
    attributes = {"VisibilityTimeout": str(visibility), **attrs}
    if fifo:
        attributes["FifoQueue"] = "true"
    name = f"procx-{unique}" + (".fifo" if fifo else "")
    return moto.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def counts(moto: Moto, url: str) -> tuple[int, int]:
    attrs = moto.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    a = attrs["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


class SqsBackend(Backend):
    driver = "aws-sqs"
    supports_empty = False  # SQS bodies hold at least one character (pushx refuses an empty payload)
    ordered = False
    redelivery_wait = 2.0

    def __init__(self, moto: Moto, url: str) -> None:
        self.moto = moto
        self.url = url

    def common_args(self) -> list[str]:
        return ["-driver", "aws-sqs", "-aws-sqs-queue-url", self.url]

    def pending(self) -> int:
        return sum(counts(self.moto, self.url))

    def env(self) -> dict[str, str]:
        return self.moto.env()


class TestSqsConformance(Conformance):
    @pytest.fixture
    def backend(self, aws: Moto, unique: str) -> SqsBackend:
        return SqsBackend(aws, make_queue(aws, unique))

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_round_trip_byte_for_byte(self, backend: Backend, name: str) -> None:
        if name in UNSENDABLE:
            pytest.skip("SQS message bodies are XML text: pushx refuses this payload (see the tests below)")
        super().test_round_trip_byte_for_byte(backend, name)

    def test_child_receives_payload_on_stdin(self, backend: Backend, tmp_path: Path) -> None:
        payload = PAYLOADS["unicode"] + b"\r\n\t <x>&amp;"
        backend.pushx(payload)
        out = tmp_path / "got"
        done = backend.procx(sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer"
                             ".read())", str(out), extra=("-pass-work-as-stdin",))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert out.read_bytes() == payload
        assert backend.pending() == 0


def sqs_args(url: str, *extra: str) -> list[str]:
    return ["-driver", "aws-sqs", "-aws-sqs-queue-url", url, *extra]


def receive(moto: Moto, url: str, **extra) -> list[dict]:
    return moto.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                              MessageAttributeNames=["All"], **extra).get("Messages", [])


def test_whitespace_and_text_round_trip_unchanged(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    payload = "  spaced \n\ttabs\r\n 東京 🚀 \n".encode()
    assert run("pushx", *sqs_args(url), input=payload, env=aws.env()).returncode == 0
    assert run("procx", *sqs_args(url), env=aws.env()).stdout == payload  # the original trimmed it


def test_a_large_text_payload_round_trips(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    payload = ("x" * 1000 + "\n").encode() * 200  # 200 KiB: below SQS's 256 KiB limit
    api.pushx(payload, sqs_args(url))
    assert api.procx(sqs_args(url)) == payload


@pytest.mark.parametrize(("payload", "message"), [
    (b"a\x00b", b"U+0000 at byte offset 1"),
    (b"ok\xff", b"not UTF-8 text (byte 0xff at offset 2)"),
    (b"\x1b[0m", b"U+001B at byte offset 0"),
    (b"", b"an empty payload cannot be sent"),
])
def test_payloads_sqs_cannot_carry_are_refused_and_nothing_is_sent(aws: Moto, unique: str, payload: bytes,
                                                                   message: bytes, tmp_path: Path) -> None:
    url = make_queue(aws, unique)
    out = tmp_path / "out"
    done = run("pushx", *sqs_args(url, "-out", str(out)), input=payload, env=aws.env())
    assert done.returncode == 69
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1
    assert counts(aws, url) == (0, 0)
    assert not out.exists()


def test_fail_makes_the_message_visible_at_once_and_attempt_counts(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique, visibility=60)
    api.pushx(b"job", sqs_args(url))
    started = time.monotonic()
    assert run("procx", *sqs_args(url), "false", env=aws.env()).returncode == 1
    done = run("procx", *sqs_args(url, "-log-format", "json", "-wait-for-work", "0"), env=aws.env())
    assert time.monotonic() - started < 30  # not after the 60 s visibility timeout
    assert done.stdout == b"job"
    got = [json.loads(line) for line in done.stderr.splitlines() if b'"got"' in line]
    assert got[0]["attempt"] == 2  # ApproximateReceiveCount
    assert counts(aws, url) == (0, 0)


@pytest.mark.slow
def test_heartbeat_keeps_a_long_job_from_being_delivered_twice(aws: Moto, unique: str, tmp_path: Path) -> None:
    url = make_queue(aws, unique, visibility=1)
    api.pushx(b"long job", sqs_args(url))
    marker = tmp_path / "started"
    script = f"import time; open({str(marker)!r}, 'w').close(); time.sleep(3.5)"
    proc = subprocess.Popen([command("procx"), *sqs_args(url), sys.executable, "-c", script], env=aws.env())
    try:
        wait_for(marker.exists)
        seen = []
        while proc.poll() is None:  # a second consumer polls for 3.5 s: three visibility timeouts
            seen += receive(aws, url)
            time.sleep(0.1)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen == []
    assert counts(aws, url) == (0, 0)


def test_without_heartbeat_a_long_job_is_visible_again(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique, visibility=1)
    api.pushx(b"job", sqs_args(url))
    with api.work(sqs_args(url, "-aws-sqs-heartbeat=false")) as work:
        assert work is not None
        got = wait_for(lambda: receive(aws, url), timeout=5)  # redelivered to a second consumer after 1 s
        assert got[0]["Body"] == "job"


def test_visibility_timeout_option_overrides_the_queue(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique, visibility=1)
    api.pushx(b"job", sqs_args(url))
    with api.work(sqs_args(url, "-aws-sqs-visibility-timeout", "30", "-aws-sqs-heartbeat=false")) as work:
        assert work is not None
        time.sleep(1.5)
        assert receive(aws, url) == []


def test_include_id_wraps_in_the_originals_order_with_go_escaping(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    ident = api.pushx(b"<a&b> \xc3\xa9", sqs_args(url))
    out = run("procx", *sqs_args(url, "-aws-sqs-include-id"), env=aws.env()).stdout
    assert out == ('{"id":"' + ident + '","body":"\\u003ca\\u0026b\\u003e \u00e9"}').encode()


def test_long_polling_waits_for_a_message(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    timer = threading.Timer(1.0, lambda: api.pushx(b"late", sqs_args(url)))
    timer.start()
    try:
        done = run("procx", *sqs_args(url, "-wait-for-work", "15s"), env=aws.env())
    finally:
        timer.join()
    assert done.stdout == b"late"


def test_no_wait_returns_at_once(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    started = time.monotonic()
    done = run("procx", *sqs_args(url, "-wait-for-work", "0"), env=aws.env())
    assert (done.returncode, done.stdout) == (0, b"")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("spec", ['{"kind": "x=1", "n": 2, "t": {"DataType": "String.t", "StringValue": "v"}}',
                                  "kind=x=1,n=2"])
def test_pushx_message_attributes(aws: Moto, unique: str, spec: str) -> None:
    url = make_queue(aws, unique)
    api.pushx(b"m", sqs_args(url, "-aws-sqs-message-attributes", spec))
    attrs = receive(aws, url)[0]["MessageAttributes"]
    assert attrs["kind"] == {"StringValue": "x=1", "DataType": "String"}
    assert attrs["n"]["StringValue"] == "2"
    if spec.startswith("{"):
        assert attrs["n"]["DataType"] == "Number"
        assert attrs["t"] == {"StringValue": "v", "DataType": "String.t"}


def test_fifo_group_and_deduplication_ids_from_the_payload(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique, fifo=True)
    args = sqs_args(url, "-aws-sqs-message-group-id", "g-{{user}}", "-aws-sqs-message-deduplication-id", "{{id}}")
    for payload in (b'{"id": "1", "user": "ann"}', b'{"id": "1", "user": "ann"}', b'{"id": "2", "user": "bob"}'):
        api.pushx(payload, args)
    got = receive(aws, url)
    assert sorted(m["Attributes"]["MessageGroupId"] for m in got) == ["g-ann", "g-bob"]  # the duplicate dropped


def test_fifo_queue_without_group_id_is_a_clear_error(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique, fifo=True)
    done = run("pushx", *sqs_args(url), input=b"x", env=aws.env())
    assert done.returncode == 69
    assert b"driver aws-sqs: cannot send to" in done.stderr
    assert b"MessageGroupId" in done.stderr


def test_push_many_sends_batches_of_ten(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    payloads = [f"m-{i:02d}".encode() for i in range(23)]
    with api.Producer(sqs_args(url)) as producer:
        ids = producer.push_many(payloads)
    assert len(ids) == 23 and all(ids)
    bodies = []
    while batch := receive(aws, url):
        bodies += [m["Body"] for m in batch]
    assert sorted(bodies) == [p.decode() for p in payloads]


def test_push_many_refuses_a_bad_payload_before_sending_anything(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    with pytest.raises(ProviderError, match="U\\+0000"), api.Producer(sqs_args(url)) as producer:
        producer.push_many([b"ok"] * 12 + [b"\x00"])
    assert counts(aws, url) == (0, 0)


def test_push_many_reports_partial_failures_fake_client() -> None:
    """moto never fails part of a batch: a fake client behind the driver's seam does."""
    from drivers.aws.sqs import SqsSink

    class FakeSqs:
        calls: list[int] = []

        def call(self, action: str, params: dict) -> dict:
            assert action == "SendMessageBatch"
            Entries = params["Entries"]  # noqa: N806 - SQS's name
            self.calls.append(len(Entries))
            return {"Successful": [{"Id": e["Id"], "MessageId": "m" + e["Id"]} for e in Entries if e["Id"] != "11"],
                    "Failed": [{"Id": "11", "Code": "InternalError", "Message": "try again", "SenderFault": False}]
                    if any(e["Id"] == "11" for e in Entries) else []}

    sink = SqsSink.__new__(SqsSink)
    sink.config = {"aws-sqs-message-group-id": "", "aws-sqs-message-deduplication-id": ""}
    sink.url, sink.attributes, sink.sqs, sink.endpoint, sink.errors = "u", {}, FakeSqs(), "e", (RuntimeError,)
    with pytest.raises(ProviderError, match=r"1 of 15 messages were not sent: #11: InternalError try again"):
        sink.push_many([b"x"] * 15)
    assert FakeSqs.calls == [10, 5]


def test_region_falls_back_to_aws_region(aws: Moto, unique: str) -> None:
    import boto3

    sqs = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                region_name="eu-west-1").client("sqs", endpoint_url=aws.endpoint)
    url = sqs.create_queue(QueueName=f"procx-{unique}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="eu")
    assert run("procx", *sqs_args(url), env=aws.env(AWS_REGION="eu-west-1")).stdout == b"eu"
    now_empty = run("procx", *sqs_args(url, "-aws-region", "eu-west-1", "-wait-for-work", "0"), env=aws.env())
    assert now_empty.stdout == b""
    done = run("procx", *sqs_args(url), env=aws.env())  # us-east-1 has no such queue
    assert done.returncode == 69
    assert b"does not exist" in done.stderr


def test_assumed_role_through_sts(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    role = "arn:aws:iam::123456789012:role/procx-worker"
    api.pushx(b"as role", sqs_args(url, "-aws-role-arn", role))
    assert run("procx", *sqs_args(url), env=aws.env(PROCX_AWS_ROLE_ARN=role)).stdout == b"as role"


def test_missing_queue_is_a_clear_error(aws: Moto) -> None:
    url = f"{aws.endpoint}/123456789012/procx-missing"
    for tool in ("procx", "pushx"):
        done = run(tool, *sqs_args(url), input=b"x", env=aws.env())
        assert done.returncode == 69, done.stderr
        assert f"driver aws-sqs: queue {url} does not exist".encode() in done.stderr
        assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_endpoint_is_one_line_naming_driver_and_endpoint(aws: Moto, tool: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    done = run(tool, *sqs_args(f"{endpoint}/123456789012/q"), input=b"x",
               env=aws.env(AWS_ENDPOINT_URL=endpoint, AWS_MAX_ATTEMPTS="1"))
    assert done.returncode == 69
    assert b"driver aws-sqs" in done.stderr and endpoint.encode() in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["-driver", "aws-sqs"], b"-aws-sqs-queue-url is required"),
    (sqs_args("u", "-aws-sqs-wait-time", "21"), b"-aws-sqs-wait-time: must be 0 to 20"),
])
def test_bad_settings_are_usage_errors(aws: Moto, argv: list[str], message: bytes) -> None:
    done = run("procx", *argv, env=aws.env())
    assert done.returncode == 2
    assert message in done.stderr


def test_bad_message_attributes_are_usage_errors(aws: Moto) -> None:
    done = run("pushx", *sqs_args("u", "-aws-sqs-message-attributes", "novalue"), input=b"x", env=aws.env())
    assert done.returncode == 2
    assert b"-aws-sqs-message-attributes: 'novalue' is not k=v" in done.stderr


def test_help_does_not_import_boto3() -> None:
    from tests.test_lazy_imports import modules_after

    status, modules = modules_after("procx", "-driver", "aws-sqs", "-h")
    assert status == 0
    assert not modules & {"boto3", "botocore"}


def test_per_service_endpoint_variable_wins(aws: Moto, unique: str) -> None:
    url = make_queue(aws, unique)
    dead = f"http://127.0.0.1:{free_port()}"
    env = aws.env(AWS_ENDPOINT_URL=dead, AWS_ENDPOINT_URL_SQS=aws.endpoint)
    assert run("pushx", *sqs_args(url), input=b"via sqs endpoint", env=env).returncode == 0
    assert run("procx", *sqs_args(url), env=env).stdout == b"via sqs endpoint"


def test_load_config_reads_profiles_from_the_shared_config(aws: Moto, unique: str, tmp_path: Path) -> None:
    url = make_queue(aws, unique)
    api.pushx(b"profiled", sqs_args(url))
    config = tmp_path / "config"
    config.write_text(f"[profile emu]\nregion = us-east-1\nendpoint_url = {aws.endpoint}\n")
    env = aws.env(AWS_CONFIG_FILE=str(config), AWS_PROFILE="emu")
    env.pop("AWS_ENDPOINT_URL")
    assert run("procx", *sqs_args(url, "-aws-load-config"), env=env).stdout == b"profiled"


def test_failed_messages_reach_the_dead_letter_queue_of_the_redrive_policy(aws: Moto, unique: str) -> None:
    dlq = make_queue(aws, unique + "-dlq")
    arn = aws.client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = make_queue(aws, unique, RedrivePolicy=json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"}))
    api.pushx(b"poison", sqs_args(url))
    for _ in range(2):
        assert run("procx", *sqs_args(url), "false", env=aws.env()).returncode == 1
    assert run("procx", *sqs_args(url, "-wait-for-work", "0"), env=aws.env()).stdout == b""
    assert [m["Body"] for m in receive(aws, dlq)] == ["poison"]


# -- queue depth (procx-tui depth / check; the number KEDA's aws-sqs-queue scaler reads by default) ----------
def test_depth_is_approximate_number_of_messages_without_in_flight(aws: Moto, unique: str) -> None:
    from core.api import _source, _take

    url = make_queue(aws, unique, visibility=60)
    with api.Producer(sqs_args(url)) as producer:
        producer.push_many([f"job-{i}".encode() for i in range(6)])
    source = _source(sqs_args(url, "-aws-sqs-heartbeat=false", "-aws-sqs-wait-time", "0"), None)
    try:
        assert source.depth() == 6 == counts(aws, url)[0]
        work = _take(source, 0)
        assert work is not None
        # the taken message is in flight (ApproximateNumberOfMessagesNotVisible): KEDA's default does not count it
        assert source.depth() == 5
        assert counts(aws, url) == (5, 1)
        source.clear(work)
        assert source.depth() == 5 and counts(aws, url) == (5, 0)
    finally:
        source.close()
