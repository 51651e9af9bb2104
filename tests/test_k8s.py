"""`procx-tui export k8s`: the manifests of a profile (core/k8s.py), checked offline.

The YAML parses; every resource carries what Kubernetes and KEDA require for its kind; each driver's trigger
has KEDA's documented type and metadata names; secrets appear only in the Secret (never in the ConfigMap, the
container's env or a trigger's metadata); drivers without a scaler get a plain Deployment saying why.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import yaml

from core import k8s, profiles
from core.errors import UsageError
from core.profiles import Profile

PASSWORD = "S3cr3t-Pa55w0rd-do-not-leak"
URL_SECRET = f"amqp://worker:{PASSWORD}@rabbit.default.svc:5672/%2F"


def profile(name: str = "worker", command: str = "python job.py", **variables: str) -> Profile:
    return Profile(name, {"PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": command, **variables})


def load(export: k8s.Export) -> list[dict]:
    return [d for d in yaml.safe_load_all(k8s.to_yaml(export)) if d is not None]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


# KEDA's metadata and TriggerAuthentication parameter names per scaler, from its sources (kedacore/keda,
# pkg/scalers/<name>_scaler.go: the `keda:"name=..."` tags; required = no `optional` and no `default`):
# scaler -> (metadata KEDA requires, every metadata name it reads, every auth parameter name it reads)
KEDA = {
    "aws-sqs-queue": ({"queueURL", "awsRegion"}, {"queueURL", "queueLength", "activationQueueLength", "awsRegion",
                                                  "awsEndpoint", "scaleOnInFlight", "scaleOnDelayed",
                                                  "identityOwner"}, {"awsAccessKeyID", "awsSecretAccessKey",
                                                                     "awsRoleArn"}),
    "gcp-pubsub": ({"subscriptionName"}, {"subscriptionName", "topicName", "mode", "value", "activationValue",
                                          "aggregation", "valueIfNull", "timeHorizon"},
                   {"GoogleApplicationCredentials"}),
    "gcp-storage": ({"bucketName"}, {"bucketName", "targetObjectCount", "activationTargetObjectCount",
                                     "maxBucketItemsToScan", "blobPrefix", "blobDelimiter"},
                    {"GoogleApplicationCredentials"}),
    "redis": ({"listName"}, {"address", "host", "port", "listName", "listLength", "activationListLength",
                             "databaseIndex", "enableTLS", "unsafeSsl", "username"},
              {"password", "username", "tls", "ca", "cert", "key", "keyPassword", "address", "host", "port"}),
    "redis-streams": ({"stream"}, {"address", "host", "port", "stream", "consumerGroup", "pendingEntriesCount",
                                   "streamLength", "lagCount", "activationLagCount", "databaseIndex", "enableTLS",
                                   "unsafeSsl", "username"},
                      {"password", "username", "tls", "ca", "cert", "key", "keyPassword", "address", "host"}),
    "rabbitmq": ({"queueName"}, {"protocol", "queueName", "mode", "value", "activationValue", "vhostName"},
                 {"host", "username", "password", "vhostName", "tls", "ca", "cert", "key", "keyPassword"}),
    "kafka": ({"bootstrapServers"}, {"bootstrapServers", "consumerGroup", "topic", "lagThreshold",
                                     "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers", "sasl",
                                     "tls", "unsafeSsl"},
              {"sasl", "username", "password", "tls", "ca", "cert", "key", "keyPassword"}),
    "nats-jetstream": ({"natsServerMonitoringEndpoint", "account", "stream", "consumer"},
                       {"natsServerMonitoringEndpoint", "account", "accountID", "stream", "consumer", "lagThreshold",
                        "activationLagThreshold", "useHttps"}, {"natsServerMonitoringEndpoint"}),
    "postgresql": ({"host", "port", "userName", "dbName", "sslmode", "query", "targetQueryValue"},
                   {"host", "port", "userName", "dbName", "sslmode", "query", "targetQueryValue",
                    "activationTargetQueryValue"}, {"password", "connection", "host", "port", "userName", "dbName"}),
    "mysql": ({"query", "queryValue"}, {"host", "port", "username", "dbName", "query", "queryValue",
                                        "activationQueryValue"}, {"password", "connectionString"}),
    "mongodb": ({"dbName", "collection", "query", "queryValue"},
                {"host", "port", "username", "dbName", "scheme", "collection", "query", "queryValue",
                 "activationQueryValue"}, {"password", "connectionString", "host", "port", "username", "dbName"}),
    "elasticsearch": ({"index", "valueLocation", "targetValue"},
                      {"addresses", "username", "cloudID", "apiKey", "index", "searchTemplateName", "query",
                       "valueLocation", "targetValue", "parameters", "activationTargetValue", "ignoreNullValues",
                       "unsafeSsl"}, {"password", "username", "addresses", "cloudID", "apiKey"}),
    "activemq": ({"managementEndpoint", "destinationName", "brokerName"},
                 {"managementEndpoint", "destinationName", "brokerName", "restAPITemplate", "corsHeader",
                  "targetQueueSize", "activationTargetQueueSize"}, {"username", "password"}),
    "etcd": ({"endpoints", "watchKey", "value"}, {"endpoints", "watchKey", "value", "activationValue",
                                                  "watchProgressNotifyInterval"},
             {"username", "password", "tls", "cert", "key", "keyPassword", "ca"}),
    "mssql": ({"query", "targetValue"}, {"host", "port", "username", "database", "query", "targetValue",
                                         "activationTargetValue"},
              {"password", "connectionString", "host", "port", "username", "database"}),
    "cassandra": ({"clusterIPAddress", "keyspace", "query", "targetQueryValue", "username"},
                  {"clusterIPAddress", "port", "consistency", "protocolVersion", "keyspace", "query",
                   "targetQueryValue", "activationTargetQueryValue", "username"},
                  {"password", "tls", "cert", "key", "ca"}),
    "pulsar": ({"adminURL", "topic", "subscription"}, {"adminURL", "topic", "subscription", "msgBacklogThreshold",
                                                       "activationMsgBacklogThreshold", "isPartitionedTopic", "tls",
                                                       "authModes"},
               {"bearerToken", "username", "password", "ca", "cert", "key"}),
    "nsq": ({"nsqLookupdHTTPAddresses", "topic", "channel"},
            {"nsqLookupdHTTPAddresses", "topic", "channel", "depthThreshold", "activationDepthThreshold", "useHttps",
             "unsafeSsl"}, set()),
}

# driver -> (variables, KEDA trigger type, auth parameters from the Secret / ConfigMap, pod identity provider)
CASES = {
    "aws-sqs": ({"PROCX_AWS_SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"},
                "aws-sqs-queue", {}, "aws"),
    "gcp-pubsub": ({"PROCX_GCP_PROJECT_ID": "proj", "PROCX_GCP_SUBSCRIPTION": "work"}, "gcp-pubsub", {}, "gcp"),
    "gcp-gcs": ({"PROCX_GCP_GCS_BUCKET": "inbox", "PROCX_GCP_GCS_KEY_PREFIX": "jobs/"}, "gcp-storage", {}, "gcp"),
    "redis-list": ({"PROCX_REDIS_HOST": "redis", "PROCX_REDIS_KEY": "jobs", "PROCX_REDIS_PASSWORD": PASSWORD},
                   "redis", {"password": "PROCX_REDIS_PASSWORD"}, ""),
    "redis-stream": ({"PROCX_REDIS_HOST": "redis", "PROCX_REDIS_KEY": "events", "PROCX_REDIS_PASSWORD": PASSWORD,
                      "PROCX_REDIS_STREAM_CONSUMER_GROUP": "workers"},
                     "redis-streams", {"password": "PROCX_REDIS_PASSWORD"}, ""),
    "rabbitmq": ({"PROCX_RABBITMQ_URL": URL_SECRET, "PROCX_RABBITMQ_QUEUE": "jobs"},
                 "rabbitmq", {"host": "PROCX_RABBITMQ_URL"}, ""),
    "kafka": ({"PROCX_KAFKA_BROKERS": "k1:9092,k2:9092", "PROCX_KAFKA_TOPIC": "t", "PROCX_KAFKA_GROUP": "g",
               "PROCX_KAFKA_ENABLE_SASL": "true", "PROCX_KAFKA_SASL_TYPE": "plain",
               "PROCX_KAFKA_SASL_USERNAME": "app", "PROCX_KAFKA_SASL_PASSWORD": PASSWORD},
              "kafka", {"password": "PROCX_KAFKA_SASL_PASSWORD", "username": "PROCX_KAFKA_SASL_USERNAME"}, ""),
    "nats": ({"PROCX_NATS_URL": "nats://nats.default.svc:4222", "PROCX_NATS_SUBJECT": "jobs",
              "PROCX_NATS_JETSTREAM": "true", "PROCX_NATS_STREAM": "JOBS", "PROCX_NATS_DURABLE": "workers",
              "PROCX_NATS_PASSWORD": PASSWORD}, "nats-jetstream", {}, ""),
    "postgres": ({"PROCX_PSQL_HOST": "pg", "PROCX_PSQL_USER": "app", "PROCX_PSQL_PASSWORD": PASSWORD,
                  "PROCX_PSQL_DATABASE": "db", "PROCX_PSQL_RETRIEVE_QUERY": "SELECT * FROM jobs LIMIT 1"},
                 "postgresql", {"password": "PROCX_PSQL_PASSWORD"}, ""),
    "mysql": ({"PROCX_MYSQL_HOST": "my", "PROCX_MYSQL_USER": "app", "PROCX_MYSQL_PASSWORD": PASSWORD,
               "PROCX_MYSQL_DATABASE": "db", "PROCX_MYSQL_RETRIEVE_QUERY": "SELECT * FROM jobs LIMIT 1"},
              "mysql", {"password": "PROCX_MYSQL_PASSWORD"}, ""),
    "mongodb": ({"PROCX_MONGO_HOST": "mongo", "PROCX_MONGO_USER": "app", "PROCX_MONGO_PASSWORD": PASSWORD,
                 "PROCX_MONGO_DATABASE": "db", "PROCX_MONGO_COLLECTION": "jobs",
                 "PROCX_MONGO_RETRIEVE_QUERY": '{"status": "new"}'},
                "mongodb", {"password": "PROCX_MONGO_PASSWORD"}, ""),
    "elasticsearch": ({"PROCX_ELASTICSEARCH_ADDRESS": "http://es:9200", "PROCX_ELASTICSEARCH_USERNAME": "elastic",
                       "PROCX_ELASTICSEARCH_PASSWORD": PASSWORD, "PROCX_ELASTICSEARCH_RETRIEVE_INDEX": "jobs",
                       "PROCX_ELASTICSEARCH_RETRIEVE_QUERY": '{"query": {"term": {"status": "new"}}}'},
                      "elasticsearch", {"password": "PROCX_ELASTICSEARCH_PASSWORD"}, ""),
    "activemq": ({"PROCX_ACTIVEMQ_ADDRESS": "amq:61613", "PROCX_ACTIVEMQ_TYPE": "queue", "PROCX_ACTIVEMQ_NAME": "jobs",
                  "PROCX_ACTIVEMQ_USERNAME": "admin", "PROCX_ACTIVEMQ_PASSWORD": PASSWORD},
                 "activemq", {"password": "PROCX_ACTIVEMQ_PASSWORD", "username": "PROCX_ACTIVEMQ_USERNAME"}, ""),
    "etcd": ({"PROCX_ETCD_HOSTS": "etcd:2379", "PROCX_ETCD_RETRIEVE_KEY": "jobs/", "PROCX_ETCD_USERNAME": "root",
              "PROCX_ETCD_PASSWORD": PASSWORD},
             "etcd", {"password": "PROCX_ETCD_PASSWORD", "username": "PROCX_ETCD_USERNAME"}, ""),
    "mssql": ({"PROCX_MSSQL_HOST": "sql", "PROCX_MSSQL_USER": "sa", "PROCX_MSSQL_PASSWORD": PASSWORD,
               "PROCX_MSSQL_DATABASE": "db", "PROCX_MSSQL_RETRIEVE_QUERY": "SELECT TOP 1 * FROM jobs"},
              "mssql", {"password": "PROCX_MSSQL_PASSWORD"}, ""),
    "cassandra": ({"PROCX_CASSANDRA_HOSTS": "c1:9042,c2", "PROCX_CASSANDRA_USER": "app",
                   "PROCX_CASSANDRA_PASSWORD": PASSWORD, "PROCX_CASSANDRA_KEYSPACE": "work",
                   "PROCX_CASSANDRA_RETRIEVE_QUERY": "SELECT * FROM jobs LIMIT 1"},
                  "cassandra", {"password": "PROCX_CASSANDRA_PASSWORD"}, ""),
    "scylla": ({"PROCX_SCYLLA_HOSTS": "s1", "PROCX_SCYLLA_USER": "app", "PROCX_SCYLLA_PASSWORD": PASSWORD,
                "PROCX_SCYLLA_KEYSPACE": "work", "PROCX_SCYLLA_RETRIEVE_QUERY": "SELECT * FROM jobs LIMIT 1"},
               "cassandra", {"password": "PROCX_SCYLLA_PASSWORD"}, ""),
    "pulsar": ({"PROCX_PULSAR_ADDRESS": "pulsar:6650", "PROCX_PULSAR_TOPIC": "jobs",
                "PROCX_PULSAR_SUBSCRIPTION": "workers", "PROCX_PULSAR_AUTH_TOKEN": PASSWORD},
               "pulsar", {"bearerToken": "PROCX_PULSAR_AUTH_TOKEN"}, ""),
    "nsq": ({"PROCX_NSQ_NSQLOOKUPD_ADDRESS": "http://lookupd:4161", "PROCX_NSQ_TOPIC": "jobs",
             "PROCX_NSQ_CHANNEL": "workers"}, "nsq", {}, ""),
}


def case_profile(driver: str) -> Profile:
    variables = CASES[driver][0]
    return profile(f"{driver}-worker", PROCX_DRIVER=driver, **variables)


def options(**kw) -> k8s.Options:
    return k8s.Options(scale_query="SELECT count(*) FROM jobs", **kw)


def check_common(docs: list[dict], namespace: str = "", external: tuple[str, ...] = ()) -> None:
    """Every resource: apiVersion, kind, metadata.name (a DNS label), and its kind's required fields."""
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"], doc
        name = doc["metadata"]["name"]
        assert name == k8s.dns_name(name) and len(name) <= 63
        assert doc["metadata"].get("namespace", "") == namespace
        if doc["kind"] in ("Secret", "ConfigMap"):
            assert doc["apiVersion"] == "v1"
            values = doc.get("stringData" if doc["kind"] == "Secret" else "data", {})
            assert all(isinstance(v, str) for v in values.values())
        elif doc["kind"] == "Deployment":
            assert doc["apiVersion"] == "apps/v1"
            spec = doc["spec"]
            labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= labels.items()
            check_pod(spec["template"]["spec"], docs, external)
        elif doc["kind"] in ("ScaledObject", "ScaledJob", "TriggerAuthentication"):
            assert doc["apiVersion"] == "keda.sh/v1alpha1"
    kinds = by_kind(docs)
    if "ScaledObject" in kinds:
        spec = kinds["ScaledObject"]["spec"]
        target = spec["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] == kinds["Deployment"]["metadata"]["name"]
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert "replicas" not in kinds["Deployment"]["spec"]  # KEDA owns the replica count
        check_triggers(spec["triggers"], kinds)
    if "ScaledJob" in kinds:
        spec = kinds["ScaledJob"]["spec"]
        template = spec["jobTargetRef"]["template"]
        assert template["spec"]["restartPolicy"] in ("Never", "OnFailure")
        check_pod(template["spec"], docs, external)
        check_triggers(spec["triggers"], kinds)
        assert "Deployment" not in kinds


def check_pod(pod: dict, docs: list[dict], external: tuple[str, ...] = ()) -> None:
    """`external`: Secrets that exist in the cluster already (--existing-secret)."""
    names = {(d["kind"], d["metadata"]["name"]) for d in docs} | {("Secret", n) for n in external}
    (container,) = pod["containers"]
    assert container["name"] and container["image"] and container["command"][0] == "procx"  # PID 1: gets SIGTERM
    assert "env" not in container  # everything through envFrom
    for ref in container["envFrom"]:
        if "configMapRef" in ref:
            assert ("ConfigMap", ref["configMapRef"]["name"]) in names
        else:
            assert ("Secret", ref["secretRef"]["name"]) in names
    assert isinstance(pod["terminationGracePeriodSeconds"], int)


def check_triggers(triggers: list[dict], kinds: dict[str, dict]) -> None:
    for trigger in triggers:
        assert trigger["type"] and all(isinstance(v, str) and v for v in trigger["metadata"].values()), trigger
        if "authenticationRef" in trigger:
            auth = kinds["TriggerAuthentication"]
            assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]


