"""gcp-pubsub: procx waits for one message of a subscription; pushx publishes one to a topic."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.gcp.common import EXTRA, GCP_OPTIONS

SPEC = DriverSpec(
    "gcp-pubsub",
    "Pub/Sub: each message is one unit of work",
    [
        *GCP_OPTIONS,
        Option("gcp-pubsub-subscription", sides=PROCX, env={PROCX: "PROCX_GCP_SUBSCRIPTION"},
               help="subscription id to receive from (in -gcp-project-id)"),
        Option("gcp-pubsub-topic", sides=PUSHX, env={PUSHX: "PUSHX_GCP_TOPIC"},
               help="topic id to publish to (in -gcp-project-id; must exist)"),
    ],
    extra=EXTRA,
    requires=("google.cloud.pubsub_v1",),
    blocking=True,
    family="gcp",
)
