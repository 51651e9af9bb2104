"""scylla: rows selected by a CQL query are the work (procx); pushx runs one CQL statement.

The cassandra driver with the prefix `scylla` (cassandra-driver or scylla-driver: same `cassandra` package), plus
-scylla-local-dc: token-aware over DC-aware round-robin for that datacenter, and LOCAL_QUORUM instead of the default
consistency. Without it, token-aware over plain round-robin (as the original). ⚠ The original forced LOCAL_QUORUM
even over an explicit -scylla-consistency; here a consistency that was set is kept.
"""

from __future__ import annotations

from core.options import DriverSpec, Option
from drivers.cql.cassandra import TESTED
from drivers.cql.common import CqlDatabase, cql_options, cql_validator, delivery
from drivers.sql.common import sides


class ScyllaDatabase(CqlDatabase):
    def local_dc(self) -> str:
        return self.config["scylla-local-dc"]

    def consistency(self) -> str:
        if self.local_dc() and self.config.origins.get("scylla-consistency", "default") == "default":
            return "LOCAL_QUORUM"
        return super().consistency()

    def load_balancing(self) -> object:
        from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy, TokenAwarePolicy

        dc = self.local_dc()
        return TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc) if dc else RoundRobinPolicy())


ScyllaSource, ScyllaSink = sides("scylla", ScyllaDatabase, "Scylla")


SPEC = DriverSpec(
    "scylla",
    "ScyllaDB: a CQL query returns the work rows, clear/fail statements update them; pushx runs a statement",
    [
        *cql_options("scylla"),
        Option("scylla-local-dc", help="local datacenter: token-aware DC-aware routing to it, and LOCAL_QUORUM "
                                       "unless -scylla-consistency is set"),
    ],
    source="drivers.cql.scylla:ScyllaSource",
    sink="drivers.cql.scylla:ScyllaSink",
    extra="cql",
    requires=("cassandra",),
    blocking=False,
    family="cql",
    validate=cql_validator("scylla"),
    delivery=delivery(TESTED, "scylla"),
)