@pytest.mark.parametrize("driver", sorted(CASES))
def test_trigger_type_metadata_and_auth_per_driver(driver: str) -> None:
    variables, kind, auth, identity = CASES[driver]
    export = k8s.build(case_profile(driver), options())
    assert not [w for w in export.warnings if "KEDA" in w], export.warnings  # nothing the scaler needs is missing
    docs = load(export)
    check_common(docs)
    kinds = by_kind(docs)
    (trigger,) = kinds["ScaledObject"]["spec"]["triggers"]
    assert trigger["type"] == kind
    required, known, known_auth = KEDA[kind]
    assert required <= set(trigger["metadata"]), required - set(trigger["metadata"])
    assert set(trigger["metadata"]) <= known, set(trigger["metadata"]) - known  # no name KEDA would not read
    refs = {}
    if auth or identity:
        spec = kinds["TriggerAuthentication"]["spec"]
        for source, kind_name in (("secretTargetRef", "Secret"), ("configMapTargetRef", "ConfigMap")):
            for ref in spec.get(source, []):
                assert ref["name"] == kinds[kind_name]["metadata"]["name"]
                assert ref["key"] in kinds[kind_name]["stringData" if kind_name == "Secret" else "data"]
                refs[ref["parameter"]] = ref["key"]
        assert spec.get("podIdentity", {}).get("provider", "") == identity
        assert trigger["authenticationRef"]["name"] == kinds["TriggerAuthentication"]["metadata"]["name"]
    else:
        assert "TriggerAuthentication" not in kinds and "authenticationRef" not in trigger
    assert refs == auth
    assert set(refs) <= known_auth, set(refs) - known_auth


