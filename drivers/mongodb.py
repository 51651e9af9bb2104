"""mongodb: documents matching a filter are the work (procx); pushx inserts a JSON document."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option
from drivers.common import tls_options

SPEC = DriverSpec(
    "mongodb",
    "MongoDB: documents matching a filter are the work, clear/fail run database commands; pushx inserts a document",
    [
        Option("mongo-host", help="server host name or address"),
        Option("mongo-port", "int", 27017, help="server port (default 27017)"),
        Option("mongo-user", help="user to log in as"),
        Option("mongo-password", help="password of the user", secret=True),
        Option("mongo-auth-source", help="database holding the user (authSource; default: -mongo-database)"),
        Option("mongo-database", help="database of the collection (and of the clear/fail commands)"),
        Option("mongo-collection", help="collection holding the documents"),
        Option("mongo-retrieve-query", "json", sides=PROCX, required=True,
               help='find filter as plain JSON, e.g. {"status":"pending"}'),
        Option("mongo-limit", "int", sides=PROCX, group="retrieve",
               help="most documents taken per job (0: every matching document)"),
        Option("mongo-clear-query", sides=PROCX,
               help="database command (Extended JSON) run after success; {{0._id}} takes a retrieved value"),
        Option("mongo-fail-query", sides=PROCX,
               help="database command (Extended JSON) run after failure; {{0._id}} takes a retrieved value"),
        *tls_options("mongo"),
    ],
    extra="mongodb",
    requires=("pymongo",),
    blocking=False,
)
