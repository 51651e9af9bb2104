"""gcp-firestore: procx takes documents of a collection (then mv/rm/update); pushx creates one document.

procx, in priority: -gcp-firestore-retrieve-document (that document; missing: no work), a where() query
(-gcp-firestore-retrieve-query-path/-op/-value, ordered by -…-order-by/-…-order, at most -…-retrieve-limit
documents), else the collection's first document (by id). The payload is the JSON list of the documents, each
with its id as "_id" (or the -gcp-firestore-retrieve-document-json-key selection of it); zero documents is no work.
Clear/fail act on exactly the documents of that item (kept in its handle), one atomic batch per item:
rm deletes them, update merges the update object into each, mv writes each (with the update merged) to the target
collection under the same id and deletes the SOURCE document.

Fixes of the original (procx.md #53, #24, #34): the document and first-document modes remember their document so
clear/fail work; update and mv write each document (not the list); mv deletes the source, not the new copy; the
query value is JSON-decoded when it parses (7, true, ["a","b"]), else it is a string; zero matches is no work;
nothing carries over from one item to the next. Kept: descending order when -…-order is empty.

Reads use queries (RunQuery / BatchGetDocuments) and writes use batches (Commit), so the client works against the
Firestore emulator through FIRESTORE_EMULATOR_HOST as against Firestore.
"""

from __future__ import annotations

import contextlib
import json
import uuid

from core.errors import ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.settings import Config
from core.template import go_json, select
from core.work import Sink, Source, Work
from drivers.gcp.common import EXTRA, GCP_OPTIONS

QUERY_OPS = ("<", "<=", "==", "!=", ">=", ">", "array-contains", "array-contains-any", "in", "not-in")
OPS = ("mv", "rm", "update")
TIMEOUT = 30.0  # seconds for one call
EMULATOR_VARIABLE = "FIRESTORE_EMULATOR_HOST"


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"gcp-firestore-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with the documents {when}: mv, rm or update (empty: leave them)"),
        Option(f"gcp-firestore-{phase}-update", "json", sides=PROCX,
               help=f"JSON object whose fields are merged into the documents {when} (update, mv)"),
        Option(f"gcp-firestore-{phase}-collection", sides=PROCX,
               help=f"collection to move the documents to {when} (for mv; the source document is deleted)"),
    ]