@pytest.mark.parametrize(("driver", "drop", "missing"), [
    ("aws-sqs", {"PROCX_AWS_SQS_QUEUE_URL": "https://queue.example/1/jobs"}, "awsRegion"),
    ("nats", {"PROCX_NATS_STREAM": ""}, "stream"),
    ("mongodb", {"PROCX_MONGO_PASSWORD": ""}, "username/password"),
    ("elasticsearch", {"PROCX_ELASTICSEARCH_USERNAME": ""}, "username/password"),
    ("activemq", {"PROCX_ACTIVEMQ_PASSWORD": ""}, "username/password"),
    ("cassandra", {"PROCX_CASSANDRA_KEYSPACE": ""}, "keyspace"),
    ("pulsar", {"PROCX_PULSAR_SUBSCRIPTION": ""}, "topic/subscription"),
    ("nsq", {"PROCX_NSQ_NSQLOOKUPD_ADDRESS": ""}, "nsqLookupdHTTPAddresses"),
])
def test_what_a_scaler_needs_and_the_profile_lacks_is_a_warning(driver: str, drop: dict, missing: str) -> None:
    p = case_profile(driver)
    p.variables.update(drop)
    export = k8s.build(p, options())
    assert any(w.startswith(f"KEDA {CASES[driver][1]} scaler: {missing}") for w in export.warnings), export.warnings


