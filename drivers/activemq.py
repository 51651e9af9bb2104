"""activemq: procx waits for one message of a queue or topic over STOMP (ACK/NACK); pushx sends one."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.common import tls_options

SPEC = DriverSpec(
    "activemq",
    "an ActiveMQ (STOMP) queue or topic: each message is one unit of work",
    [
        Option("activemq-address", help="host:port of the STOMP listener"),
        Option("activemq-type", sides=PROCX, required=True, choices=("queue", "topic"),
               help="kind of destination to subscribe to: queue or topic"),
        Option("activemq-name", required=PROCX,
               help="procx: queue or topic name; pushx: the full destination, e.g. /queue/jobs"),
        *tls_options("activemq"),
    ],
    extra="stomp",
    requires=("stomp",),
    blocking=True,
)
