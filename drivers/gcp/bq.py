"""gcp-bq: procx runs BigQuery queries to take and clear work; pushx runs one query templated by the payload."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.gcp.common import EXTRA, GCP_OPTIONS

SPEC = DriverSpec(
    "gcp-bq",
    "BigQuery: rows returned by a query are the work",
    [
        *GCP_OPTIONS,
        Option("gcp-bq-retrieve-query", sides=PROCX, required=True, help="SQL query selecting the work rows"),
        Option("gcp-bq-retrieve-field", sides=PROCX,
               help="GJSON path over the rows array forming the payload (empty: all rows as JSON)"),
        Option("gcp-bq-clear-query", sides=PROCX,
               help="SQL run after success; {{path}} takes values from the rows (empty: none)"),
        Option("gcp-bq-fail-query", sides=PROCX,
               help="SQL run after failure; {{path}} takes values from the rows (empty: none)"),
        Option("gcp-bq-query", sides=PUSHX, required=True, group="push",
               help="SQL run for each payload; {{path}} takes values from the JSON payload"),
    ],
    extra=EXTRA,
    requires=("google.cloud.bigquery",),
    family="gcp",
)
