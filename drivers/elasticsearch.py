"""elasticsearch: search hits are the work (procx); pushx indexes a JSON document.

procx: `_search` on -elasticsearch-retrieve-index with -elasticsearch-retrieve-query as the body (its "size" says how
many hits one job takes). The payload is the JSON array of the hits' sources, each with its "_id" (keys sorted), or
with -elasticsearch-payload-field that field of one hit. After the child, the clear/fail op acts on exactly those hits
in its index (default: the retrieve index): delete; put (index the doc under the hit's id); merge-put (update the hit
with the doc's fields); move (index the source under the same id in the other index, then delete it here).

Fixes over the original (procx.md §4.11, §7.3 #24, §7.6 #38, §7.7 #42/#48):
- every job is its own hits (the original appended every hit ever read to the payload and to later clear ops);
- a missing retrieve index is no work (the original's 404 was an error);
- put writes the doc under each hit's id (the original created a new random-id document) and, like merge-put,
  fills `{{0.field}}` from the hits; templates are bound as values: the doc is parsed first and a value holding
  `"}` or `{"$ne": 1}` stays one string (the original spliced text into the JSON);
- the fail op uses -elasticsearch-fail-index (the original used the clear index) and fail `delete` works (it
  crashed); move needs an index other than the retrieve index (the original re-indexed into the same index, then
  deleted the document); merge-put into another index creates the document there when it is missing;
- ops on the retrieve index are conditional on the hit being unchanged since it was read (if_seq_no and
  if_primary_term): a document another procx changed or removed meanwhile is reported, never overwritten;
- hits are checked with a real-time multi-get before they are handed out (with a lease: by the conditional lease
  update), so a hit the search still shows after it was cleared (a search sees writes only after the index
  refreshes, about a second) is not run twice; the search is repeated without such hits;
- pushx checks that the payload is one JSON object in UTF-8 before sending it (unchanged, byte for byte).
Extensions: -elasticsearch-lease-ttl (each hit is leased by a conditional update of -elasticsearch-lease-field,
renewed while the child runs, so two procx never take the same hit; the search skips leased hits; the field is set
to null after clear/fail when the hit stays; the expiry is the procx host's clock, in epoch milliseconds);
-elasticsearch-payload-field (pushx stores the payload text in one field; procx takes one hit at a time and gives
that field back); -elasticsearch-refresh (pushx returns once the document is searchable).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from core.errors import ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import JsonTemplate, go_json
from core.work import Sink, Source, Work
from drivers.common import ClientConnection, Keeper, Tls

OPS = ("delete", "put", "merge-put", "move")
TLS = Tls("elasticsearch", insecure="tls-skip-verify")
CONNECT_TIMEOUT = 5.0  # seconds for the first request (an unreachable server fails after this long)
REQUEST_TIMEOUT = 30.0
STALE_ROUNDS = 4  # searches per get when every hit found was already cleared (the index not refreshed yet)
PUSH_ERROR = "driver elasticsearch: the payload must be one JSON object in UTF-8 (the document to index)"


def _phase(phase: str, when: str) -> list[Option]:
    return [
        Option(f"elasticsearch-{phase}-op", sides=PROCX, choices=OPS,
               help=f"what to do with the hits {when}: delete, put, merge-put or move (empty: nothing)"),
        Option(f"elasticsearch-{phase}-index", sides=PROCX,
               help="target index (default: the retrieve index; move needs another one)"),
        Option(f"elasticsearch-{phase}-doc", sides=PROCX,
               help="JSON document for put / merge-put; {{0.field}} takes a value of the hits (bound as a value)"),
    ]


def _address(config) -> tuple[str, str, tuple[str, str] | None]:
    """(URL without credentials, host:port for messages, credentials given in the URL or None)."""
    text = config["elasticsearch-address"].strip()
    parts = urlsplit(text)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 9200)
    except ValueError:
        raise UsageError(f"-elasticsearch-address: bad port in {parts.hostname or text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("-elasticsearch-address: a node URL is required, e.g. http://localhost:9200")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    url = urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))
    creds = (parts.username or "", parts.password or "") if parts.username else None
    return url, f"{host}:{port}", creds


def _validate(config) -> None:
    if not config["elasticsearch-address"]:
        raise ValueError("-elasticsearch-address is required, e.g. http://localhost:9200")
    url = _address(config)[0]
    TLS.validate(config)
    if config[TLS.enable] and not url.startswith("https:"):
        raise ValueError("-elasticsearch-address: TLS needs an https:// address")
    if config["elasticsearch-password"] and not config["elasticsearch-username"]:
        raise ValueError("-elasticsearch-password needs -elasticsearch-username")
    if config.side == PUSHX:
        return
    index = config["elasticsearch-retrieve-index"]
    query = config["elasticsearch-retrieve-query"]
    if query is not None and not isinstance(query, dict):
        raise ValueError("-elasticsearch-retrieve-query: must be a JSON object (a search request body)")
    if config["elasticsearch-lease-ttl"] < 0:
        raise ValueError("-elasticsearch-lease-ttl: must not be negative")
    field = config["elasticsearch-lease-field"]
    if config["elasticsearch-lease-ttl"] and (not field or "." in field):
        raise ValueError("-elasticsearch-lease-field: a top-level field name (no '.')")
    for phase in ("clear", "fail"):
        op, doc = config[f"elasticsearch-{phase}-op"], config[f"elasticsearch-{phase}-doc"]
        target = config[f"elasticsearch-{phase}-index"] or index
        if op in ("put", "merge-put"):
            if not doc:
                raise ValueError(f"-elasticsearch-{phase}-doc is required with -elasticsearch-{phase}-op {op}")
            JsonTemplate(doc, f"elasticsearch-{phase}-doc")
        if op == "move" and target == index:
            raise ValueError(f"-elasticsearch-{phase}-index: move needs an index other than the retrieve index "
                             f"{index!r} (the original lost the document)")


SPEC = DriverSpec(
    "elasticsearch",
    "Elasticsearch: search hits are the work, clear/fail delete, update or move them; pushx indexes a document",
    [
        Option("elasticsearch-address", help="node URL, e.g. http://localhost:9200"),
        Option("elasticsearch-username", help="user for basic authentication"),
        Option("elasticsearch-password", help="password for basic authentication", secret=True),
        *TLS.options(),
        Option("elasticsearch-retrieve-index", sides=PROCX, required=PROCX, help="index searched for work"),
        Option("elasticsearch-retrieve-query", "json", sides=PROCX,
               help='search request body (query DSL JSON), e.g. {"size":1,"query":{"match_all":{}}}'),
        *_phase("clear", "after success"),
        *_phase("fail", "after failure"),
        Option("elasticsearch-index", sides=PUSHX, required=PUSHX, help="index the document is written to"),
        Option("elasticsearch-doc-id", sides=PUSHX, help="document id (empty: the server generates one)"),
        Option("elasticsearch-lease-ttl", "duration", 0.0, sides=PROCX, group="retrieve", extension=True,
               help="lease each hit for this long (a conditional update of -elasticsearch-lease-field, renewed while "
                    "the child runs): no other procx takes it, a dead procx's hits come back after it (0: no lease)"),
        Option("elasticsearch-lease-field", default="procx_lease", sides=PROCX, group="retrieve", extension=True,
               advanced=True, help="field holding the lease (with -elasticsearch-lease-ttl); null after clear/fail"),
        Option("elasticsearch-refresh", sides=PUSHX, choices=("true", "wait_for"), group="push", extension=True,
               help="make the document searchable before pushx returns: true (refresh now) or wait_for (the next "
                    "refresh) (empty: no refresh, as the original; search sees it after about a second)"),
        Option("elasticsearch-payload-field", extension=True, group="retrieve",
               help="pushx stores the payload (UTF-8 text) in this one field; procx takes one hit at a time and its "
                    "payload is this field (empty: JSON documents)"),
    ],
    source="drivers.elasticsearch:ElasticsearchSource",
    sink="drivers.elasticsearch:ElasticsearchSink",
    extra="elasticsearch",
    requires=("elasticsearch",),
    blocking=False,
    validate=_validate,
    delivery=Delivery(
        "at-least-once with a clear op that takes the hits out of the query (delete, move, or a put/merge-put "
        "changing what the query matches)",
        hold="with -elasticsearch-lease-ttl: each hit leased by a conditional update (if_seq_no/if_primary_term) of a "
             "lease field, renewed while the child runs; a dead procx's hits come back after the TTL; a lease taken "
             "over stops the child. Without it none: two procx may run the same hit, but the ops are conditional on "
             "the hit being unchanged since it was read, so the second clear is refused, not applied twice",
        fail="the fail op (e.g. merge-put a status, move to a failed index); empty: the hits stay (their lease "
             "released) and are taken again",
        pushx="indexed (HTTP 200/201); searchable after the index's next refresh (about a second)",
        tested="emulator: noida-db 0.2.3 (Elasticsearch 8.15.3 API, near-real-time search like Elasticsearch), "
               "elasticsearch-py 9.5 and 8.19; TLS through a test proxy in front of it; authentication not verified "
               "(the emulator accepts any)",
    ),
)


# ---------------------------------------------------------------------------------------------- client
class _Connection(ClientConnection):
    """An Elasticsearch client for the settings, with errors translated (host:port, never the password)."""

    def __init__(self, config) -> None:
        self.url, where, self.url_creds = _address(config)
        super().__init__(config, where)

    def open(self):
        from elasticsearch import Elasticsearch

        c = self.config
        kwargs: dict[str, object] = {"request_timeout": REQUEST_TIMEOUT, "max_retries": 0, "retry_on_timeout": False}
        user = c["elasticsearch-username"]
        if user or self.url_creds:
            kwargs["basic_auth"] = (user, c["elasticsearch-password"]) if user else self.url_creds
        if TLS.context(c) is not None:  # checks the files (usage errors); the transport takes them by name
            if c[TLS.insecure]:
                kwargs.update(verify_certs=False, ssl_show_warn=False)
            elif c[TLS.ca]:
                kwargs["ca_certs"] = c[TLS.ca]  # instead of certifi's roots, as the original's CA file
            if c[TLS.cert]:
                kwargs.update(client_cert=c[TLS.cert], client_key=c[TLS.key] or None)
        self.client = Elasticsearch(self.url, **kwargs)
        with self.errors("connect"):
            self.client.options(request_timeout=CONNECT_TIMEOUT).info()
        return self.client

    def secrets(self) -> tuple[str, ...]:
        return self.config["elasticsearch-password"], (self.url_creds or ("", ""))[1]

    def translate(self, exc: Exception, what: str) -> ProviderError | None:
        from elastic_transport import ConnectionTimeout, TransportError
        from elasticsearch import ApiError, AuthenticationException, UnsupportedProductError

        if isinstance(exc, AuthenticationException):
            who = self.config["elasticsearch-username"] or (self.url_creds or ("",))[0]
            return ProviderError(f"driver elasticsearch: authentication failed for user {who!r} at {self.where}")
        if isinstance(exc, UnsupportedProductError):
            return ProviderError(f"driver elasticsearch: {self.where} is not an Elasticsearch server")
        if isinstance(exc, ApiError):
            detail = _reason(exc.body) or ("" if exc.message in (None, "None") else one_line(str(exc.message), 200))
            return ProviderError(f"driver elasticsearch: {self.where}: cannot {what}: HTTP {exc.meta.status}"
                                 + (f": {self.clean(detail)}" if detail else ""))
        if isinstance(exc, ConnectionTimeout):
            return ProviderError(f"driver elasticsearch: cannot reach {self.where}: timed out")
        if isinstance(exc, TransportError):
            text = str(getattr(exc, "message", "") or exc)
            return ProviderError(f"driver elasticsearch: cannot reach {self.where}: {self.cause(text)}")
        return None


def _reason(body: object) -> str:
    """The error type and reason of an Elasticsearch error body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('type', '')}: {err.get('reason', '')}".strip(": ")
    return one_line(str(body), 200) if body else ""


