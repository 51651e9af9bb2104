"""The CQL drivers' shared part (cassandra, scylla): options, and a `Database` adapter for the SQL engine.

procx/pushx run on drivers/sql/common.py's SqlSource/SqlSink (same statements, templates, params, rows JSON and
⚠ fixes as the SQL drivers) over `CqlDatabase`, which speaks the cassandra-driver API (scylla-driver has the same
`cassandra` package). Statements are prepared (once per text) and executed bound, at the chosen consistency;
placeholders `?` as in the original (gocql).

Bound values: params are text (and {{templates}} typed JSON values), so each value is converted to the type the
server gives for its bind marker, as gocql did for ints and uuids: text -> int, float, decimal, boolean (Go's
strconv.ParseBool words), uuid, timestamp (RFC 3339 or milliseconds), blob (the text's UTF-8 bytes), list/set/map
(JSON text); date, time and inet go as the text itself. An empty text binds null to a column that is not text or
blob. Payload bytes go as they are to a blob column and as UTF-8 text elsewhere.

Rows JSON (as gocql's values under Go's encoding/json): text as text, integers and doubles as numbers, floats with
float32 digits (1.1, not 1.100000023841858), decimal as text with its exact digits ("1.50"), uuid/timeuuid as text,
timestamp as RFC 3339 UTC, date as RFC 3339 at midnight UTC, time as nanoseconds, duration as
{"Days","Months","Nanoseconds"}, inet as text, blob as UTF-8 text (exact bytes through a -…-retrieve-field that
selects one; base64 inside a collection, as Go), list/set as arrays, map and user types as objects, tuples as arrays.

CQL has no transactions: nothing holds a row while the child runs (the retrieve query claims nothing, as the
original), and pushx's push_many runs one statement after the other.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import struct
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from core.errors import one_line
from core.options import Delivery, Option
from core.settings import Config
from core.template import go_json
from drivers.sql.common import (
    CONNECT_TIMEOUT,
    Database,
    Dialect,
    Result,
    connection_error,
    statement_options,
    validator,
)

CONSISTENCY_LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE",
                      "SERIAL", "LOCAL_SERIAL")
DEFAULT_PORT = 9042
PROTOCOL_VERSION = 4  # as the original (gocql ProtoVersion 4)
DIALECT = Dialect("qmark", "qmark", backslash_escapes=False)

_INTEGERS = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "counter"})
_TEXTS = frozenset({"text", "varchar", "ascii"})
_WRAPPERS = frozenset({"frozen", "org.apache.cassandra.db.marshal.ReversedType"})
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def cql_options(prefix: str) -> list[Option]:
    """Cluster and credentials, procx's retrieve/clear/fail statements and pushx's statement for `-<prefix>-…`."""
    return [
        Option(f"{prefix}-hosts", "list", help="comma-separated contact points, host or host:port (port 9042 by "
                                               "default; [v6addr]:port); spaces around them are ignored"),
        Option(f"{prefix}-user", help="user for password authentication (used when user or password is set)"),
        Option(f"{prefix}-password", help="password for password authentication", secret=True),
        Option(f"{prefix}-keyspace", help="keyspace of the session (default: none, qualify table names)"),
        Option(f"{prefix}-consistency", default="QUORUM", choices=CONSISTENCY_LEVELS,
               help="consistency level of the statements (default QUORUM)"),
        *statement_options(prefix, "CQL", "?"),
    ]


def parse_hosts(hosts: tuple[str, ...], option: str) -> list[tuple[str, int]]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address -> (host, port); ValueError names the option."""
    points = []
    for item in (h.strip() for h in hosts):
        if not item:
            continue
        host, port = item, str(DEFAULT_PORT)
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"-{option}: bad host {item!r} (expected [address]:port)")
                port = rest[1:]
        elif item.count(":") == 1:
            host, port = item.split(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"-{option}: bad host {item!r} (expected host or host:port, port 1-65535)")
        points.append((host, int(port)))
    return points


def cql_validator(prefix: str) -> Callable[[Config], None]:
    """The statement rules of the SQL family, plus at least one well-formed host."""
    statements = validator(prefix, DIALECT)

    def validate(config: Config) -> None:
        if not parse_hosts(config[f"{prefix}-hosts"], f"{prefix}-hosts"):
            raise ValueError(f"-{prefix}-hosts is required: at least one contact point (host or host:port)")
        statements(config)

    return validate


