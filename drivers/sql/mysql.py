"""mysql: rows selected by a SQL query are the work (procx); pushx runs one SQL statement."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.sql.common import sql_options

SPEC = DriverSpec(
    "mysql",
    "MySQL/MariaDB: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    sql_options("mysql", 3306, "?"),
    extra="sql",
    requires=("pymysql",),
    blocking=False,
    family="sql",
)
