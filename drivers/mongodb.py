"""mongodb: documents matching a filter are the work (procx); pushx inserts a JSON document.

procx: find(-mongo-retrieve-query, -mongo-limit) in -mongo-database.-mongo-collection; no match is no work. The
payload is the JSON array of the documents (keys sorted, ObjectIds as hex text, dates as RFC 3339), or with
-mongo-payload-field that field of one document. After the child, -mongo-clear-query / -mongo-fail-query (a database
command in Extended JSON, its command name first) run on the database with `{{path}}` taking values from that array.

Fixes over the original (procx.md §4.23, §7.7 #42/#46; pushx.md §4.15, §6 #6/#26/#27):
- templates are bound as values, never spliced into the command text: the command is parsed first, then a template
  inside a JSON string fills that string, and a bare template (`{"n": {{0.n}}}`) becomes one typed value. A field
  holding `"}` or `{"$ne": 1}` stays a string; a selected object holding `$` keys (an operator) is refused.
- credentials are passed to the client apart from the address (never in a URI, so `@ : / %` in a password work and
  it appears in no error), and only when given: a server without authentication needs no user.
- the retrieve filter accepts Extended JSON too (`{"_id": {"$oid": "…"}}`).
- pushx stores JSON integers as integers (the original stored every number as a double).
Extensions: -mongo-payload-field (pushx stores the raw payload in one field, as text or binary; procx takes one
document and gives that field byte for byte); -mongo-lease-ttl:
each document is claimed atomically (findAndModify setting -mongo-lease-field to a token and an expiry, renewed
while the child runs), so two procx never take the same document and a dead procx's documents come back after the
TTL; the lease field is removed again after the clear/fail command. The expiry is the taking procx's clock (epoch
seconds): the hosts' clocks must agree to well within the TTL.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid

from core.errors import ProcxError, ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import JsonTemplate, go_json
from core.work import Sink, Source, Work
from drivers.common import ClientConnection, Keeper, Tls

TLS = Tls("mongo")
CONNECT_TIMEOUT = 5.0  # seconds to find the server (an unreachable one fails after this long)
SOCKET_TIMEOUT = 30.0
PUSH_ERROR = "driver mongodb: the payload must be a JSON object in UTF-8 (the document to insert)"


def _no_operators(value: object, key: str, flag: str) -> None:
    """Refuse a selected object holding `$` keys: MongoDB would read them as operators, not data."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            bad = next((k for k in node if k.startswith("$")), None)
            if bad is not None:
                raise ProviderError(f"driver mongodb: -{flag}: {{{{{key}}}}} selects an object with the key {bad!r}, "
                                    "which MongoDB would read as an operator: refused (templates insert data only)")
            stack += node.values()
        elif isinstance(node, list):
            stack += node


def extended(value: object) -> object:
    """Plain JSON data -> BSON-ready values, reading Extended JSON ({"$oid": …}, {"$date": …}); key order kept."""
    from bson import SON, json_util

    options = json_util.JSONOptions(document_class=SON)
    return json_util.loads(json.dumps(value), json_options=options)


