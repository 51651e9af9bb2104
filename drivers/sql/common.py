"""Option builders shared by the SQL drivers (postgres as `psql`, cockroach, mysql, mssql)."""

from __future__ import annotations

from core.options import PROCX, Option
from drivers.common import query_options

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def sql_options(prefix: str, port: int, placeholders: str) -> list[Option]:
    """Server and credentials, procx's retrieve/clear/fail statements and pushx's statement for `-<prefix>-…`."""
    opts = [
        Option(f"{prefix}-host", help="database server host name or address"),
        Option(f"{prefix}-port", "int", port, help=f"database server port (default {port})"),
        Option(f"{prefix}-user", help="user to log in as"),
        Option(f"{prefix}-password", help="password of the user", secret=True),
        Option(f"{prefix}-database", help="database to connect to"),
    ]
    return opts + query_options(prefix, "SQL", placeholders, retrieve_required=True,
                                pushx_params_env=f"PUSHX_{prefix.upper()}_QUERY_PARAMS")


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
