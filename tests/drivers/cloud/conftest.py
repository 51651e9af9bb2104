"""The cloud emulators' shared fixtures: one moto server (S3, SQS, DynamoDB, STS) on 127.0.0.1 and a free port.

It is started once per test session and stopped at the end; if it cannot start, the tests that need it FAIL with
the reason. Install it with `pip install -e '.[test-cloud]'` (moto[server]). The drivers reach it only through
the standard variable AWS_ENDPOINT_URL, with dummy credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
The Google emulators (cloudbox, gcp-storage-emulator, the Node Firestore emulator) are here too, one of
each per session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.cloud.cloudbox_server import start_cloudbox
from tests.drivers.cloud.firestore_server import start_firestore
from tests.drivers.cloud.gcs_server import start_gcs
from tests.drivers.conftest import answers, free_port, serving
from tests.support import ServerProcess, clean_env

AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                 "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_STS")


@dataclass
class Moto:
    endpoint: str
    started_in: float

    def variables(self) -> dict[str, str]:
        """What a user of a local emulator sets: the endpoint, a region and any credentials."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a procx/pushx run against this server."""
        env = clean_env(**self.variables())
        for name in AWS_VARIABLES:
            env.pop(name, None)
        env.update(extra)
        return env

    def client(self, service: str):
        import boto3

        return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                     region_name="us-east-1").client(service, endpoint_url=self.endpoint)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """One moto server for S3, SQS, DynamoDB and STS, on loopback and a free port."""
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        pytest.fail(f"moto_server is not installed ({binary}): pip install -e '.[test-cloud]'")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with serving([str(binary), "-H", "127.0.0.1", "-p", str(port)], lambda: answers(f"{endpoint}/moto-api/data.json"),
                 "moto_server", tmp_path_factory.mktemp("moto") / "moto.log") as took:
        yield Moto(endpoint, took)


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """The moto server, with its variables also set in this process (for in-process API calls)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in moto.variables().items():
        monkeypatch.setenv(name, value)
    return moto


@pytest.fixture(params=["wire", "boto3"])
def through(request: pytest.FixtureRequest, aws: Moto, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The aws drivers' requests go through procx's own SigV4 client ("wire") or boto3 (a shared config file makes
    it boto3's): set here for in-process calls; the environment of a run is returned."""
    if request.param == "wire":
        return aws.env()
    config = tmp_path / "aws-config"
    config.write_text("[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return aws.env(AWS_CONFIG_FILE=str(config))


@pytest.fixture
def unique() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


# The Google emulators, one of each per test session (started on first use).
def _emulator(start: Callable[[Path], ServerProcess], folder: str, doc: str) -> Callable[..., Iterator[ServerProcess]]:
    """A session fixture (documented by `doc`): what `start` starts in a new temporary folder, stopped at the end."""
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
        server = start(tmp_path_factory.mktemp(folder))
        try:
            yield server
        finally:
            server.stop()

    fixture.__doc__ = doc
    return pytest.fixture(scope="session")(fixture)


cloudbox = _emulator(start_cloudbox, "cloudbox", "cloudbox: Pub/Sub (gRPC) and BigQuery (REST) on free loopback ports.")
gcs_server = _emulator(start_gcs, "gcs", "gcp-storage-emulator, in memory, on a free loopback port.")
firestore_emulator = _emulator(start_firestore, "firestore", "The Node Firestore emulator, bound to 127.0.0.1 on a "
                                                             "free port.")