class _Hit:
    __slots__ = ("id", "seq_no", "primary_term", "source")

    def __init__(self, hit: dict) -> None:
        self.id = hit["_id"]
        self.seq_no, self.primary_term = hit.get("_seq_no"), hit.get("_primary_term")
        self.source = hit.get("_source") or {}

    def occ(self) -> dict:
        """The if_seq_no/if_primary_term of this hit (empty when the server gave none)."""
        if self.seq_no is None or self.primary_term is None:
            return {}
        return {"if_seq_no": self.seq_no, "if_primary_term": self.primary_term}


class _Held:
    """Work.handle: the hits of one job, their JSON (the templates' data) and, with a lease, its token and a lock
    that keeps the renewal and the clear/fail from writing at the same time (each write moves the seq_no)."""

    __slots__ = ("hits", "document", "token", "keeper_token", "lock", "released", "work")

    def __init__(self, hits: list[_Hit], document: str, token: str | None) -> None:
        self.hits, self.document, self.token = hits, document, token
        self.keeper_token = 0
        self.work: Work | None = None
        self.lock = threading.Lock()
        self.released = False


def _field_bytes(value: object) -> bytes:
    """The payload held by -elasticsearch-payload-field: text as UTF-8, anything else as JSON."""
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else go_json(value).encode()