@pytest.mark.parametrize("driver", sorted(CASES))
def test_secrets_only_in_the_secret(driver: str) -> None:
    docs = load(k8s.build(case_profile(driver), options()))
    for doc in docs:
        text = yaml.safe_dump(doc)
        if doc["kind"] == "Secret":
            assert set(doc["stringData"]) == {v for v in CASES[driver][0] if case_profile(driver).is_secret(v)}
        else:
            assert PASSWORD not in text, doc["kind"]


def test_secret_holds_exactly_the_secret_variables() -> None:
    export = k8s.build(case_profile("rabbitmq"), options())
    kinds = by_kind(load(export))
    assert kinds["Secret"]["stringData"] == {"PROCX_RABBITMQ_URL": URL_SECRET}
    assert kinds["Secret"]["type"] == "Opaque"
    data = kinds["ConfigMap"]["data"]
    assert data["PROCX_RABBITMQ_QUEUE"] == "jobs" and data["PROCX_DAEMON"] == "true"
    assert "PROCX_RABBITMQ_URL" not in data
    assert not any(k.startswith("PROCX_TUI_") for k in data)


def test_references_are_expanded_from_the_environment_of_the_export() -> None:
    p = profile(PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="${REDIS_HOST}", PROCX_REDIS_KEY="jobs",
                PROCX_REDIS_PASSWORD="${REDIS_PASSWORD}")
    export = k8s.build(p, options(), environ={"REDIS_HOST": "redis.prod.svc", "REDIS_PASSWORD": PASSWORD})
    kinds = by_kind(load(export))
    assert kinds["Secret"]["stringData"] == {"PROCX_REDIS_PASSWORD": PASSWORD}
    assert kinds["ConfigMap"]["data"]["PROCX_REDIS_HOST"] == "redis.prod.svc"
    assert kinds["ScaledObject"]["spec"]["triggers"][0]["metadata"]["address"] == "redis.prod.svc:6379"
    unset = k8s.build(p, options(), environ={})
    assert by_kind(load(unset))["Secret"]["stringData"] == {"PROCX_REDIS_PASSWORD": ""}
    assert any("PROCX_REDIS_PASSWORD" in w for w in unset.warnings)


