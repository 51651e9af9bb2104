"""mssql: rows selected by a SQL query are the work (procx); pushx runs one SQL statement.

pymssql (FreeTDS) with keyword arguments: no hand-made connection string for `;` or `=` in a password to break
(⚠ pushx.md §6 #6). Placeholders as the original's go-mssqldb under its legacy name `mssql`: `?`, `?nnn`, `$nnn`,
`:nnn`, and `@p1`, `@p2`, … (which go-mssqldb passes through as the parameter names); they become pymssql's `%s`.
pymssql quotes the values into the statement on the client (strings as N'…' with quotes doubled, bytes as 0x…
literals), never this driver; `{{templates}}` bind the same way, also inside N'…' literals.

Column values in the rows JSON: integers, floats and bit as JSON numbers/booleans, DECIMAL/MONEY as text with their
exact digits ("1.50", as go-mssqldb gives them), text as text, DATETIME/DATETIME2/DATE/TIME as RFC 3339 (SQL Server
times have no zone: UTC, as go-mssqldb; a DATE at midnight, a TIME on 0001-01-01), DATETIMEOFFSET with its offset,
UNIQUEIDENTIFIER as the text SQL Server prints (the original gave its raw 16 bytes), VARBINARY as UTF-8 text (exact
bytes through a -mssql-retrieve-field that selects one), NULL as null.

Payload parameters ({{procx_payload}}/{{pushx_payload}}): UTF-8 text is bound as N'…' (NVARCHAR), anything else as
0x… (VARBINARY), since SQL Server converts neither implicitly into the other without changing the bytes.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal

from core.errors import one_line
from core.options import Delivery, DriverSpec
from drivers.sql.common import (
    CONNECT_TIMEOUT,
    Database,
    Dialect,
    Result,
    connection_error,
    sides,
    sql_options,
    transaction_options,
    validator,
)

# Quoted literals, [identifiers] and comments (kept as they are), or an @pN parameter outside them.
_AT_PARAM = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|--[^\n]*|/\*.*?\*/)|(?<![\w@#$])@[pP](\d+)\b",
                       re.S)
# A template bound in an N'…' literal: the placeholder would follow the N (pymssql writes N'…' itself). A `%` of the
# query text is doubled by then, so `N%s` can only be such a placeholder.
_NATIONAL_PLACEHOLDER = re.compile(r"(?<![\w%])[nN]%s")
_DB_LIB = re.compile(r"DB-Lib error message \d+, severity \d+:\s*")
_DB_LIB_NOISE = frozenset({"General SQL Server error: Check messages from the SQL Server"})
_UTC = datetime.UTC


class MssqlDialect(Dialect):
    """go-mssqldb's placeholders -> pymssql's `%s`; templates in N'…' literals bind as N'…' strings."""

    def statement(self, query: str, params: Sequence[str], document: bytes) -> tuple[str, list]:
        sql, values = super().statement(query, params, document)
        return _NATIONAL_PLACEHOLDER.sub("%s", sql), [_payload_value(v) for v in values]

    def translate(self, query: str, values: list) -> tuple[str, list]:
        query = _AT_PARAM.sub(lambda m: m[1] or f"${m[2]}", query)
        return super().translate(query, values)


def _payload_value(value: object) -> object:
    """Payload bytes: NVARCHAR text when they are UTF-8, else VARBINARY bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


DIALECT = MssqlDialect("mssql", "format", backslash_escapes=False)


class MssqlDatabase(Database):
    """pymssql: one connection, autocommit unless -mssql-transaction holds the retrieve query's transaction."""

    dialect = DIALECT
    default_host = "localhost"

    def connect_args(self) -> dict[str, object]:
        p, c = self.prefix, self.config
        return {
            "server": c[f"{p}-host"] or "localhost", "port": str(c[f"{p}-port"]), "user": c[f"{p}-user"] or None,
            "password": c[f"{p}-password"] or None, "database": c[f"{p}-database"] or "",
            "login_timeout": CONNECT_TIMEOUT, "appname": c.side, "charset": "UTF-8",
        }

    def connect(self, autocommit: bool) -> None:
        import pymssql

        try:
            self.conn = pymssql.connect(autocommit=autocommit, **self.connect_args())
        except pymssql.Error as exc:
            raise connection_error(self, exc) from exc

    def execute(self, sql: str, values: list) -> Result:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, tuple(values))  # a tuple, even empty: pymssql then un-doubles the %% of the text
            if cur.description is None:
                return Result([], [])
            columns = [d[0] for d in cur.description]
            rows = list(cur.fetchall())
        finally:
            cur.close()
        return Result.selected(columns, rows)

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.conn.autocommit(False)
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        else:
            self.conn.commit()
        finally:
            self.conn.autocommit(True)

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    def convert(self, value: object) -> object:
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            return value
        if isinstance(value, Decimal):
            return format(value, "f")
        if isinstance(value, uuid.UUID):
            return str(value).upper()
        if isinstance(value, datetime.datetime):
            return value
        if isinstance(value, datetime.date):
            return datetime.datetime(value.year, value.month, value.day, tzinfo=_UTC)
        if isinstance(value, datetime.time):
            return datetime.datetime.combine(datetime.date(1, 1, 1), value.replace(tzinfo=value.tzinfo or _UTC))
        return str(value)

    def error_text(self, exc: BaseException) -> str:
        """pymssql's (number, b"message DB-Lib error message …") -> the server's message and FreeTDS's reasons,
        each once, without the DB-Lib boilerplate."""
        args = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], tuple) else exc.args
        if len(args) != 2 or not isinstance(args[0], int):
            return one_line(exc)
        number, raw = args
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        server, *library = _DB_LIB.split(text)
        reasons = [line.strip() for chunk in library for line in chunk.splitlines()]
        reasons = [r for n, r in enumerate(reasons) if r and r not in _DB_LIB_NOISE and r not in reasons[:n]]
        if server.strip():
            reasons.insert(0, f"{server.strip()} (error {number})")
        return one_line("; ".join(reasons) or type(exc).__name__)

    def is_database_error(self, exc: BaseException) -> bool:
        import pymssql

        return isinstance(exc, pymssql.Error)


MssqlSource, MssqlSink = sides("mssql", MssqlDatabase, "Mssql")


LOCKING_QUERY = "SELECT TOP 1 … FROM t WITH (UPDLOCK, READPAST, ROWLOCK) ORDER BY id"

SPEC = DriverSpec(
    "mssql",
    "Microsoft SQL Server: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [*sql_options("mssql", 1433, "?, ?nnn, $nnn, :nnn or @p1, @p2, …"), *transaction_options("mssql", LOCKING_QUERY)],
    source="drivers.sql.mssql:MssqlSource",
    sink="drivers.sql.mssql:MssqlSink",
    extra="sql",
    requires=("pymssql",),
    blocking=False,
    family="sql",
    validate=validator("mssql", DIALECT),
    delivery=Delivery(
        "at-least-once with -mssql-transaction (a killed procx's transaction rolls back: the row is offered again "
        "at once); without it, what the queries do (the retrieve query claims nothing)",
        hold=f"-mssql-transaction: the transaction stays open while the child runs; {LOCKING_QUERY} keeps the row "
             "locked and skipped by other workers. Or a lease column set by an UPDATE … OUTPUT retrieve query, "
             "expired by your own queries",
        fail="-mssql-fail-query (then COMMIT releases the row with -mssql-transaction)",
        dead_letter="none (a fail query can count attempts and move rows)",
        pushx="the statement committed (autocommit)",
        tested="read path: emulator pysqlbridge (read-only); write path: statement building only, not verified "
               "against a server",
    ),
)
