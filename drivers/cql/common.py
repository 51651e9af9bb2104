"""Option builder shared by the CQL drivers (cassandra, scylla)."""

from __future__ import annotations

from core.options import Option
from drivers.common import query_options

CONSISTENCY_LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE",
                      "SERIAL", "LOCAL_SERIAL")


def cql_options(prefix: str) -> list[Option]:
    """Cluster and credentials, procx's retrieve/clear/fail statements and pushx's statement for `-<prefix>-…`."""
    opts = [
        Option(f"{prefix}-hosts", "list", help="comma-separated contact points, host or host:port"),
        Option(f"{prefix}-user", help="user for password authentication (used when user or password is set)"),
        Option(f"{prefix}-password", help="password for password authentication", secret=True),
        Option(f"{prefix}-keyspace", help="keyspace of the session (default: none, qualify table names)"),
        Option(f"{prefix}-consistency", default="QUORUM", choices=CONSISTENCY_LEVELS,
               help="consistency level of the statements (default QUORUM)"),
    ]
    return opts + query_options(prefix, "CQL", "?")
