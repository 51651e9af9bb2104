"""Options and helpers shared by aws-s3, aws-sqs and aws-dynamo: region, assumed role, shared-config loading,
the boto3 session, the client seam (boto3 or drivers/aws/wire.py) and one-line error messages.

Endpoints come only from the standard variables boto3 (>= 1.28) reads itself: AWS_ENDPOINT_URL and the
per-service AWS_ENDPOINT_URL_S3 / _SQS / _DYNAMODB / _STS (LocalStack, moto, MinIO ...). Credentials come from the
standard chain (variables, shared files, web identity, instance/task roles). boto3 is imported inside the
functions, never at module level.
"""

from __future__ import annotations

import os
import uuid

from core.errors import ProviderError, one_line
from core.options import Option

EXTRA = "aws"
REQUIRES = ("boto3",)

AWS_OPTIONS: list[Option] = [
    Option("aws-region", help="AWS region (empty: AWS_REGION, then us-east-1)"),
    Option("aws-role-arn", group="auth",
           help="assume this IAM role via STS on top of the default credentials (empty: no role)"),
    Option("aws-load-config", "bool", group="auth", advanced=True,
           help="read profiles from ~/.aws/config (sets AWS_SDK_LOAD_CONFIG=1)"),
]


def region(config) -> str:
    return str(config["aws-region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
               or "us-east-1")


def _client_config(read_timeout: float = 60.0):
    from botocore.config import Config

    return Config(connect_timeout=10, read_timeout=read_timeout)


def session(config):
    """A boto3 Session in the configured region; with -aws-role-arn, credentials of the assumed role that
    renew themselves before they expire (so a long-running daemon keeps working)."""
    import boto3

    if config["aws-load-config"]:
        os.environ["AWS_SDK_LOAD_CONFIG"] = "1"  # as the original; botocore reads ~/.aws/config anyway
    where = region(config)
    base = boto3.session.Session(region_name=where)
    role = config["aws-role-arn"]
    if not role:
        return base
    from botocore.credentials import RefreshableCredentials
    from botocore.session import get_session

    sts = base.client("sts", config=_client_config())
    name = f"{config.side}-{uuid.uuid4()}"

    def refresh() -> dict:
        try:
            creds = sts.assume_role(RoleArn=role, RoleSessionName=name)["Credentials"]
        except Exception as exc:  # noqa: BLE001 - becomes one line naming the role
            raise ProviderError(f"driver {config.driver}: cannot assume role {role}: "
                                f"{describe(exc, sts.meta.endpoint_url)}") from None
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    core = get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # noqa: SLF001 - botocore's documented way
        metadata=refresh(), refresh_using=refresh, method="sts-assume-role")
    return boto3.session.Session(botocore_session=core, region_name=where)


def client(config, service: str, read_timeout: float = 60.0):
    return session(config).client(service, config=_client_config(read_timeout))


class _Boto:
    """A boto3 client behind the same narrow seam as drivers/aws/wire.JsonClient: call("SendMessage", {...})."""

    def __init__(self, client) -> None:
        self.client = client
        self.endpoint_url = client.meta.endpoint_url
        self.errors = botocore_errors()

    def call(self, action: str, params: dict) -> dict:
        method = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in action).lstrip("_")
        return getattr(self.client, method)(**params)

    def close(self) -> None:
        self.client.close()


def api(config, service: str, target: str, read_timeout: float = 60.0):
    """A client of a JSON-protocol service with call(Action, params), endpoint_url, errors and close(): the small
    SigV4 client when the setup is plain (see drivers/aws/wire.py), else boto3's."""
    from drivers.aws import wire

    where = region(config)
    found = wire.plain(config, service, where)
    if found is None:
        return _Boto(client(config, service, read_timeout))
    endpoint, creds = found
    return wire.JsonClient(service, target, endpoint, where, creds, timeout=read_timeout)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(exc: BaseException, endpoint: str) -> str:
    """One line for a botocore error: the endpoint when it cannot be reached, else the service's code/message."""
    from drivers.aws.wire import WireError

    if isinstance(exc, (ProviderError, WireError)):
        return one_line(str(exc))
    from botocore import exceptions as bx

    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError)):
        return f"cannot connect to {endpoint}"
    if isinstance(exc, bx.ReadTimeoutError):
        return f"no answer from {endpoint} in time"
    if isinstance(exc, bx.NoCredentialsError):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        if message.lstrip()[:1] == "<":  # an HTML error page (a proxy, or an emulator's internal error)
            message = "the server answered with an error page"
        text = f"{code}: {message}".strip(": ") if message else (code or str(exc))
        return one_line(text)
    return one_line(str(exc)) or type(exc).__name__



def fail(config, what: str, exc: BaseException, endpoint: str) -> ProviderError:
    """A ProviderError `driver <name>: <what>: <reason>` (the endpoint is named when it cannot be reached)."""
    if isinstance(exc, ProviderError):
        return exc
    return ProviderError(f"driver {config.driver}: {what}: {describe(exc, endpoint)}")


def botocore_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)
