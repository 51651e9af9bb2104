"""pulsar: procx receives one message on a subscription (ack/nack); pushx sends one to a topic (pulsar-client).

procx subscribes once (receiver queue of 1, so nothing is prefetched for a shared subscription), receives one
message, acknowledges it after the child succeeded and negatively acknowledges it after a failure (the broker
redelivers it after -pulsar-nack-redelivery-delay, or at once when procx closes its consumer, as one-shot procx
does); a message of a consumer that died is redelivered by the broker. The work's attempt is the message's
redelivery count + 1. pushx sends synchronously (the broker has stored the message when send returns) with
-pulsar-producer-name, and the optional key and properties.

Fixes over the original (procx.md §4.27, §7.3 #27, §7.6 #36; pushx.md §4.20, §6 #1/#21/#27):
- no crash without OAuth2 parameters (`{}` or empty: no OAuth2);
- one consumer for all daemon iterations (the original subscribed again each time: "consumer busy");
- -pulsar-producer-name is used; the C++ client's log (every reconnection attempt) is silenced: procx reports
  failures itself, in one line;
- only one authentication method may be given (the original silently took the last of cert, token, token file,
  OAuth2); TLS options without TLS are an error; an address may carry its own pulsar:// or pulsar+ssl:// scheme.
"""

from __future__ import annotations

import contextlib
import json
import os
import re

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work

NAME = "pulsar"
TIMEOUT = 30  # seconds: operation and connection timeouts, as the original
MIN_WAIT = 0.5  # a receive that may not wait still gives the broker time to deliver a ready message
SCHEMES = ("pulsar://", "pulsar+ssl://")
SUBSCRIPTION_TYPES = {"exclusive": "Exclusive", "shared": "Shared", "failover": "Failover",
                      "key_shared": "KeyShared"}
# the Go client's OAuth2 parameter names -> the C++ client's (both accepted)
OAUTH_KEYS = {"issuerUrl": "issuer_url", "privateKey": "private_key", "clientId": "client_id",
              "clientSecret": "client_secret"}


def service_url(config) -> str:
    """pulsar:// (or pulsar+ssl:// with client-certificate authentication) + the comma list of brokers."""
    hosts, schemes = [], set()
    for item in config["pulsar-address"].split(","):
        item = item.strip()
        if not item:
            continue
        for scheme in SCHEMES:
            if item.startswith(scheme):
                schemes.add(scheme)
                item = item[len(scheme):]
        hosts.append(item.rstrip("/"))
    if config["pulsar-auth-cert-file"]:
        schemes.add("pulsar+ssl://")
    scheme = "pulsar+ssl://" if "pulsar+ssl://" in schemes else "pulsar://"
    return scheme + ",".join(hosts)


def _where(config) -> str:
    return service_url(config).split("://", 1)[1]


def oauth_params(config) -> dict[str, str]:
    params = config["pulsar-auth-oauth-params"] or {}
    return {OAUTH_KEYS.get(k, k): v for k, v in params.items()}


def authentication(config):
    """The one pulsar Authentication the options ask for, or None."""
    import pulsar

    if config["pulsar-auth-cert-file"]:
        return pulsar.AuthenticationTLS(config["pulsar-auth-cert-file"], config["pulsar-auth-key-file"])
    if config["pulsar-auth-token"]:
        return pulsar.AuthenticationToken(config["pulsar-auth-token"])
    if config["pulsar-auth-token-file"]:
        path = config["pulsar-auth-token-file"]

        def token() -> str:  # read on every (re)authentication, so a rotated token file is picked up
            with open(path, encoding="utf-8") as f:
                return f.read().strip()

        return pulsar.AuthenticationToken(token)
    if oauth_params(config):
        return pulsar.AuthenticationOauth2(json.dumps(oauth_params(config)))
    return None


