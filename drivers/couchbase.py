"""couchbase: a document (by id) or N1QL query rows are the work (procx); pushx upserts a JSON document.

procx fetches -couchbase-id from bucket.scope.collection (payload `[<document>]`, as the original) or, without
an id, runs -couchbase-retrieve-query with -couchbase-retrieve-params bound as positional parameters (payload:
the JSON array of the rows). After the child, the clear or fail op runs on each document: set (upsert the op
doc, or the document), merge (the op doc's fields over the document), mv (merge into the target keyspace/id,
then remove the source document), rm (remove the target id). The op doc's `{{path}}` templates are filled per
document, as JSON values (a bare `{{path}}` becomes the typed value it selects; never spliced into the JSON
text). Nothing is leased: the document stays in place while the child runs.

Fixes over the original (procx.md §4.10, §7.3 #24, §7.5 #34, §7.7 #47; pushx.md §4.6):
- op docs are templated per document, after retrieval (the original filled them at start, always empty);
- the target scope and collection default to the source ones unless given (the `_default` defaults defeated
  "same as source");
- query mode: zero rows is no work (the original ran the child with `null`); rows are not accumulated across
  daemon iterations; each row's document id is its `id` field (`SELECT META().id AS id, ...`), so rm/mv/set
  work (the original had no id); merged fields do not bleed from one document into the next;
- a missing document (-couchbase-id) is no work (the original failed);
- -couchbase-address is also read from PROCX_/PUSHX_COUCHBASE_ADDRESS; the TLS client certificate is used
  (certificate authentication; the original loaded and ignored it);
- pushx fills the id from the payload text itself (the original re-encoded it first, so large integers lost
  precision) and refuses an id that fills to nothing.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from urllib.parse import urlsplit

from core.errors import ProviderError, UsageError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import JsonTemplate, fill, go_json
from core.work import Sink, Source, Work
from drivers.common import Tls

NAME = "couchbase"
OPS = ("mv", "rm", "set", "merge")
PHASES = ("clear", "fail")
TLS = Tls("couchbase")
CONNECT_TIMEOUT = timedelta(seconds=10)
READY_TIMEOUT = timedelta(seconds=5)  # the original waited up to 5 s for the bucket
OP_TIMEOUT = timedelta(seconds=30)
PUSH_ERROR = "driver couchbase: the payload must be a JSON object in UTF-8 (the document to upsert)"
_BUCKET_ENV = {PROCX: "PROCX_COUCHBASE_BUCKET_NAME", PUSHX: "PUSHX_COUCHBASE_BUCKET_NAME"}


def connection_string(config) -> str:
    """-couchbase-address with a scheme: couchbases:// when TLS is on, couchbase:// otherwise."""
    address = config["couchbase-address"].strip()
    if "://" not in address:
        address = "couchbase://" + address
    if config["couchbase-enable-tls"] and address.startswith("couchbase://"):
        address = "couchbases://" + address[len("couchbase://"):]
    return address


def _where(config) -> str:
    """The hosts of the connection string, without credentials or parameters."""
    parts = urlsplit(connection_string(config))
    return parts.netloc.rpartition("@")[2] or "localhost"


def authenticator(config):
    """Certificate authentication with a TLS client certificate, else user/password (with the CA to trust)."""
    from couchbase.auth import CertificateAuthenticator, PasswordAuthenticator

    ca = config["couchbase-tls-ca-file"] or None
    if config["couchbase-enable-tls"] and config["couchbase-tls-cert-file"]:
        return CertificateAuthenticator(cert_path=config["couchbase-tls-cert-file"],
                                        key_path=config["couchbase-tls-key-file"], trust_store_path=ca)
    if ca:
        return PasswordAuthenticator(config["couchbase-user"], config["couchbase-password"], cert_path=ca)
    return PasswordAuthenticator(config["couchbase-user"], config["couchbase-password"])


def cluster_options(config):
    from couchbase.options import ClusterOptions, ClusterTimeoutOptions, TLSVerifyMode

    kwargs: dict[str, object] = {"timeout_options": ClusterTimeoutOptions(
        connect_timeout=CONNECT_TIMEOUT, kv_timeout=OP_TIMEOUT, query_timeout=OP_TIMEOUT)}
    if config["couchbase-enable-tls"] and config["couchbase-tls-insecure"]:
        kwargs["tls_verify"] = TLSVerifyMode.NONE
    return ClusterOptions(authenticator(config), **kwargs)


class _Couchbase:
    """One cluster connection; SDK errors become ProviderErrors naming the hosts (never the password)."""

    def __init__(self, config) -> None:
        from couchbase.cluster import Cluster

        self.config = config
        self.where = _where(config)
        with self.errors("connect"):
            self.cluster = Cluster(connection_string(config), cluster_options(config))

    @contextlib.contextmanager
    def errors(self, what: str):
        from couchbase.exceptions import AuthenticationException, CouchbaseException

        try:
            yield
        except AuthenticationException:
            raise ProviderError(f"driver {NAME}: {self.where}: authentication refused for user "
                                f"{self.config['couchbase-user']!r} (wrong user name or password?)") from None
        except CouchbaseException as exc:
            detail = getattr(exc, "message", "") or type(exc).__name__
            raise ProviderError(f"driver {NAME}: cannot {what} on {self.where}: {type(exc).__name__}: "
                                f"{' '.join(str(detail).split())}") from None

    def collection(self, bucket: str, scope: str, collection: str):
        with self.errors(f"open bucket {bucket!r}"):
            handle = self.cluster.bucket(bucket)
            return handle.scope(scope).collection(collection)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not raise
            self.cluster.close()


