"""http: procx fetches work with one request (and reports back with others); pushx sends one request.

Standard library only (urllib.request). Fixes over the original:
- success is a 2xx status unless -http-*-successful-status-codes says otherwise, for retrieve, clear, fail and
  pushx alike (the original checked only retrieve, and pushx counted any status as success);
- "no work": a 204 response or an empty body (and a work selector that selects nothing or null); the original
  ran the child with an empty payload;
- header values may contain `:` (and `,`: an item without `:` continues the previous value);
- bodies and `{{key}}` substitutions are made per request from the configured templates (the original sent
  empty bodies after the first daemon iteration and kept the first key), the key is URL-encoded in URLs;
- a fail with a key but no fail body works (the original crashed); -http-tls-insecure works;
- every request has a timeout (-http-timeout, default 30 s; the original had none).
Extensions: -http-retrieve-key-header (the job key from a response header, for raw bodies), -http-timeout.
User info in a URL (https://user:pass@host/...) is sent as basic authentication, as Go does.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from core.errors import ProviderError, UsageError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import Tls

TLS = Tls("http")
PHASES = ("retrieve", "clear", "fail")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _request(phase: str, what: str) -> list[Option]:
    """The seven settings of one request: retrieve fetches the work, clear/fail report back (optional)."""
    p = f"http-{phase}"
    url_help = f"URL of the request {what}"
    if phase != "retrieve":
        url_help += "; {{key}} is the job key (empty: no request)"
    return [
        Option(f"{p}-url", sides=PROCX, placeholder="URL", help=url_help),
        Option(f"{p}-method", default="GET", sides=PROCX, help=f"HTTP method of the request {what}"),
        Option(f"{p}-headers", "list", sides=PROCX, help=f"headers of the request {what}: Name:value,Name2:value2"),
        Option(f"{p}-content-type", sides=PROCX, help=f"Content-Type of the request {what} (empty: none)"),
        Option(f"{p}-body", sides=PROCX, help=f"body of the request {what} (wins over the body file)"
                                              + ("" if phase == "retrieve" else "; {{key}} is the job key")),
        Option(f"{p}-body-file", sides=PROCX, placeholder="PATH",
               help=f"file holding the body of the request {what}, read at start-up"),
        Option(f"{p}-successful-status-codes", "list", sides=PROCX,
               help=f"comma list of status codes counted as success for the request {what} (empty: any 2xx)"),
    ]


def _headers(items: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    """`Name:value,Name2:value2` -> pairs; a value keeps its `:`; an item without `:` continues the previous
    value (it held a comma)."""
    out: list[tuple[str, str]] = []
    for item in items:
        name, sep, value = item.partition(":")
        if not sep:
            if not item.strip():
                continue
            if not out:
                raise ValueError(f"-{flag}: {item!r} is not Name:value")
            out[-1] = (out[-1][0], f"{out[-1][1]},{item}")
            continue
        name = name.strip()
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"-{flag}: bad header name {name!r}")
        out.append((name, value.strip()))
    return out


def _codes(items: tuple[str, ...], flag: str) -> frozenset[int]:
    try:
        codes = frozenset(int(c.strip()) for c in items if c.strip())
    except ValueError:
        raise ValueError(f"-{flag}: status codes must be numbers, got {','.join(items)!r}") from None
    if any(not 100 <= c <= 599 for c in codes):
        raise ValueError(f"-{flag}: status codes are between 100 and 599")
    return codes


def _check_url(url: str, flag: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"-{flag}: expected an http:// or https:// URL, got {_safe_url(url)!r}")


def _validate(config) -> None:
    TLS.validate(config)
    if config["http-timeout"] <= 0:
        raise ValueError("-http-timeout: must be positive")
    if config.side == PUSHX:
        _check_url(config["http-url"], "http-url")
        _headers(config["http-headers"], "http-headers")
        _codes(config["http-successful-status-codes"], "http-successful-status-codes")
        _method(config["http-method"] or "POST", "http-method")
        return
    if not config["http-retrieve-url"]:
        raise ValueError("-http-retrieve-url is required: the URL that hands out work")
    keyed = bool(config["http-retrieve-key-json-selector"] or config["http-retrieve-key-header"])
    for phase in PHASES:
        p = f"http-{phase}"
        if config[f"{p}-url"]:
            _check_url(config[f"{p}-url"], f"{p}-url")
        _headers(config[f"{p}-headers"], f"{p}-headers")
        _codes(config[f"{p}-successful-status-codes"], f"{p}-successful-status-codes")
        _method(config[f"{p}-method"] or "GET", f"{p}-method")
        if phase != "retrieve" and not keyed and "{{key}}" in config[f"{p}-url"] + config[f"{p}-body"]:
            raise ValueError(f"-{p}-url/-{p}-body use {{{{key}}}}: set -http-retrieve-key-json-selector or "
                             "-http-retrieve-key-header")


def _method(text: str, flag: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"-{flag}: bad method {text!r}")
    return text.upper()


SPEC = DriverSpec(
    "http",
    "an HTTP API: procx fetches work from a URL; pushx sends the payload as a request body",
    [
        *_request("retrieve", "fetching the work"),
        Option("http-retrieve-key-json-selector", sides=PROCX, group="retrieve",
               help="GJSON path to the job key in the response, for {{key}} (empty: no key)"),
        Option("http-retrieve-work-json-selector", sides=PROCX, group="retrieve",
               help="GJSON path to the payload in the response (empty: the whole body); selecting nothing or "
                    "null means no work"),
        Option("http-retrieve-key-header", sides=PROCX, group="retrieve", extension=True,
               help="response header holding the job key, for {{key}} (when the body is the raw payload)"),
        *_request("clear", "after success"),
        *_request("fail", "after failure"),
        Option("http-url", sides=PUSHX, required=True, placeholder="URL", env={PUSHX: "PUSHX_HTTP_REQUEST_URL"},
               help="URL to send the payload to"),
        Option("http-method", default="POST", sides=PUSHX, group="push", env={PUSHX: "PUSHX_HTTP_REQUEST_METHOD"},
               help="HTTP method"),
        Option("http-content-type", sides=PUSHX, group="push", env={PUSHX: "PUSHX_HTTP_REQUEST_CONTENT_TYPE"},
               help="Content-Type of the request (empty: none)"),
        Option("http-headers", "list", sides=PUSHX, group="push", env={PUSHX: "PUSHX_HTTP_REQUEST_HEADERS"},
               help="request headers: Name:value,Name2:value2"),
        Option("http-successful-status-codes", "list", sides=PUSHX, group="push",
               env={PUSHX: "PUSHX_HTTP_REQUEST_SUCCESSFUL_STATUS_CODES"},
               help="comma list of status codes that count as success (empty: any 2xx)"),
        Option("http-timeout", "duration", 30.0, extension=True, group="connection",
               help="timeout of each request (connect and each read)"),
        *TLS.options(),
    ],
    source="drivers.http:HttpSource",
    sink="drivers.http:HttpSink",
    validate=_validate,
    delivery=Delivery(
        "at-least-once where the API leases the work it hands out: the clear request is sent only after the "
        "child succeeded, the fail request otherwise",
        hold="the API's own (e.g. a lease on the job it handed out); a procx killed between the two requests "
             "sends neither",
        fail="-http-fail-url request (empty: nothing is sent)",
        pushx="a successful status (2xx, or -http-successful-status-codes)",
        tested="real: a work-queue server on http.server in the test process (HTTP and HTTPS)",
    ),
)


def _safe_url(url: str) -> str:
    """The URL without user info (never show a password)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    with_port = f"{netloc}:{parts.port}" if parts.port else netloc
    return urlunsplit((parts.scheme, with_port, parts.path, parts.query, parts.fragment))