def test_other_variables_are_left_out_with_a_warning() -> None:
    p = profile(PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="redis", PROCX_REDIS_KEY="jobs",
                AWS_SECRET_ACCESS_KEY=PASSWORD, PROCX_ENV_FILE="/home/me/x.env")
    export = k8s.build(p, options())
    text = k8s.to_yaml(export)
    assert PASSWORD not in text and "/home/me/x.env" not in text
    assert any("AWS_SECRET_ACCESS_KEY" in w for w in export.warnings)


def test_loopback_hosts_are_warned_about() -> None:
    p = profile(PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="127.0.0.1", PROCX_REDIS_KEY="jobs")
    export = k8s.build(p, options())
    assert any("PROCX_REDIS_HOST" in w and "localhost" in w for w in export.warnings)
    assert any("address=127.0.0.1:6379" in w for w in export.warnings)


def test_deployment_runs_procx_daemon_with_the_child_and_grace() -> None:
    p = case_profile("redis-list")
    p.variables["PROCX_GRACE_PERIOD"] = "1m30s"
    export = k8s.build(p, options(cpu="250m:1", memory="128Mi", namespace="work", image="reg/w:1"))
    docs = load(export)
    check_common(docs, namespace="work")
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["procx", "python", "job.py"]
    assert container["image"] == "reg/w:1"
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1"}}
    assert pod["terminationGracePeriodSeconds"] == 90 + k8s.GRACE_MARGIN
    default = by_kind(load(k8s.build(case_profile("redis-list"), options())))
    assert default["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 25 + k8s.GRACE_MARGIN


def test_scaling_options() -> None:
    export = k8s.build(case_profile("aws-sqs"), options(min_replicas=1, max_replicas=7, target=3, activation=2,
                                                        polling_interval=10, cooldown=60))
    spec = by_kind(load(export))["ScaledObject"]["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"], spec["cooldownPeriod"]) == \
        (1, 7, 10, 60)
    md = spec["triggers"][0]["metadata"]
    assert md == {"queueURL": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs", "queueLength": "3",
                  "awsRegion": "eu-west-1", "activationQueueLength": "2"}


