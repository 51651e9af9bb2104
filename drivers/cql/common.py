"""Option builder shared by the CQL drivers (cassandra, scylla)."""

from __future__ import annotations

from core.options import PROCX, PUSHX, Option

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
        Option(f"{prefix}-retrieve-query", sides=PROCX,
               help="CQL returning the work rows (limit it yourself, e.g. LIMIT 1); placeholders ?"),
        Option(f"{prefix}-retrieve-params", "list", sides=PROCX,
               help="comma-separated literal values bound to the retrieve query's placeholders"),
        Option(f"{prefix}-retrieve-field", sides=PROCX,
               help="GJSON path into the rows JSON used as payload (default: all rows); empty result = no work"),
    ]
    for phase, when in (("clear", "after success"), ("fail", "after failure")):
        opts += [
            Option(f"{prefix}-{phase}-query", sides=PROCX, help=f"CQL run {when} (empty: nothing); placeholders ?"),
            Option(f"{prefix}-{phase}-params", "list", sides=PROCX,
                   help=f"comma-separated params of the {phase} query; {{{{0.col}}}} takes a retrieved value, "
                        "{{procx_payload}} the rows JSON"),
        ]
    opts += [
        Option(f"{prefix}-query", sides=PUSHX, help="CQL run once with the payload (empty: nothing is written); "
                                                    "placeholders ?"),
        Option(f"{prefix}-params", "list", sides=PUSHX,
               help="comma-separated query params; {{path}} takes a field of the JSON payload, "
                    "{{pushx_payload}} the whole payload"),
    ]
    return opts
