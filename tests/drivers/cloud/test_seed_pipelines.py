"""The seed's pipelines, end to end, with the installed commands against the emulators.

1. S3 -> `procx node example.js | pushx` -> SQS, configured only by the seed's variables (+ the endpoint).
2. The same program moved to GCS -> Pub/Sub by changing only variables.
3. The tee chain: the same bytes delivered to SQS, Pub/Sub, GCS and BigQuery.
4. `procx pushx`: a Redis list streamed into BigQuery with the seed's templated INSERT; hostile names stay data.
5. The seed's in-app example in Python: S3 in, add metadata, push to redis-list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.drivers.cloud.cloudbox_server import PROJECT
from tests.drivers.redis_helpers import client as redis_client
from tests.drivers.redis_helpers import delete_keys
from tests.support import BIN, clean_env, command, wait_for

EXAMPLE = Path(__file__).resolve().parents[3] / "profiles" / "example.js"
JOB = {"id": 7, "name": "first job"}


def shell(pipeline: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """A shell pipeline of the installed commands (set -o pipefail: every stage must succeed)."""
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], env=env, cwd=cwd, capture_output=True,
                          timeout=120)


def google_env(**extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        env.pop(name, None)
    return env


@pytest.fixture
def sqs_queue(moto):
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName=f"seed-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def s3_bucket(moto):
    s3 = moto.client("s3")
    name = f"seed-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def pubsub(cloudbox, monkeypatch):
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", cloudbox.pubsub_host)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    tag = uuid.uuid4().hex[:8]
    topic, sub = f"projects/{PROJECT}/topics/seed-{tag}", f"projects/{PROJECT}/subscriptions/seed-{tag}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={"name": sub, "topic": topic})

    def pull() -> list[bytes]:
        got = subscriber.pull(request={"subscription": sub, "max_messages": 10}, timeout=5)
        if got.received_messages:
            subscriber.acknowledge(request={"subscription": sub,
                                            "ack_ids": [m.ack_id for m in got.received_messages]})
        return [m.message.data for m in got.received_messages]

    yield f"seed-{tag}", pull
    subscriber.delete_subscription(request={"subscription": sub})
    publisher.delete_topic(request={"topic": topic})
    subscriber.close()


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.host)
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"seed-{uuid.uuid4().hex[:8]}")
    yield bucket
    for blob in bucket.list_blobs():
        blob.delete()
    bucket.delete()


@pytest.fixture
def bq_table(cloudbox):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    bq = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                         client_options=ClientOptions(api_endpoint=cloudbox.bigquery_endpoint))
    dataset = f"seed_{uuid.uuid4().hex[:8]}"
    bq.create_dataset(dataset)

    def make(**columns: str) -> str:
        schema = [bigquery.SchemaField(name, kind) for name, kind in columns.items()]
        bq.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=schema))
        return f"{dataset}.t"

    def rows(sql: str) -> list[dict]:
        return [dict(r.items()) for r in bq.query(sql).result()]

    yield make, rows
    bq.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
    bq.close()


def transformed(payload: bytes) -> dict:
    job = json.loads(payload)
    assert job["metadata"]["processedBy"] and job["metadata"]["processedAt"]
    return {k: v for k, v in job.items() if k != "metadata"}


def test_1_s3_through_example_js_into_sqs(moto, s3_bucket, sqs_queue, tmp_path) -> None:
    s3, bucket = s3_bucket
    sqs, url = sqs_queue
    s3.put_object(Bucket=bucket, Key="jobs/job.json", Body=json.dumps(JOB).encode())
    env = moto.env(PROCX_DRIVER="aws-s3", PROCX_AWS_S3_BUCKET=bucket, PROCX_AWS_S3_KEY="jobs/job.json",
                   PROCX_PAYLOAD_FILE=str(tmp_path / "payload.json"), PROCX_AWS_S3_CLEAR_OP="rm",
                   PUSHX_DRIVER="aws-sqs", PUSHX_AWS_SQS_QUEUE_URL=url)
    done = shell(f"procx node {EXAMPLE} | pushx", env, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # the object is gone
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [transformed(m["Body"].encode()) for m in messages] == [JOB]


def test_2_the_same_program_on_gcs_and_pubsub(gcs_server, cloudbox, gcs_bucket, pubsub, tmp_path) -> None:
    topic, pull = pubsub
    gcs_bucket.blob("jobs/job.json").upload_from_string(json.dumps(JOB))
    env = google_env(STORAGE_EMULATOR_HOST=gcs_server.host, PUBSUB_EMULATOR_HOST=cloudbox.pubsub_host,
                     PROCX_DRIVER="gcp-gcs", PROCX_GCP_GCS_BUCKET=gcs_bucket.name, PROCX_GCP_GCS_KEY="jobs/job.json",
                     PROCX_PAYLOAD_FILE=str(tmp_path / "payload.json"), PROCX_GCP_GCS_CLEAR_OP="rm",
                     PUSHX_DRIVER="gcp-pubsub", PUSHX_GCP_PROJECT_ID=PROJECT, PUSHX_GCP_TOPIC=topic)
    done = shell(f"procx node {EXAMPLE} | pushx", env, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert list(gcs_bucket.list_blobs()) == []
    assert [transformed(m) for m in wait_for(pull, timeout=15)] == [JOB]


def test_3_the_tee_chain_delivers_the_same_bytes_to_four_providers(moto, sqs_queue, gcs_server, cloudbox, pubsub,
                                                                     gcs_bucket, bq_table, tmp_path) -> None:
    sqs, url = sqs_queue
    topic, pull = pubsub
    make, rows = bq_table
    table = make(body="STRING")
    payload = '{"id": 8, "name": "tee \\"quoted\\" & <angle>"}'
    env = {**moto.variables(), **google_env(STORAGE_EMULATOR_HOST=gcs_server.host,
                                            PUBSUB_EMULATOR_HOST=cloudbox.pubsub_host)}
    chain = (f"pushx -driver aws-sqs -aws-sqs-queue-url {url} -out=- "
             f"| pushx -driver gcp-pubsub -gcp-project-id {PROJECT} -gcp-pubsub-topic {topic} -out=- "
             f"| pushx -driver gcp-gcs -gcp-gcs-bucket {gcs_bucket.name} -gcp-gcs-key tee.json -out=- "
             f"| pushx -driver gcp-bq -gcp-project-id {PROJECT} -gcp-bq-api-endpoint {cloudbox.bigquery_endpoint} "
             f"-gcp-bq-query 'INSERT INTO {table} (body) VALUES ({{{{pushx_payload}}}})'")
    done = shell(f"printf %s {json.dumps(payload)} | {chain}", env, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    data = payload.encode()
    assert [m["Body"].encode() for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]] == [data]
    assert wait_for(pull, timeout=15) == [data]
    assert gcs_bucket.blob("tee.json").download_as_bytes() == data
    assert rows(f"SELECT body FROM {table}") == [{"body": payload}]


def test_4_procx_pushx_streams_redis_into_bigquery(cloudbox, bq_table) -> None:
    make, rows = bq_table
    table = make(id="INT64", name="STRING", another="STRING")
    key = f"procx-test-seed-bq-{uuid.uuid4().hex[:8]}"
    env = google_env(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="127.0.0.1", PROCX_REDIS_KEY=key,
        PROCX_PASS_WORK_AS_STDIN="true", PROCX_DAEMON="true", PROCX_DAEMON_INTERVAL="500",
        PUSHX_DRIVER="gcp-bq", PUSHX_GCP_PROJECT_ID=PROJECT, PUSHX_GCP_BQ_API_ENDPOINT=cloudbox.bigquery_endpoint,
        PUSHX_GCP_BQ_QUERY=f'INSERT INTO {table} (id, name, another) VALUES ({{{{id}}}}, "{{{{name}}}}", '
                           f'"{{{{another}}}}")')
    daemon = subprocess.Popen([command("procx"), "pushx"], env=env, stderr=subprocess.PIPE)
    items = [{"id": 1, "name": "plain", "another": "a"},
             {"id": 2, "name": 'x"); DROP TABLE t; --', "another": "it's"},
             {"id": 3, "name": "back\\slash \"q\" 東京", "another": "c"}]
    try:
        redis = redis_client()
        for item in items:
            redis.lpush(key, json.dumps(item))
        wait_for(lambda: len(rows(f"SELECT id FROM {table}")) == 3, timeout=60)
        got = rows(f"SELECT id, name, another FROM {table} ORDER BY id")
        assert got == items
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0, daemon.stderr.read().decode()
    finally:
        if daemon.poll() is None:
            daemon.kill()
        delete_keys(key)


def test_5_the_in_app_example_s3_to_redis_list(moto, s3_bucket, monkeypatch) -> None:
    import socket
    import time

    from core import api

    s3, bucket = s3_bucket
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"in/job-{i}.json", Body=json.dumps({"id": i}).encode())
    for name, value in moto.variables().items():
        monkeypatch.setenv(name, value)
    key = f"procx-test-seed-app-{uuid.uuid4().hex[:8]}"
    source = ["-driver", "aws-s3", "-aws-s3-bucket", bucket, "-aws-s3-key-prefix", "in/", "-aws-s3-clear-op", "rm"]
    sink = ["-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-key", key]
    try:
        with api.Producer(sink) as results:
            for work in api.consume(source):
                job = json.loads(work.payload)
                job["metadata"] = {"processedAt": time.time(), "processedBy": socket.gethostname()}
                results.push(json.dumps(job))
                work.clear()
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        pushed = [json.loads(v) for v in redis_client().lrange(key, 0, -1)]
        assert sorted(j["id"] for j in pushed) == [0, 1, 2]
    finally:
        delete_keys(key)
