"""aws-sqs: procx receives one message of a queue (deleted on clear); pushx sends one."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES

SPEC = DriverSpec(
    "aws-sqs",
    "an SQS queue: each message is one unit of work",
    [
        *AWS_OPTIONS,
        Option("aws-sqs-queue-url", help="URL of the queue", placeholder="URL"),
        Option("aws-sqs-include-id", "bool", sides=PROCX, group="retrieve",
               help='pass {"id":"<MessageId>","body":"<Body>"} instead of the bare body'),
    ],
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    family="aws",
)
