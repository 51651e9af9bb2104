"""cockroach: rows selected by a SQL query are the work (procx); pushx runs one SQL statement."""

from __future__ import annotations

from core.options import DriverSpec, Option
from drivers.sql.common import pg_tls_options, query_key_option, sql_options

SPEC = DriverSpec(
    "cockroach",
    "CockroachDB: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [
        *sql_options("cockroach", 26257, "$1, $2, …"),
        *pg_tls_options("cockroach"),
        Option("cockroach-routing-id", help="CockroachDB Cloud cluster routing id (sent as options=--cluster=ID)"),
        query_key_option("cockroach"),
    ],
    extra="sql",
    requires=("psycopg",),
    blocking=False,
    family="sql",
)
