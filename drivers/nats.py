"""nats: core NATS; procx takes one message from a subject (optionally a queue group), pushx publishes one."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.common import tls_options

SPEC = DriverSpec(
    "nats",
    "a NATS subject (core NATS, no JetStream): each message is one unit of work",
    [
        Option("nats-url", help="NATS server URL(s), comma separated", required=True, placeholder="URL"),
        Option("nats-subject", help="subject to subscribe to (procx) or publish on (pushx)"),
        Option("nats-queue-group", sides=PROCX, group="retrieve",
               help="queue group to subscribe in (empty: plain subscription)"),
        Option("nats-creds-file", help="user credentials file (JWT and NKey seed)", placeholder="PATH"),
        Option("nats-jwt-file", help="user JWT file (used together with -nats-nkey-file)", group="auth",
               placeholder="PATH"),
        Option("nats-nkey-file", help="NKey seed file (used together with -nats-jwt-file)", group="auth",
               placeholder="PATH"),
        Option("nats-username", help="user name for user/password authentication"),
        Option("nats-password", help="password for user/password authentication", secret=True),
        Option("nats-token", help="authentication token", secret=True),
        *tls_options("nats"),
        Option("nats-clear-response", sides=PROCX,
               help="reply sent to the message's reply subject after success (empty: 0)"),
        Option("nats-fail-response", sides=PROCX,
               help="reply sent to the message's reply subject after failure (empty: 1)"),
    ],
    extra="nats",
    requires=("nats",),
    blocking=True,
)
