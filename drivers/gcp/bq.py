"""gcp-bq: procx runs BigQuery queries to take and clear work; pushx runs one query templated by the payload.

Templates are BigQuery named query parameters, never text (the original spliced JSON values into the SQL):
  * a bare `{{path}}` becomes one typed parameter `@pN`: INT64, FLOAT64, BOOL or STRING as the JSON value is
    (null or a missing path: a NULL STRING; an object/array: its JSON text as STRING);
  * a quoted literal holding templates (`"{{name}}"`, `'id-{{id}}'`) becomes one STRING parameter, its text with
    the fields filled in and the quotes dropped; so the seed's `VALUES ({{id}}, "{{name}}")` runs as written and a
    name like `x"); DROP TABLE t; --` stays data;
  * a bare `{{procx_payload}}`/`{{pushx_payload}}` is the rows JSON / the payload itself: STRING when it is UTF-8
    text, else BYTES (its exact bytes).
procx: the retrieve query's rows, as a JSON list of {column: value} objects (the SQL family's rows JSON), are the
payload (or the -gcp-bq-retrieve-field selection of it; an empty selection is no work); the clear/fail queries'
templates take their values from those rows.

The endpoint: -gcp-bq-api-endpoint (ours), else the client library's BIGQUERY_EMULATOR_HOST, else Google's. An
http:// endpoint is an emulator: the client then sends no credentials (Google serves https only).
"""

from __future__ import annotations

import contextlib
import os

from core.errors import ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.settings import Config
from core.template import bind
from core.work import Sink, Source, Work
from drivers.gcp.common import EXTRA, GCP_OPTIONS

ENDPOINT_VARIABLE = "BIGQUERY_EMULATOR_HOST"  # read by google-cloud-bigquery itself
TIMEOUT = 60.0  # seconds for one API call / one query to finish
_SENTINEL = "\x00procx-bq-payload\x00"  # marks the parameters that are the whole document


def _check_query(config: Config, name: str) -> None:
    query = config[name]
    if not query:
        return
    try:
        bind(query, _SENTINEL, "named_at")
    except UsageError as exc:
        raise ValueError(f"-{name}: {exc}") from None


def validate(config: Config) -> None:
    endpoint = config["gcp-bq-api-endpoint"]
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"-gcp-bq-api-endpoint: {endpoint!r} is not a URL (e.g. http://127.0.0.1:9050)")
    if config.side == PUSHX:
        if not config["gcp-bq-query"].strip():
            raise ValueError("-gcp-bq-query: empty; pushx needs the query to run with the payload")
        _check_query(config, "gcp-bq-query")
    else:
        if not config["gcp-bq-retrieve-query"].strip():
            raise ValueError("-gcp-bq-retrieve-query: empty; procx needs the query that selects the work")
        for name in ("gcp-bq-clear-query", "gcp-bq-fail-query"):
            _check_query(config, name)


# ---------------------------------------------------------------------------------------------- parameters
def _parameter(name: str, value: object):
    from google.cloud import bigquery

    if isinstance(value, bool):
        kind = "BOOL"
    elif isinstance(value, int):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, (bytes, bytearray)):
        kind = "BYTES"
    else:
        kind = "STRING"  # str, and None (NULL)
    return bigquery.ScalarQueryParameter(name, kind, value)


def statement(query: str, document: bytes) -> tuple[str, list]:
    """The query with @pN placeholders and its ScalarQueryParameters for one document (rows JSON or payload)."""
    sql, marks = bind(query, _SENTINEL, "named_at")
    if not marks:
        return sql, []
    sql, values = bind(query, document, "named_at")
    params = []
    for (name, mark), (_, value) in zip(marks, values, strict=True):
        if mark == _SENTINEL:  # the whole document: text, or its exact bytes when it is not UTF-8
            try:
                value = bytes(document).decode("utf-8")
            except UnicodeDecodeError:
                value = bytes(document)
        params.append(_parameter(name, value))
    return sql, params


