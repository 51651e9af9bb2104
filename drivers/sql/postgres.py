"""postgres: rows selected by a SQL query are the work (procx); pushx runs one SQL statement.

Connection: psycopg 3 keyword arguments (escaped by psycopg, unlike the original's hand-made URL); an empty user,
host or database leaves only that setting to libpq's defaults (⚠ #45: the original dropped host, port and database
with an empty user). Placeholders $1, $2, … as in the original; statements run with psycopg's RawCursor (native
$n placeholders, server-side binding). Column values in the rows JSON as procx.md §4.9.2: integers, floats and
booleans native, text as text, timestamps RFC 3339 (dates at midnight UTC), bytea as text (exact bytes through a
-psql-retrieve-field that selects it), every other type (numeric, uuid, json, arrays, intervals, enums…) as the
text PostgreSQL prints.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import ProviderError, UsageError
from core.options import Delivery, DriverSpec
from drivers.sql.common import (
    CONNECT_TIMEOUT,
    Database,
    Dialect,
    Result,
    connection_error,
    one_line,
    pg_tls_options,
    query_key_option,
    sides,
    sql_options,
    transaction_options,
    validator,
)

DIALECT = Dialect("numeric_dollar", "numeric_dollar", backslash_escapes=False)
BYTEA = 17
# Types loaded as Python values; every other type is loaded as the text PostgreSQL sends.
NATIVE = frozenset({"int2", "int4", "int8", "oid", "float4", "float8", "bool", "text", "varchar", "bpchar", "name",
                    "bytea", "timestamp", "timestamptz", "date"})
_TEXT_CONTEXT = None
_CONNECTION_PREFIX = re.compile(r'^(?:connection failed: )?(?:connection to server (?:at|on) .*? failed: )?')


def text_context():
    """An adapters map whose loaders give the server's text for every type outside NATIVE (built once)."""
    global _TEXT_CONTEXT
    if _TEXT_CONTEXT is None:
        import psycopg
        from psycopg.adapt import AdaptersMap
        from psycopg.types.datetime import TimestampLoader, TimestamptzLoader
        from psycopg.types.string import TextLoader

        class Timestamp(TimestampLoader):
            def load(self, data):
                try:
                    return super().load(data)
                except psycopg.DataError:  # infinity, years past 9999: the server's text
                    return bytes(data).decode()

        class Timestamptz(TimestamptzLoader):
            def load(self, data):
                try:
                    return super().load(data)
                except psycopg.DataError:
                    return bytes(data).decode()

        context = AdaptersMap(psycopg.adapters)
        for info in psycopg.postgres.types:
            if info.name not in NATIVE:
                context.register_loader(info.oid, TextLoader)
            if getattr(info, "array_oid", 0):
                context.register_loader(info.array_oid, TextLoader)
        context.register_loader("timestamp", Timestamp)
        context.register_loader("timestamptz", Timestamptz)
        _TEXT_CONTEXT = context
    return _TEXT_CONTEXT


