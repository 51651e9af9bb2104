"""A small AWS JSON-protocol client (Signature Version 4 over http.client) for quick starts.

Importing boto3 and building a client costs ~0.5 s, more than the whole of a one-message pushx. When everything
a call needs is plain (`plain()`: credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an endpoint from
AWS_ENDPOINT_URL[_<SERVICE>] or the standard one of the region, no assumed role, no shared config file, no proxy;
AWS_CA_BUNDLE is honoured), aws-sqs and aws-dynamo talk to the service with this client; otherwise with boto3,
whose credential chain, endpoint rules and proxies cover the rest. Both speak the same JSON protocol, with the
same parameter and result shapes.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import ssl
import threading
import time
import urllib.parse
import zlib

CONNECT_TIMEOUT = 10.0  # seconds (as the boto3 clients of the aws drivers)
RETRIES = 3  # attempts for throttling, 5xx answers and connections that fail before an answer (as botocore's)
RETRYABLE = ("Throttling", "ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalError",
             "RequestTimeout", "KMSThrottlingException", "ProvisionedThroughputExceededException",
             "RequestLimitExceeded", "TransactionInProgressException")
_PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_BOTO_ONLY = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CONFIG_FILE", "AWS_SDK_LOAD_CONFIG")


class WireError(Exception):
    """A failed call. `response` has botocore's shape ({"Error": {"Code", "Message"}}) so that code reading
    error codes works with both clients; str() is one line, never holding a credential."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}".strip(": ") if message else code)
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


class Unreachable(WireError):
    """No answer: the endpoint cannot be reached or did not answer in time."""


class Credentials:
    __slots__ = ("key", "secret", "token")

    def __init__(self, key: str, secret: str, token: str = "") -> None:
        self.key, self.secret, self.token = key, secret, token

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(key={self.key!r})"


def plain(config, service: str, region: str) -> tuple[str, Credentials] | None:
    """(endpoint, credentials) when this client can do exactly what boto3 would do, else None."""
    env = os.environ
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not (key and secret) or config["aws-role-arn"] or config["aws-load-config"]:
        return None
    if any(env.get(name) for name in (*_PROXIES, *_BOTO_ONLY)) or os.path.exists(os.path.expanduser("~/.aws/config")):
        return None  # proxies, FIPS/dual-stack endpoints and configured endpoints are boto3's to resolve
    if env.get("AWS_CA_BUNDLE") and not os.path.isfile(env["AWS_CA_BUNDLE"]):
        return None  # boto3 reports it
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        if not region.replace("-", "").isalnum() or region.startswith(("cn-", "us-iso")):
            return None  # other partitions' domains: boto3's endpoint rules
        endpoint = f"https://{service}.{region}.amazonaws.com"
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        return None
    return endpoint, Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN", ""))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(headers: dict[str, str], body: bytes, creds: Credentials, region: str, service: str,
         now: float | None = None, path: str = "/") -> dict[str, str]:
    """The headers of a POST signed with SigV4: every given header is signed (they must include host)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    headers = {**headers, "X-Amz-Date": stamp}
    if creds.token:
        headers["X-Amz-Security-Token"] = creds.token
    canonical = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    names = sorted(canonical)
    request = "\n".join(["POST", path, "", *(f"{n}:{canonical[n]}" for n in names), "", ";".join(names),
                         hashlib.sha256(body).hexdigest()])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret}".encode(), stamp[:8]), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


class JsonClient:
    """Calls `<target>.<Action>` of one service endpoint over a kept-alive connection per thread (a source's
    keep-alive thread calls while a long poll waits)."""

    errors = (WireError,)

    def __init__(self, service: str, target: str, endpoint: str, region: str, creds: Credentials,
                 timeout: float = 60.0) -> None:
        self.service, self.target, self.region, self.creds, self.timeout = service, target, region, creds, timeout
        self.endpoint_url = endpoint
        parts = urllib.parse.urlsplit(endpoint)
        self.https = parts.scheme == "https"
        self.address = (parts.hostname or "", parts.port or (443 if self.https else 80))
        default = parts.port is None or parts.port == (443 if self.https else 80)
        self.host = parts.hostname if default else f"{parts.hostname}:{parts.port}"
        self.path = parts.path or "/"
        self.local = threading.local()
        self.conns: list[http.client.HTTPConnection] = []

    def _connect(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            host, port = self.address
            if self.https:
                context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
                conn = http.client.HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT, context=context)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
            self.local.conn = conn
            self.conns.append(conn)
            conn.connect()
            conn.sock.settimeout(self.timeout)  # a long poll waits up to 20 s for an answer
        return conn

    def _drop(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            self.local.conn = None
            conn.close()
            self.conns.remove(conn)

    def call(self, action: str, params: dict) -> dict:
        body = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        for attempt in range(RETRIES):
            headers = sign({"Host": self.host, "Content-Type": "application/x-amz-json-1.0",
                            "X-Amz-Target": f"{self.target}.{action}"}, body, self.creds, self.region,
                           self.service, path=self.path)
            try:
                conn = self._connect()
                conn.request("POST", self.path, body, headers)
                answer = conn.getresponse()
                status, data = answer.status, answer.read()
                query_error = answer.getheader("x-amzn-query-error", "")
                crc = answer.getheader("x-amz-crc32")
                if crc is not None and zlib.crc32(data) != int(crc):  # DynamoDB's: damaged on the way
                    raise http.client.HTTPException("CRC32 mismatch")
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if attempt + 1 < RETRIES and not isinstance(exc, TimeoutError):
                    time.sleep(0.05 * 2**attempt)
                    continue
                what = "no answer from" if isinstance(exc, TimeoutError) else "cannot connect to"
                raise Unreachable(f"{what} {self.endpoint_url}", "") from None
            if status < 300:
                return json.loads(data or b"{}")
            error = _error(status, data, query_error)
            code = error.response["Error"]["Code"]
            if attempt + 1 < RETRIES and (status >= 500 or code in RETRYABLE):
                time.sleep(0.05 * 2**attempt)
                continue
            raise error
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()


def _error(status: int, data: bytes, query_error: str) -> WireError:
    """The error of a JSON-protocol answer: the query-compatible code when the service sends one (as botocore)."""
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return WireError(f"HTTP {status}", "the server answered with an error page", status)
    code = query_error.partition(";")[0] or str(doc.get("__type", doc.get("code", ""))).rpartition("#")[2]
    message = str(doc.get("message", doc.get("Message", "")))
    return WireError(code or f"HTTP {status}", " ".join(message.split()), status)