def test_job_is_a_scaled_job_running_until_empty() -> None:
    docs = load(k8s.build(case_profile("rabbitmq"), options(job=True, max_replicas=4)))
    check_common(docs)
    kinds = by_kind(docs)
    assert set(kinds) == {"Secret", "ConfigMap", "TriggerAuthentication", "ScaledJob"}
    assert kinds["ConfigMap"]["data"]["PROCX_UNTIL_EMPTY"] == "true"
    assert kinds["ConfigMap"]["data"]["PROCX_DAEMON"] == "true"
    assert kinds["ScaledJob"]["spec"]["maxReplicaCount"] == 4
    assert kinds["ScaledJob"]["spec"]["triggers"][0]["type"] == "rabbitmq"


@pytest.mark.parametrize("driver,variables", [
    ("sqlite", {"PROCX_SQLITE_PATH": "/data/q.db"}),
    ("fs", {"PROCX_FS_FOLDER": "/data/in", "PROCX_FS_KEY_PREFIX": "job"}),
    ("http", {"PROCX_HTTP_RETRIEVE_URL": "http://api/next"}),
    ("nats", {"PROCX_NATS_URL": "nats://n:4222", "PROCX_NATS_SUBJECT": "jobs"}),  # core NATS: no backlog
    ("activemq", {"PROCX_ACTIVEMQ_TYPE": "topic", "PROCX_ACTIVEMQ_NAME": "t"}),
])
def test_drivers_without_a_scaler_get_a_plain_deployment_saying_why(driver: str, variables: dict) -> None:
    export = k8s.build(profile(PROCX_DRIVER=driver, **variables), k8s.Options(min_replicas=2))
    assert export.trigger is None and export.reason
    docs = load(export)
    check_common(docs)
    kinds = by_kind(docs)
    assert set(kinds) == {"ConfigMap", "Deployment"}
    assert kinds["Deployment"]["spec"]["replicas"] == 2
    assert kinds["Deployment"]["metadata"]["annotations"]["procx-tui/scaler"] == f"none: {export.reason}"
    assert f"# no KEDA scaler: {export.reason}" in k8s.to_yaml(export)
    with pytest.raises(UsageError, match="--job"):
        k8s.build(profile(PROCX_DRIVER=driver, **variables), k8s.Options(job=True))


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="--scale-query"):
        k8s.build(case_profile("postgres"), k8s.Options())
    with pytest.raises(UsageError, match="pushx profile"):
        k8s.build(Profile("p", {"PROCX_TUI_KIND": "pushx", "PUSHX_DRIVER": "redis-list"}))
    with pytest.raises(UsageError, match="--min"):
        k8s.build(case_profile("redis-list"), k8s.Options(min_replicas=5, max_replicas=2))


