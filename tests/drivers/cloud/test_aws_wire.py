"""drivers/aws/wire.py, the SigV4 JSON client aws-sqs uses when the setup is plain: signatures equal botocore's,
the choice between it and boto3, the same work and the same errors through both on the moto server, retries."""

from __future__ import annotations

import datetime
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from drivers.aws import wire
from tests.drivers.cloud.conftest import Moto
from tests.drivers.cloud.test_aws_sqs import counts, make_queue, sqs_args
from tests.support import run

NOW = datetime.datetime(2026, 11, 26, 21, 5, 9, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("url", "token", "body"), [
    ("https://sqs.eu-west-1.amazonaws.com", "", b'{"QueueUrl":"q","MessageBody":"x"}'),
    ("http://127.0.0.1:4566", "session-token/with+odd=chars", '{"MessageBody":"żółw \u2603 <&>"}'.encode()),
    ("https://vpce-1.sqs.eu-west-1.vpce.amazonaws.com:8443/", "", b""),
])
def test_signature_equals_botocores(url: str, token: str, body: bytes) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    client = wire.JsonClient("sqs", "AmazonSQS", url, "eu-west-1", wire.Credentials("AKIDEXAMPLE", "s3cr3t", token))
    headers = {"Host": client.host, "Content-Type": "application/x-amz-json-1.0",
               "X-Amz-Target": "AmazonSQS.SendMessage"}
    mine = wire.sign(headers, body, client.creds, "eu-west-1", "sqs", now=NOW.timestamp(), path=client.path)
    theirs = AWSRequest(method="POST", url=url, data=body, headers={k: v for k, v in headers.items() if k != "Host"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials("AKIDEXAMPLE", "s3cr3t", token or None), "sqs", "eu-west-1").add_auth(theirs)
    assert mine["Authorization"] == theirs.headers["Authorization"]
    assert mine["X-Amz-Date"] == theirs.headers["X-Amz-Date"] == "20261126T210509Z"
    assert "s3cr3t" not in repr(client.creds)


PLAIN = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}