def query_value(text: str) -> object:
    """-gcp-firestore-retrieve-query-value: its JSON value when it parses (7, 1.5, true, null, ["a"]), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def validate(config: Config) -> None:
    if config.side == PUSHX:
        if not config["gcp-firestore-collection"]:
            raise ValueError("-gcp-firestore-collection: empty; pushx needs the collection to create documents in")
        return
    if not config["gcp-firestore-retrieve-collection"]:
        raise ValueError("-gcp-firestore-retrieve-collection: empty; procx needs the collection holding the work")
    if config["gcp-firestore-retrieve-query-path"] and not config["gcp-firestore-retrieve-query-op"]:
        raise ValueError("-gcp-firestore-retrieve-query-op: empty; a query needs an operator, e.g. ==")
    if config["gcp-firestore-retrieve-limit"] < 0:
        raise ValueError("-gcp-firestore-retrieve-limit: must be 0 (all matches) or more")
    for phase in ("clear", "fail"):
        op = config[f"gcp-firestore-{phase}-op"]
        update = config[f"gcp-firestore-{phase}-update"]
        if update is not None and not isinstance(update, dict):
            raise ValueError(f"-gcp-firestore-{phase}-update: must be a JSON object")
        if op == "mv" and not config[f"gcp-firestore-{phase}-collection"]:
            raise ValueError(f"-gcp-firestore-{phase}-collection: empty; -gcp-firestore-{phase}-op mv needs the "
                             "collection to move the documents to")
        if op == "update" and not update:
            raise ValueError(f"-gcp-firestore-{phase}-update: empty; -gcp-firestore-{phase}-op update needs the "
                             "JSON object to merge")


def _client(config: Config):
    import os

    from google.cloud import firestore

    where = os.environ.get(EMULATOR_VARIABLE) or "firestore.googleapis.com"
    try:
        return firestore.Client(project=config["gcp-project-id"] or None), where
    except Exception as exc:
        raise ProviderError(f"driver {config.driver}: cannot create the Firestore client for {where}: "
                            f"{one_line(exc)} (set -gcp-project-id and credentials)") from exc


def _retry():
    from google.api_core import exceptions
    from google.api_core.retry import Retry, if_exception_type

    # a few quick retries of a transient error; an unreachable server fails within seconds, not minutes
    return Retry(predicate=if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded,
                                             exceptions.InternalServerError), initial=0.1, maximum=1.0,
                 timeout=3.0)



def _error(config: Config, where: str, what: str, exc: BaseException) -> ProviderError:
    from google.api_core import exceptions

    if isinstance(exc, (exceptions.ServiceUnavailable, exceptions.RetryError, exceptions.DeadlineExceeded)):
        return ProviderError(f"driver {config.driver}: cannot connect to {where}: {one_line(exc)[:200]}")
    return ProviderError(f"driver {config.driver}: cannot {what} on {where}: {one_line(exc)[:300]}")


def _plain(value: object) -> object:
    """A Firestore value -> what the payload's JSON holds (as the Go client's Data() marshals it)."""
    from google.cloud.firestore_v1 import DocumentReference, GeoPoint

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, GeoPoint):
        return {"Latitude": value.latitude, "Longitude": value.longitude}
    if isinstance(value, DocumentReference):
        return value.path
    return value


class Item:
    """Work.handle: the documents of one item, by id, with their data as read."""

    __slots__ = ("docs",)

    def __init__(self, docs: list[tuple[str, dict]]) -> None:
        self.docs = docs


class FirestoreSource(Source):
    def open(self) -> None:
        self.client, self.where = _client(self.config)
        self.collection = self.config["gcp-firestore-retrieve-collection"]

    def _documents(self) -> list:
        from google.cloud.firestore_v1.base_query import FieldFilter

        c = self.config
        col = self.client.collection(self.collection)
        document = c["gcp-firestore-retrieve-document"]
        if document:
            snap = col.document(document).get(retry=_retry(), timeout=TIMEOUT)
            return [snap] if snap.exists else []
        path = c["gcp-firestore-retrieve-query-path"]
        if path:
            query = col.where(filter=FieldFilter(path, c["gcp-firestore-retrieve-query-op"],
                                                 query_value(c["gcp-firestore-retrieve-query-value"])))
            if c["gcp-firestore-retrieve-query-order-by"]:
                direction = "ASCENDING" if c["gcp-firestore-retrieve-query-order"] == "asc" else "DESCENDING"
                query = query.order_by(c["gcp-firestore-retrieve-query-order-by"], direction=direction)
            if c["gcp-firestore-retrieve-limit"] > 0:
                query = query.limit(c["gcp-firestore-retrieve-limit"])
        else:
            query = col.limit(1)
        return list(query.stream(retry=_retry(), timeout=TIMEOUT))

    def get(self, wait: float) -> Work | None:
        try:
            snaps = self._documents()
        except UsageError:
            raise
        except (ValueError, TypeError) as exc:  # e.g. an operator the client refuses for that value
            raise UsageError(f"-gcp-firestore-retrieve-query-value: {exc}") from None
        except Exception as exc:
            raise _error(self.config, self.where, f"read collection {self.collection}", exc) from exc
        if not snaps:
            return None
        docs = [(s.id, s.to_dict() or {}) for s in snaps]
        records = [{**_plain(data), "_id": ident} for ident, data in docs]
        payload = go_json(records)
        key = self.config["gcp-firestore-retrieve-document-json-key"]
        data = select(payload, key) if key else payload
        return Work(data.encode(), docs[0][0], handle=Item(docs))

    def clear(self, work: Work) -> None:
        self._finish(work, "clear")

    def fail(self, work: Work) -> None:
        self._finish(work, "fail")

    def _finish(self, work: Work, phase: str) -> None:
        c = self.config
        op = c[f"gcp-firestore-{phase}-op"]
        if not op:
            return
        update = c[f"gcp-firestore-{phase}-update"] or {}
        col = self.client.collection(self.collection)
        batch = self.client.batch()
        for ident, data in work.handle.docs:
            source = col.document(ident)
            if op == "rm":
                batch.delete(source)
            elif op == "update":
                batch.set(source, update, merge=True)
            else:  # mv: the document (update merged) under the same id in the target, then the source deleted
                target = self.client.collection(c[f"gcp-firestore-{phase}-collection"]).document(ident)
                batch.set(target, {**data, **update})
                batch.delete(source)
        try:
            batch.commit(retry=_retry(), timeout=TIMEOUT)
        except Exception as exc:
            raise _error(c, self.where, f"{op} the documents ({phase})", exc) from exc

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


PUSH_ERROR = "driver gcp-firestore: the payload must be a JSON object (the new document's fields)"


def document_fields(payload: bytes) -> dict:
    """pushx's payload -> the new document: the first JSON value, which must be an object."""
    try:
        obj, _ = json.JSONDecoder().raw_decode(payload.decode("utf-8").lstrip(" \t\r\n"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{PUSH_ERROR} ({exc})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{PUSH_ERROR}, not a JSON {type(obj).__name__}")
    return obj


class FirestoreSink(Sink):
    def open(self) -> None:
        self.client, self.where = _client(self.config)

    def push(self, payload: bytes) -> str | None:
        fields = document_fields(payload)
        ident = self.config["gcp-firestore-id"] or str(uuid.uuid4())
        collection = self.config["gcp-firestore-collection"]
        batch = self.client.batch()
        batch.create(self.client.collection(collection).document(ident), fields)
        try:
            batch.commit(retry=_retry(), timeout=TIMEOUT)
        except Exception as exc:
            raise _error(self.config, self.where, f"create document {collection}/{ident}", exc) from exc
        return ident

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


SPEC = DriverSpec(
    "gcp-firestore",
    "a Firestore collection: documents (one by id, by query, or the first) are the work",
    [
        *GCP_OPTIONS,
        Option("gcp-firestore-retrieve-collection", sides=PROCX, required=True,
               help="collection holding the work documents"),
        Option("gcp-firestore-retrieve-document", sides=PROCX,
               help="take this document id (missing: no work; empty: by query, else the collection's first "
                    "document by id)"),
        Option("gcp-firestore-retrieve-query-path", sides=PROCX,
               help="field path of the where() filter (empty: no query)"),
        Option("gcp-firestore-retrieve-query-op", sides=PROCX, choices=QUERY_OPS,
               help="operator of the where() filter, e.g. == or in"),
        Option("gcp-firestore-retrieve-query-value", sides=PROCX,
               help="value of the where() filter: JSON when it parses (7, true, [\"a\",\"b\"], \"7\"), else the "
                    "text itself"),
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
        Option("gcp-firestore-id", sides=PUSHX, group="push",
               help="id of the new document (empty: a random UUID); creating an existing id is an error"),
    ],
    source="drivers.gcp.firestore:FirestoreSource",
    sink="drivers.gcp.firestore:FirestoreSink",
    extra=EXTRA,
    requires=("google.cloud.firestore",),
    validate=validate,
    family="gcp",
    delivery=Delivery(
        "at-least-once with a clear op (rm/mv/update that takes the documents out of the retrieve query): the "
        "documents stay where they are until clear",
        hold="none (Firestore has no lease): a procx killed before clear leaves the documents for the next run; "
             "two procx on the same collection can take the same document",
        fail="the fail op (mv to a failed collection, update, rm) in one batch; without one the documents stay "
             "and are taken again",
        pushx="the document was created (Commit with an exists=false precondition)",
        tested="emulator: @firestore-emulator/server 0.3.15 (Node)",
    ),
)