def test_pipeline_runs_procx_into_pushx() -> None:
    p = Profile("pipe", {"PROCX_TUI_KIND": "pipeline", "PROCX_TUI_COMMAND": "python 'my job.py'",
                         "PROCX_DRIVER": "redis-list", "PROCX_REDIS_HOST": "r", "PROCX_REDIS_KEY": "in",
                         "PUSHX_DRIVER": "redis-list", "PUSHX_REDIS_HOST": "r", "PUSHX_REDIS_KEY": "out",
                         "PUSHX_REDIS_PASSWORD": PASSWORD})
    kinds = by_kind(load(k8s.build(p)))
    command = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["procx", "sh", "-c"] and command[4] == "procx-pipeline"
    assert "python 'my job.py' \"$@\" > \"$out\" && pushx -in-file \"$out\"" in command[3]
    assert kinds["Secret"]["stringData"] == {"PUSHX_REDIS_PASSWORD": PASSWORD}
    assert kinds["ConfigMap"]["data"]["PUSHX_REDIS_KEY"] == "out"


def test_names_are_dns_labels() -> None:
    assert k8s.dns_name("My_Profile.v2") == "my-profile-v2"
    export = k8s.build(profile("Weird_Name." + "x" * 70, PROCX_DRIVER="redis-list", PROCX_REDIS_KEY="k"))
    check_common(load(export))


