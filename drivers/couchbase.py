"""couchbase: a document (by id) or N1QL query rows are the work (procx); pushx upserts a JSON document."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.common import tls_options

OPS = ("mv", "rm", "set", "merge")
_BUCKET_ENV = {PROCX: "PROCX_COUCHBASE_BUCKET_NAME", PUSHX: "PUSHX_COUCHBASE_BUCKET_NAME"}


def _phase(phase: str, when: str) -> list[Option]:
    return [
        Option(f"couchbase-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with each document {when}: mv, rm, set or merge (empty: nothing)"),
        Option(f"couchbase-{phase}-doc", sides=PROCX,
               help="JSON object written by set, merged onto the document by merge/mv (empty: the document)"),
        Option(f"couchbase-{phase}-bucket", sides=PROCX, help="target bucket (default: the source bucket)"),
        Option(f"couchbase-{phase}-scope", default="_default", sides=PROCX, help="target scope"),
        Option(f"couchbase-{phase}-collection", default="_default", sides=PROCX, help="target collection"),
        Option(f"couchbase-{phase}-id", sides=PROCX, help="target document id (default: -couchbase-id)"),
    ]


SPEC = DriverSpec(
    "couchbase",
    "Couchbase: a document by id or the rows of a N1QL query are the work; pushx upserts a JSON document",
    [
        Option("couchbase-address", help="connection string, e.g. couchbase://host or couchbases://host"),
        Option("couchbase-user", help="user name (authentication only when user and password are set)"),
        Option("couchbase-password", help="password of the user", secret=True),
        Option("couchbase-bucket", env=_BUCKET_ENV, required=PUSHX, help="bucket holding the documents"),
        Option("couchbase-scope", default="_default", help="scope within the bucket"),
        Option("couchbase-collection", default="_default", help="collection within the scope"),
        Option("couchbase-id", required=PUSHX,
               help="document id: procx fetches it (wins over the query); pushx writes it ({{field}}: from payload)"),
        Option("couchbase-retrieve-query", sides=PROCX,
               help="N1QL query returning the work rows when no id is given; placeholders $1, $2, … or ?"),
        Option("couchbase-retrieve-params", "list", sides=PROCX,
               help="comma-separated positional params of the retrieve query"),
        *_phase("clear", "after success"),
        *_phase("fail", "after failure"),
        *tls_options("couchbase"),
    ],
    extra="couchbase",
    requires=("couchbase",),
    blocking=False,
)