# ---------------------------------------------------------------------------------------------- client
class Client:
    """One BigQuery client with bounded retries (the library's default retries a refused connection 10 min)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.endpoint = config["gcp-bq-api-endpoint"] or os.environ.get(ENDPOINT_VARIABLE, "")
        self.where = self.endpoint or "bigquery.googleapis.com"

    def open(self) -> None:
        import requests
        from google.api_core.client_options import ClientOptions
        from google.api_core.retry import Retry
        from google.cloud import bigquery
        from google.cloud.bigquery.retry import _should_retry

        def transient(exc: Exception) -> bool:
            return not isinstance(exc, requests.exceptions.ConnectionError) and _should_retry(exc)

        self.retry = Retry(predicate=transient, timeout=TIMEOUT)
        kwargs: dict[str, object] = {}
        if self.endpoint:
            kwargs["client_options"] = ClientOptions(api_endpoint=self.endpoint)
            if self.endpoint.startswith("http://"):
                from google.auth.credentials import AnonymousCredentials

                kwargs["credentials"] = AnonymousCredentials()
        project = self.config["gcp-project-id"] or None
        try:
            self.client = bigquery.Client(project=project, **kwargs)
        except Exception as exc:
            raise ProviderError(f"driver {self.config.driver}: cannot create the BigQuery client for "
                                f"{self.where}: {one_line(exc)} (set -gcp-project-id and credentials)") from exc
        if not self.client.project:
            raise UsageError("-gcp-project-id: empty and no default project in the credentials")

    def run(self, option: str, sql: str, params: list) -> list:
        """Run one query to completion; its rows (Row objects) for a SELECT, [] otherwise."""
        from google.cloud import bigquery

        job_config = bigquery.QueryJobConfig(query_parameters=params, use_legacy_sql=False)
        try:
            job = self.client.query(sql, job_config=job_config, retry=self.retry, timeout=TIMEOUT, job_retry=None)
            return list(job.result(retry=self.retry, timeout=TIMEOUT, job_retry=None))
        except Exception as exc:
            raise self.error(option, exc) from exc

    def error(self, option: str, exc: BaseException) -> ProviderError:
        import requests

        if isinstance(exc, requests.exceptions.ConnectionError):
            return ProviderError(f"driver {self.config.driver}: cannot connect to {self.where}: "
                                 f"{_reason(exc)}")
        return ProviderError(f"driver {self.config.driver}: -{option} failed on {self.where}: {one_line(exc)}")

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()



def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return one_line(exc)


# ---------------------------------------------------------------------------------------------- procx / pushx
class BqSource(Source):
    """procx: the retrieve query's rows are the work; clear/fail queries run with parameters from those rows."""

    def open(self) -> None:
        self.bq = Client(self.config)
        self.bq.open()

    def get(self, wait: float) -> Work | None:
        from drivers.sql.common import Rows

        found = self.bq.run("gcp-bq-retrieve-query", self.config["gcp-bq-retrieve-query"], [])
        if not found:
            return None
        columns = list(found[0].keys())
        rows = Rows(columns, [tuple(r.values()) for r in found], _convert)
        data = rows.payload(self.config["gcp-bq-retrieve-field"])
        if not data:  # an empty selection is no work (as the original); the rows stay where they are
            return None
        ident = rows.records[0].get("id")
        return Work(data, None if ident is None else str(ident), handle=rows.json.encode())

    def clear(self, work: Work) -> None:
        self._finish(work, "clear")

    def fail(self, work: Work) -> None:
        self._finish(work, "fail")

    def _finish(self, work: Work, phase: str) -> None:
        query = self.config[f"gcp-bq-{phase}-query"]
        if query:
            sql, params = statement(query, work.handle)
            self.bq.run(f"gcp-bq-{phase}-query", sql, params)

    def close(self) -> None:
        bq = getattr(self, "bq", None)
        if bq is not None:
            bq.close()


def _convert(value: object) -> object:
    """A BigQuery cell -> what the rows JSON holds (Decimal as a float, dates as text)."""
    import datetime
    import decimal

    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else float(value)
    if isinstance(value, (datetime.date, datetime.time)) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value


class BqSink(Sink):
    """pushx: one query job per payload, its {{templates}} bound as named parameters from the JSON payload."""

    def open(self) -> None:
        self.bq = Client(self.config)
        self.bq.open()

    def push(self, payload: bytes) -> str | None:
        sql, params = statement(self.config["gcp-bq-query"], payload)
        self.bq.run("gcp-bq-query", sql, params)
        return None

    def close(self) -> None:
        bq = getattr(self, "bq", None)
        if bq is not None:
            bq.close()


TEMPLATES = ("{{path}} templates become BigQuery named parameters (@p1…), never text: bare {{0.id}} typed "
             "INT64/FLOAT64/BOOL/STRING, a quoted '…{{0.id}}…' one STRING")

SPEC = DriverSpec(
    "gcp-bq",
    "BigQuery: rows returned by a query are the work",
    [
        *GCP_OPTIONS,
        Option("gcp-bq-api-endpoint", extension=True, placeholder="URL",
               help="BigQuery API endpoint, e.g. http://127.0.0.1:9050 for an emulator (an http:// endpoint gets "
                    f"no credentials; empty: ${ENDPOINT_VARIABLE}, else Google's)"),
        Option("gcp-bq-retrieve-query", sides=PROCX, required=True,
               help="SQL query selecting the work rows (e.g. … ORDER BY created LIMIT 1); run as written"),
        Option("gcp-bq-retrieve-field", sides=PROCX,
               help="GJSON path over the rows array forming the payload (empty: all rows as JSON); an empty "
                    "result is no work"),
        Option("gcp-bq-clear-query", sides=PROCX,
               help=f"SQL run after success (empty: none); {TEMPLATES}, taken from the rows"),
        Option("gcp-bq-fail-query", sides=PROCX,
               help=f"SQL run after failure (empty: none); {TEMPLATES}, taken from the rows"),
        Option("gcp-bq-query", sides=PUSHX, required=True, group="push",
               help=f"SQL run for each payload; {TEMPLATES}, taken from the JSON payload ({{{{pushx_payload}}}}: "
                    "the payload itself)"),
    ],
    source="drivers.gcp.bq:BqSource",
    sink="drivers.gcp.bq:BqSink",
    extra=EXTRA,
    requires=("google.cloud.bigquery",),
    validate=validate,
    family="gcp",
    delivery=Delivery(
        "at-least-once if the clear query removes or marks the row and the retrieve query skips it: BigQuery has "
        "no lease, nothing is claimed at get",
        hold="none: the rows stay as they are while the child runs; a procx killed before clear leaves them for "
             "the next run; two procx running the same retrieve query can take the same row",
        fail="runs -gcp-bq-fail-query (e.g. UPDATE … SET attempts = attempts + 1); without it the row stays and "
             "is taken again",
        pushx="the query job completed without error",
        tested="emulator: cloudbox 0.2.3 (DuckDB-backed BigQuery REST)",
    ),
)