def _keyspace(config, phase: str) -> tuple[str, str, str]:
    """The target bucket/scope/collection of a phase: each defaults to the source's unless given."""
    out = []
    for part in ("bucket", "scope", "collection"):
        name = f"couchbase-{phase}-{part}"
        given = config[name] if part == "bucket" else (config[name] if config.origins[name] != "default" else "")
        out.append(given or config[f"couchbase-{part}"])
    return out[0], out[1], out[2]


def _document_id(document: object) -> str:
    """A query row's document id: its `id` field (SELECT META().id AS id, ...)."""
    value = document.get("id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else ""


def plan(config, phase: str, docs: list[tuple[str, object]]) -> list[tuple[str, tuple, str, object]]:
    """What a clear/fail op does to the retrieved documents: (action, keyspace, id, document) steps, action
    upsert or remove. Pure (no client calls); ValueError says what is wrong."""
    op = config[f"couchbase-{phase}-op"]
    if not op:
        return []
    source = (config["couchbase-bucket"], config["couchbase-scope"], config["couchbase-collection"])
    target = _keyspace(config, phase)
    id_template, doc_text = config[f"couchbase-{phase}-id"], config[f"couchbase-{phase}-doc"]
    template = JsonTemplate(doc_text, f"couchbase-{phase}-doc") if doc_text else None
    steps: list[tuple[str, tuple, str, object]] = []
    for source_id, document in docs:
        data = json.dumps(document)
        target_id = fill(id_template, data) if id_template else source_id
        if not target_id:
            raise ValueError(f"-couchbase-{phase}-id: no document id (give -couchbase-{phase}-id, or return the "
                             "id as `id` from the query: SELECT META().id AS id, ...)")
        rendered = template.render(data) if template is not None else None
        if op == "rm":
            steps.append(("remove", target, target_id, None))
            continue
        if op == "set":
            body = rendered if rendered is not None else document
        else:  # merge, mv: the op doc's fields over this document (never over an earlier one)
            body = {**document, **rendered} if isinstance(document, dict) and rendered else (rendered or document)
        steps.append(("upsert", target, target_id, body))
        if op == "mv":
            if not source_id:
                raise ValueError("mv: the source document has no id (return it as `id` from the query)")
            if (target, target_id) == (source, source_id):
                raise ValueError(f"-couchbase-{phase}-op mv: the target is the source document itself")
            steps.append(("remove", source, source_id, None))
    return steps


class CouchbaseSource(Source):
    db: _Couchbase | None = None

    def open(self) -> None:
        self.db = _Couchbase(self.config)
        with self.db.errors("wait for the cluster"):
            self.db.cluster.wait_until_ready(READY_TIMEOUT)

    def get(self, wait: float) -> Work | None:
        from couchbase.exceptions import DocumentNotFoundException

        config = self.config
        ident = config["couchbase-id"]
        if ident:
            coll = self.db.collection(config["couchbase-bucket"], config["couchbase-scope"],
                                      config["couchbase-collection"])
            with self.db.errors(f"get document {ident!r}"):
                try:
                    document = coll.get(ident).content_as[dict]
                except DocumentNotFoundException:
                    return None
            docs = [(ident, document)]
        else:
            from couchbase.options import QueryOptions

            params = list(config["couchbase-retrieve-params"])
            with self.db.errors("run the retrieve query"):
                result = self.db.cluster.query(config["couchbase-retrieve-query"],
                                               QueryOptions(positional_parameters=params))
                rows = list(result.rows())
            if not rows:
                return None
            docs = [(_document_id(row), row) for row in rows]
        payload = go_json([d for _, d in docs]).encode()
        return Work(payload, docs[0][0] or None, handle=docs, meta={"documents": len(docs)})

    def _finish(self, work: Work, phase: str) -> None:
        try:
            steps = plan(self.config, phase, work.handle)
        except ValueError as exc:
            raise UsageError(f"driver {NAME}: {exc}") from None
        from couchbase.exceptions import DocumentNotFoundException

        for action, (bucket, scope, collection), ident, body in steps:
            coll = self.db.collection(bucket, scope, collection)
            with self.db.errors(f"{action} document {ident!r} in {bucket}.{scope}.{collection}"):
                if action == "upsert":
                    coll.upsert(ident, body)
                else:
                    with contextlib.suppress(DocumentNotFoundException):  # already gone is removed
                        coll.remove(ident)

    def clear(self, work: Work) -> None:
        self._finish(work, "clear")

    def fail(self, work: Work) -> None:
        self._finish(work, "fail")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def document(payload: bytes) -> dict:
    """The payload as one JSON object (whitespace around it allowed)."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{PUSH_ERROR}: byte {exc.start} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{PUSH_ERROR} ({exc.msg} at position {exc.pos})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{PUSH_ERROR}, not a JSON {type(obj).__name__}")
    return obj


def push_id(config, payload: bytes) -> str:
    """-couchbase-id with its `{{path}}` templates filled from the payload text."""
    ident = fill(config["couchbase-id"], payload) if "{{" in config["couchbase-id"] else config["couchbase-id"]
    if not ident:
        raise UsageError(f"driver {NAME}: -couchbase-id {config['couchbase-id']!r} is empty for this payload")
    return ident


class CouchbaseSink(Sink):
    db: _Couchbase | None = None

    def open(self) -> None:
        self.db = _Couchbase(self.config)
        self.coll = self.db.collection(self.config["couchbase-bucket"], self.config["couchbase-scope"],
                                       self.config["couchbase-collection"])

    def push(self, payload: bytes) -> str | None:
        body = document(payload)
        ident = push_id(self.config, payload)
        with self.db.errors(f"upsert document {ident!r}"):
            self.coll.upsert(ident, body)
        return ident

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _validate(config) -> None:
    TLS.validate(config)
    address = config["couchbase-address"].strip()
    if not address:
        raise ValueError("-couchbase-address is required (couchbase://host or couchbases://host)")
    if "://" in address and not address.startswith(("couchbase://", "couchbases://")):
        raise ValueError("-couchbase-address: must start with couchbase:// or couchbases://")
    if bool(config["couchbase-user"]) != bool(config["couchbase-password"]):
        raise ValueError("-couchbase-user and -couchbase-password go together")
    certificate = config["couchbase-enable-tls"] and config["couchbase-tls-cert-file"]
    if not config["couchbase-user"] and not certificate:
        raise ValueError("-couchbase-user and -couchbase-password are required (or a client certificate: "
                         "-couchbase-enable-tls with -couchbase-tls-cert-file and -couchbase-tls-key-file)")
    if certificate and not config["couchbase-tls-key-file"]:
        raise ValueError("-couchbase-tls-cert-file needs -couchbase-tls-key-file")
    if config.side == PUSHX:
        return
    if not config["couchbase-id"] and not config["couchbase-retrieve-query"]:
        raise ValueError("-couchbase-id or -couchbase-retrieve-query is required")
    if config["couchbase-id"] and not config["couchbase-bucket"]:
        raise ValueError("-couchbase-bucket is required with -couchbase-id")
    for phase in PHASES:
        if not config[f"couchbase-{phase}-op"]:
            continue
        if not config["couchbase-bucket"] and not config[f"couchbase-{phase}-bucket"]:
            raise ValueError(f"-couchbase-{phase}-bucket (or -couchbase-bucket) is required with "
                             f"-couchbase-{phase}-op")
        if config[f"couchbase-{phase}-doc"]:
            JsonTemplate(config[f"couchbase-{phase}-doc"], f"couchbase-{phase}-doc")


def _phase(phase: str, when: str) -> list[Option]:
    return [
        Option(f"couchbase-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with each document {when}: mv, rm, set or merge (empty: nothing)"),
        Option(f"couchbase-{phase}-doc", sides=PROCX,
               help="JSON object written by set, merged onto the document by merge/mv (empty: the document); "
                    "{{path}} takes a value of the document"),
        Option(f"couchbase-{phase}-bucket", sides=PROCX, help="target bucket (default: the source bucket)"),
        Option(f"couchbase-{phase}-scope", default="_default", sides=PROCX,
               help="target scope (default: the source scope)"),
        Option(f"couchbase-{phase}-collection", default="_default", sides=PROCX,
               help="target collection (default: the source collection)"),
        Option(f"couchbase-{phase}-id", sides=PROCX,
               help="target document id (default: the document's own); {{path}} takes a value of the document"),
    ]


SPEC = DriverSpec(
    NAME,
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
               help="N1QL query returning the work rows when no id is given (return the document id as `id`); "
                    "placeholders $1, $2, … or ?"),
        Option("couchbase-retrieve-params", "list", sides=PROCX,
               help="comma-separated positional params of the retrieve query (bound, never spliced)"),
        *_phase("clear", "after success"),
        *_phase("fail", "after failure"),
        *TLS.options(),
    ],
    source="drivers.couchbase:CouchbaseSource",
    sink="drivers.couchbase:CouchbaseSink",
    extra="couchbase",
    requires=("couchbase",),
    blocking=False,
    validate=_validate,
    delivery=Delivery(
        "at-least-once when the clear op removes or marks the document (a document is never lost: nothing "
        "happens to it before the child succeeded)",
        hold="none: the document stays in place while the child runs (another procx could take it too)",
        fail="the fail op (set/merge/mv/rm) on each document; without one, the document stays and is taken again",
        dead_letter="none (mv to another collection with the fail op)",
        pushx="KV upsert acknowledged by the data service",
        tested="not verified against a server: option handling, document/query building and the SDK calls are "
               "checked with a recording fake of the couchbase SDK's Cluster (no server runs here)",
    ),
)
