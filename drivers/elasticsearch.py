"""elasticsearch: search hits are the work (procx); pushx indexes a JSON document."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.common import tls_options

OPS = ("delete", "put", "merge-put", "move")


def _phase(phase: str, when: str) -> list[Option]:
    return [
        Option(f"elasticsearch-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with the hits {when}: delete, put, merge-put or move (empty: nothing)"),
        Option(f"elasticsearch-{phase}-index", sides=PROCX, help="target index (default: the retrieve index)"),
        Option(f"elasticsearch-{phase}-doc", sides=PROCX,
               help="JSON document for put / merge-put; {{0.field}} takes a value of the hits"),
    ]


SPEC = DriverSpec(
    "elasticsearch",
    "Elasticsearch: search hits are the work, clear/fail delete, update or move them; pushx indexes a document",
    [
        Option("elasticsearch-address", help="node URL, e.g. http://localhost:9200"),
        Option("elasticsearch-username", help="user for basic authentication"),
        Option("elasticsearch-password", help="password for basic authentication", secret=True),
        *tls_options("elasticsearch", insecure="tls-skip-verify"),
        Option("elasticsearch-retrieve-index", sides=PROCX, help="index searched for work"),
        Option("elasticsearch-retrieve-query", "json", sides=PROCX,
               help='search request body (query DSL JSON), e.g. {"size":1,"query":{"match_all":{}}}'),
        *_phase("clear", "after success"),
        *_phase("fail", "after failure"),
        Option("elasticsearch-index", sides=PUSHX, help="index the document is written to"),
        Option("elasticsearch-doc-id", sides=PUSHX, help="document id (empty: the server generates one)"),
    ],
    extra="elasticsearch",
    requires=("elasticsearch",),
    blocking=False,
)
