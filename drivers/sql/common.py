"""The SQL drivers' shared part (postgres as `psql`, cockroach, mysql, mssql), also serving the CQL drivers.

Option builders, cross-option validation, statement building (templates -> bound parameters), the rows JSON of
procx.md §3.2/§4.9, and the generic Source (procx) and Sink (pushx) over a small `Database` adapter that each
server implements (postgres.py, mysql.py, mssql.py; drivers/cql/common.py for cassandra and scylla). No client
library is imported here.

Statements
  * `{{…}}` templates in a clear/fail/pushx query become bound parameters (core.template.bind): a bare
    `{{0.id}}` is one typed parameter, a quoted literal holding templates (`'id-{{0.id}}'`) one string parameter.
    Nothing from the data is ever spliced into the SQL text.
  * Otherwise the Go drivers' placeholders ($1… for postgres/cockroach, ? for mysql) take the -…-params
    (core.template.translate_placeholders). A query holding templates and params at once is refused.
  * Param templating is the originals' (core.template.original_params) with ⚠ #42 fixed: a param with text
    around its template keeps that text and every template in it is filled (`id-{{0.id}}` -> `id-7`, not `7`).
  * A param that is exactly `{{procx_payload}}`/`{{pushx_payload}}` (or such a bare template in the query) is
    the raw payload bytes: bound as binary where the server expects binary (bytea, BLOB), so binary payloads
    round-trip byte for byte, and as UTF-8 text elsewhere.
  * Templated values live only in the statement being run: the options are never rewritten (⚠ #23).

Rows JSON (procx payload and template data)
  A list of `{column: value}` objects in Go encoding/json form (core.template.go_json): byte values (bytea,
  BLOB) as UTF-8 text, both for the payload and for -…-retrieve-field and templates (⚠ #43: the original used
  base64 there). A -…-retrieve-field that selects exactly one binary value gives its exact bytes.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Sequence

from core.errors import ProcxError, ProviderError, UsageError, one_line
from core.options import PROCX, PUSHX, Option
from core.settings import Config
from core.template import bind, fill, go_json, original_params, select, translate_placeholders
from core.work import Sink, Source, Work
from drivers.common import Keeper, query_options

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CONNECT_TIMEOUT = 10  # seconds
KEEPALIVE = 5.0  # seconds between the pings of a held transaction while the child runs

PAYLOAD_PARAMS = frozenset({"{{procx_payload}}", "{{pushx_payload}}"})
_WHOLE_TEMPLATE = re.compile(r"\{\{((?:(?!\{\{).)*?)\}\}", re.S)
# A document that is not JSON (no { or [): every field is missing, the payload keys give this text exactly.
_SENTINEL = "\x00procx-sql-payload\x00"
_ESCAPED = re.compile(r"\\(.)", re.S)


# ---------------------------------------------------------------------------------------------- declarations
def sql_options(prefix: str, port: int, placeholders: str) -> list[Option]:
    """Server and credentials, procx's retrieve/clear/fail statements and pushx's statement for `-<prefix>-…`."""
    return [
        Option(f"{prefix}-host", help="database server host name or address"),
        Option(f"{prefix}-port", "int", port, help="database server port"),
        Option(f"{prefix}-user", help="user to log in as"),
        Option(f"{prefix}-password", help="password of the user", secret=True),
        Option(f"{prefix}-database", help="database to connect to"),
        *statement_options(prefix, "SQL", placeholders, f"PUSHX_{prefix.upper()}_QUERY_PARAMS"),
    ]


def statement_options(prefix: str, language: str, placeholders: str, pushx_params_env: str = "") -> list[Option]:
    """procx's retrieve/clear/fail statements and pushx's statement (SQL or CQL) for `-<prefix>-…`.

    Names, kinds and defaults are the originals'; the statement help says how templates bind here, and pushx's
    query is required (the original exited 0 having written nothing, pushx.md §6 #9)."""
    ph = f"placeholders {placeholders}"
    bound = "{{0.col}} templates in it become bound parameters (never text), '…{{0.col}}…' one string parameter"
    params = ("comma-separated params: literals; {{0.col}} takes a retrieved value (text around it is kept); "
              "{{procx_payload}} the rows JSON (as bytes for a binary column)")
    better = {
        f"{prefix}-retrieve-field": "GJSON path into the rows JSON used as payload (default: all rows); one binary "
                                    "column value (0.payload) gives its exact bytes; empty result = no work",
        f"{prefix}-clear-query": f"{language} run after success (empty: nothing); {ph}, or {bound}",
        f"{prefix}-fail-query": f"{language} run after failure (empty: nothing); {ph}, or {bound}",
        f"{prefix}-clear-params": params,
        f"{prefix}-fail-params": params,
        f"{prefix}-query": f"{language} run once per payload; {ph}, or {{{{field}}}} templates of the JSON payload, "
                           "bound as parameters ({{pushx_payload}}: the payload itself)",
        f"{prefix}-params": "comma-separated params for the placeholders: literals; {{field}} takes a field of the "
                            "JSON payload (text around it is kept); {{pushx_payload}} the payload itself (its exact "
                            "bytes for a binary column). Given as a flag, it replaces the variable (the original "
                            "appended them)",
    }
    opts = query_options(prefix, language, placeholders, retrieve_required=True, pushx_params_env=pushx_params_env)
    for opt in opts:
        opt.help = better.get(opt.name, opt.help)
        if opt.name == f"{prefix}-query":
            opt.required = frozenset({PUSHX})
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


def transaction_options(prefix: str, locking_query: str = "SELECT … ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
                        ) -> list[Option]:
    """`-<prefix>-transaction` (ours): hold the retrieve query's transaction open until clear/fail, and
    `-<prefix>-transaction-keepalive`: how often it is pinged while the child runs.
    `locking_query`: how the server's SQL spells a retrieve query that locks one row and skips locked ones."""
    return [Option(
        f"{prefix}-transaction", "bool", sides=PROCX, extension=True, group="retrieve",
        help="at-least-once: run the retrieve query, then the clear or fail query, in one transaction kept open "
             f"while the child runs, committed after clear/fail. With a retrieve query like {locking_query} "
             "the row stays locked (skipped by other workers) until then, and if "
             "procx dies the server rolls back and the row is offered again at once. The child must not update "
             "those rows itself through another connection (it would wait for the lock). Without it every "
             "statement commits on its own and the retrieve query claims nothing (as the original)"),
        Option(f"{prefix}-transaction-keepalive", "duration", KEEPALIVE, sides=PROCX, extension=True,
               group="retrieve", advanced=True,
               help=f"with -{prefix}-transaction: ping the connection this often while the child runs (SELECT 1), "
                    "so an idle-in-transaction timeout does not end the transaction; a connection found dead "
                    "stops the child (its rows were released on the server). 0: no pings")]


# ---------------------------------------------------------------------------------------------- statements
def template_params(params: Sequence[str], document: bytes) -> list:
    """The originals' parameter templating with ⚠ #42 fixed (text around a template is kept).

    Literal -> itself (str); `{{path}}` -> the selected value as text; `{{procx_payload}}`/`{{pushx_payload}}`
    -> the raw document bytes; text with templates (`id-{{0.id}}`, `{{a}}-{{b}}`) -> the text, all filled.
    """
    values = original_params(list(params), document)
    for i, p in enumerate(params):
        if p in PAYLOAD_PARAMS:
            values[i] = bytes(document)
        elif "{{" in p and not _WHOLE_TEMPLATE.fullmatch(p):
            values[i] = fill(p, document)
    return values


class Dialect:
    """How a server spells parameters: the Go driver's placeholders and the Python client's paramstyle."""

    def __init__(self, source_style: str, target_style: str, backslash_escapes: bool) -> None:
        self.source_style = source_style
        self.target_style = target_style
        self.backslash_escapes = backslash_escapes

    def has_templates(self, query: str) -> bool:
        """Whether the query text holds {{templates}} (raises UsageError for an unterminated literal)."""
        return bool(bind(query, _SENTINEL, self.target_style, backslash_escapes=self.backslash_escapes)[1])

    def statement(self, query: str, params: Sequence[str], document: bytes) -> tuple[str, list]:
        """The SQL text in the client's paramstyle and its values, for one document (rows JSON or payload)."""
        sql, marks = bind(query, _SENTINEL, self.target_style, backslash_escapes=self.backslash_escapes)
        if marks:
            if params:
                raise UsageError("the query holds {{templates}} and params are set: use one or the other")
            sql, values = bind(query, document, self.target_style, backslash_escapes=self.backslash_escapes)
            return sql, [bytes(document) if mark == _SENTINEL else v for mark, v in zip(marks, values, strict=True)]
        return self.translate(query, template_params(params, document))

    def literal(self, query: str, params: Sequence[str]) -> tuple[str, list]:
        """The retrieve query: its params are literal and its text is not templated (as the original)."""
        return self.translate(query, list(params))

    def translate(self, query: str, values: list) -> tuple[str, list]:
        """The Go placeholders -> the client's paramstyle. Where backslashes escape (MySQL), an escaped quote
        becomes a doubled one first (same meaning), so that literals are found where the server finds them."""
        if self.backslash_escapes and "\\" in query:
            query = _ESCAPED.sub(lambda m: {"'": "''", '"': '""'}.get(m[1], m[0]), query)
        return translate_placeholders(query, values, self.source_style, self.target_style)


def validator(prefix: str, dialect: Dialect, *, pg_tls: bool = False) -> Callable[[Config], None]:
    """Cross-option rules, checked before connecting (ValueError -> exit 2)."""

    def check_statement(config: Config, query_opt: str, params_opt: str, *, literal: bool = False) -> None:
        query, params = config[query_opt], config[params_opt]
        if not query:
            return
        try:
            if literal:
                dialect.literal(query, params)
            elif dialect.has_templates(query):
                if params:
                    raise ValueError(f"-{query_opt} holds {{{{templates}}}} (bound as parameters) and "
                                     f"-{params_opt} is set too: use one or the other")
            else:
                dialect.translate(query, [""] * len(params))
        except UsageError as exc:
            raise ValueError(f"-{query_opt}: {exc}") from None

    def validate(config: Config) -> None:
        if config.side == PUSHX:
            check_statement(config, f"{prefix}-query", f"{prefix}-params")
        else:
            check_statement(config, f"{prefix}-retrieve-query", f"{prefix}-retrieve-params", literal=True)
            for phase in ("clear", "fail"):
                check_statement(config, f"{prefix}-{phase}-query", f"{prefix}-{phase}-params")
            if config.get(f"{prefix}-transaction-keepalive", 0) < 0:
                raise ValueError(f"-{prefix}-transaction-keepalive: must not be negative")
        if pg_tls:
            files = [f"{prefix}-tls-root-cert", f"{prefix}-tls-cert", f"{prefix}-tls-key"]
            for name in files:
                if config[name] and not os.path.isfile(config[name]):
                    raise ValueError(f"-{name}: no such file: {config[name]}")
            given = [f"-{n}" for n in files if config[n]]
            if given and config[f"{prefix}-ssl-mode"] == "disable":
                raise ValueError(f"{', '.join(given)} set but -{prefix}-ssl-mode is disable (no TLS): "
                                 "choose require, verify-ca or verify-full")
            if config[f"{prefix}-tls-cert"] and not config[f"{prefix}-tls-key"]:
                raise ValueError(f"-{prefix}-tls-cert needs -{prefix}-tls-key")

    return validate


# ---------------------------------------------------------------------------------------------- rows JSON
class Rows:
    """The retrieved rows: `records` ({column: value}, duplicate names: the last wins, as the original) and
    `json`, their rows JSON, where byte values are UTF-8 text. Each binary value also gets a random token, so
    that a retrieve-field that selects exactly one of them can give its exact bytes."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[object]],
                 convert: Callable[[object], object]) -> None:
        self.records: list[dict[str, object]] = []
        self.marks: list[dict[str, str]] = []
        self.blobs: dict[str, bytes] = {}
        nonce = os.urandom(8).hex()
        for row in rows:
            record: dict[str, object] = {}
            marks: dict[str, str] = {}
            for name, value in zip(columns, row, strict=True):
                value = convert(value)
                marks.pop(name, None)
                if isinstance(value, (bytes, bytearray, memoryview)):
                    raw = bytes(value)
                    marks[name] = token = f"\ue000{nonce}:{len(self.blobs)}\ue000"
                    self.blobs[token] = raw
                    value = raw.decode("utf-8", "replace")
                record[name] = value
            self.records.append(record)
            self.marks.append(marks)
        self.json = go_json(self.records)

    def payload(self, field: str) -> bytes:
        """The rows JSON, or the -…-retrieve-field selection from it (one binary value: its exact bytes)."""
        if not field:
            return self.json.encode()
        if self.blobs:
            picked = select(go_json([{**r, **m} for r, m in zip(self.records, self.marks, strict=True)]), field)
            if picked in self.blobs:
                return self.blobs[picked]
        return select(self.json, field).encode()


# ---------------------------------------------------------------------------------------------- adapters
class Result:
    __slots__ = ("columns", "rows", "ident")

    def __init__(self, columns: list[str], rows: list, ident: str | None = None) -> None:
        self.columns = columns
        self.rows = rows
        self.ident = ident

    @classmethod
    def selected(cls, columns: list[str], rows: list) -> Result:
        """Rows a statement returned; the ident is the first value of the first row, as text (None if null)."""
        return cls(columns, rows, None if not rows or rows[0][0] is None else str(rows[0][0]))


class Database:
    """One connection to a SQL server; implemented per client library (postgres.py, mysql.py, mssql.py; the CQL
    drivers' adapter too). `connect` sets `conn`, the client library's connection."""

    dialect: Dialect
    conn: object
    default_host = "the default host"  # what the client connects to when -…-host is empty

    def __init__(self, config: Config, prefix: str) -> None:
        self.config = config
        self.prefix = prefix

    # what the server is called in messages (never the password)
    def where(self) -> str:
        host = self.config[f"{self.prefix}-host"] or self.default_host
        user = self.config[f"{self.prefix}-user"]
        database = self.config[f"{self.prefix}-database"]
        detail = ", ".join(x for x in (f"database {database}" if database else "", f"user {user}" if user else "")
                           if x)
        return f"{host}:{self.config[f'{self.prefix}-port']}" + (f" ({detail})" if detail else "")

    def connect(self, autocommit: bool) -> None:
        raise NotImplementedError

    def execute(self, sql: str, values: list) -> Result:
        raise NotImplementedError

    def commit(self) -> None:  # DB-API connections; the CQL adapter overrides them
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Several statements committed together (the connection is in autocommit mode otherwise)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def convert(self, value: object) -> object:
        """A column value -> what the rows JSON holds (bytes stay bytes: shown as text)."""
        return value

    def error_text(self, exc: BaseException) -> str:
        return one_line(str(exc))

    def is_database_error(self, exc: BaseException) -> bool:
        """Whether the exception comes from the client library (else it is a bug: let it through)."""
        raise NotImplementedError



def scrub(text: str, config: Config) -> str:
    for secret in config.secrets():
        if len(secret) >= 4:  # a shorter one would mask ordinary words
            text = text.replace(secret, "********")
    return text


def connection_error(db: Database, exc: BaseException) -> ProviderError:
    reason = scrub(db.error_text(exc), db.config)
    return ProviderError(f"driver {db.config.driver}: cannot connect to {db.where()}: {reason}")


def statement_error(db: Database, option: str, exc: BaseException) -> ProviderError:
    reason = scrub(db.error_text(exc), db.config)
    return ProviderError(f"driver {db.config.driver}: -{option} failed on {db.where()}: {reason}")


# ---------------------------------------------------------------------------------------------- procx / pushx
class Item:
    """Work.handle of a SQL item: the rows JSON (template data) and which transaction holds the rows."""

    __slots__ = ("document", "transaction", "keeper_token")

    def __init__(self, document: bytes, transaction: int) -> None:
        self.document = document
        self.transaction = transaction
        self.keeper_token = 0


class SqlSource(Source):
    """procx: the retrieve query's rows are the work; clear/fail queries run with params from those rows."""

    prefix = ""
    database: type[Database] = Database

    def open(self) -> None:
        self.db = self.database(self.config, self.prefix)
        self.held = bool(self.config.get(f"{self.prefix}-transaction"))  # CQL has no transactions
        self.open_transaction = 0  # the transaction (count) still open on the connection, 0: none
        self.count = 0
        self.lock = threading.Lock()  # the connection: the keep-alive pings it while the child runs
        every = self.config.get(f"{self.prefix}-transaction-keepalive", 0) if self.held else 0
        self.keeper = Keeper(every, self._ping) if every else None
        self.db.connect(autocommit=not self.held)

    def get(self, wait: float) -> Work | None:
        p = self.prefix
        if self.open_transaction:  # an item nobody finished: release its rows
            self._rollback()
        sql, values = self.db.dialect.literal(self.config[f"{p}-retrieve-query"], self.config[f"{p}-retrieve-params"])
        try:
            result = self.db.execute(sql, values)
        except Exception as exc:
            if not self.db.is_database_error(exc):
                raise
            if self.held:
                self._rollback()
            raise statement_error(self.db, f"{p}-retrieve-query", exc) from exc
        self.count += 1
        if self.held:
            self.open_transaction = self.count
        if not result.rows:
            self._release()
            return None
        rows = Rows(result.columns, result.rows, self.db.convert)
        data = rows.payload(self.config[f"{p}-retrieve-field"])
        if not data:  # an empty selection is no work (as the original); the row stays where it is
            self._release()
            return None
        ident = rows.records[0].get("id")
        return Work(data, None if ident is None else str(ident),
                    handle=Item(rows.json.encode(), self.count if self.held else 0))

    def keep(self, work: Work) -> None:
        """While the child runs, ping the connection that holds the rows' transaction (so that an
        idle-in-transaction timeout does not end it); a connection found dead released the rows on the server,
        where another procx may take them: the work is lost (Work.lose) and procx stops the child."""
        if self.keeper is not None:
            work.handle.keeper_token = self.keeper.hold(work)

    def _ping(self, work: Work) -> None:
        with self.lock:
            if work.handle.transaction != self.open_transaction or work.done:
                return
            try:
                self.db.execute("SELECT 1", [])
            except Exception as exc:
                if not self.db.is_database_error(exc):
                    raise
                self.open_transaction = 0
                work.lose(f"the connection holding the transaction of work {work.id} was lost "
                          f"({scrub(self.db.error_text(exc), self.config)}): its rows were released on the server")

    def clear(self, work: Work) -> None:
        self._finish(work, "clear")

    def fail(self, work: Work) -> None:
        self._finish(work, "fail")

    def _finish(self, work: Work, phase: str) -> None:
        if self.keeper is not None:
            self.keeper.release(work.handle.keeper_token)
        with self.lock:
            self._settle(work, phase)

    def _settle(self, work: Work, phase: str) -> None:
        p, item = self.prefix, work.handle
        if self.held and work.lost and phase == "fail":
            return  # the server rolled the transaction back: the rows are free again, nothing to give back
        if self.held and (not item.transaction or item.transaction != self.open_transaction):
            raise ProviderError(f"driver {self.config.driver}: cannot {phase} work {work.id}: its transaction has "
                                "ended (connection lost?); its rows were released and will be offered again")
        query = self.config[f"{p}-{phase}-query"]
        option = f"{p}-{phase}-query"
        try:
            if query:
                sql, values = self.db.dialect.statement(query, self.config[f"{p}-{phase}-params"], item.document)
                self.db.execute(sql, values)
            if self.held:
                option = f"{p}-transaction (commit after {phase})"
                self.db.commit()
                self.open_transaction = 0
        except ProcxError:
            self._release()
            raise
        except Exception as exc:
            if not self.db.is_database_error(exc):
                raise
            self._release()
            raise statement_error(self.db, option, exc) from exc

    def scale_depth(self, query: str) -> int:
        """The answer of a count query (the first column of its first row): what KEDA's SQL scalers read."""
        sql, values = self.db.dialect.literal(query, ())
        try:
            result = self.db.execute(sql, values)
            if self.held:
                self._rollback()
        except Exception as exc:
            if not self.db.is_database_error(exc):
                raise
            reason = scrub(self.db.error_text(exc), self.config)
            raise ProviderError(f"driver {self.config.driver}: the scale query failed on {self.db.where()}: "
                                f"{reason}") from exc
        try:
            return int(result.rows[0][0])
        except (IndexError, TypeError, ValueError):
            raise ProviderError(f"driver {self.config.driver}: the scale query must return one number (SELECT "
                                "count(*) ...)") from None

    def _release(self) -> None:
        if self.open_transaction:
            self._rollback()

    def _rollback(self) -> None:
        self.open_transaction = 0
        try:
            self.db.rollback()
        except Exception as exc:  # a lost connection rolls back on the server anyway
            if not self.db.is_database_error(exc):
                raise

    def close(self) -> None:
        keeper = getattr(self, "keeper", None)
        if keeper is not None:
            keeper.close()
        db = getattr(self, "db", None)
        if db is not None:
            with contextlib.suppress(Exception):  # close must not raise; the server rolls back what is open
                db.close()


class SqlSink(Sink):
    """pushx: one statement per payload, its {{templates}}/params filled from the payload."""

    prefix = ""
    database: type[Database] = Database

    def open(self) -> None:
        self.db = self.database(self.config, self.prefix)
        self.db.connect(autocommit=True)

    def _run(self, data: bytes) -> str | None:
        p = self.prefix
        sql, values = self.db.dialect.statement(self.config[f"{p}-query"], self.config[f"{p}-params"], data)
        try:
            return self.db.execute(sql, values).ident
        except Exception as exc:
            if not self.db.is_database_error(exc):
                raise
            raise statement_error(self.db, f"{p}-query", exc) from exc

    def push(self, payload: bytes) -> str | None:
        return self._run(payload)

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        try:
            with self.db.batch():
                return [self._run(data) for data in payloads]
        except ProcxError:
            raise
        except Exception as exc:
            if not self.db.is_database_error(exc):
                raise
            raise statement_error(self.db, f"{self.prefix}-query (commit)", exc) from exc

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            with contextlib.suppress(Exception):  # close must not raise
                db.close()


def sides(prefix: str, database: type[Database], name: str) -> tuple[type[SqlSource], type[SqlSink]]:
    """The procx and pushx classes of a driver on this engine (`NameSource`, `NameSink`): its option prefix and its
    database adapter are all that differ."""
    attrs = {"prefix": prefix, "database": database, "__module__": database.__module__}
    return type(f"{name}Source", (SqlSource,), attrs), type(f"{name}Sink", (SqlSink,), attrs)
