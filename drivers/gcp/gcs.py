"""gcp-gcs: procx takes an object of a bucket (then mv/rm); pushx writes one object. Mirrors aws-s3."""

from __future__ import annotations

from core.options import BOTH, DriverSpec, Option
from drivers.common import move_ops, selector_options
from drivers.gcp.common import EXTRA

SPEC = DriverSpec(
    "gcp-gcs",
    "a Cloud Storage bucket: each object is one unit of work",
    [
        Option("gcp-gcs-bucket", help="the bucket holding (procx) or receiving (pushx) the objects", required=True),
        *selector_options("gcp-gcs", key_sides=BOTH),
        *move_ops("gcp-gcs", "bucket"),
    ],
    extra=EXTRA,
    requires=("google.cloud.storage",),
    family="gcp",
)