# ---------------------------------------------------------------------------------------------- declaration
def _validate(config) -> None:
    if not config["mongo-host"]:
        raise ValueError("-mongo-host is required")
    if not 0 < config["mongo-port"] < 65536:
        raise ValueError("-mongo-port: must be 1-65535")
    if bool(config["mongo-user"]) != bool(config["mongo-password"]):
        raise ValueError("-mongo-user and -mongo-password go together (one of them is empty)")
    for name in ("mongo-database", "mongo-collection"):
        if not config[name].strip():
            raise ValueError(f"-{name} is required")
    if config["mongo-auth-source"] and not config["mongo-user"]:
        raise ValueError("-mongo-auth-source has no effect without -mongo-user")
    TLS.validate(config)
    if config.side == PUSHX:
        return
    query = config["mongo-retrieve-query"]
    if not isinstance(query, dict):
        raise ValueError("-mongo-retrieve-query: must be a JSON object (a find filter)")
    try:
        extended(query)
    except Exception as exc:
        raise ValueError(f"-mongo-retrieve-query: invalid Extended JSON ({one_line(exc)})") from None
    if config["mongo-limit"] < 0:
        raise ValueError("-mongo-limit: must be 0 (every match) or more")
    if config["mongo-payload-field"] and config["mongo-limit"] > 1:
        raise ValueError("-mongo-limit: with -mongo-payload-field each document is one job (use 0 or 1)")
    if config["mongo-lease-ttl"] < 0:
        raise ValueError("-mongo-lease-ttl: must not be negative")
    field = config["mongo-lease-field"]
    if config["mongo-lease-ttl"] and (not field or field.startswith("$") or "." in field):
        raise ValueError("-mongo-lease-field: a top-level field name (no '.' and no leading '$')")
    for phase in ("clear", "fail"):
        if config[f"mongo-{phase}-query"]:
            JsonTemplate(config[f"mongo-{phase}-query"], f"mongo-{phase}-query")


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
               help='find filter as JSON (Extended JSON accepted), e.g. {"status":"pending"}'),
        Option("mongo-limit", "int", sides=PROCX, group="retrieve",
               help="most documents taken per job (0: every matching document)"),
        Option("mongo-clear-query", sides=PROCX,
               help="database command (Extended JSON) run after success; {{0._id}} takes a retrieved value "
                    "(bound as a value, never spliced into the text)"),
        Option("mongo-fail-query", sides=PROCX,
               help="database command (Extended JSON) run after failure; {{0._id}} takes a retrieved value "
                    "(bound as a value, never spliced into the text)"),
        Option("mongo-payload-field", extension=True, group="retrieve",
               help="pushx stores the raw payload in this one field (text if UTF-8, else binary); procx takes one "
                    "document at a time and its payload is this field, byte for byte (empty: JSON documents)"),
        Option("mongo-lease-ttl", "duration", 0.0, sides=PROCX, group="retrieve", extension=True,
               help="claim each document atomically (findAndModify) for this long, renewed while the child runs: no "
                    "other procx takes it, a dead procx's documents come back after it (0: no claim)"),
        Option("mongo-lease-field", default="_procx_lease", sides=PROCX, group="retrieve", extension=True,
               advanced=True, help="field holding the claim (with -mongo-lease-ttl); removed after clear/fail"),
        *TLS.options(),
    ],
    source="drivers.mongodb:MongoSource",
    sink="drivers.mongodb:MongoSink",
    extra="mongodb",
    requires=("pymongo",),
    blocking=False,
    validate=_validate,
    delivery=Delivery(
        "at-least-once with a clear command that takes the documents out of the filter (delete, or update a status)",
        hold="with -mongo-lease-ttl: each document claimed by findAndModify (a lease field renewed while the child "
             "runs; a dead procx's documents come back after the TTL; a lease taken over stops the child); without it "
             "none: the documents stay matched, and two procx may take the same documents",
        fail="-mongo-fail-query (empty: the documents stay and are taken again; the lease is released at once)",
        pushx="insert acknowledged by the server (a new ObjectId unless the document has an _id)",
        tested="emulator: nx-27017 0.8.1 (MongoDB wire protocol on SQLite), pymongo 4.20; TLS through a test proxy "
               "in front of it; authentication not verified (the emulator has none)",
    ),
)


