"""cassandra: rows selected by a CQL query are the work (procx); pushx runs one CQL statement.

The SQL family's engine over cassandra-driver (drivers/cql/common.py): protocol v4, connect timeout 10 s, password
authentication when a user or password is set, the driver's token-aware DC-aware round-robin host selection. An
unknown -cassandra-consistency is a usage error (⚠ #40: the original panicked).
"""

from __future__ import annotations

from core.options import DriverSpec
from drivers.cql.common import CqlDatabase, cql_options, cql_validator, delivery
from drivers.sql.common import sides

TESTED = ("not verified against a server: fake Session (statements, bound values, result rows) under the real "
          "cassandra-driver Cluster, PreparedStatement and type codecs; no CQL server here")


CassandraSource, CassandraSink = sides("cassandra", CqlDatabase, "Cassandra")


SPEC = DriverSpec(
    "cassandra",
    "Apache Cassandra: a CQL query returns the work rows, clear/fail statements update them; pushx runs a statement",
    cql_options("cassandra"),
    source="drivers.cql.cassandra:CassandraSource",
    sink="drivers.cql.cassandra:CassandraSink",
    extra="cql",
    requires=("cassandra",),
    blocking=False,
    family="cql",
    validate=cql_validator("cassandra"),
    delivery=delivery(TESTED, "cassandra"),
)
