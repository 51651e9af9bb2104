"""Option builders shared by the SQL drivers (postgres as `psql`, cockroach, mysql, mssql)."""

from __future__ import annotations

from core.options import PROCX, PUSHX, Option

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def sql_options(prefix: str, port: int, placeholders: str) -> list[Option]:
    """Server and credentials, procx's retrieve/clear/fail statements and pushx's statement for `-<prefix>-…`."""
    ph = f"placeholders {placeholders}"
    opts = [
        Option(f"{prefix}-host", help="database server host name or address"),
        Option(f"{prefix}-port", "int", port, help=f"database server port (default {port})"),
        Option(f"{prefix}-user", help="user to log in as"),
        Option(f"{prefix}-password", help="password of the user", secret=True),
        Option(f"{prefix}-database", help="database to connect to"),
        Option(f"{prefix}-retrieve-query", sides=PROCX, required=True,
               help=f"SQL returning the work rows (limit it yourself, e.g. LIMIT 1); {ph}"),
        Option(f"{prefix}-retrieve-params", "list", sides=PROCX,
               help="comma-separated literal values bound to the retrieve query's placeholders"),
        Option(f"{prefix}-retrieve-field", sides=PROCX,
               help="GJSON path into the rows JSON used as payload (default: all rows); empty result = no work"),
    ]
    for phase, when in (("clear", "after success"), ("fail", "after failure")):
        opts += [
            Option(f"{prefix}-{phase}-query", sides=PROCX,
                   help=f"SQL run {when} (empty: nothing); {ph}"),
            Option(f"{prefix}-{phase}-params", "list", sides=PROCX,
                   help=f"comma-separated params of the {phase} query; {{{{0.col}}}} takes a retrieved value, "
                        "{{procx_payload}} the rows JSON"),
        ]
    opts += [
        Option(f"{prefix}-query", sides=PUSHX, help=f"SQL run once with the payload (empty: nothing is written); {ph}"),
        Option(f"{prefix}-params", "list", sides=PUSHX, env={PUSHX: f"PUSHX_{prefix.upper()}_QUERY_PARAMS"},
               help="comma-separated query params; {{path}} takes a field of the JSON payload, "
                    "{{pushx_payload}} the whole payload"),
    ]
    return opts


def pg_tls_options(prefix: str) -> list[Option]:
    """libpq-style `sslmode` and certificate files (postgres, cockroach)."""
    return [
        Option(f"{prefix}-ssl-mode", default="disable", choices=SSL_MODES,
               help="sslmode: disable, allow, prefer, require, verify-ca or verify-full"),
        Option(f"{prefix}-tls-root-cert", placeholder="PATH",
               help="CA certificate file to verify the server (sslrootcert)"),
        Option(f"{prefix}-tls-cert", placeholder="PATH", help="client certificate file (sslcert)"),
        Option(f"{prefix}-tls-key", placeholder="PATH", help="client private key file (sslkey)"),
    ]


def query_key_option(prefix: str) -> Option:
    """`-<prefix>-query-key`: defined by the original procx but never used."""
    return Option(f"{prefix}-query-key", "bool", sides=PROCX, advanced=True,
                  help="unused by the original procx; accepted for compatibility, has no effect")