def delivery(tested: str, prefix: str) -> Delivery:
    return Delivery(
        "what the queries do: CQL has no transactions or row locks, the retrieve query claims nothing (as the "
        "original); run one worker, or claim rows in your own queries (e.g. a lightweight transaction "
        "UPDATE … IF owner = null)",
        hold="none (the row stays where it is until the clear or fail query changes it)",
        fail=f"-{prefix}-fail-query",
        dead_letter="none (a fail query can count attempts and move rows)",
        pushx="the statement acknowledged at -…-consistency",
        tested=tested,
    )


# ---------------------------------------------------------------------------------------------- bound values
class BindError(Exception):
    """A value that cannot be given to its bind marker's type."""


def _typename(ctype: object) -> str:
    return getattr(ctype, "typename", "")


def _subtype(ctype: object, index: int) -> object:
    subtypes = getattr(ctype, "subtypes", ()) or ()
    return subtypes[index] if index < len(subtypes) else None


def _unwrap(ctype: object) -> object:
    while _typename(ctype) in _WRAPPERS and _subtype(ctype, 0) is not None:
        ctype = _subtype(ctype, 0)
    return ctype


def _text(value: object) -> str:
    return value if isinstance(value, str) else go_json(value)


def bind_value(value: object, ctype: object, column: str) -> object:
    """One param/template value -> what cassandra-driver serialises for the marker's CQL type."""
    ctype = _unwrap(ctype)
    name = _typename(ctype)
    if value is None:
        return None
    if name == "blob":
        return value if isinstance(value, bytes) else _text(value).encode()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BindError(f"the payload is not UTF-8 text but column {column} is {name}: store binary payloads "
                            "in a blob column") from None
    if name in _TEXTS:
        return _text(value)
    if value == "" and name:
        return None
    try:
        if isinstance(value, bool) and name not in ("boolean", ""):
            raise ValueError(value)
        if name in _INTEGERS:
            return _integer(value)
        if name in ("float", "double"):
            return float(value)
        if name == "decimal":
            return Decimal(str(value))
        if name == "boolean":
            return _boolean(value)
        if name in ("uuid", "timeuuid"):
            return uuid.UUID(str(value))
        if name == "timestamp":
            return _timestamp(value)
        if name in ("list", "set", "map"):
            return _collection(value, ctype, name, column)
    except (ValueError, TypeError, InvalidOperation):
        raise BindError(f"column {column} is {name}: cannot use {_text(value)[:60]!r}") from None
    return value  # date, time, inet, duration, tuples, user types: the driver's own conversions


def _integer(value: object) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(value) if isinstance(value, int) else int(str(value).strip(), 10)


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(value)


def _timestamp(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # milliseconds since the epoch, as CQL
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _collection(value: object, ctype: object, name: str, column: str) -> object:
    items = json.loads(value) if isinstance(value, str) else value
    if name == "map":
        if not isinstance(items, Mapping):
            raise ValueError(value)
        return {bind_value(k, _subtype(ctype, 0), column): bind_value(v, _subtype(ctype, 1), column)
                for k, v in items.items()}
    if not isinstance(items, list):
        raise ValueError(value)
    converted = [bind_value(v, _subtype(ctype, 0), column) for v in items]
    return set(converted) if name == "set" else converted


# ---------------------------------------------------------------------------------------------- rows JSON
def _float32(value: float) -> float:
    """The shortest decimal that is the same float32: Go prints a float32 column's 1.1 as 1.1."""
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == value:
            return candidate
    return value


def json_value(value: object, ctype: object = None) -> object:
    """A value cassandra-driver returned -> what the rows JSON holds (go_json renders it as Go would)."""
    from cassandra import util

    ctype = _unwrap(ctype)
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    if isinstance(value, float):
        return _float32(value) if _typename(ctype) == "float" and value == value else value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, util.Date):
        try:
            day = value.date()
        except ValueError:  # beyond Python's years: the days since 1970 as CQL prints it
            return str(value)
        return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
    if isinstance(value, util.Time):
        return value.nanosecond_time  # gocql: time.Duration, a number of nanoseconds
    if isinstance(value, util.Duration):
        return {"Months": value.months, "Days": value.days, "Nanoseconds": value.nanoseconds}
    if isinstance(value, Mapping):
        return {_key(k): json_value(v, _subtype(ctype, 1)) for k, v in value.items()}
    if hasattr(value, "_fields"):  # a user type (named tuple)
        return {f: json_value(v, _subtype(ctype, i)) for i, (f, v) in enumerate(zip(value._fields, value,
                                                                                   strict=True))}
    if isinstance(value, tuple):
        return [json_value(v, _subtype(ctype, i)) for i, v in enumerate(value)]
    if isinstance(value, (list, set, frozenset, util.SortedSet)):
        return [json_value(v, _subtype(ctype, 0)) for v in value]
    return str(value)


