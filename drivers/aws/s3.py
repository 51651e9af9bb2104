"""aws-s3: procx takes an object of a bucket (then mv/rm); pushx uploads one object."""

from __future__ import annotations

from core.options import BOTH, PUSHX, DriverSpec, Option
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES
from drivers.common import move_ops, selector_options

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
    ],
    extra=EXTRA,
    requires=REQUIRES,
    family="aws",
)
