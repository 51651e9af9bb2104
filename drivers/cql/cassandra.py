"""cassandra: rows selected by a CQL query are the work (procx); pushx runs one CQL statement."""

from __future__ import annotations

from core.options import DriverSpec
from drivers.cql.common import cql_options

SPEC = DriverSpec(
    "cassandra",
    "Apache Cassandra: a CQL query returns the work rows, clear/fail statements update them; pushx runs a statement",
    cql_options("cassandra"),
    extra="cql",
    requires=("cassandra",),
    blocking=False,
    family="cql",
)
