"""aws-s3 against the moto server: the conformance suite (a bucket per test; pending() = objects left) plus
selection over every page of the listing, mv/rm with key templates, "no work" for an empty bucket, tags and ACL,
multipart uploads and the key template of pushx.

S3 has no lock on an object: two procx on one bucket may take the same object (the driver's Delivery says so).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.drivers.cloud.conftest import Moto, free_port
from tests.support import run


def make_bucket(moto: Moto, unique: str, suffix: str = "") -> str:
    name = f"procx-{unique}{suffix}"
    moto.client("s3").create_bucket(Bucket=name)
    return name


def keys(moto: Moto, bucket: str) -> list[str]:
    pages = moto.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def body(moto: Moto, bucket: str, key: str) -> bytes:
    return moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


class S3Backend(Backend):
    driver = "aws-s3"
    redelivery_wait = 0.5

    def __init__(self, moto: Moto, bucket: str) -> None:
        self.moto = moto
        self.bucket = bucket

    def common_args(self) -> list[str]:
        return ["-driver", "aws-s3", "-aws-s3-bucket", self.bucket]

    def push_args(self, n: int) -> list[str]:
        return ["-aws-s3-key", f"job-{n:04d}"]

    def procx_args(self) -> list[str]:
        return ["-aws-s3-key-prefix", "job-", "-aws-s3-clear-op", "rm"]

    def pending(self) -> int:
        return len(keys(self.moto, self.bucket))

    def env(self) -> dict[str, str]:
        return self.moto.env()


class TestS3Conformance(Conformance):
    @pytest.fixture
    def backend(self, aws: Moto, unique: str) -> S3Backend:
        return S3Backend(aws, make_bucket(aws, unique))


def s3_args(bucket: str, *extra: str) -> list[str]:
    return ["-driver", "aws-s3", "-aws-s3-bucket", bucket, *extra]


def put(moto: Moto, bucket: str, **objects: bytes) -> None:
    s3 = moto.client("s3")
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key.replace("__", "/"), Body=data)


@pytest.mark.slow
def test_prefix_and_regex_see_every_page_of_the_listing(aws: Moto, unique: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bucket = make_bucket(aws, unique)
    s3 = aws.client("s3")
    with ThreadPoolExecutor(8) as pool:  # more than one page of 1000 keys
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"a/{i:05d}", Body=b""), range(1005)))
    s3.put_object(Bucket=bucket, Key="zz/last-page.json", Body=b"found")
    assert api.procx(s3_args(bucket, "-aws-s3-key-regex", r"\.json$")) == b"found"
    assert api.procx(s3_args(bucket, "-aws-s3-key-prefix", "zz/")) == b"found"


def test_first_key_in_order_wins_and_regex_is_unanchored(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    put(aws, bucket, in__b=b"second", in__a=b"first", other=b"x")
    args = s3_args(bucket, "-aws-s3-key-regex", "n/", "-aws-s3-clear-op", "rm")
    assert [api.procx(args), api.procx(args), api.procx(args)] == [b"first", b"second", None]
    assert keys(aws, bucket) == ["other"]


@pytest.mark.parametrize("selector", [("-aws-s3-key", "absent"), ("-aws-s3-key-prefix", "in/"),
                                      ("-aws-s3-key-regex", "nothing")])
def test_empty_bucket_or_nothing_matching_is_no_work(aws: Moto, unique: str, selector: tuple[str, str],
                                                     tmp_path: Path) -> None:
    bucket = make_bucket(aws, unique)
    done = run("procx", *s3_args(bucket, *selector), "touch", str(tmp_path / "ran"), env=aws.env())
    assert (done.returncode, done.stdout) == (0, b"")
    assert not (tmp_path / "ran").exists()


def test_clear_mv_with_key_template_and_fail_mv_with_key(aws: Moto, unique: str) -> None:
    src, done_bucket = make_bucket(aws, unique), make_bucket(aws, unique, "-done")
    put(aws, src, in__j1=b"one", in__j2=b"two")
    args = s3_args(src, "-aws-s3-key-prefix", "in/", "-aws-s3-clear-op", "mv", "-aws-s3-clear-bucket", done_bucket,
                   "-aws-s3-clear-key-template", "ok/{{key}}", "-aws-s3-fail-op", "mv", "-aws-s3-fail-bucket",
                   done_bucket, "-aws-s3-fail-key", "failed/last")
    assert run("procx", *args, "true", env=aws.env()).returncode == 0
    assert run("procx", *args, "false", env=aws.env()).returncode == 1
    assert keys(aws, src) == []
    assert sorted(keys(aws, done_bucket)) == ["failed/last", "ok/in/j1"]
    assert body(aws, done_bucket, "ok/in/j1") == b"one"
    assert body(aws, done_bucket, "failed/last") == b"two"


def test_mv_default_key_is_each_items_own_key(aws: Moto, unique: str) -> None:
    src, dst = make_bucket(aws, unique), make_bucket(aws, unique, "-dst")
    put(aws, src, **{"a b+c%": b"1", "k2": b"2"})
    args = s3_args(src, "-aws-s3-key-regex", ".", "-aws-s3-clear-op", "mv", "-aws-s3-clear-bucket", dst)
    api.procx(args)
    api.procx(args)
    assert sorted(keys(aws, dst)) == ["a b+c%", "k2"]  # special characters survive the copy


def test_mv_inside_the_source_bucket_is_not_taken_again(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    put(aws, bucket, j1=b"one")
    args = s3_args(bucket, "-aws-s3-key-regex", "j", "-aws-s3-fail-op", "mv", "-aws-s3-fail-bucket", bucket,
                   "-aws-s3-fail-key-template", "failed/{{key}}")
    assert run("procx", *args, "false", env=aws.env()).returncode == 1
    assert keys(aws, bucket) == ["failed/j1"]
    assert api.procx(args) is None  # failed/j1 matches the regex but is the fail destination


def test_fail_rm_removes_and_no_fail_op_leaves_it(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    put(aws, bucket, j=b"x")
    assert run("procx", *s3_args(bucket, "-aws-s3-key", "j"), "false", env=aws.env()).returncode == 1
    assert keys(aws, bucket) == ["j"]
    assert run("procx", *s3_args(bucket, "-aws-s3-key", "j", "-aws-s3-fail-op", "rm"), "false",
               env=aws.env()).returncode == 1
    assert keys(aws, bucket) == []


def test_pushx_tags_keep_values_with_equals_and_acl(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    api.pushx(b"t", s3_args(bucket, "-aws-s3-key", "k", "-aws-s3-tags", "a=b=c,team=ops dev+1",
                            "-aws-s3-acl", "public-read"))
    tags = aws.client("s3").get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "b=c"), ("team", "ops dev+1")]
    grants = aws.client("s3").get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") and g["Permission"] == "READ" for g in grants)


def test_pushx_without_tags_sets_none(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    api.pushx(b"t", s3_args(bucket, "-aws-s3-key", "k"))
    assert aws.client("s3").get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_pushx_large_payload_goes_up_in_parts(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    payload = bytes(i * 13 % 256 for i in range(9 << 20))  # above the 8 MiB multipart threshold
    api.pushx(payload, s3_args(bucket, "-aws-s3-key", "big"))
    head = aws.client("s3").head_object(Bucket=bucket, Key="big")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload's ETag counts its parts
    assert body(aws, bucket, "big") == payload


def test_pushx_key_template_from_the_payload(aws: Moto, unique: str) -> None:
    bucket = make_bucket(aws, unique)
    api.pushx(b'{"user": "ann", "id": 7}', s3_args(bucket, "-aws-s3-key-template", "in/{{user}}/{{id}}.json"))
    assert keys(aws, bucket) == ["in/ann/7.json"]
    done = run("pushx", *s3_args(bucket, "-aws-s3-key-template", "{{missing}}"), input=b"{}", env=aws.env())
    assert done.returncode == 69
    assert b"gave an empty key" in done.stderr


def test_missing_bucket_is_a_clear_error(aws: Moto) -> None:
    for tool, extra in (("procx", ("-aws-s3-key-prefix", "x")), ("pushx", ("-aws-s3-key", "k"))):
        done = run(tool, *s3_args("procx-no-such-bucket", *extra), input=b"x", env=aws.env())
        assert done.returncode == 69, done.stderr
        assert b"driver aws-s3: bucket 'procx-no-such-bucket' does not exist" in done.stderr
        assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_endpoint_is_one_line_naming_driver_and_endpoint(aws: Moto, tool: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    done = run(tool, *s3_args("bucket", "-aws-s3-key", "k"), input=b"x",
               env=aws.env(AWS_ENDPOINT_URL=endpoint, AWS_MAX_ATTEMPTS="1"))
    assert done.returncode == 69
    assert b"driver aws-s3" in done.stderr and endpoint.encode() in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize(("tool", "extra", "message"), [
    ("procx", (), b"-aws-s3-key, -aws-s3-key-prefix or -aws-s3-key-regex: one is required"),
    ("procx", ("-aws-s3-key-regex", "("), b"-aws-s3-key-regex: invalid regular expression"),
    ("procx", ("-aws-s3-key", "k", "-aws-s3-clear-op", "mv"), b"-aws-s3-clear-bucket is required"),
    ("pushx", (), b"-aws-s3-key (or -aws-s3-key-template) is required"),
    ("pushx", ("-aws-s3-key", "k", "-aws-s3-tags", "novalue"), b"-aws-s3-tags: 'novalue' is not k=v"),
])
def test_bad_settings_are_usage_errors(aws: Moto, tool: str, extra: tuple[str, ...], message: bytes) -> None:
    done = run(tool, *s3_args("bucket", *extra), input=b"x", env=aws.env())
    assert done.returncode == 2
    assert message in done.stderr