# ---------------------------------------------------------------------------------------------- client
class _Connection(ClientConnection):
    """One MongoClient for the settings, with errors translated (naming host:port, never the password)."""

    def __init__(self, config) -> None:
        super().__init__(config, f"{config['mongo-host']}:{config['mongo-port']}")
        self.keyfile = ""

    def open(self):
        import pymongo

        c = self.config
        kwargs: dict[str, object] = {
            "directConnection": True, "serverSelectionTimeoutMS": int(CONNECT_TIMEOUT * 1000),
            "connectTimeoutMS": int(CONNECT_TIMEOUT * 1000), "socketTimeoutMS": int(SOCKET_TIMEOUT * 1000),
            "appname": f"procx-tui {c.side}", "retryWrites": False,
        }
        if c["mongo-user"]:
            kwargs.update(username=c["mongo-user"], password=c["mongo-password"],
                          authSource=c["mongo-auth-source"] or c["mongo-database"].strip())
        if c[TLS.enable]:
            TLS.context(c)  # unreadable files are usage errors, before connecting
            kwargs["tls"] = True
            if c[TLS.insecure]:
                kwargs.update(tlsAllowInvalidCertificates=True, tlsAllowInvalidHostnames=True)
            if c[TLS.ca]:
                kwargs["tlsCAFile"] = c[TLS.ca]
            if c[TLS.cert]:
                kwargs["tlsCertificateKeyFile"] = self._certificate_key_file()
        try:
            with self.errors("connect"):
                self.client = pymongo.MongoClient(c["mongo-host"], c["mongo-port"], **kwargs)
                self.client.admin.command("ping")
        except ProcxError:
            raise
        except Exception as exc:  # e.g. a server that answers the login with something pymongo cannot read
            raise ProviderError(f"driver mongodb: {self.where}: cannot connect: "
                                f"{self.clean(one_line(repr(exc), 200))}") from None
        return self.client[c["mongo-database"].strip()]

    def _certificate_key_file(self) -> str:
        """pymongo wants the certificate and its key in one file: join them when the key is a file of its own."""
        cert, key = self.config[TLS.cert], self.config[TLS.key]
        if not key or key == cert:
            return cert
        fd, self.keyfile = tempfile.mkstemp(prefix="procx-mongo-", suffix=".pem")  # mode 0600
        with os.fdopen(fd, "wb") as out, open(cert, "rb") as c, open(key, "rb") as k:
            out.write(c.read().rstrip(b"\n") + b"\n" + k.read())
        return self.keyfile

    def secrets(self) -> tuple[str, ...]:
        return (self.config["mongo-password"],)

    def translate(self, exc: Exception, what: str) -> ProviderError | None:
        from pymongo import errors

        if isinstance(exc, errors.ServerSelectionTimeoutError | errors.ConnectionFailure):
            return ProviderError(f"driver mongodb: cannot reach {self.where}: {self.cause(str(exc))}")
        if isinstance(exc, errors.OperationFailure):
            if exc.code == 18:  # AuthenticationFailed
                return ProviderError(f"driver mongodb: authentication failed for user {self.config['mongo-user']!r} "
                                     f"at {self.where}")
            message = (exc.details or {}).get("errmsg") or str(exc)
            return ProviderError(f"driver mongodb: {self.where}: cannot {what}: {self.clean(message)}")
        if isinstance(exc, errors.PyMongoError | ValueError | TypeError):
            return ProviderError(f"driver mongodb: {self.where}: cannot {what}: {self.clean(one_line(exc))}")
        return None

    def close(self) -> None:
        super().close()
        if self.keyfile:
            with contextlib.suppress(OSError):
                os.unlink(self.keyfile)
            self.keyfile = ""


def _plain(value: object) -> object:
    """A BSON value -> what the payload's JSON holds (as the Go driver's documents marshal)."""
    from bson import Decimal128, ObjectId, Timestamp

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Timestamp):
        return {"I": value.inc, "T": value.time}
    if isinstance(value, Decimal128):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bytes)) or hasattr(value, "utcoffset"):
        return value
    return str(value)


class _Held:
    """Work.handle: the documents' ids, their JSON, and the lease token (None without a lease)."""

    __slots__ = ("ids", "document", "token", "keeper_token", "work")

    def __init__(self, ids: list, document: str, token: str | None) -> None:
        self.ids, self.document, self.token = ids, document, token
        self.keeper_token = 0
        self.work: Work | None = None


