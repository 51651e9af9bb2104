"""rabbitmq: procx consumes one message from a queue; pushx publishes one to it (AMQP 0-9-1)."""

from __future__ import annotations

from core.options import PUSHX, DriverSpec, Option

SPEC = DriverSpec(
    "rabbitmq",
    "a RabbitMQ queue: each message is one unit of work",
    [
        Option("rabbitmq-url", secret=True, placeholder="URL",
               help="AMQP URL with credentials, amqp://user:pass@host:5672/vhost (amqps:// for TLS)"),
        Option("rabbitmq-queue", help="queue to consume from (procx) or publish to (pushx)"),
        Option("rabbitmq-exchange", sides=PUSHX, group="push",
               help="exchange to publish to (ignored by the original: always the default exchange)"),
    ],
    extra="rabbitmq",
    requires=("pika",),
    blocking=True,
)