class PostgresDatabase(Database):
    """psycopg 3 (postgres, and cockroach over the same wire protocol)."""

    dialect = DIALECT

    def connect_args(self) -> dict[str, object]:
        p, c = self.prefix, self.config
        args: dict[str, object] = {
            "port": c[f"{p}-port"],
            "sslmode": c[f"{p}-ssl-mode"] or "disable",
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": c.side,
        }
        for key, option in (("host", "host"), ("user", "user"), ("password", "password"), ("dbname", "database"),
                            ("sslrootcert", "tls-root-cert"), ("sslcert", "tls-cert"), ("sslkey", "tls-key")):
            if c[f"{p}-{option}"]:
                args[key] = c[f"{p}-{option}"]
        return args

    def connect(self, autocommit: bool) -> None:
        import psycopg

        if not hasattr(psycopg, "RawCursor"):
            raise UsageError(f"driver {self.config.driver} needs psycopg 3.2 or newer: "
                             "pip install -U 'psycopg[binary]'")
        self.param_types: dict[str, list[int]] = {}
        try:
            self.conn = psycopg.connect(autocommit=autocommit, context=text_context(), **self.connect_args())
        except psycopg.Error as exc:
            raise connection_error(self, exc) from exc

    def execute(self, sql: str, values: list) -> Result:
        import psycopg

        if any(isinstance(v, bytes) for v in values):
            values = self.payload_values(sql, values)
        with psycopg.RawCursor(self.conn) as cur:
            cur.execute(sql, values)
            if cur.description is None:
                return Result([], [])
            columns = [d.name for d in cur.description]
            rows = cur.fetchall()
        return Result.selected(columns, rows)

    def payload_values(self, sql: str, values: list) -> list:
        """Payload bytes stay bytes for bytea parameters and become UTF-8 text for any other type (as the
        server infers it from the statement: asked once per statement text)."""
        types = self.param_types.get(sql)
        if types is None:
            from psycopg import pq

            pgconn = self.conn.pgconn
            res = pgconn.prepare(b"", sql.encode())
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise self.result_error(res)
            res = pgconn.describe_prepared(b"")
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise self.result_error(res)
            types = self.param_types[sql] = [res.param_type(i) for i in range(res.nparams)]
        out = list(values)
        for n, (value, oid) in enumerate(zip(values, types, strict=True), 1):
            if isinstance(value, bytes) and oid != BYTEA:
                try:
                    out[n - 1] = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProviderError(
                        f"driver {self.config.driver}: the payload is not UTF-8 text but parameter ${n} is not "
                        "bytea: store binary payloads in a bytea column") from None
        return out

    def result_error(self, res) -> Exception:
        import psycopg
        from psycopg import pq

        message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message or b"").decode(
            "utf-8", "replace")
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        return psycopg.DatabaseError(f"{message} (SQLSTATE {state})" if state else message)

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    def convert(self, value: object) -> object:
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
        if value is None or isinstance(value, (bool, int, float, str, bytes, datetime.datetime)):
            return value
        return str(value)

    def error_text(self, exc: BaseException) -> str:
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if primary:
            state = getattr(exc, "sqlstate", None)
            return one_line(f"{primary} (SQLSTATE {state})" if state else primary)
        # a connection failure: libpq's lines, once each, without the repeated "connection to server at …"
        reasons: list[str] = []
        for line in str(exc).splitlines():
            line = _CONNECTION_PREFIX.sub("", line.strip())
            line = " ".join(line.split())
            if line and line not in reasons:
                reasons.append(line)
        return "; ".join(reasons) or type(exc).__name__

    def is_database_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)


PostgresSource, PostgresSink = sides("psql", PostgresDatabase, "Postgres")


def delivery(tested: str, prefix: str) -> Delivery:
    return Delivery(
        f"at-least-once with -{prefix}-transaction (a killed procx's transaction rolls back: the row is offered "
        "again at once); without it, what the queries do (the retrieve query claims nothing)",
        hold=f"-{prefix}-transaction: the transaction stays open while the child runs; SELECT … FOR UPDATE SKIP "
             "LOCKED keeps the row locked and hidden from other workers. Or a lease column set by an "
             "UPDATE … RETURNING retrieve query, expired by your own queries",
        fail=f"-{prefix}-fail-query (then COMMIT releases the row with -{prefix}-transaction)",
        dead_letter="none (a fail query can count attempts and move rows)",
        pushx="the statement committed (autocommit)",
        tested=tested,
    )


SPEC = DriverSpec(
    "postgres",
    "PostgreSQL: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [*sql_options("psql", 5432, "$1, $2, …"), *pg_tls_options("psql"), query_key_option("psql"),
     *transaction_options("psql")],
    source="drivers.sql.postgres:PostgresSource",
    sink="drivers.sql.postgres:PostgresSink",
    extra="sql",
    requires=("psycopg",),
    blocking=False,
    family="sql",
    validate=validator("psql", DIALECT, pg_tls=True),
    delivery=delivery("real server: PostgreSQL 15", "psql"),
)