def client_kwargs(config) -> dict[str, object]:
    import logging

    url = service_url(config)
    # the C++ client logs every reconnection attempt; procx reports failures itself, in one line
    log = logging.getLogger("procx.pulsar")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    return {
        "service_url": url,
        "authentication": authentication(config),
        "operation_timeout_seconds": TIMEOUT,
        "connection_timeout_ms": TIMEOUT * 1000,
        "use_tls": url.startswith("pulsar+ssl://"),
        "tls_trust_certs_file_path": config["pulsar-tls-trust-certs-file"] or None,
        "tls_allow_insecure_connection": bool(config["pulsar-tls-allow-insecure-connection"]),
        "tls_validate_hostname": bool(config["pulsar-tls-validate-hostname"]),
        "logger": log,
    }


def subscription_topic(config) -> str | list[str] | re.Pattern[str]:
    """-pulsar-topics (a list) wins over -pulsar-topics-pattern (a regex), which wins over -pulsar-topic."""
    topics = [t.strip() for t in config["pulsar-topics"] if t.strip()]
    if topics:
        return topics
    if config["pulsar-topics-pattern"]:
        return re.compile(config["pulsar-topics-pattern"])
    return config["pulsar-topic"]


def consumer_kwargs(config) -> dict[str, object]:
    import pulsar

    return {
        "topic": subscription_topic(config),
        "subscription_name": config["pulsar-subscription"],
        "consumer_type": getattr(pulsar.ConsumerType, SUBSCRIPTION_TYPES[config["pulsar-subscription-type"]]),
        "receiver_queue_size": 1,
        "negative_ack_redelivery_delay_ms": int(float(config["pulsar-nack-redelivery-delay"]) * 1000),
        "initial_position": getattr(pulsar.InitialPosition, config["pulsar-initial-position"].capitalize()),
    }


def message_kwargs(config) -> dict[str, object]:
    """send() arguments besides the payload: the partition key and the properties, when given."""
    out: dict[str, object] = {}
    if config["pulsar-message-key"]:
        out["partition_key"] = config["pulsar-message-key"]
    if config["pulsar-message-properties"]:
        out["properties"] = dict(p.split("=", 1) for p in config["pulsar-message-properties"])
    return out


def _failed(config, what: str, exc: BaseException) -> ProviderError:
    # the traceback holds the client's frames: kept alive by the error, a closed client aborts the process at exit
    exc.__traceback__ = None
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return ProviderError(f"driver {NAME}: cannot {what} on {_where(config)}: {type(exc).__name__}: {detail}")


def _client(config):
    import pulsar

    try:
        return pulsar.Client(**client_kwargs(config))
    except (pulsar.PulsarException, ValueError) as exc:
        raise _failed(config, "create the client", exc) from None


def _close(*things) -> None:
    for thing in things:
        if thing is not None:
            with contextlib.suppress(Exception):  # closing must not raise
                thing.close()


class PulsarSource(Source):
    client = None
    consumer = None

    def open(self) -> None:
        import pulsar

        self.client = _client(self.config)
        kwargs = consumer_kwargs(self.config)
        try:
            self.consumer = self.client.subscribe(**kwargs)
        except pulsar.PulsarException as exc:
            self.close()
            raise _failed(self.config, f"subscribe {kwargs['subscription_name']!r}", exc) from None

    def get(self, wait: float) -> Work | None:
        import pulsar

        try:
            msg = self.consumer.receive(timeout_millis=int(max(wait, MIN_WAIT) * 1000))
        except pulsar.Timeout:
            return None
        except pulsar.PulsarException as exc:
            raise _failed(self.config, "receive a message", exc) from None
        meta: dict[str, object] = {"topic": msg.topic_name()}
        if msg.partition_key():
            meta["key"] = msg.partition_key()
        if msg.properties():
            meta["properties"] = dict(msg.properties())
        return Work(msg.data(), str(msg.message_id()), attempt=msg.redelivery_count() + 1, handle=msg, meta=meta)

    def clear(self, work: Work) -> None:
        self._settle(work, "acknowledge", self.consumer.acknowledge)

    def fail(self, work: Work) -> None:
        self._settle(work, "negatively acknowledge", self.consumer.negative_acknowledge)

    def _settle(self, work: Work, what: str, settle) -> None:
        import pulsar

        try:
            settle(work.handle)
        except pulsar.PulsarException as exc:
            raise _failed(self.config, f"{what} message {work.id}", exc) from None

    def close(self) -> None:
        _close(self.consumer, self.client)  # unacknowledged messages go back to the subscription
        self.consumer = self.client = None  # a closed client must be released now: at exit it aborts the process


