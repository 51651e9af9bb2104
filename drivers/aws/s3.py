"""aws-s3: procx takes an object of a bucket (then mv/rm); pushx uploads one object.

Fixes over the original (procx.md §4.4, §3.5, §7.3 #21-22, §7.5 #33; pushx.md §4.2):
- prefix and regex selection look at every page of the listing (ListObjectsV2 paginator; the original saw only
  the first 1000 keys); the first key in S3's (lexicographic) order wins.
- an empty bucket, a missing exact key or nothing matching is "no work", not an error.
- the selected key and the mv destination are per item: the next item is selected afresh.
- an mv destination inside the source bucket (a key template with a literal prefix, e.g. done/{{key}}) is not
  taken as work again by prefix/regex selection.
- mv is a managed copy (any size) followed by a delete; the copy source is passed as bucket + key (no
  URL-encoding trouble with special characters).
- pushx tags: k=v,k2=v2 where a value may contain '=' (the original dropped such tags); no empty tagging header.
  Large payloads go up as a multipart upload (upload_fileobj).
- pushx extension -aws-s3-key-template: the key from {{path}} fields of the JSON payload.
There is no lock on an S3 object: two procx on one bucket may take the same object (see Delivery).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from urllib.parse import urlencode

from core.errors import ProviderError
from core.options import BOTH, PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import fill
from core.work import Sink, Source, Work
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES, botocore_errors, client, error_code
from drivers.aws.common import fail as aws_fail
from drivers.common import check_selection, move_ops, selector_options

NAME = "aws-s3"


def parse_tags(items: tuple[str, ...]) -> dict[str, str]:
    """k=v items; the value is everything after the first '=' (kept when it holds more '=')."""
    tags: dict[str, str] = {}
    for item in items:
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{item!r} is not k=v")
        tags[key] = value
    return tags


def _validate(config) -> None:
    if config.side == PROCX:
        check_selection(config, "aws-s3", "key", "bucket")
    else:
        if not (config["aws-s3-key"] or config["aws-s3-key-template"]):
            raise ValueError("-aws-s3-key (or -aws-s3-key-template) is required: the key of the object to write")
        try:
            parse_tags(config["aws-s3-tags"])
        except ValueError as exc:
            raise ValueError(f"-aws-s3-tags: {exc}") from None


SPEC = DriverSpec(
    "aws-s3",
    "an S3 bucket: each object is one unit of work",
    [
        *AWS_OPTIONS,
        Option("aws-s3-bucket", help="the bucket holding (procx) or receiving (pushx) the objects", required=True),
        *selector_options("aws-s3", key_sides=BOTH),
        *move_ops("aws-s3", "bucket"),
        Option("aws-s3-acl", sides=PUSHX, group="push",
               help="canned ACL of the uploaded object, e.g. private (empty: the bucket's default)"),
        Option("aws-s3-tags", "list", sides=PUSHX, group="push",
               help="object tags as k=v,k2=v2 (empty: no tags)"),
        Option("aws-s3-key-template", sides=PUSHX, group="push", extension=True,
               help="key of the object to write with {{path}} fields of the JSON payload (wins over -aws-s3-key)"),
    ],
    source="drivers.aws.s3:S3Source",
    sink="drivers.aws.s3:S3Sink",
    extra=EXTRA,
    requires=REQUIRES,
    validate=_validate,
    family="aws",
    delivery=Delivery(
        "at-least-once",
        hold="none: the object stays in the bucket until cleared (a dead procx leaves it there); S3 has no lock, "
             "so two procx on one bucket may take the same object",
        fail="-aws-s3-fail-op: mv, rm, or left in place (offered again)",
        pushx="the object is stored when the upload returns (multipart above 8 MiB)",
        tested="emulator: moto 5.2.5 server",
    ),
)


class S3Source(Source):
    def open(self) -> None:
        c = self.config
        self.bucket = c["aws-s3-bucket"]
        self.errors = botocore_errors()
        self.s3 = client(c, "s3")
        self.endpoint = self.s3.meta.endpoint_url
        self.regex = re.compile(c["aws-s3-key-regex"]) if c["aws-s3-key-regex"] else None
        # mv destinations inside the source bucket (e.g. template done/{{key}}) are never taken as work again
        self.skip = tuple(
            c[f"aws-s3-{p}-key-template"].split("{{key}}")[0]
            for p in ("clear", "fail")
            if c[f"aws-s3-{p}-op"] == "mv" and c[f"aws-s3-{p}-bucket"] == self.bucket
            and c[f"aws-s3-{p}-key-template"].split("{{key}}")[0])
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except self.errors as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise ProviderError(f"driver {NAME}: bucket {self.bucket!r} does not exist "
                                    f"(at {self.endpoint})") from None
            raise aws_fail(c, f"cannot open bucket {self.bucket!r}", exc, self.endpoint) from None

    def _candidates(self) -> Iterator[str]:
        c = self.config
        if c["aws-s3-key"]:
            yield c["aws-s3-key"]
            return
        prefix = c["aws-s3-key-prefix"]
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, **({"Prefix": prefix} if prefix else {}))
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if self.skip and key.startswith(self.skip):
                    continue
                if prefix or (self.regex and self.regex.search(key)):
                    yield key

    def get(self, wait: float) -> Work | None:
        try:
            for key in self._candidates():
                try:
                    obj = self.s3.get_object(Bucket=self.bucket, Key=key)
                except self.errors as exc:
                    if error_code(exc) in ("NoSuchKey", "404"):  # absent, or taken by another procx meanwhile
                        continue
                    raise
                return Work(obj["Body"].read(), key, handle=key, meta={"etag": obj.get("ETag", "")})
        except self.errors as exc:
            raise aws_fail(self.config, f"cannot read bucket {self.bucket!r}", exc, self.endpoint) from None
        return None

    def depth(self) -> int:
        return sum(1 for _ in self._candidates())

    def clear(self, work: Work) -> None:
        self._apply("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._apply("fail", work.handle)

    def _apply(self, phase: str, key: str) -> None:
        c = self.config
        op = c[f"aws-s3-{phase}-op"]
        try:
            if op == "mv":
                template = c[f"aws-s3-{phase}-key-template"]
                dest = template.replace("{{key}}", key) if template else (c[f"aws-s3-{phase}-key"] or key)
                target = c[f"aws-s3-{phase}-bucket"]
                self.s3.copy({"Bucket": self.bucket, "Key": key}, target, dest)
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            elif op == "rm":
                self.s3.delete_object(Bucket=self.bucket, Key=key)
        except self.errors as exc:
            raise aws_fail(c, f"cannot {op} {key!r}", exc, self.endpoint) from None


class S3Sink(Sink):
    def open(self) -> None:
        c = self.config
        self.errors = botocore_errors()
        self.s3 = client(c, "s3")
        self.endpoint = self.s3.meta.endpoint_url
        self.extra: dict[str, str] = {}
        if c["aws-s3-acl"]:
            self.extra["ACL"] = c["aws-s3-acl"]
        tags = parse_tags(c["aws-s3-tags"])
        if tags:
            self.extra["Tagging"] = urlencode(tags)

    def push(self, payload: bytes) -> str | None:
        c = self.config
        bucket = c["aws-s3-bucket"]
        key = fill(c["aws-s3-key-template"], payload) if c["aws-s3-key-template"] else c["aws-s3-key"]
        if not key:
            raise ProviderError(f"driver {NAME}: -aws-s3-key-template gave an empty key for this payload")
        from boto3.exceptions import S3UploadFailedError

        try:
            self.s3.upload_fileobj(io.BytesIO(payload), bucket, key, ExtraArgs=dict(self.extra))
        except (*self.errors, S3UploadFailedError) as exc:
            if error_code(exc) == "NoSuchBucket" or "NoSuchBucket" in str(exc):
                raise ProviderError(f"driver {NAME}: bucket {bucket!r} does not exist (at {self.endpoint})") from None
            raise aws_fail(c, f"cannot upload {key!r} to bucket {bucket!r}", exc, self.endpoint) from None
        return key
