"""scylla: rows selected by a CQL query are the work (procx); pushx runs one CQL statement."""

from __future__ import annotations

from core.options import DriverSpec, Option
from drivers.cql.common import cql_options

SPEC = DriverSpec(
    "scylla",
    "ScyllaDB: a CQL query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [
        *cql_options("scylla"),
        Option("scylla-local-dc", help="local datacenter: DC-aware routing, and consistency forced to LOCAL_QUORUM"),
    ],
    extra="cql",
    requires=("cassandra",),
    blocking=False,
    family="cql",
)
