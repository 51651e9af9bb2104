"""mysql: rows selected by a SQL query are the work (procx); pushx runs one SQL statement.

PyMySQL with keyword arguments (no hand-made DSN to break on special characters), utf8mb4, one statement per
call (no multi-statements). Placeholders ? as in the original. PyMySQL has no server-side prepared statements:
parameter values are quoted by PyMySQL's own escaping (which follows the server's NO_BACKSLASH_ESCAPES mode), never
pasted by this driver; bytes go as X'hex' literals, so a payload bound to a BLOB column round-trips byte for byte.

Column values in the rows JSON are the same whether or not the retrieve query has params (⚠ #43: the original's
text protocol made every value a string without params): integers (YEAR too) and FLOAT/DOUBLE are JSON numbers,
DECIMAL is text with its exact digits ("1.50"), DATETIME/TIMESTAMP/DATE/TIME are the text MySQL prints
("2024-01-02 03:04:05", as the original, which did not parse times), BLOB/BINARY/BIT are UTF-8 text (exact bytes
through a -mysql-retrieve-field that selects one), JSON columns are text, NULL is null.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import one_line
from core.options import DriverSpec
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
from drivers.sql.postgres import delivery

DIALECT = Dialect("qmark", "format", backslash_escapes=True)
STANDARD_DIALECT = Dialect("qmark", "format", backslash_escapes=False)


def conversions() -> dict:
    """PyMySQL's decoders, with decimals and times left as the server's text."""
    import pymysql.converters
    from pymysql.constants import FIELD_TYPE

    conv = dict(pymysql.converters.conversions)
    for field_type in (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP,
                       FIELD_TYPE.DATE, FIELD_TYPE.TIME):
        conv.pop(field_type, None)
    return conv


class MysqlDatabase(Database):
    dialect = DIALECT
    default_host = "localhost"

    def connect(self, autocommit: bool) -> None:
        import pymysql

        p, c = self.prefix, self.config
        try:
            self.conn = pymysql.connect(
                host=c[f"{p}-host"] or "localhost", port=c[f"{p}-port"], user=c[f"{p}-user"] or None,
                password=c[f"{p}-password"], database=c[f"{p}-database"] or None, charset="utf8mb4",
                autocommit=autocommit, conv=conversions(), connect_timeout=CONNECT_TIMEOUT,
                program_name=c.side)
        except pymysql.Error as exc:
            raise connection_error(self, exc) from exc
        from pymysql.constants import SERVER_STATUS

        if self.conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            self.dialect = STANDARD_DIALECT  # the sql_mode makes backslashes ordinary characters in literals

    def execute(self, sql: str, values: list) -> Result:
        with self.conn.cursor() as cur:
            cur.execute(sql, values)
            if cur.description is None:
                return Result([], [], str(cur.lastrowid) if cur.lastrowid else None)
            columns = [d[0] for d in cur.description]
            rows = list(cur.fetchall())
        return Result.selected(columns, rows)

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.conn.begin()
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None and conn.open:
            conn.close()

    def convert(self, value: object) -> object:
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            return value
        if isinstance(value, (set, frozenset)):  # SET columns
            return ",".join(sorted(value))
        return str(value)  # nothing else is expected (decimals and times arrive as text)

    def error_text(self, exc: BaseException) -> str:
        args = getattr(exc, "args", ())
        if len(args) == 2 and isinstance(args[0], int):
            return one_line(f"{args[1]} (error {args[0]})")
        return one_line(str(exc) or type(exc).__name__)

    def is_database_error(self, exc: BaseException) -> bool:
        import pymysql

        return isinstance(exc, pymysql.Error)


MysqlSource, MysqlSink = sides("mysql", MysqlDatabase, "Mysql")


SPEC = DriverSpec(
    "mysql",
    "MySQL/MariaDB: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [*sql_options("mysql", 3306, "?"), *transaction_options("mysql")],
    source="drivers.sql.mysql:MysqlSource",
    sink="drivers.sql.mysql:MysqlSink",
    extra="sql",
    requires=("pymysql",),
    blocking=False,
    family="sql",
    validate=validator("mysql", DIALECT),
    delivery=delivery("real server: MariaDB 10.11 (not Oracle MySQL); SKIP LOCKED needs MariaDB 10.6+/MySQL 8",
                      "mysql"),
)
