"""mssql: rows selected by a SQL query are the work (procx); pushx runs one SQL statement."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.sql.common import sql_options

SPEC = DriverSpec(
    "mssql",
    "Microsoft SQL Server: a query returns the work rows, clear/fail statements update them; pushx runs a statement",
    sql_options("mssql", 1433, "? (or @p1, @p2, …)"),
    extra="sql",
    requires=("pymssql",),
    blocking=False,
    family="sql",
)
