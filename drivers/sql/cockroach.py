"""cockroach: rows selected by a SQL query are the work (procx); pushx runs one SQL statement.

The postgres driver over CockroachDB's PostgreSQL wire protocol (psycopg 3), with the default port 26257 and the
CockroachDB Cloud routing id sent as `options=--cluster=ID` (⚠ #16: the original read it from the variable only;
here the flag works too). Keep the queries in the SQL both understand (e.g. INSERT … ON CONFLICT, not UPSERT).
"""

from __future__ import annotations

from core.options import DriverSpec, Option
from drivers.sql.common import (
    pg_tls_options,
    query_key_option,
    sides,
    sql_options,
    transaction_options,
    validator,
)
from drivers.sql.postgres import DIALECT, PostgresDatabase, delivery


class CockroachDatabase(PostgresDatabase):
    def connect_args(self) -> dict[str, object]:
        args = super().connect_args()
        routing = self.config["cockroach-routing-id"]
        if routing:
            args["options"] = f"--cluster={routing}"
        return args


CockroachSource, CockroachSink = sides("cockroach", CockroachDatabase, "Cockroach")


SPEC = DriverSpec(
    "cockroach",
    "CockroachDB: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [
        *sql_options("cockroach", 26257, "$1, $2, …"),
        *pg_tls_options("cockroach"),
        Option("cockroach-routing-id", help="CockroachDB Cloud cluster routing id (sent as options=--cluster=ID)"),
        query_key_option("cockroach"),
        *transaction_options("cockroach"),
    ],
    source="drivers.sql.cockroach:CockroachSource",
    sink="drivers.sql.cockroach:CockroachSink",
    extra="sql",
    requires=("psycopg",),
    blocking=False,
    family="sql",
    validate=validator("cockroach", DIALECT, pg_tls=True),
    delivery=delivery("against PostgreSQL 15 (wire-compatible), not CockroachDB: no CockroachDB server here",
                      "cockroach"),
)
