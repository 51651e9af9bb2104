"""gcp-gcs against gcp-storage-emulator: the conformance suite, the original's selection and mv/rm rules, and
the fixes (nested regex matches, per-item state, generation-safe rm/mv, clear errors).

The driver reaches the emulator only through STORAGE_EMULATOR_HOST (the storage library then uses anonymous
credentials by itself). Note: the emulator answers every listing in one page, so paging is exercised only by the
library's iterator, not by these tests; and it ignores generation preconditions, so the driver's
"an object replaced while the child ran is left in place" (if_generation_match on delete) is not tested here.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.drivers.cloud.gcs_server import GcsServer
from tests.support import clean_env, run


def _env(server: GcsServer) -> dict[str, str]:
    env = clean_env(STORAGE_EMULATOR_HOST=server.host)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return env


@pytest.fixture
def client(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch):
    """A storage client on the emulator; in-process procx/pushx calls see the same variable."""
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.host)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return storage.Client(project="px-test")


@pytest.fixture
def bucket(client) -> Iterator[str]:
    name = f"px-{uuid.uuid4().hex[:16]}"
    client.create_bucket(name)
    yield name
    b = client.bucket(name)
    for blob in client.list_blobs(name):
        blob.delete()
    b.delete()


class GcsBackend(Backend):
    driver = "gcp-gcs"
    redelivery_wait = 1.0

    def __init__(self, server: GcsServer, client, bucket: str) -> None:
        self.server, self.client, self.bucket = server, client, bucket

    def env(self) -> dict[str, str]:
        return _env(self.server)

    def common_args(self) -> list[str]:
        return ["-driver", "gcp-gcs", "-gcp-gcs-bucket", self.bucket]

    def push_args(self, n: int) -> list[str]:
        return ["-gcp-gcs-key", f"jobs/job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-gcp-gcs-key-prefix", "jobs/", "-gcp-gcs-clear-op", "rm"]

    def pending(self) -> int:
        return sum(1 for _ in self.client.list_blobs(self.bucket))


class TestGcsConformance(Conformance):
    @pytest.fixture
    def backend(self, gcs_server: GcsServer, client, bucket: str) -> GcsBackend:
        return GcsBackend(gcs_server, client, bucket)


def names(client, bucket: str) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in client.list_blobs(bucket)}


def put(client, bucket: str, **objects: bytes) -> None:
    for name, data in objects.items():
        client.bucket(bucket).blob(name.replace("__", "/")).upload_from_string(data)


def gcs(bucket: str, *extra: str) -> list[str]:
    return ["-driver", "gcp-gcs", "-gcp-gcs-bucket", bucket, *extra]


def test_regex_sees_nested_objects_and_takes_the_first_in_name_order(gcs_server, client, bucket) -> None:
    put(client, bucket, a__b__c__job_1=b"deep", top=b"top", z_job=b"last")
    args = gcs(bucket, "-gcp-gcs-key-regex", "job", "-gcp-gcs-clear-op", "rm")
    assert run("procx", *args, env=_env(gcs_server)).stdout == b"deep"  # the original saw only top-level objects
    assert run("procx", *args, env=_env(gcs_server)).stdout == b"last"
    assert run("procx", *args, env=_env(gcs_server)).stdout == b""
    assert names(client, bucket) == {"top": b"top"}


def test_mv_with_key_template_to_another_bucket(gcs_server, client, bucket) -> None:
    done = f"px-{uuid.uuid4().hex[:16]}"
    client.create_bucket(done)
    try:
        put(client, bucket, in__j1=b"one", in__j2=b"two")
        args = gcs(bucket, "-gcp-gcs-key-prefix", "in/", "-gcp-gcs-clear-op", "mv", "-gcp-gcs-clear-bucket", done,
                   "-gcp-gcs-clear-key-template", "ok/{{key}}")
        for _ in range(2):  # one after the other: the first key does not stick (original bug #21/#22)
            assert run("procx", *args, "true", env=_env(gcs_server)).returncode == 0
        assert names(client, done) == {"ok/in/j1": b"one", "ok/in/j2": b"two"}
        assert names(client, bucket) == {}
    finally:
        for blob in client.list_blobs(done):
            blob.delete()
        client.bucket(done).delete()


def test_mv_default_key_is_the_items_own(gcs_server, client, bucket) -> None:
    put(client, bucket, in__a=b"a", in__b=b"b")
    args = gcs(bucket, "-gcp-gcs-key-prefix", "in/", "-gcp-gcs-clear-op", "mv", "-gcp-gcs-clear-bucket", bucket,
               "-gcp-gcs-clear-key-template", "done/{{key}}")
    for _ in range(3):
        run("procx", *args, "true", env=_env(gcs_server))
    assert names(client, bucket) == {"done/in/a": b"a", "done/in/b": b"b"}


def test_fail_mv_into_the_same_bucket_is_not_taken_again(gcs_server, client, bucket) -> None:
    put(client, bucket, j1=b"one")
    args = gcs(bucket, "-gcp-gcs-key-regex", ".", "-gcp-gcs-fail-op", "mv", "-gcp-gcs-fail-bucket", bucket,
               "-gcp-gcs-fail-key-template", "failed/{{key}}")
    assert run("procx", *args, "false", env=_env(gcs_server)).returncode == 1
    assert names(client, bucket) == {"failed/j1": b"one"}
    assert run("procx", *args, env=_env(gcs_server)).stdout == b""


def test_fail_rm_and_fail_without_op(gcs_server, client, bucket) -> None:
    put(client, bucket, j1=b"x")
    assert run("procx", *gcs(bucket, "-gcp-gcs-key", "j1"), "false", env=_env(gcs_server)).returncode == 1
    assert names(client, bucket) == {"j1": b"x"}  # no fail op: offered again
    assert run("procx", *gcs(bucket, "-gcp-gcs-key", "j1", "-gcp-gcs-fail-op", "rm"), "false",
               env=_env(gcs_server)).returncode == 1
    assert names(client, bucket) == {}


def test_nothing_found_is_no_work(gcs_server, client, bucket, tmp_path) -> None:
    marker = tmp_path / "ran"
    for selector in (("-gcp-gcs-key", "absent"), ("-gcp-gcs-key-prefix", "none/"), ("-gcp-gcs-key-regex", "x")):
        done = run("procx", *gcs(bucket, *selector), "touch", str(marker), env=_env(gcs_server))
        assert (done.returncode, done.stdout, marker.exists()) == (0, b"", False), done.stderr


def test_pushx_large_payload_is_uploaded_resumably(gcs_server, client, bucket) -> None:
    payload = os.urandom(9 * 1024 * 1024 + 17)
    done = run("pushx", *gcs(bucket, "-gcp-gcs-key", "big.bin"), input=payload, env=_env(gcs_server))
    assert done.returncode == 0, done.stderr
    assert client.bucket(bucket).blob("big.bin").download_as_bytes() == payload


def test_pushx_key_template_from_the_json_payload(gcs_server, client, bucket) -> None:
    payload = json.dumps({"id": 42, "kind": "report"}).encode()
    key = api.pushx(payload, gcs(bucket, "-gcp-gcs-key", "{{kind}}/{{id}}.json"))
    assert key == "report/42.json"
    assert names(client, bucket) == {"report/42.json": payload}


@pytest.mark.parametrize(("side", "extra", "message"), [
    ("procx", (), b"-gcp-gcs-key, -gcp-gcs-key-prefix or -gcp-gcs-key-regex: one is required"),
    ("procx", ("-gcp-gcs-key-regex", "("), b"-gcp-gcs-key-regex: invalid regular expression"),
    ("procx", ("-gcp-gcs-key", "k", "-gcp-gcs-clear-op", "mv"), b"-gcp-gcs-clear-bucket is required"),
    ("procx", ("-gcp-gcs-key", "k", "-gcp-gcs-fail-op", "copy"), b"-gcp-gcs-fail-op (PROCX_GCP_GCS_FAIL_OP)"),
    ("pushx", (), b"-gcp-gcs-key (PUSHX_GCP_GCS_KEY) is required"),
])
def test_bad_settings_are_usage_errors(gcs_server, bucket, side, extra, message) -> None:
    done = run(side, *gcs(bucket, *extra), input=b"x", env=_env(gcs_server))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_missing_bucket_is_a_clear_error(gcs_server) -> None:
    for tool in ("procx", "pushx"):
        done = run(tool, *gcs("px-no-such-bucket", "-gcp-gcs-key", "k"), input=b"x", env=_env(gcs_server))
        assert done.returncode == 69
        assert b"bucket 'px-no-such-bucket' does not exist" in done.stderr
        assert done.stderr.count(b"\n") == 1


@pytest.mark.slow
def test_unreachable_emulator_is_one_line_naming_the_host(gcs_server, client, bucket) -> None:
    put(client, bucket, k=b"keep")
    env = clean_env(STORAGE_EMULATOR_HOST="http://127.0.0.1:9")
    done = run("procx", *gcs(bucket, "-gcp-gcs-key", "k", "-gcp-gcs-clear-op", "rm"), env=env)
    assert done.returncode == 69
    assert done.stderr.startswith(b"procx: driver gcp-gcs: cannot reach http://127.0.0.1:9")
    assert done.stderr.count(b"\n") == 1
    assert names(client, bucket) == {"k": b"keep"}


def test_variables_configure_both_sides(gcs_server, client, bucket) -> None:
    env = _env(gcs_server) | {"PUSHX_GCP_GCS_BUCKET": bucket, "PUSHX_GCP_GCS_KEY": "v/1",
                              "PROCX_GCP_GCS_BUCKET": bucket, "PROCX_GCP_GCS_KEY_PREFIX": "v/",
                              "PROCX_GCP_GCS_CLEAR_OP": "rm"}
    assert run("pushx", "-driver", "gcp-gcs", input=b"via env", env=env).returncode == 0
    assert run("procx", "-driver", "gcp-gcs", env=env).stdout == b"via env"
    assert names(client, bucket) == {}