def test_cli_export_writes_yaml_file_mode_0600(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PROCX_TUI_HOME", str(home))
    profiles.write(case_profile("redis-list"), home / "profiles")
    out = tmp_path / "worker.yaml"
    env = {**os.environ, "PROCX_TUI_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", "from procx_tui.cli import run; run()", "export", "k8s",
                           "redis-list-worker", "--max", "3", "--target", "2", "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    kinds = by_kind([d for d in yaml.safe_load_all(out.read_text()) if d])
    assert kinds["ScaledObject"]["spec"]["maxReplicaCount"] == 3
    assert kinds["ScaledObject"]["spec"]["triggers"][0]["metadata"]["listLength"] == "2"
    bad = subprocess.run([sys.executable, "-c", "from procx_tui.cli import run; run()", "export", "k8s",
                          "nope"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "no profile named 'nope'" in bad.stderr


def test_the_exported_container_runs_as_is(tmp_path) -> None:
    """The pod's command and envFrom environment, run here: a pipeline pushes each unit of work's output."""
    from tests.support import clean_env, command, run

    db = tmp_path / "q.db"
    p = Profile("pipe", {"PROCX_TUI_KIND": "pipeline", "PROCX_TUI_COMMAND": "tr a-z A-Z",
                         "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(db), "PROCX_SQLITE_QUEUE": "jobs",
                         "PROCX_PASS_WORK_AS_STDIN": "true",
                         "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": str(db), "PUSHX_SQLITE_QUEUE": "out"})
    kinds = by_kind(load(k8s.build(p, k8s.Options(job=False))))
    for item in ("one", "two", "three"):
        assert run("pushx", "-driver", "sqlite", "-sqlite-path", str(db), "-sqlite-queue", "jobs",
                   "-in", item).returncode == 0
    env = clean_env(**kinds["ConfigMap"]["data"], PROCX_UNTIL_EMPTY="true")
    env["PATH"] = f"{os.path.dirname(command('procx'))}{os.pathsep}{env.get('PATH', '')}"
    argv = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = []
    while True:
        taken = run("procx", "-driver", "sqlite", "-sqlite-path", str(db), "-sqlite-queue", "out",
                    "-pass-work-as-stdin", "cat")
        if not taken.stdout:
            break
        got.append(taken.stdout.decode())
    assert sorted(got) == ["ONE", "THREE", "TWO"]


def test_kafka_sasl_and_tls_in_the_trigger_metadata() -> None:
    p = case_profile("kafka")
    p.variables.update(PROCX_KAFKA_SASL_TYPE="scram", PROCX_KAFKA_ENABLE_TLS="true", PROCX_KAFKA_TLS_INSECURE="true")
    md = by_kind(load(k8s.build(p, options())))["ScaledObject"]["spec"]["triggers"][0]["metadata"]
    assert (md["sasl"], md["tls"], md["unsafeSsl"]) == ("scram_sha512", "enable", "true")
    assert md["bootstrapServers"] == "k1:9092,k2:9092"


def test_existing_secret_keeps_every_secret_value_out_of_the_yaml() -> None:
    export = k8s.build(case_profile("kafka"), options(existing_secret="kafka-creds"))
    docs = load(export)
    check_common(docs, external=("kafka-creds",))
    kinds = by_kind(docs)
    assert "Secret" not in kinds and PASSWORD not in k8s.to_yaml(export)
    env_from = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "kafka-creds"}} in env_from
    refs = kinds["TriggerAuthentication"]["spec"]["secretTargetRef"]
    assert refs == [{"parameter": "password", "name": "kafka-creds", "key": "PROCX_KAFKA_SASL_PASSWORD"}]
    assert any("kafka-creds" in w and "PROCX_KAFKA_SASL_PASSWORD" in w for w in export.warnings)


def test_profile_errors_become_warnings() -> None:
    export = k8s.build(profile(PROCX_DRIVER="redis-list", PROCX_REDIS_KEY="k", PROCX_REDIS_VISIBILITY_TIMEOUT="soon"))
    assert any("PROCX_REDIS_VISIBILITY_TIMEOUT" in w and "invalid duration" in w for w in export.warnings)