class _Request:
    """One configured request (method, URL template, headers, body template, accepted statuses)."""

    def __init__(self, config, prefix: str, *, url: str, method: str, default_method: str, headers: str,
                 content_type: str, codes: str, body: str = "", body_file: str = "") -> None:
        self.url = config[url]
        self.method = _method(config[method] or default_method, method)
        self.headers = _headers(config[headers], headers)
        if config[content_type]:
            self.headers = [(n, v) for n, v in self.headers if n.lower() != "content-type"]
            self.headers.append(("Content-Type", config[content_type]))
        self.codes = _codes(config[codes], codes)
        self.body: bytes | None = None
        if body and config[body]:
            self.body = config[body].encode()
        elif body_file and config[body_file]:
            try:
                with open(config[body_file], "rb") as f:
                    self.body = f.read()
            except OSError as exc:
                raise UsageError(f"-{body_file}: cannot read {config[body_file]}: {exc.strerror}") from None
        self.what = prefix

    def ok(self, status: int) -> bool:
        return status in self.codes if self.codes else 200 <= status < 300

    def expected(self) -> str:
        return ",".join(str(c) for c in sorted(self.codes)) if self.codes else "2xx"


class _Client:
    def __init__(self, config) -> None:
        import urllib.request

        self.config = config
        self.timeout = float(config["http-timeout"])
        ctx = TLS.context(config)
        handlers: list[Any] = [urllib.request.HTTPSHandler(context=ctx)] if ctx is not None else []
        self.opener = urllib.request.build_opener(*handlers)

    def send(self, req: _Request, url: str, body: bytes | None) -> tuple[int, Any, bytes]:
        import http.client
        import urllib.error
        import urllib.request

        parts = urlsplit(url)
        headers = dict(req.headers)
        if parts.username is not None or parts.password is not None:  # as Go: user info -> basic auth
            if not any(n.lower() == "authorization" for n in headers):
                from urllib.parse import unquote

                pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            url = _safe_url(url)
        where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        shown = f"{req.method} {_safe_url(url)}"
        request = urllib.request.Request(url, data=body, headers=headers, method=req.method)
        try:
            with self.opener.open(request, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read()
        except urllib.error.URLError as exc:
            raise ProviderError(f"driver http: cannot reach {where} ({shown}): {_reason(exc.reason)}") from None
        except TimeoutError:
            raise ProviderError(f"driver http: {shown}: no answer within {self.timeout:g}s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise ProviderError(f"driver http: {shown}: {_reason(exc)}") from None

    def call(self, req: _Request, url: str, body: bytes | None) -> tuple[Any, bytes]:
        status, headers, data = self.send(req, url, body)
        if not req.ok(status):
            snippet = data[:200].decode("utf-8", "replace").strip().replace("\n", " ")
            raise ProviderError(f"driver http: {req.what}: {req.method} {_safe_url(url)} returned status {status} "
                                f"(success: {req.expected()})" + (f": {snippet}" if snippet else ""))
        return headers, data


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    text = getattr(reason, "reason", None) or getattr(reason, "strerror", None) or str(reason)
    text = str(text)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed"
    return text.replace("_", " ").lower() if text.isupper() else text


class HttpSource(Source):
    def open(self) -> None:
        c = self.config
        self.client = _Client(c)
        self.requests = {}
        for phase in PHASES:
            p = f"http-{phase}"
            self.requests[phase] = _Request(
                c, phase, url=f"{p}-url", method=f"{p}-method", default_method="GET", headers=f"{p}-headers",
                content_type=f"{p}-content-type", codes=f"{p}-successful-status-codes", body=f"{p}-body",
                body_file=f"{p}-body-file")

    def get(self, wait: float) -> Work | None:
        from core.template import lookup, select

        c = self.config
        req = self.requests["retrieve"]
        headers, data = self.client.call(req, req.url, req.body)
        if not data:  # 204 No Content, or an empty body: no work
            return None
        payload = data
        selector = c["http-retrieve-work-json-selector"]
        if selector:
            found = lookup(data, selector)
            if found is None or found.kind == "z":
                return None
            payload = found.text().encode()
        key = ""
        if c["http-retrieve-key-json-selector"]:
            key = select(data, c["http-retrieve-key-json-selector"])
            if not key:
                raise ProviderError(f"driver http: -http-retrieve-key-json-selector "
                                    f"{c['http-retrieve-key-json-selector']!r} selects nothing in the response")
        elif c["http-retrieve-key-header"]:
            key = headers.get(c["http-retrieve-key-header"], "")
            if not key:
                raise ProviderError(f"driver http: the response has no {c['http-retrieve-key-header']} header "
                                    "(-http-retrieve-key-header)")
        return Work(payload, key or None, handle=key)

    def clear(self, work: Work) -> None:
        self._report("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._report("fail", work.handle)

    def _report(self, phase: str, key: str) -> None:
        req = self.requests[phase]
        if not req.url:
            return
        url = req.url.replace("{{key}}", quote(key, safe="")) if key else req.url
        body = req.body.replace(b"{{key}}", key.encode()) if key and req.body is not None else req.body
        self.client.call(req, url, body)


class HttpSink(Sink):
    def open(self) -> None:
        self.client = _Client(self.config)
        self.request = _Request(self.config, "push", url="http-url", method="http-method", default_method="POST",
                                headers="http-headers", content_type="http-content-type",
                                codes="http-successful-status-codes")

    def push(self, payload: bytes) -> str | None:
        self.client.call(self.request, self.request.url, payload)
        return None
