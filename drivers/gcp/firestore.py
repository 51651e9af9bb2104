"""gcp-firestore: procx takes documents of a collection (then mv/rm/update); pushx creates one document."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.gcp.common import EXTRA, GCP_OPTIONS

QUERY_OPS = ("<", "<=", "==", "!=", ">=", ">", "array-contains", "array-contains-any", "in", "not-in")


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"gcp-firestore-{phase}-op", sides=PROCX,
               help=f"what to do with the documents {when}: mv, rm or update (empty: leave them)"),
        Option(f"gcp-firestore-{phase}-update", "json", sides=PROCX,
               help=f"JSON object whose fields are merged into the documents {when}"),
        Option(f"gcp-firestore-{phase}-collection", sides=PROCX,
               help=f"collection to move the documents to {when} (for mv)"),
    ]


SPEC = DriverSpec(
    "gcp-firestore",
    "a Firestore collection: documents (one by id, by query, or the first) are the work",
    [
        *GCP_OPTIONS,
        Option("gcp-firestore-retrieve-collection", sides=PROCX, help="collection holding the work documents"),
        Option("gcp-firestore-retrieve-document", sides=PROCX,
               help="take this document id (empty: by query, else the collection's first document)"),
        Option("gcp-firestore-retrieve-query-path", sides=PROCX,
               help="field path of the where() filter (empty: no query)"),
        Option("gcp-firestore-retrieve-query-op", sides=PROCX, choices=QUERY_OPS,
               help="operator of the where() filter, e.g. == or in"),
        Option("gcp-firestore-retrieve-query-value", sides=PROCX,
               help="value of the where() filter (compared as a string)"),
        Option("gcp-firestore-retrieve-query-order-by", sides=PROCX, help="field to order the query by"),
        Option("gcp-firestore-retrieve-query-order", sides=PROCX, choices=("asc", "desc"),
               help="order direction: asc or desc (empty: descending, as the original)"),
        Option("gcp-firestore-retrieve-limit", "int", sides=PROCX, extension=True,
               help="at most this many documents per query (0: all matches; the original read it from the "
                    "environment only)"),
        Option("gcp-firestore-retrieve-document-json-key", sides=PROCX,
               help="GJSON path over the documents array forming the payload, e.g. 0.work (empty: all)"),
        *_after("clear", "after success"),
        *_after("fail", "after failure"),
        Option("gcp-firestore-collection", sides=PUSHX, required=True,
               help="collection to create the document in"),
        Option("gcp-firestore-id", sides=PUSHX, group="push", help="id of the new document (empty: a random UUID)"),
    ],
    extra=EXTRA,
    requires=("google.cloud.firestore",),
    family="gcp",
)
