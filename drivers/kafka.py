"""kafka: procx reads one record of a topic (optionally in a consumer group); pushx produces one."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.common import tls_options

SPEC = DriverSpec(
    "kafka",
    "a Kafka topic: each record's value is one unit of work",
    [
        Option("kafka-brokers", "list", help="comma list of broker addresses (host:port)"),
        Option("kafka-topic", help="topic to read from (procx) or write to (pushx)"),
        Option("kafka-group", sides=PROCX, group="retrieve",
               help="consumer group, offsets committed as read (empty: partition 0 from the earliest offset)"),
        *tls_options("kafka"),
        Option("kafka-enable-sasl", "bool", help="authenticate with SASL", group="auth"),
        Option("kafka-sasl-type", choices=("plain", "scram"), help="SASL mechanism: plain or scram (SCRAM-SHA-512)"),
        Option("kafka-sasl-username", help="SASL user name"),
        Option("kafka-sasl-password", help="SASL password", secret=True),
    ],
    extra="kafka",
    requires=("confluent_kafka",),
    blocking=True,
)