class MongoSource(Source):
    def open(self) -> None:
        c = self.config
        self.conn = _Connection(c)
        self.keeper = None
        self.db = self.conn.open()
        self.collection = self.db[c["mongo-collection"].strip()]
        self.filter = extended(c["mongo-retrieve-query"])
        self.commands = {phase: JsonTemplate(c[f"mongo-{phase}-query"], f"mongo-{phase}-query")
                         for phase in ("clear", "fail") if c[f"mongo-{phase}-query"]}
        self.ttl = c["mongo-lease-ttl"]
        self.field = c["mongo-lease-field"]
        if self.ttl:
            self.keeper = Keeper(self.ttl / 3, self._renew)

    def get(self, wait: float) -> Work | None:
        with self.conn.errors("find the work"):
            docs, token = self._take()
        if not docs:
            return None
        document = go_json([_plain(d) for d in docs])
        field = self.config["mongo-payload-field"]
        payload = _field_bytes(docs[0].get(field)) if field else document.encode()
        held = _Held([d["_id"] for d in docs], document, token)
        held.work = Work(payload, str(_plain(docs[0].get("_id"))), handle=held)
        if token is not None:
            held.keeper_token = self.keeper.hold(held)
        return held.work

    def _take(self) -> tuple[list[dict], str | None]:
        limit = 1 if self.config["mongo-payload-field"] else self.config["mongo-limit"]
        if not self.ttl:
            return list(self.collection.find(self.filter, limit=limit)), None
        from pymongo import ReturnDocument

        token = uuid.uuid4().hex
        docs: list[dict] = []
        while not limit or len(docs) < limit:
            now = time.time()
            free = {"$or": [{self.field: {"$exists": False}}, {f"{self.field}.until": {"$lt": now}}]}
            doc = self.collection.find_one_and_update(
                {"$and": [self.filter, free]}, {"$set": {self.field: {"token": token, "until": now + self.ttl}}},
                return_document=ReturnDocument.AFTER)
            if doc is None:
                break
            doc.pop(self.field, None)
            docs.append(doc)
        return docs, (token if docs else None)

    def _renew(self, held: _Held) -> None:
        """Extend the lease; a document no longer leased to us (it expired and another procx took it, or it was
        removed) is reported to procx, which stops the child (Work.lose)."""
        kept = self.collection.update_many({"_id": {"$in": held.ids}, f"{self.field}.token": held.token},
                                           {"$set": {f"{self.field}.until": time.time() + self.ttl}})
        if kept.matched_count < len(held.ids) and held.work is not None:
            held.work.lose(f"the lease on {held.work.id!r} expired or was taken over: another procx may have it")

    def clear(self, work: Work) -> None:
        self._finish(work, "clear")

    def fail(self, work: Work) -> None:
        self._finish(work, "fail")

    def _finish(self, work: Work, phase: str) -> None:
        held: _Held = work.handle
        flag = f"mongo-{phase}-query"
        if held.token is not None:
            self.keeper.release(held.keeper_token)
            with self.conn.errors(f"check the lease ({phase})"):
                mine = list(self.collection.find({"_id": {"$in": held.ids}, f"{self.field}.token": held.token},
                                                 {"_id": 1}))
            if len(mine) != len(held.ids):
                if phase == "fail" and work.lost:
                    return  # the documents are leased to another procx now, or removed: theirs to finish
                raise ProviderError(f"driver mongodb: lost the lease on {work.id!r} (it expired and another procx may "
                                    f"have taken it): not {phase}ed here")
        template = self.commands.get(phase)
        if template is not None:
            rendered = template.render(held.document, lambda value, key: _no_operators(value, key, flag))
            try:
                command = extended(rendered)
            except Exception as exc:
                raise ProviderError(f"driver mongodb: -{flag}: invalid Extended JSON after filling the templates "
                                    f"({one_line(exc)})") from None
            with self.conn.errors(f"run -{flag}"):
                self.db.command(command)
        if held.token is not None:
            with self.conn.errors(f"release the lease ({phase})"):
                self.collection.update_many({"_id": {"$in": held.ids}, f"{self.field}.token": held.token},
                                            {"$unset": {self.field: ""}})

    def depth(self) -> int:
        """Documents matching the retrieve filter (what KEDA's mongodb scaler counts; claimed ones included)."""
        with self.conn.errors("count the documents"):
            return int(self.collection.count_documents(self.filter))

    def close(self) -> None:
        if getattr(self, "keeper", None) is not None:
            self.keeper.close()
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()


def _field_bytes(value: object) -> bytes:
    """The payload held by -mongo-payload-field: text as UTF-8, binary as is, anything else as JSON."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return bytes(value)
    return go_json(_plain(value)).encode()


def document(payload: bytes) -> dict:
    """pushx's payload -> the document: the first JSON value (UTF-8), which must be an object; integers stay
    integers. Bytes that are not UTF-8 are refused (a JSON document cannot hold them)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{PUSH_ERROR}: byte {exc.start} is not UTF-8") from None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text.lstrip(" \t\r\n"))
    except ValueError as exc:
        raise UsageError(f"{PUSH_ERROR} ({exc})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{PUSH_ERROR}, not a JSON {type(obj).__name__}")
    return obj


def _raw(payload: bytes) -> object:
    """A payload for -mongo-payload-field: a string when it is UTF-8 text, else BSON binary (byte for byte)."""
    from bson import Binary

    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return Binary(payload)


class MongoSink(Sink):
    def open(self) -> None:
        self.conn = _Connection(self.config)
        self.collection = self.conn.open()[self.config["mongo-collection"].strip()]

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads) -> list[str | None]:
        field = self.config["mongo-payload-field"]
        docs = [{field: _raw(p)} for p in payloads] if field else [document(p) for p in payloads]
        try:
            with self.conn.errors("insert the document"):
                result = self.collection.insert_many(docs, ordered=True)
        except OverflowError:
            raise UsageError(f"{PUSH_ERROR}: an integer does not fit in 64 bits") from None
        return [str(_plain(i)) for i in result.inserted_ids]

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