class ElasticsearchSource(Source):
    def open(self) -> None:
        c = self.config
        self.conn = _Connection(c)
        self.client = self.conn.open()
        self.index = c["elasticsearch-retrieve-index"]
        self.query = dict(c["elasticsearch-retrieve-query"] or {})
        self.field = c["elasticsearch-payload-field"]
        self.docs = {phase: JsonTemplate(c[f"elasticsearch-{phase}-doc"], f"elasticsearch-{phase}-doc")
                     for phase in ("clear", "fail") if c[f"elasticsearch-{phase}-op"] in ("put", "merge-put")}
        self.ttl, self.lease = c["elasticsearch-lease-ttl"], c["elasticsearch-lease-field"]
        self.keeper = None
        if self.ttl:
            self.keeper = Keeper(self.ttl / 3, self._renew)

    def get(self, wait: float) -> Work | None:
        from elasticsearch import NotFoundError

        body = {**self.query, "seq_no_primary_term": True}
        if self.field:
            body["size"] = 1
        stale: list[str] = []
        token = uuid.uuid4().hex if self.ttl else None
        for _ in range(STALE_ROUNDS):
            if stale or self.ttl:
                body["query"] = self._without(stale)
            with self.conn.errors(f"search {self.index}"):
                try:
                    found = self.client.search(index=self.index, body=body)
                except NotFoundError:  # no such index (yet): no work
                    return None
            seen = [_Hit(h) for h in found.get("hits", {}).get("hits", [])]
            hits = self._claim(seen, token) if token else self._current(seen)
            if hits or not seen:
                break
            stale += [h.id for h in seen]  # every hit was stale or taken: search again without them
        if not hits:
            return None
        document = go_json([{**h.source, "_id": h.id} for h in hits])
        payload = _field_bytes(hits[0].source.get(self.field)) if self.field else document.encode()
        held = _Held(hits, document, token)
        held.work = Work(payload, hits[0].id, handle=held)
        if token:
            held.keeper_token = self.keeper.hold(held)
        return held.work

    def _without(self, ids: list[str]) -> dict:
        """The retrieve query without these ids and (with a lease) without the documents leased now."""
        excluded: list[dict] = [{"ids": {"values": ids}}] if ids else []
        if self.ttl:
            excluded.append({"range": {f"{self.lease}.until": {"gt": int(time.time() * 1000)}}})
        return {"bool": {"must": [self.query.get("query", {"match_all": {}})], "must_not": excluded}}

    def _claim(self, hits: list[_Hit], token: str) -> list[_Hit]:
        """Lease each hit with a conditional update (if_seq_no): a hit changed, removed or leased by another procx
        since the search saw it is skipped."""
        from elasticsearch import ConflictError, NotFoundError

        claimed = []
        for hit in hits:
            with self.conn.errors(f"lease {hit.id!r} in {self.index}"):
                try:
                    self._write_lease(hit, token)
                except (ConflictError, NotFoundError):
                    continue
            hit.source.pop(self.lease, None)
            claimed.append(hit)
        return claimed

    def _write_lease(self, hit: _Hit, token: str | None) -> None:
        """Set (or with token None, clear) the hit's lease field, conditionally; the hit keeps the new seq_no."""
        value = {"token": token, "until": int((time.time() + self.ttl) * 1000)} if token else None
        done = self.client.update(index=self.index, id=hit.id, body={"doc": {self.lease: value}}, **hit.occ())
        hit.seq_no, hit.primary_term = done.get("_seq_no"), done.get("_primary_term")

    def _renew(self, held: _Held) -> None:
        """Extend the lease of each hit, conditionally: a hit changed or removed by someone else since (its lease
        expired and another procx took it) is reported to procx, which stops the child (Work.lose)."""
        from elasticsearch import ConflictError, NotFoundError

        with held.lock:
            if held.released:
                return
            for hit in held.hits:
                try:
                    self._write_lease(hit, held.token)
                except (ConflictError, NotFoundError):
                    if held.work is not None:
                        held.work.lose(f"document {hit.id!r} in {self.index} changed or went away while its "
                                       "lease was held: another procx may have it")
                    return

    def _current(self, hits: list[_Hit]) -> list[_Hit]:
        """The hits that are still as the search saw them (a real-time get): search results lag behind writes until
        the index refreshes, so a hit cleared a moment ago may still be found."""
        if not hits:
            return hits
        with self.conn.errors(f"check the hits in {self.index}"):
            docs = self.client.mget(index=self.index, ids=[h.id for h in hits], source=False)["docs"]
        now = {d["_id"]: (d.get("_seq_no"), d.get("_primary_term")) for d in docs if d.get("found")}
        return [h for h in hits if h.id in now and (h.seq_no is None or now[h.id] == (h.seq_no, h.primary_term))]

    def clear(self, work: Work) -> None:
        self._apply("clear", work)

    def fail(self, work: Work) -> None:
        self._apply("fail", work)

    def _apply(self, phase: str, work: Work) -> None:
        from elasticsearch import ConflictError, NotFoundError

        c = self.config
        op = c[f"elasticsearch-{phase}-op"]
        held: _Held = work.handle
        if held.token:
            self.keeper.release(held.keeper_token)
            with held.lock:
                held.released = True
        elif not op:
            return
        if phase == "fail" and work.lost:
            return  # another procx may hold the documents now: theirs to finish
        target = c[f"elasticsearch-{phase}-index"] or self.index
        here = target == self.index
        doc = self.docs[phase].render(held.document) if phase in self.docs else None
        for hit in held.hits:
            with self.conn.errors(f"{op or 'release'} {hit.id!r} in {target} ({phase})"):
                try:
                    if op:
                        self._op(op, target, hit, doc, here)
                    if held.token and (not op or (op in ("put", "merge-put") and not here)):
                        self._write_lease(hit, None)  # the hit stays here: give it back now
                except ConflictError:
                    raise ProviderError(f"driver elasticsearch: document {hit.id!r} in {self.index} changed since it "
                                        f"was read (another procx?): -elasticsearch-{phase}-op {op} not done") from None
                except NotFoundError:
                    raise ProviderError(f"driver elasticsearch: document {hit.id!r} is gone from {self.index} "
                                        f"(another procx?): -elasticsearch-{phase}-op {op} not done") from None

    def _op(self, op: str, target: str, hit: _Hit, doc: object, here: bool) -> None:
        occ = hit.occ() if here else {}
        if op == "delete":
            self._delete(target, hit, occ)
        elif op == "put":
            self.client.index(index=target, id=hit.id, document=doc, **occ)
        elif op == "merge-put":
            update = {"doc": {**hit.source, **doc, **({self.lease: None} if self.ttl and here else {})}}
            if not here:
                update["doc_as_upsert"] = True
            self.client.update(index=target, id=hit.id, body=update, **occ)
        else:  # move: the copy first, then the hit goes (unless it changed meanwhile)
            self.client.index(index=target, id=hit.id, document=hit.source)
            self._delete(self.index, hit, hit.occ())

    def _delete(self, index: str, hit: _Hit, occ: dict) -> None:
        from elasticsearch import NotFoundError

        with contextlib.suppress(NotFoundError):  # already gone: what delete wants
            self.client.delete(index=index, id=hit.id, **occ)

    def depth(self) -> int:
        """hits.total of the retrieve query (what KEDA's elasticsearch scaler reads at hits.total.value)."""
        from elasticsearch import NotFoundError

        body = {"query": self.query.get("query", {"match_all": {}}), "size": 0, "track_total_hits": True}
        with self.conn.errors(f"count the hits in {self.index}"):
            try:
                total = self.client.search(index=self.index, body=body)["hits"]["total"]
            except NotFoundError:
                return 0
        return int(total["value"] if isinstance(total, dict) else total)

    def close(self) -> None:
        if getattr(self, "keeper", None) is not None:
            self.keeper.close()
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()


