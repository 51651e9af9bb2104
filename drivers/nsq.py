"""nsq: procx consumes one message from a topic/channel; pushx publishes one to a topic (nsqd TCP protocol)."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.common import tls_options

SPEC = DriverSpec(
    "nsq",
    "an NSQ topic: each message is one unit of work",
    [
        Option("nsq-nsqlookupd-address",
               help="procx: nsqlookupd HTTP address (preferred when set); pushx: the nsqd TCP address to publish to"),
        Option("nsq-nsqd-address", help="nsqd TCP address (procx: used when no lookupd address; pushx: ignored)"),
        Option("nsq-topic", help="topic to consume from (procx) or publish to (pushx)"),
        Option("nsq-channel", sides=PROCX, group="retrieve", help="channel to consume on"),
        *tls_options(
            "nsq",
            insecure="tls-skip-verify",
            insecure_env={"procx": "PROCX_NSQ_TLS_INSECURE", "pushx": "PUSHX_NSQ_TLS_INSECURE"},
        ),
    ],
    extra="",
    requires=(),
    blocking=True,
)