class PulsarSink(Sink):
    client = None
    producer = None

    def open(self) -> None:
        import pulsar

        self.client = _client(self.config)
        try:
            self.producer = self.client.create_producer(self.config["pulsar-topic"],
                                                        producer_name=self.config["pulsar-producer-name"] or None,
                                                        send_timeout_millis=TIMEOUT * 1000)
        except pulsar.PulsarException as exc:
            self.close()
            raise _failed(self.config, f"create a producer for topic {self.config['pulsar-topic']!r}", exc) from None
        self.extra = message_kwargs(self.config)

    def push(self, payload: bytes) -> str | None:
        import pulsar

        try:
            return str(self.producer.send(payload, **self.extra))
        except pulsar.PulsarException as exc:
            raise _failed(self.config, f"send to topic {self.config['pulsar-topic']!r}", exc) from None

    def close(self) -> None:
        _close(self.producer, self.client)
        self.producer = self.client = None  # a closed client must be released now: at exit it aborts the process


def _validate(config) -> None:
    if not [a for a in config["pulsar-address"].split(",") if a.strip()]:
        raise ValueError("-pulsar-address is required (host:port[,host:port])")
    for item in config["pulsar-address"].split(","):
        if "://" in item and not item.strip().startswith(SCHEMES):
            raise ValueError(f"-pulsar-address: unknown scheme in {item.strip()!r} (pulsar:// or pulsar+ssl://)")
    if config.side == PROCX:
        if not (config["pulsar-topics"] or config["pulsar-topics-pattern"] or config["pulsar-topic"]):
            raise ValueError("-pulsar-topic, -pulsar-topics or -pulsar-topics-pattern is required")
        if config["pulsar-topics-pattern"]:
            try:
                re.compile(config["pulsar-topics-pattern"])
            except re.error as exc:
                raise ValueError(f"-pulsar-topics-pattern: invalid regular expression ({exc})") from None
        if float(config["pulsar-nack-redelivery-delay"]) < 0:
            raise ValueError("-pulsar-nack-redelivery-delay: must not be negative")
    else:
        for prop in config["pulsar-message-properties"]:
            if "=" not in prop or not prop.split("=", 1)[0]:
                raise ValueError(f"-pulsar-message-properties: {prop!r} is not name=value")
    params = config["pulsar-auth-oauth-params"]
    if params is not None and (not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values())):
        raise ValueError("-pulsar-auth-oauth-params: must be a JSON object of strings")
    if bool(config["pulsar-auth-cert-file"]) != bool(config["pulsar-auth-key-file"]):
        raise ValueError("-pulsar-auth-cert-file and -pulsar-auth-key-file go together")
    methods = [f"-{name}" for name in ("pulsar-auth-cert-file", "pulsar-auth-token", "pulsar-auth-token-file",
                                       "pulsar-auth-oauth-params") if config[name]]
    if len(methods) > 1:
        raise ValueError(f"{methods[0]} and {methods[1]}: give one authentication method")
    for name in ("pulsar-auth-cert-file", "pulsar-auth-key-file", "pulsar-auth-token-file",
                 "pulsar-tls-trust-certs-file"):
        if config[name] and not os.path.isfile(config[name]):
            raise ValueError(f"-{name}: no such file: {config[name]}")
    if not service_url(config).startswith("pulsar+ssl://"):
        for name in ("pulsar-tls-trust-certs-file", "pulsar-tls-allow-insecure-connection",
                     "pulsar-tls-validate-hostname"):
            if config[name]:
                raise ValueError(f"-{name} has no effect without TLS (a pulsar+ssl:// address or "
                                 "-pulsar-auth-cert-file)")


