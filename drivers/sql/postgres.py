"""postgres: rows selected by a SQL query are the work (procx); pushx runs one SQL statement."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.sql.common import pg_tls_options, query_key_option, sql_options

SPEC = DriverSpec(
    "postgres",
    "PostgreSQL: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [*sql_options("psql", 5432, "$1, $2, …"), *pg_tls_options("psql"), query_key_option("psql")],
    extra="sql",
    requires=("psycopg",),
    blocking=False,
    family="sql",
)