def document(payload: bytes, field: str) -> bytes:
    """pushx's payload -> the request body: with a payload field, {field: text}; else the payload itself after
    checking that it is one JSON object. Bytes that are not UTF-8 are refused (JSON cannot hold them)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{PUSH_ERROR}: byte {exc.start} is not UTF-8") from None
    if field:
        return json.dumps({field: text}, ensure_ascii=False).encode()
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{PUSH_ERROR} ({exc})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{PUSH_ERROR}, not a JSON {type(obj).__name__}")
    return payload


class ElasticsearchSink(Sink):
    def open(self) -> None:
        self.conn = _Connection(self.config)
        self.client = self.conn.open()

    def push(self, payload: bytes) -> str | None:
        c = self.config
        body = document(payload, c["elasticsearch-payload-field"])
        index, ident = c["elasticsearch-index"], c["elasticsearch-doc-id"] or None
        with self.conn.errors(f"index the document in {index}"):
            return self.client.index(index=index, id=ident, document=body,
                                     refresh=c["elasticsearch-refresh"] or None)["_id"]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        """One _bulk request (pushx -bulk); every document the server refused is reported. A document is one NDJSON
        line: raw line breaks, which valid JSON holds only as white space between tokens, become spaces."""
        c = self.config
        index, ident = c["elasticsearch-index"], c["elasticsearch-doc-id"] or None
        action = {"index": {"_index": index, **({"_id": ident} if ident else {})}}
        operations: list[object] = []
        for payload in payloads:  # refuse a bad payload before anything is sent
            body = document(payload, c["elasticsearch-payload-field"])
            operations += [action, body.replace(b"\n", b" ").replace(b"\r", b" ")]
        with self.conn.errors(f"index {len(payloads)} documents in {index}"):
            result = self.client.bulk(operations=operations, refresh=c["elasticsearch-refresh"] or None)
        items = [next(iter(item.values())) for item in result["items"]]
        failed = [f"#{n}: {_reason(item) or item.get('status')}" for n, item in enumerate(items)
                  if item.get("status", 500) >= 300]
        if failed:
            raise ProviderError(f"driver elasticsearch: {self.conn.where}: {len(failed)} of {len(items)} documents "
                                "were not indexed: " + "; ".join(failed[:5]) + (" …" if len(failed) > 5 else ""))
        return [item.get("_id") for item in items]

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
