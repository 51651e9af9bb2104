"""http: procx fetches work with one request (and reports back with others); pushx sends one request."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.common import tls_options


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
        Option(f"{p}-body", sides=PROCX, help=f"body of the request {what} (wins over the body file)"),
        Option(f"{p}-body-file", sides=PROCX, placeholder="PATH",
               help=f"file holding the body of the request {what}, read at start-up"),
        Option(f"{p}-successful-status-codes", "list", sides=PROCX,
               help=f"comma list of status codes counted as success for the request {what} (empty: any)"),
    ]


SPEC = DriverSpec(
    "http",
    "an HTTP API: procx fetches work from a URL; pushx sends the payload as a request body",
    [
        *_request("retrieve", "fetching the work"),
        Option("http-retrieve-key-json-selector", sides=PROCX, group="retrieve",
               help="GJSON path to the job key in the response, for {{key}} (empty: no key)"),
        Option("http-retrieve-work-json-selector", sides=PROCX, group="retrieve",
               help="GJSON path to the payload in the response (empty: the whole body)"),
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
               help="comma list of status codes that count as success (empty: any status)"),
        *tls_options("http"),
    ],
)