SPEC = DriverSpec(
    NAME,
    "an Apache Pulsar topic: each message is one unit of work",
    [
        Option("pulsar-address", help="broker address(es) host:port[,host:port] (pulsar+ssl://host:port for TLS)"),
        Option("pulsar-topic", required=PUSHX, help="topic to consume from (procx) or produce to (pushx)"),
        Option("pulsar-topics", "list", sides=PROCX, group="retrieve",
               help="comma list of topics to consume from (wins over the pattern and -pulsar-topic)"),
        Option("pulsar-topics-pattern", sides=PROCX, group="retrieve",
               help="regular expression of topics to consume from (wins over -pulsar-topic)"),
        Option("pulsar-subscription", sides=PROCX, required=PROCX, group="retrieve", help="subscription name"),
        Option("pulsar-subscription-type", default="exclusive", choices=tuple(SUBSCRIPTION_TYPES), sides=PROCX,
               group="retrieve", extension=True,
               help="exclusive (the original's: one consumer), shared (several procx share the work), failover "
                    "or key_shared"),
        Option("pulsar-initial-position", default="latest", choices=("latest", "earliest"), sides=PROCX,
               group="retrieve", extension=True,
               help="where a new subscription starts: latest (the original's) or earliest (messages already "
                    "in the topic)"),
        Option("pulsar-nack-redelivery-delay", "duration", 60.0, sides=PROCX, group="fail", extension=True,
               help="after a failure, the message is redelivered after this delay (at once when procx exits)"),
        Option("pulsar-producer-name", sides=PUSHX, group="push", help="producer name (empty: the broker's)"),
        Option("pulsar-message-key", sides=PUSHX, group="push", extension=True,
               help="partition key of the sent message"),
        Option("pulsar-message-properties", "list", sides=PUSHX, group="push", extension=True,
               help="properties of the sent message, name=value[,name=value]"),
        Option("pulsar-auth-token", help="authentication token", secret=True),
        Option("pulsar-auth-token-file", help="file holding the authentication token", placeholder="PATH"),
        Option("pulsar-auth-cert-file", placeholder="PATH",
               help="client certificate for TLS authentication (with the key file; switches to pulsar+ssl://)"),
        Option("pulsar-auth-key-file", help="client private key for TLS authentication", placeholder="PATH"),
        Option("pulsar-auth-oauth-params", "json", secret=True,
               help="OAuth2 parameters as a JSON object of strings (empty or {}: no OAuth2)"),
        Option("pulsar-tls-trust-certs-file", help="CA certificate file (PEM) to trust", placeholder="PATH"),
        Option("pulsar-tls-allow-insecure-connection", "bool", help="accept untrusted server certificates"),
        Option("pulsar-tls-validate-hostname", "bool", help="check the server certificate's host name"),
    ],
    source="drivers.pulsar:PulsarSource",
    sink="drivers.pulsar:PulsarSink",
    extra="pulsar",
    requires=("pulsar",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="unacknowledged message of procx's consumer (receiver queue 1); the broker redelivers it when the "
             "consumer disconnects",
        fail="negative acknowledgement: redelivered after -pulsar-nack-redelivery-delay (at once when procx exits)",
        dead_letter="none from procx (a subscription's own dead-letter policy is not configured)",
        pushx="synchronous send: the broker acknowledged the stored message; returns its message id",
        tested="not verified against a server: option handling and the pulsar-client calls are checked with a "
               "recording fake of the client objects (no broker runs here)",
    ),
)
