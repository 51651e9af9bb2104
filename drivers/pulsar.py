"""pulsar: procx receives one message on a subscription (ack/nack); pushx sends one to a topic."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option

SPEC = DriverSpec(
    "pulsar",
    "an Apache Pulsar topic: each message is one unit of work",
    [
        Option("pulsar-address", help="broker address(es) host:port[,host:port], without scheme"),
        Option("pulsar-topic", help="topic to consume from (procx) or produce to (pushx)"),
        Option("pulsar-topics", "list", sides=PROCX, group="retrieve",
               help="comma list of topics to consume from (wins over the pattern and -pulsar-topic)"),
        Option("pulsar-topics-pattern", sides=PROCX, group="retrieve",
               help="regular expression of topics to consume from (wins over -pulsar-topic)"),
        Option("pulsar-subscription", sides=PROCX, group="retrieve", help="subscription name (exclusive)"),
        Option("pulsar-producer-name", sides=PUSHX, group="push", help="producer name (ignored by the original)"),
        Option("pulsar-auth-token", help="authentication token", secret=True),
        Option("pulsar-auth-token-file", help="file holding the authentication token", placeholder="PATH"),
        Option("pulsar-auth-cert-file", placeholder="PATH",
               help="client certificate for TLS authentication (with the key file; switches to pulsar+ssl://)"),
        Option("pulsar-auth-key-file", help="client private key for TLS authentication", placeholder="PATH"),
        Option("pulsar-auth-oauth-params", "json", secret=True,
               help="OAuth2 parameters as a JSON object of strings (empty: no OAuth2)"),
        Option("pulsar-tls-trust-certs-file", help="CA certificate file (PEM) to trust", placeholder="PATH"),
        Option("pulsar-tls-allow-insecure-connection", "bool", help="accept untrusted server certificates"),
        Option("pulsar-tls-validate-hostname", "bool", help="check the server certificate's host name"),
    ],
    extra="pulsar",
    requires=("pulsar",),
    blocking=True,
)