def _key(key: object) -> str | int:
    value = json_value(key)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else _text(value)


# ---------------------------------------------------------------------------------------------- the adapter
class CqlDatabase(Database):
    """One cassandra-driver Cluster and Session for the SQL engine."""

    dialect = DIALECT

    def hosts(self) -> list[tuple[str, int]]:
        return parse_hosts(self.config[f"{self.prefix}-hosts"], f"{self.prefix}-hosts")

    def where(self) -> str:
        c, p = self.config, self.prefix
        points = ", ".join(f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h, port in self.hosts())
        detail = ", ".join(x for x in (f"keyspace {c[f'{p}-keyspace']}" if c[f"{p}-keyspace"] else "",
                                       f"user {c[f'{p}-user']}" if c[f"{p}-user"] else "") if x)
        return points + (f" ({detail})" if detail else "")

    def consistency(self) -> str:
        return self.config[f"{self.prefix}-consistency"] or "QUORUM"

    def load_balancing(self) -> object:
        """The host selection policy (the driver's default: token-aware over DC-aware round-robin)."""
        from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

        return TokenAwarePolicy(DCAwareRoundRobinPolicy())

    def cluster_args(self) -> dict[str, object]:
        from cassandra import ConsistencyLevel
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile
        from cassandra.query import tuple_factory

        c, p = self.config, self.prefix
        profile = ExecutionProfile(load_balancing_policy=self.load_balancing(), row_factory=tuple_factory,
                                   consistency_level=ConsistencyLevel.name_to_value[self.consistency()])
        args: dict[str, object] = {
            "contact_points": self.hosts(), "port": DEFAULT_PORT, "protocol_version": PROTOCOL_VERSION,
            "connect_timeout": CONNECT_TIMEOUT, "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
            "application_name": f"{c.side} ({c.driver})",
        }
        if c[f"{p}-user"] or c[f"{p}-password"]:
            args["auth_provider"] = PlainTextAuthProvider(c[f"{p}-user"], c[f"{p}-password"])
        return args

    def connect(self, autocommit: bool) -> None:
        from cassandra.cluster import Cluster

        self.prepared: dict[str, object] = {}
        try:
            self.cluster = Cluster(**self.cluster_args())
            self.session = self.cluster.connect(self.config[f"{self.prefix}-keyspace"] or None)
        except Exception as exc:
            if not self.is_database_error(exc):
                raise
            raise connection_error(self, exc) from exc

    def execute(self, sql: str, values: list) -> Result:
        prepared = self.prepared.get(sql)
        if prepared is None:
            prepared = self.prepared[sql] = self.session.prepare(sql)
        markers = prepared.column_metadata or []
        try:
            bound = prepared.bind([bind_value(v, m.type, m.name) for v, m in zip(values, markers, strict=True)])
        except (TypeError, ValueError) as exc:
            raise BindError(str(exc)) from exc
        result = self.session.execute(bound)
        columns = list(result.column_names or [])
        types = list(result.column_types or [None] * len(columns))
        rows = [[json_value(v, t) for v, t in zip(row, types, strict=True)] for row in result]
        return Result(columns, rows)

    def commit(self) -> None:
        """Nothing to commit: every CQL statement stands on its own."""

    def rollback(self) -> None:
        """Nothing to roll back."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            cluster.shutdown()

    def error_text(self, exc: BaseException) -> str:
        errors = getattr(exc, "errors", None)
        if isinstance(errors, Mapping) and errors:  # NoHostAvailable: the reason for each host
            reasons = "; ".join(f"{host}: {one_line(error)}" for host, error in errors.items())
            return one_line(f"{exc.args[0] if exc.args else type(exc).__name__} ({reasons})")
        return one_line(exc)

    def is_database_error(self, exc: BaseException) -> bool:
        from cassandra import DriverException
        from cassandra.cluster import NoHostAvailable
        from cassandra.protocol import ErrorMessage

        return isinstance(exc, (DriverException, NoHostAvailable, ErrorMessage, BindError))