@pytest.mark.parametrize(("env", "role", "expected"), [
    ({**PLAIN}, "", "https://sqs.eu-west-1.amazonaws.com"),
    ({**PLAIN, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "", "http://127.0.0.1:1"),
    ({**PLAIN, "AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_SQS": "http://b:2"}, "", "http://b:2"),
    ({"AWS_ACCESS_KEY_ID": "k"}, "", None),  # no secret: boto3's credential chain
    ({}, "", None),  # instance/task roles, web identity, SSO, shared files
    ({**PLAIN}, "arn:aws:iam::1:role/r", None),
    ({**PLAIN, "HTTPS_PROXY": "http://proxy:3128"}, "", None),
    ({**PLAIN, "AWS_CONFIG_FILE": "/x"}, "", None),
    ({**PLAIN, "AWS_USE_FIPS_ENDPOINT": "true"}, "", None),
    ({**PLAIN, "AWS_CA_BUNDLE": "/no/such/bundle.pem"}, "", None),
    ({**PLAIN, "AWS_ENDPOINT_URL": "unix:///x"}, "", None),
])
def test_the_small_client_only_when_the_setup_is_plain(env: dict, role: str, expected: str | None,
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_SQS", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", *wire._PROXIES, *wire._BOTO_ONLY):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    found = wire.plain({"aws-role-arn": role, "aws-load-config": False}, "sqs", "eu-west-1")
    assert (found[0] if found else None) == expected
    if expected == "https://sqs.eu-west-1.amazonaws.com":  # other partitions' domains are boto3's to resolve
        assert wire.plain({"aws-role-arn": "", "aws-load-config": False}, "sqs", "cn-north-1") is None
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nendpoint_url = http://elsewhere\n")
    assert wire.plain({"aws-role-arn": role, "aws-load-config": False}, "sqs", "eu-west-1") is None


# -- the same work and the same errors through both clients, on moto ----------------------------------------
def test_each_client_is_the_one_used(aws: Moto, through: dict[str, str], unique: str) -> None:
    url = make_queue(aws, unique)
    script = ("import sys; from core import api; api.pushx(b'x', sys.argv[1:]); "
              "print('boto3' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, *sqs_args(url)], env=through, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == str("AWS_CONFIG_FILE" in through)


def test_round_trip_fail_and_clear_through_either_client(aws: Moto, through: dict[str, str], unique: str) -> None:
    url = make_queue(aws, unique)
    text = "żółw \u2603 <&> \t\r\n"
    assert run("pushx", *sqs_args(url), "-in", text, env=through).returncode == 0
    failed = run("procx", *sqs_args(url), sys.executable, "-c", "raise SystemExit(3)", env=through)
    assert failed.returncode == 3
    done = run("procx", *sqs_args(url), "-log-format", "json", sys.executable, "-c",
               "import os, sys; sys.stdout.write(os.environ['PROCX_PAYLOAD'] + os.environ['PROCX_ATTEMPT'])",
               env=through)
    assert done.returncode == 0
    assert done.stdout.decode() == text + "2"
    assert counts(aws, url) == (0, 0)  # cleared
    empty = run("procx", *sqs_args(url, "-wait-for-work", "0"), "false", env=through)
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, b"", b"")  # no work: the child never ran


def test_same_errors_through_either_client(aws: Moto, through: dict[str, str], unique: str) -> None:
    missing = f"{aws.endpoint}/123456789012/procx-missing-{unique}"
    for tool in ("pushx", "procx"):
        extra = ("-in", "x") if tool == "pushx" else ("true",)
        done = run(tool, *sqs_args(missing), *extra, env=through)
        assert done.returncode == 69
        assert done.stderr.decode().strip().splitlines() == [
            f"{tool}: driver aws-sqs: queue {missing} does not exist (at {aws.endpoint})"]
    closed = dict(through, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    done = run("pushx", *sqs_args(missing), "-in", "x", env=closed)
    assert done.returncode == 69
    assert "cannot connect to http://127.0.0.1:9" in done.stderr.decode()


# -- retries and error pages (a local HTTP fake: moto cannot be made to fail on purpose) ---------------------
@pytest.fixture
def flaky() -> Iterator[tuple[str, list, list]]:
    """An HTTP server answering with the scripted (status, body) answers in turn; the requests it got."""
    answers: list[tuple[int, bytes]] = []
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            seen.append({"target": self.headers["X-Amz-Target"], "auth": self.headers["Authorization"],
                         "body": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers, seen
    finally:
        server.shutdown()
        server.server_close()


def test_retries_server_errors_then_reports_one_line_local_http_fake(flaky, monkeypatch) -> None:
    endpoint, answers, seen = flaky
    monkeypatch.setattr(wire.time, "sleep", lambda seconds: None)
    client = wire.JsonClient("sqs", "AmazonSQS", endpoint, "us-east-1", wire.Credentials("k", "s"), timeout=5)
    answers += [(500, b'{"__type":"com.amazonaws.sqs#InternalError","message":"try again"}'),
                (200, b'{"MessageId":"m-1"}')]
    assert client.call("SendMessage", {"QueueUrl": "q", "MessageBody": "x"}) == {"MessageId": "m-1"}
    assert [r["target"] for r in seen] == ["AmazonSQS.SendMessage"] * 2
    assert seen[0]["body"] == {"QueueUrl": "q", "MessageBody": "x"}
    answers += [(502, b"<html>bad gateway</html>")] * wire.RETRIES
    with pytest.raises(wire.WireError) as caught:
        client.call("SendMessage", {})
    assert str(caught.value) == "HTTP 502: the server answered with an error page"
    answers.append((400, b'{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"bad\\n  value"}'))
    with pytest.raises(wire.WireError) as caught:
        client.call("SendMessage", {})
    assert caught.value.response["Error"] == {"Code": "InvalidParameterValue", "Message": "bad value"}
    assert len(seen) == 2 + wire.RETRIES + 1  # a client error is not retried
    client.close()
