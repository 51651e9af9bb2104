"""Kubernetes and KEDA manifests from a profile (`procx-tui export k8s`): pure functions, no Kubernetes client.

What a profile becomes (names: procx-<profile>, lower-cased to a DNS label):

- Secret procx-<profile>-secret: exactly the profile's secret variables (Option.secret, e.g. PROCX_REDIS_PASSWORD,
  PROCX_RABBITMQ_URL), with `${VAR}` references expanded from the environment of the export (what
  `procx -env-file` would read); a reference to an unset variable is exported empty and reported as a warning.
  With Options.existing_secret no Secret is written: the pod and the TriggerAuthentication use that Secret,
  which must hold the same keys (the variable names), so no secret value is in the YAML.
- ConfigMap procx-<profile>: every other PROCX_*/PUSHX_* variable (references expanded the same way; they are not
  secrets by declaration), plus PROCX_DAEMON=true (and PROCX_UNTIL_EMPTY=true for a Job). Our PROCX_TUI_*
  variables and PROCX_ENV_FILE (a path on this machine) are left out; variables that are neither PROCX_* nor
  PUSHX_* are left out with a warning (they may be credentials: give them to the pod yourself).
- the worker: a container named procx running `procx <child command>` (a pipeline: procx runs `CMD | pushx` per
  unit of work, see _command),
  its environment only through envFrom (the ConfigMap and the Secret), terminationGracePeriodSeconds = procx's
  -grace-period + GRACE_MARGIN. Either a Deployment scaled by a KEDA ScaledObject, or (--job) a KEDA ScaledJob
  whose jobs run `procx -daemon -until-empty` and exit when the queue is empty.
- TriggerAuthentication procx-<profile>-auth: the scaler's credentials, from the Secret (secretTargetRef) and,
  for non-secret parameters such as user names, from the ConfigMap (configMapTargetRef, KEDA 2.13+).
- a driver with no KEDA scaler: a plain Deployment (replicas = --min, at least 1), annotated with the reason.

The Deployment scaled by KEDA has no `replicas` field, so re-applying the YAML does not fight KEDA's scaling.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from core import registry
from core.errors import UsageError
from core.options import PROCX, PUSHX, DriverSpec, parse_duration
from core.profiles import OURS, SCALE_QUERY, Profile, validate

KEDA_API = "keda.sh/v1alpha1"
GRACE_MARGIN = 10  # seconds on top of procx's -grace-period before the kubelet's SIGKILL
ANNOTATION = "procx-tui/"
LEFT_OUT = ("PROCX_ENV_FILE", "PUSHX_ENV_FILE")
_LOOPBACK = re.compile(r"(^|[/@,:\s])(localhost|127\.0\.0\.1|\[?::1\]?)($|[:/,\s])")

# Drivers without a KEDA scaler, and why (the Deployment carries the reason).
NO_SCALER = {
    "aws-s3": "no released KEDA scaler counts S3 objects",
    "aws-dynamo": "KEDA's aws-dynamodb scaler needs a key condition expression; procx runs PartiQL queries",
    "centauri": "KEDA has no centauri scaler",
    "couchbase": "KEDA has no Couchbase scaler (its couchdb scaler is another database)",
    "fs": "a local folder: KEDA cannot count its files",
    "nfs": "KEDA cannot count files on an NFS share",
    "smb": "KEDA cannot count files on an SMB share",
    "gcp-bq": "KEDA has no BigQuery scaler",
    "gcp-firestore": "KEDA has no Firestore scaler",
    "github": "KEDA has no scaler for files in a GitHub repository",
    "http": "an HTTP endpoint exposes no queue depth KEDA can read",
    "local": "the local driver has no work source",
    "mqtt": "MQTT brokers expose no queue depth: KEDA's mqtt scaler (2.18+) scales on the message rate instead",
    "redis-pubsub": "Redis pub/sub keeps no backlog: there is no depth to scale on",
    "sqlite": "a SQLite file is local to one machine: pods on other nodes cannot share it",
}


@dataclass
class Options:
    """What `procx-tui export k8s` (and the dashboard's export screen) can set besides the profile."""

    image: str = "procx-tui:latest"
    namespace: str = ""
    min_replicas: int = 0
    max_replicas: int = 10
    target: int = 5  # items waiting per replica (the scaler's queueLength / listLength / value / lagThreshold)
    activation: int | None = None  # items before scaling from zero (activation*; KEDA's default 0 when None)
    job: bool = False
    cpu: str = ""  # "REQUEST" or "REQUEST:LIMIT", e.g. 250m:1
    memory: str = ""  # e.g. 128Mi:512Mi
    polling_interval: int = 30
    cooldown: int = 300
    scale_query: str = ""  # SQL/CQL: a count query; etcd: the key holding the count (else PROCX_TUI_SCALE_QUERY)
    existing_secret: str = ""  # use this Secret (same keys) instead of writing one: no secret value in the YAML


@dataclass(frozen=True)
class Setting:
    """One export option, declared once: `--flag` on the command line, a field of the dashboard's export screen."""

    attr: str  # the Options attribute
    flag: str
    help: str
    metavar: str = ""

    @property
    def kind(self) -> type:
        return {"int": int, "bool": bool}.get(Options.__annotations__[self.attr].split(" ")[0], str)

    @property
    def default(self) -> object:
        return getattr(Options(), self.attr)


SETTINGS = (
    Setting("image", "image", "worker image holding procx and the child command"),
    Setting("namespace", "namespace", "namespace of every resource (default: kubectl's)"),
    Setting("min_replicas", "min", "minimum replicas (default 0: scale to zero)"),
    Setting("max_replicas", "max", "maximum replicas or parallel jobs (default 10)"),
    Setting("target", "target", "items waiting per replica (default 5)"),
    Setting("activation", "activation", "items waiting before scaling up from zero"),
    Setting("job", "job", "a KEDA ScaledJob of run-to-empty jobs, not a Deployment"),
    Setting("cpu", "cpu", "CPU request and limit, e.g. 250m:1", "REQ[:LIMIT]"),
    Setting("memory", "memory", "memory request and limit, e.g. 128Mi:512Mi", "REQ[:LIMIT]"),
    Setting("polling_interval", "polling-interval", "seconds between KEDA's checks (default 30)"),
    Setting("cooldown", "cooldown", "seconds after the last activity before scaling to --min (default 300)"),
    Setting("scale_query", "scale-query", "SQL/CQL drivers: a count query; etcd: the key holding the count; "
            "mongodb/elasticsearch: overrides the retrieve query (default: the profile's PROCX_TUI_SCALE_QUERY)"),
    Setting("existing_secret", "existing-secret", "use this Secret (keys: the secret variables' names) instead "
            "of writing their values", "NAME"),
)


@dataclass
class Trigger:
    """One KEDA trigger: type, metadata, auth parameters -> ("secret" | "config", variable), the pod identity
    provider KEDA authenticates with (aws, gcp), and what the scaler needs that the profile lacks (warnings)."""

    type: str
    metadata: dict[str, str]
    auth: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    identity: str = ""
    missing: list[str] = field(default_factory=list)


@dataclass
class Export:
    manifests: list[dict]
    warnings: list[str]
    trigger: Trigger | None
    reason: str = ""  # why there is no KEDA trigger


class _Values:
    """Option values of one driver on one side, from the expanded profile (declared defaults otherwise)."""

    def __init__(self, spec: DriverSpec, side: str, values: dict[str, str]) -> None:
        self.spec, self.side, self.values = spec, side, values
        self.options = {o.name: o for o in spec.options_for(side)}

    def __call__(self, name: str) -> str:
        opt = self.options[name]
        for var in opt.variables(self.side):
            if self.values.get(var):
                return self.values[var]
        return opt.render(opt.default) if opt.default not in ("", (), None) else ""

    def flag(self, name: str) -> bool:
        text = self(name)
        return bool(text) and self.options[name].convert(text) is True

    def variable(self, name: str) -> str:
        """The variable that set option `name` in the profile (else its canonical name)."""
        opt = self.options[name]
        return next((v for v in opt.variables(self.side) if self.values.get(v)), opt.variable(self.side))

    def given(self, name: str) -> bool:
        return any(self.values.get(v) for v in self.options[name].variables(self.side))


# -- triggers, one function per driver: KEDA's documented metadata names ------------------------------
def _need_query(driver: str, scaler: str, what: str, opts: Options) -> str:
    if not opts.scale_query:
        raise UsageError(f"driver {driver}: KEDA's {scaler} scaler needs {what}: give it with --scale-query")
    return opts.scale_query


def _redis_address(v: _Values) -> str:
    return f"{v('redis-host') or 'localhost'}:{v('redis-port') or '6379'}"


def _redis_common(v: _Values, trigger: Trigger) -> Trigger:
    if v.flag("redis-enable-tls"):
        trigger.metadata["enableTLS"] = "true"
        if v.flag("redis-tls-skip-verify"):
            trigger.metadata["unsafeSsl"] = "true"
    if v("redis-password"):
        trigger.auth["password"] = ("secret", v.variable("redis-password"))
    return trigger


def _activation(opts: Options, name: str, metadata: dict[str, str]) -> dict[str, str]:
    if opts.activation is not None:
        metadata[name] = str(opts.activation)
    return metadata


def trigger_aws_sqs(v: _Values, opts: Options) -> Trigger:
    url = v("aws-sqs-queue-url")
    region = v("aws-region")
    if not region:  # https://sqs.<region>.amazonaws.com/<account>/<queue>
        host = urlsplit(url).hostname or ""
        parts = host.split(".")
        region = parts[1] if len(parts) > 2 and parts[0] == "sqs" else ""
    md = {"queueURL": url, "queueLength": str(opts.target), "awsRegion": region}
    trigger = Trigger("aws-sqs-queue", _activation(opts, "activationQueueLength", md), identity="aws", notes=[
        "KEDA reads the queue with pod identity (provider aws): its operator's IAM role (IRSA / EKS pod identity) "
        "must be allowed sqs:GetQueueAttributes; KEDA counts in-flight messages too (scaleOnInFlight)"])
    if not region:
        trigger.missing.append("awsRegion: set -aws-region (KEDA needs the region; the queue URL does not name it)")
    return trigger


def trigger_gcp_pubsub(v: _Values, opts: Options) -> Trigger:
    name, project = v("gcp-pubsub-subscription"), v("gcp-project-id")
    if project and "/" not in name:
        name = f"projects/{project}/subscriptions/{name}"
    md = {"subscriptionName": name, "mode": "SubscriptionSize", "value": str(opts.target)}
    return Trigger("gcp-pubsub", _activation(opts, "activationValue", md), identity="gcp", notes=[
        "KEDA reads Cloud Monitoring with pod identity (provider gcp): Workload Identity for its operator, with "
        "monitoring.viewer; KEDA's docs mark this scaler deprecated (it still works)"])


def trigger_gcp_gcs(v: _Values, opts: Options) -> Trigger:
    md = {"bucketName": v("gcp-gcs-bucket"), "targetObjectCount": str(opts.target)}
    if v("gcp-gcs-key-prefix"):
        md["blobPrefix"] = v("gcp-gcs-key-prefix")
    return Trigger("gcp-storage", _activation(opts, "activationTargetObjectCount", md), identity="gcp", notes=[
        "KEDA counts the non-empty objects under the prefix, at most maxBucketItemsToScan (1000), a key regex is "
        "not applied; it reads the bucket with pod identity (provider gcp): Workload Identity for its operator"])


def trigger_redis_list(v: _Values, opts: Options) -> Trigger:
    md = {"address": _redis_address(v), "listName": v("redis-key"), "listLength": str(opts.target)}
    return _redis_common(v, Trigger("redis", _activation(opts, "activationListLength", md), notes=[
        "KEDA reads LLEN of the list: items being worked on (in the processing list) are not counted"]))


def trigger_redis_stream(v: _Values, opts: Options) -> Trigger:
    md = {"address": _redis_address(v), "stream": v("redis-key"),
          "consumerGroup": v("redis-stream-consumer-group") or "procx", "lagCount": str(opts.target)}
    return _redis_common(v, Trigger("redis-streams", _activation(opts, "activationLagCount", md), notes=[
        "lagCount: entries not yet delivered to the group (XINFO GROUPS lag, Redis 7+), the only mode of KEDA's "
        "redis-streams scaler that scales from zero"]))


def trigger_rabbitmq(v: _Values, opts: Options) -> Trigger:
    md = {"protocol": "amqp", "queueName": v("rabbitmq-queue"), "mode": "QueueLength", "value": str(opts.target)}
    return Trigger("rabbitmq", _activation(opts, "activationValue", md),
                   auth={"host": ("secret", v.variable("rabbitmq-url"))})


def trigger_kafka(v: _Values, opts: Options) -> Trigger:
    md = {"bootstrapServers": v("kafka-brokers"), "consumerGroup": v("kafka-group"), "topic": v("kafka-topic"),
          "lagThreshold": str(opts.target), "offsetResetPolicy": "earliest"}  # a new group starts at the earliest
    trigger = Trigger("kafka", _activation(opts, "activationLagThreshold", md))
    if not v("kafka-group"):
        trigger.missing.append("consumerGroup: set -kafka-group (without a group procx replays the topic: no lag)")
    if v.flag("kafka-enable-tls"):
        md["tls"] = "enable"
        if v.flag("kafka-tls-insecure"):
            md["unsafeSsl"] = "true"
    if v.flag("kafka-enable-sasl"):
        md["sasl"] = {"scram": "scram_sha512", "scram-sha-512": "scram_sha512",  # procx's scram: SCRAM-SHA-512
                      "scram-sha-256": "scram_sha256"}.get(v("kafka-sasl-type").lower(), "plaintext")
        if v("kafka-sasl-username"):
            trigger.auth["username"] = ("config", v.variable("kafka-sasl-username"))
        if v("kafka-sasl-password"):
            trigger.auth["password"] = ("secret", v.variable("kafka-sasl-password"))
    return trigger


def trigger_nats(v: _Values, opts: Options) -> Trigger | str:
    if not v.flag("nats-jetstream"):
        return "core NATS keeps no backlog (enable -nats-jetstream: KEDA's nats-jetstream scaler reads its lag)"
    url = v("nats-url").split(",")[0]
    host = urlsplit(url if "://" in url else f"nats://{url}").hostname or "localhost"
    md = {"natsServerMonitoringEndpoint": f"{host}:8222", "account": "$G", "stream": v("nats-stream"),
          "consumer": v("nats-durable"), "lagThreshold": str(opts.target)}
    trigger = Trigger("nats-jetstream", _activation(opts, "activationLagThreshold", md), notes=[
        "natsServerMonitoringEndpoint is the server's HTTP monitoring port (nats-server -m 8222): check it"])
    for option, key in (("nats-stream", "stream"), ("nats-durable", "consumer")):
        if not v(option):
            trigger.missing.append(f"{key}: set -{option} (KEDA's nats-jetstream scaler needs it)")
    return trigger


def _sql(v: _Values, opts: Options, driver: str, prefix: str, scaler: str, user_key: str, value_key: str,
         activation_key: str) -> Trigger:
    query = _need_query(driver, scaler, "a query returning the number of rows waiting (SELECT count(*) ...)", opts)
    md = {"host": v(f"{prefix}-host"), "port": v(f"{prefix}-port"), user_key: v(f"{prefix}-user"),
          "dbName": v(f"{prefix}-database"), "query": query, value_key: str(opts.target)}
    if scaler == "postgresql":
        mode = v(f"{prefix}-ssl-mode")
        md["sslmode"] = mode if mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full") \
            else "disable"
    trigger = Trigger(scaler, _activation(opts, activation_key, md))
    if v(f"{prefix}-password"):
        trigger.auth["password"] = ("secret", v.variable(f"{prefix}-password"))
    return trigger


def trigger_postgres(v: _Values, opts: Options) -> Trigger:
    return _sql(v, opts, "postgres", "psql", "postgresql", "userName", "targetQueryValue",
                "activationTargetQueryValue")


def trigger_cockroach(v: _Values, opts: Options) -> Trigger:
    trigger = _sql(v, opts, "cockroach", "cockroach", "postgresql", "userName", "targetQueryValue",
                   "activationTargetQueryValue")
    trigger.notes.append("CockroachDB speaks the PostgreSQL protocol: KEDA's postgresql scaler reads it")
    return trigger


def trigger_mysql(v: _Values, opts: Options) -> Trigger:
    return _sql(v, opts, "mysql", "mysql", "mysql", "username", "queryValue", "activationQueryValue")


def trigger_mongodb(v: _Values, opts: Options) -> Trigger:
    query = opts.scale_query or v("mongo-retrieve-query")
    md = {"host": v("mongo-host"), "port": v("mongo-port"), "dbName": v("mongo-database"),
          "collection": v("mongo-collection"), "query": query, "queryValue": str(opts.target)}
    if v("mongo-user"):
        md["username"] = v("mongo-user")
    trigger = Trigger("mongodb", _activation(opts, "activationQueryValue", md), notes=[
        "query is procx's retrieve filter: KEDA counts the documents matching it; KEDA authenticates against "
        "dbName (use a connectionString in the TriggerAuthentication for another auth source or TLS)"])
    if v("mongo-password"):
        trigger.auth["password"] = ("secret", v.variable("mongo-password"))
    if not (v("mongo-user") and v("mongo-password")):
        trigger.missing.append("username/password: KEDA's mongodb scaler needs both (or a connectionString)")
    if query.replace(" ", "") in ("", "{}"):
        trigger.missing.append("query: KEDA refuses an empty filter: give one with --scale-query")
    return trigger


def trigger_elasticsearch(v: _Values, opts: Options) -> Trigger:
    query = v("elasticsearch-retrieve-query")
    md = {"addresses": v("elasticsearch-address"), "index": v("elasticsearch-retrieve-index"),
          "query": opts.scale_query or (json.dumps(json.loads(query)) if query else '{"query": {"match_all": {}}}'),
          "valueLocation": "hits.total.value", "targetValue": str(opts.target)}
    if v("elasticsearch-username"):
        md["username"] = v("elasticsearch-username")
    if v.flag("elasticsearch-tls-skip-verify"):
        md["unsafeSsl"] = "true"
    trigger = Trigger("elasticsearch", _activation(opts, "activationTargetValue", md), notes=[
        "the query metadata needs KEDA 2.16+ (older versions take only searchTemplateName)"])
    if v("elasticsearch-password"):
        trigger.auth["password"] = ("secret", v.variable("elasticsearch-password"))
    if not (v("elasticsearch-username") and v("elasticsearch-password")):
        trigger.missing.append("username/password: KEDA's elasticsearch scaler needs both with addresses")
    return trigger


def trigger_activemq(v: _Values, opts: Options) -> Trigger | str:
    if v("activemq-type").lower() != "queue":
        return "KEDA's activemq scaler reads queue sizes; a topic has none"
    address = v("activemq-address") or "localhost:61613"
    host = address.split("://")[-1].rsplit(":", 1)[0] or "localhost"
    md = {"managementEndpoint": f"{host}:8161", "destinationName": v("activemq-name"), "brokerName": "localhost",
          "targetQueueSize": str(opts.target)}
    trigger = Trigger("activemq", _activation(opts, "activationTargetQueueSize", md), notes=[
        "managementEndpoint is ActiveMQ Classic's web console (Jolokia) and brokerName its broker's name: check "
        "both (Artemis has its own artemis-queue scaler)"])
    if v("activemq-username"):
        trigger.auth["username"] = ("config", v.variable("activemq-username"))
    if v("activemq-password"):
        trigger.auth["password"] = ("secret", v.variable("activemq-password"))
    if not (v("activemq-username") and v("activemq-password")):
        trigger.missing.append("username/password: KEDA's activemq scaler needs the web console's credentials")
    return trigger


def trigger_etcd(v: _Values, opts: Options) -> Trigger:
    key = _need_query("etcd", "etcd", "the key whose (numeric) value is the number of items waiting", opts)
    md = {"endpoints": v("etcd-hosts"), "watchKey": key, "value": str(opts.target)}
    trigger = Trigger("etcd", _activation(opts, "activationValue", md), notes=[
        "KEDA's etcd scaler reads a number stored at watchKey; it does not count the keys under a prefix"])
    if v("etcd-username"):
        trigger.auth["username"] = ("config", v.variable("etcd-username"))
    if v("etcd-password"):
        trigger.auth["password"] = ("secret", v.variable("etcd-password"))
    return trigger


def trigger_mssql(v: _Values, opts: Options) -> Trigger:
    query = _need_query("mssql", "mssql", "a query returning the number of rows waiting (SELECT count(*) ...)", opts)
    md = {"host": v("mssql-host"), "port": v("mssql-port"), "username": v("mssql-user"),
          "database": v("mssql-database"), "query": query, "targetValue": str(opts.target)}
    trigger = Trigger("mssql", _activation(opts, "activationTargetValue", md))
    if v("mssql-password"):
        trigger.auth["password"] = ("secret", v.variable("mssql-password"))
    return trigger


def _cql(driver: str) -> Callable[[_Values, Options], Trigger]:
    def make(v: _Values, opts: Options) -> Trigger:
        query = _need_query(driver, "cassandra", "a CQL query returning the number of rows waiting", opts)
        hosts = [h.strip() for h in v(f"{driver}-hosts").split(",") if h.strip()]
        host, _, port = (hosts[0] if hosts else "").partition(":")
        md = {"clusterIPAddress": host, "port": port or "9042", "username": v(f"{driver}-user"),
              "keyspace": v(f"{driver}-keyspace"), "consistency": v(f"{driver}-consistency").lower(),
              "query": query, "targetQueryValue": str(opts.target)}
        trigger = Trigger("cassandra", _activation(opts, "activationTargetQueryValue", md))
        if v(f"{driver}-password"):
            trigger.auth["password"] = ("secret", v.variable(f"{driver}-password"))
        if not (v(f"{driver}-user") and v(f"{driver}-password")):
            trigger.missing.append("username/password: KEDA's cassandra scaler needs both")
        if not v(f"{driver}-keyspace"):
            trigger.missing.append(f"keyspace: set -{driver}-keyspace (KEDA's cassandra scaler needs it)")
        if driver == "scylla":
            trigger.notes.append("ScyllaDB speaks CQL: KEDA's cassandra scaler reads it (not verified here)")
        return trigger
    return make


def trigger_pulsar(v: _Values, opts: Options) -> Trigger:
    address = v("pulsar-address").split(",")[0]
    host = (urlsplit(address if "://" in address else f"pulsar://{address}").hostname) or "localhost"
    topic = v("pulsar-topic")
    if topic and "://" not in topic:
        topic = f"persistent://public/default/{topic}"
    md = {"adminURL": f"http://{host}:8080", "topic": topic, "subscription": v("pulsar-subscription"),
          "msgBacklogThreshold": str(opts.target)}
    trigger = Trigger("pulsar", _activation(opts, "activationMsgBacklogThreshold", md), notes=[
        "adminURL is the broker's admin REST port (8080 by default): check it"])
    if v("pulsar-auth-token"):
        md["authModes"] = "bearer"
        trigger.auth["bearerToken"] = ("secret", v.variable("pulsar-auth-token"))
    if not topic or not v("pulsar-subscription"):
        trigger.missing.append("topic/subscription: KEDA's pulsar scaler reads one subscription's backlog")
    return trigger


def trigger_nsq(v: _Values, opts: Options) -> Trigger:
    lookupd = v("nsq-nsqlookupd-address")
    md = {"nsqLookupdHTTPAddresses": urlsplit(lookupd).netloc if "://" in lookupd else lookupd,
          "topic": v("nsq-topic"),
          "channel": v("nsq-channel"), "depthThreshold": str(opts.target)}
    if lookupd.startswith("https://"):
        md["useHttps"] = "true"
    trigger = Trigger("nsq", _activation(opts, "activationDepthThreshold", md))
    if not md["nsqLookupdHTTPAddresses"]:
        trigger.missing.append("nsqLookupdHTTPAddresses: set -nsq-nsqlookupd-address (KEDA finds nsqd through it)")
    return trigger


SCALERS = {
    "activemq": trigger_activemq,
    "aws-sqs": trigger_aws_sqs,
    "cassandra": _cql("cassandra"),
    "cockroach": trigger_cockroach,
    "elasticsearch": trigger_elasticsearch,
    "etcd": trigger_etcd,
    "gcp-gcs": trigger_gcp_gcs,
    "gcp-pubsub": trigger_gcp_pubsub,
    "kafka": trigger_kafka,
    "mongodb": trigger_mongodb,
    "mssql": trigger_mssql,
    "mysql": trigger_mysql,
    "nats": trigger_nats,
    "nsq": trigger_nsq,
    "postgres": trigger_postgres,
    "pulsar": trigger_pulsar,
    "rabbitmq": trigger_rabbitmq,
    "redis-list": trigger_redis_list,
    "redis-stream": trigger_redis_stream,
    "scylla": _cql("scylla"),
}


def scaler(profile: Profile, opts: Options | None = None, environ: dict[str, str] | None = None
           ) -> Trigger | str:
    """The KEDA trigger for the profile's work source, or the reason there is none."""
    driver = profile.driver(PROCX)
    if driver not in registry.names():
        raise UsageError(f"profile {profile.name}: unknown driver '{driver}'{registry.suggest(driver)}")
    make = SCALERS.get(driver)
    if make is None:
        return NO_SCALER.get(driver, f"KEDA has no scaler for {driver}")
    opts = opts or Options()
    if not opts.scale_query and profile.variables.get(SCALE_QUERY):
        opts = replace(opts, scale_query=profile.variables[SCALE_QUERY])
    values = _Values(registry.get(driver), PROCX, profile.expanded(environ))
    return make(values, opts)


# -- manifests ---------------------------------------------------------------------------------------
def dns_name(text: str, limit: int = 63) -> str:
    """A DNS-1123 label: lower case letters, digits and '-', starting and ending alphanumeric."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "profile"
    return name[:limit].rstrip("-")


def _resources(opts: Options) -> dict:
    out: dict[str, dict[str, str]] = {}
    for kind, text in (("cpu", opts.cpu), ("memory", opts.memory)):
        if not text:
            continue
        request, _, limit = text.partition(":")
        if request:
            out.setdefault("requests", {})[kind] = request
        if limit:
            out.setdefault("limits", {})[kind] = limit
    return out


def _grace(values: dict[str, str]) -> int:
    text = values.get("PROCX_GRACE_PERIOD", "")
    try:
        grace = parse_duration(text) if text else 25.0
    except ValueError:
        raise UsageError(f"PROCX_GRACE_PERIOD: invalid duration {text!r}") from None
    return max(0, math.ceil(grace)) + GRACE_MARGIN


def _command(profile: Profile) -> list[str]:
    """procx (PID 1, so it gets the kubelet's SIGTERM and drains) and its child command.

    A pipeline (`procx CMD | pushx` on one machine) becomes one push per unit of work: the child is a shell that
    runs CMD into a temporary file and pushes it only when CMD succeeded (pushx reads its input to the end, so a
    pushx after a long-running daemon would push nothing until the pod ends); the work is cleared only when both
    succeeded. "$@" passes -pass-work-as-arg's payload on to CMD.
    """
    if profile.kind == "pipeline":
        child = shlex.join(profile.command) if profile.command else "cat"
        script = (f'out=$(mktemp) || exit 1; {child} "$@" > "$out" && pushx -in-file "$out"; '
                  'rc=$?; rm -f "$out"; exit $rc')
        return ["procx", "sh", "-c", script, "procx-pipeline"]
    return ["procx", *profile.command]


def build(profile: Profile, opts: Options | None = None, environ: dict[str, str] | None = None) -> Export:
    """The manifests of a profile (see the module's docstring), in the order `kubectl apply` needs them."""
    opts = opts or Options()
    if profile.kind == PUSHX:
        raise UsageError(f"profile {profile.name}: a pushx profile pushes one payload and exits: there is "
                         "nothing to scale; export the procx (or pipeline) profile that takes the work")
    if not profile.driver(PROCX):
        raise UsageError(f"profile {profile.name}: PROCX_DRIVER is not set")
    if opts.min_replicas < 0 or opts.max_replicas < 1 or opts.min_replicas > opts.max_replicas:
        raise UsageError(f"--min {opts.min_replicas} / --max {opts.max_replicas}: need 0 <= min <= max, max >= 1")
    if opts.target < 1:
        raise UsageError("--target: must be at least 1")
    warnings: list[str] = []
    warnings += [f"profile: {p}" for p in validate(profile) if p.level == "error"
                 and not (opts.existing_secret and profile.is_secret(p.variable))]
    values = profile.expanded(environ)
    name = "procx-" + dns_name(profile.name, 50)
    driver = profile.driver(PROCX)
    labels = {"app.kubernetes.io/name": "procx", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/managed-by": "procx-tui"}

    def meta(resource: str, **annotations: str) -> dict:
        m: dict = {"name": resource}
        if opts.namespace:
            m["namespace"] = opts.namespace
        m["labels"] = dict(labels)
        notes = {ANNOTATION + k.replace("_", "-"): v for k, v in annotations.items() if v}
        if notes:
            m["annotations"] = notes
        return m

    secret: dict[str, str] = {}
    config: dict[str, str] = {}
    for var, raw in profile.variables.items():
        if var in OURS or var in LEFT_OUT:
            continue
        if not var.startswith(("PROCX_", "PUSHX_")):
            warnings.append(f"{var} is not a PROCX_*/PUSHX_* variable: left out (give it to the pod yourself)")
            continue
        if raw and not values.get(var) and not (opts.existing_secret and profile.is_secret(var)):
            warnings.append(f"{var} refers to unset variables ({raw}): exported empty")
        (secret if profile.is_secret(var) else config)[var] = values.get(var, "")
        if var in config and _LOOPBACK.search(config[var]):
            warnings.append(f"{var}={config[var]}: in a pod, localhost is the pod itself: use the service's name")
    config["PROCX_DAEMON"] = "true"
    if opts.job:
        config["PROCX_UNTIL_EMPTY"] = "true"

    found = scaler(profile, opts, environ)
    trigger = found if isinstance(found, Trigger) else None
    reason = found if isinstance(found, str) else ""
    for key, text in (trigger.metadata.items() if trigger else ()):
        if key != "brokerName" and _LOOPBACK.search(text):  # ActiveMQ's default broker is named localhost
            warnings.append(f"KEDA trigger {key}={text}: KEDA runs in its own pod, where localhost is not the server")
    spec = registry.get(driver)
    if spec.source is None:
        warnings.append(f"driver {driver}: the procx side is not implemented yet in this release: the worker "
                        "will exit with an error")
    for need in (trigger.missing if trigger else ()):
        warnings.append(f"KEDA {trigger.type} scaler: {need}")  # type: ignore[union-attr]
    if opts.job and trigger is None:
        raise UsageError(f"--job: driver {driver} has no KEDA scaler to start jobs ({reason})")

    manifests: list[dict] = []
    secret_name, config_name, auth_name = f"{name}-secret", f"{name}-config", f"{name}-auth"
    if secret and opts.existing_secret:
        secret_name = opts.existing_secret
        warnings.append(f"Secret {secret_name} is not exported: create it with the keys {', '.join(sorted(secret))}"
                        f" (kubectl create secret generic {secret_name} --from-literal=KEY=VALUE ...)")
    elif secret:
        manifests.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta(secret_name), "type": "Opaque",
                          "stringData": secret})
    manifests.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(config_name), "data": config})

    env_from: list[dict] = [{"configMapRef": {"name": config_name}}]
    if secret:
        env_from.append({"secretRef": {"name": secret_name}})
    container: dict = {"name": "procx", "image": opts.image, "command": _command(profile), "envFrom": env_from}
    if _resources(opts):
        container["resources"] = _resources(opts)
    pod: dict = {"terminationGracePeriodSeconds": _grace(values), "containers": [container]}

    authenticated = False
    if trigger is not None and (trigger.auth or trigger.identity):
        refs: dict[str, list[dict]] = {"secret": [], "config": []}
        for parameter, (source, var) in sorted(trigger.auth.items()):
            if var not in (secret if source == "secret" else config):
                continue
            refs[source].append({"parameter": parameter, "name": secret_name if source == "secret" else config_name,
                                 "key": var})
        auth_spec = {k: v for k, v in (("secretTargetRef", refs["secret"]), ("configMapTargetRef", refs["config"]))
                     if v}
        if trigger.identity:
            auth_spec["podIdentity"] = {"provider": trigger.identity}
        if auth_spec:
            manifests.append({"apiVersion": KEDA_API, "kind": "TriggerAuthentication", "metadata": meta(auth_name),
                              "spec": auth_spec})
            authenticated = True
    keda_trigger: dict = {}
    if trigger is not None:
        keda_trigger = {"type": trigger.type, "metadata": {k: v for k, v in trigger.metadata.items() if v}}
        if authenticated:
            keda_trigger["authenticationRef"] = {"name": auth_name}
    notes = "; ".join(trigger.notes) if trigger is not None else ""

    if trigger is not None and opts.job:
        job_pod = {**pod, "restartPolicy": "Never"}
        manifests.append({
            "apiVersion": KEDA_API, "kind": "ScaledJob",
            "metadata": meta(name, profile=profile.name, driver=driver, scaler=trigger.type, note=notes),
            "spec": {
                "jobTargetRef": {"parallelism": 1, "completions": 1, "backoffLimit": 4,
                                 "template": {"metadata": {"labels": dict(labels)}, "spec": job_pod}},
                "pollingInterval": opts.polling_interval, "minReplicaCount": opts.min_replicas,
                "maxReplicaCount": opts.max_replicas, "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 10, "triggers": [keda_trigger]}})
        return Export(manifests, warnings, trigger, reason)

    selector = {"app.kubernetes.io/instance": name}
    deployment: dict = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(name, profile=profile.name, driver=driver,
                         scaler=trigger.type if trigger else f"none: {reason}"),
        "spec": {"selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}}
    if trigger is None:
        deployment["spec"] = {"replicas": max(1, opts.min_replicas), **deployment["spec"]}
        manifests.append(deployment)
        return Export(manifests, warnings, None, reason)
    manifests.append(deployment)
    manifests.append({
        "apiVersion": KEDA_API, "kind": "ScaledObject",
        "metadata": meta(name, profile=profile.name, driver=driver, scaler=trigger.type, note=notes),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "pollingInterval": opts.polling_interval, "cooldownPeriod": opts.cooldown,
                 "minReplicaCount": opts.min_replicas, "maxReplicaCount": opts.max_replicas,
                 "triggers": [keda_trigger]}})
    return Export(manifests, warnings, trigger, reason)


def to_yaml(export: Export) -> str:
    """Multi-document YAML, each document headed by a comment (the reason when KEDA cannot scale it)."""
    import yaml

    docs = []
    for m in export.manifests:
        head = f"# {m['kind']} {m['metadata']['name']}"
        notes = m["metadata"].get("annotations", {})
        scaler_note = notes.get(ANNOTATION + "scaler", "")
        if scaler_note.startswith("none:"):
            head += f"\n# no KEDA scaler: {scaler_note[5:].strip()}; this Deployment runs a fixed number of replicas"
        elif notes.get(ANNOTATION + "note"):
            head += f"\n# KEDA {scaler_note}: {notes[ANNOTATION + 'note']}"
        body = yaml.safe_dump(m, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
        docs.append(f"{head}\n{body}")
    warn = "".join(f"# warning: {w}\n" for w in export.warnings)
    return warn + "---\n".join(docs)


MASK = "********"


def masked(export: Export) -> Export:
    """The same export with the Secret's values hidden: what a screen may show."""
    manifests = [{**m, "stringData": {k: MASK if v else "" for k, v in m["stringData"].items()}}
                 if m["kind"] == "Secret" else m for m in export.manifests]
    return Export(manifests, export.warnings, export.trigger, export.reason)


def save(text: str, path: str) -> None:
    """Write the YAML readable by its owner only: it may hold the Secret's values."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode on open()
