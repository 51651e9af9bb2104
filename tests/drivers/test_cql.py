"""cassandra and scylla: everything up to the CQL server, with a fake Session; nothing against a server.

No CQL server (nor an emulator of one) runs here. The `fake` tests keep cassandra-driver's real Cluster (contact
points, authentication, execution profile), PreparedStatement/BoundStatement and type codecs, and replace only
Cluster.connect with a recording Session: it prepares statements with bind-marker types given by the test, decodes
the bound values with the real codecs, and answers with result rows built by the real codecs. So the tests show what
the drivers hand to cassandra-driver and what they make of its results, not how a server executes the statements.
mockylla (an in-process mock) is not used: it requires scylla-driver, which would replace cassandra-driver's
`cassandra` package. The unreachable-host tests use the real driver over the network.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections import namedtuple
from decimal import Decimal
from pathlib import Path

import pytest

from core import api
from tests.drivers.conftest import free_port
from tests.drivers.sql_cases import refused, stderr_text
from tests.support import clean_env, run

DRIVERS = ("cassandra", "scylla")


def casstype(name: str) -> object:
    from cassandra.cqltypes import lookup_casstype

    return lookup_casstype(name)


# ---------------------------------------------------------------------------------------------- the fake
class World:
    """What the fake Session knows (marker types and result rows per statement) and what it was handed."""

    def __init__(self) -> None:
        self.markers: dict[str, list[tuple[str, str]]] = {}  # statement text -> [(column, casstype)] per `?`
        self.results: list[tuple[list[tuple[str, str]], list[tuple]]] = []  # answers to SELECTs, in order
        self.fail_on = ""
        self.log: list[tuple] = []
        self.cluster = None
        self.keyspace = None

    def executed(self) -> list[tuple[str, list]]:
        return [(e[1], e[2]) for e in self.log if e[0] == "execute"]

    def rows(self, columns: list[tuple[str, str]], *rows: tuple) -> None:
        """Queue a result: values go through the real codecs, so they come back as the driver gives them."""
        types = [casstype(t) for _, t in columns]
        decoded = [tuple(None if v is None else t.from_binary(t.to_binary(v, 4), 4)
                         for v, t in zip(row, types, strict=True)) for row in rows]
        self.results.append((columns, decoded))


class FakeResult:
    def __init__(self, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
        self.column_names = [c for c, _ in columns]
        self.column_types = [casstype(t) for _, t in columns]
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)


class FakeSession:
    def __init__(self, world: World) -> None:
        self.world = world

    def prepare(self, query: str):
        from cassandra.protocol import ColumnMetadata
        from cassandra.query import PreparedStatement

        self.world.log.append(("prepare", query))
        markers = self.world.markers.get(query, [(f"p{i}", "UTF8Type") for i in range(query.count("?"))])
        meta = [ColumnMetadata("ks", "t", name, casstype(t)) for name, t in markers]
        return PreparedStatement(meta, b"\x01", None, query, self.world.keyspace, 4, [], None)

    def execute(self, bound) -> FakeResult:
        from cassandra import InvalidRequest

        prepared = bound.prepared_statement
        values = [None if raw is None else m.type.from_binary(raw, 4)
                  for raw, m in zip(bound.values, prepared.column_metadata, strict=True)]
        query = prepared.query_string
        self.world.log.append(("execute", query, values))
        if self.world.fail_on and self.world.fail_on in query:
            raise InvalidRequest('Error from server: code=2200 [Invalid query] message="unconfigured table nope"')
        if query.lstrip().upper().startswith("SELECT") and self.world.results:
            return FakeResult(*self.world.results.pop(0))
        return FakeResult([], [])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    """Cluster.connect returns a FakeSession over a World; everything else is cassandra-driver's."""
    from cassandra.cluster import Cluster

    w = World()

    def connect(cluster, keyspace=None, wait_for_all_pools=False):
        w.cluster, w.keyspace = cluster, keyspace
        w.log.append(("connect", keyspace))
        return FakeSession(w)

    monkeypatch.setattr(Cluster, "connect", connect)
    return w


def args(driver: str, *extra: str) -> list[str]:
    return ["-driver", driver, f"-{driver}-hosts", "localhost", *extra]


# ---------------------------------------------------------------------------------------------- cluster
@pytest.mark.parametrize("driver", DRIVERS)
def test_fake_cluster_configuration(world: World, driver: str) -> None:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    world.rows([("id", "Int32Type")], (1,))
    assert api.procx(["-driver", driver, f"-{driver}-hosts", " localhost , 127.0.0.1:9043,,[::1]:9044",
                      f"-{driver}-user", "worker", f"-{driver}-password", "pw-s3cret", f"-{driver}-keyspace", "jobs",
                      f"-{driver}-consistency", "local_one", f"-{driver}-retrieve-query", "SELECT id FROM q"]) == \
        b'[{"id":1}]'
    cluster = world.cluster
    assert cluster.contact_points == [("localhost", 9042), ("127.0.0.1", 9043), ("::1", 9044)]
    assert (cluster.protocol_version, cluster.connect_timeout) == (4, 10)
    assert (cluster.auth_provider.username, cluster.auth_provider.password) == ("worker", "pw-s3cret")
    assert world.keyspace == "jobs"
    profile = cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert profile.consistency_level == ConsistencyLevel.LOCAL_ONE
    assert profile.row_factory is tuple_factory
    assert world.log[-1] == ("execute", "SELECT id FROM q", [])


@pytest.mark.parametrize("driver", DRIVERS)
def test_fake_defaults_quorum_no_auth_no_keyspace(world: World, driver: str) -> None:
    from cassandra import ConsistencyLevel

    api.procx(args(driver, f"-{driver}-retrieve-query", "SELECT id FROM ks.q"))
    cluster = world.cluster
    assert cluster.auth_provider is None and world.keyspace is None
    assert cluster.profile_manager.default.consistency_level == ConsistencyLevel.QUORUM


def test_fake_password_alone_turns_authentication_on(world: World) -> None:
    api.procx(args("cassandra", "-cassandra-password", "pw-s3cret", "-cassandra-retrieve-query", "SELECT 1"))
    assert (world.cluster.auth_provider.username, world.cluster.auth_provider.password) == ("", "pw-s3cret")


def test_fake_host_selection_policies(world: World) -> None:
    from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy, TokenAwarePolicy

    def policy(driver: str, *extra: str):
        api.procx(args(driver, f"-{driver}-retrieve-query", "SELECT 1", *extra))
        return world.cluster.profile_manager.default.load_balancing_policy

    for lbp, child in ((policy("cassandra"), DCAwareRoundRobinPolicy), (policy("scylla"), RoundRobinPolicy)):
        assert isinstance(lbp, TokenAwarePolicy) and type(lbp._child_policy) is child
    lbp = policy("scylla", "-scylla-local-dc", "dc2")
    assert isinstance(lbp._child_policy, DCAwareRoundRobinPolicy) and lbp._child_policy.local_dc == "dc2"


def test_fake_scylla_local_dc_uses_local_quorum_unless_a_consistency_is_given(world: World) -> None:
    """⚠ The original replaced even an explicit -scylla-consistency by LOCAL_QUORUM."""
    from cassandra import ConsistencyLevel

    def consistency(*extra: str) -> int:
        api.procx(args("scylla", "-scylla-retrieve-query", "SELECT 1", "-scylla-local-dc", "dc2", *extra))
        return world.cluster.profile_manager.default.consistency_level

    assert consistency() == ConsistencyLevel.LOCAL_QUORUM
    assert consistency("-scylla-consistency", "ONE") == ConsistencyLevel.ONE
    env = clean_env(PROCX_SCYLLA_CONSISTENCY="LOCAL_ONE")
    api.procx(args("scylla", "-scylla-retrieve-query", "SELECT 1", "-scylla-local-dc", "dc2"), environ=env)
    assert world.cluster.profile_manager.default.consistency_level == ConsistencyLevel.LOCAL_ONE


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(("extra", "message"), [
    (("-{d}-consistency", "MOST"), "-{d}-consistency"),  # ⚠ #40: the original panicked
    (("-{d}-hosts", "db:notaport"), "-{d}-hosts: bad host 'db:notaport'"),
    (("-{d}-hosts", "db:70000"), "-{d}-hosts: bad host 'db:70000'"),
    (("-{d}-hosts", " , "), "-{d}-hosts is required"),
    (("-{d}-retrieve-params", "1"), "not used by any placeholder"),
    (("-{d}-clear-query", "DELETE FROM q WHERE id = {{0.id}} AND x = ?", "-{d}-clear-params", "a"),
     "holds {{templates}}"),
])
def test_bad_settings_are_usage_errors(driver: str, extra: tuple[str, ...], message: str) -> None:
    extra = tuple(e.replace("{d}", driver) for e in extra)
    done = run("procx", *args(driver, f"-{driver}-retrieve-query", "SELECT 1", *extra), env=clean_env())
    assert done.returncode == 2, stderr_text(done)
    assert message.replace("{d}", driver) in stderr_text(done)


@pytest.mark.parametrize("driver", DRIVERS)
def test_required_queries_are_usage_errors(driver: str) -> None:
    done = run("procx", *args(driver), env=clean_env())
    assert done.returncode == 2 and f"-{driver}-retrieve-query" in stderr_text(done)
    done = run("pushx", *args(driver), input=b"lost?", env=clean_env())
    assert done.returncode == 2 and f"-{driver}-query (PUSHX_{driver.upper()}_QUERY) is required" in stderr_text(done)


@pytest.mark.parametrize("driver", DRIVERS)
def test_unreachable_hosts_are_one_line_exit_69_without_the_secret(driver: str) -> None:
    """The real driver (no fake): nothing listens on the port."""
    port = free_port()
    done = run("pushx", "-driver", driver, f"-{driver}-hosts", f"127.0.0.1:{port}", f"-{driver}-user", "u",
               f"-{driver}-password", "pw-s3cret", f"-{driver}-query", "INSERT INTO q (a) VALUES (?)",
               f"-{driver}-params", "x", "-in", "x", env=clean_env())
    assert done.returncode == 69, stderr_text(done)
    lines = stderr_text(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"driver {driver}: cannot connect to 127.0.0.1:{port} (user u)" in lines[0]
    assert "Connection refused" in lines[0]
    assert "s3cret" not in stderr_text(done)


def test_fake_authentication_failure_is_scrubbed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import Cluster, NoHostAvailable

    def connect(cluster, keyspace=None, wait_for_all_pools=False):
        raise NoHostAvailable("Unable to connect to any servers", {
            "127.0.0.1:9042": AuthenticationFailed("Failed to authenticate: bad credentials u/pw-s3cret")})

    monkeypatch.setattr(Cluster, "connect", connect)
    exc = refused(api.procx, args("cassandra", "-cassandra-user", "u", "-cassandra-password", "pw-s3cret",
                                  "-cassandra-retrieve-query", "SELECT 1"))
    assert exc.exit_code == 69
    assert str(exc) == ("driver cassandra: cannot connect to localhost:9042 (user u): Unable to connect to any "
                        "servers (127.0.0.1:9042: Failed to authenticate: bad credentials u/********)")


# ---------------------------------------------------------------------------------------------- procx
JOBS = [("id", "Int32Type"), ("name", "UTF8Type"), ("work", "UTF8Type")]


@pytest.fixture
def jobs(world: World) -> World:
    world.rows(JOBS, (7, "a<b", "do it"), (8, "c", "more"))
    return world


@pytest.mark.parametrize("driver", DRIVERS)
def test_fake_retrieve_binds_params_by_marker_type(world: World, driver: str) -> None:
    query = "SELECT id, name FROM q WHERE kind = ? AND id > ? LIMIT 1"
    world.markers[query] = [("kind", "UTF8Type"), ("id", "Int32Type")]
    world.rows(JOBS[:2], (3, "x"))
    assert api.procx(args(driver, f"-{driver}-retrieve-query", query, f"-{driver}-retrieve-params", "alpha,1")) == \
        b'[{"id":3,"name":"x"}]'
    assert world.executed() == [(query, ["alpha", 1])]


def test_fake_rows_json_is_the_go_encoding(jobs: World) -> None:
    expected = b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'
    assert api.procx(args("cassandra", "-cassandra-retrieve-query", "SELECT * FROM q")) == expected


def test_fake_column_types_as_go_renders_them(world: World) -> None:
    from cassandra import util

    columns = [("u", "UUIDType"), ("tu", "TimeUUIDType"), ("ts", "TimestampType"), ("dec", "DecimalType"),
               ("dec2", "DecimalType"), ("b", "BytesType"), ("f", "FloatType"), ("d", "DoubleType"),
               ("big", "LongType"), ("vi", "IntegerType"), ("ok", "BooleanType"), ("day", "SimpleDateType"),
               ("tod", "TimeType"), ("dur", "DurationType"), ("ip", "InetAddressType"),
               ("fl", "ListType(FloatType)"), ("tags", "SetType(UTF8Type)"), ("m", "MapType(UTF8Type,Int32Type)"),
               ("mb", "MapType(Int32Type,BytesType)"), ("tup", "TupleType(Int32Type,UTF8Type)"), ("nul", "UTF8Type")]
    u = uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    world.rows(columns, (u, u, datetime.datetime(2024, 1, 2, 3, 4, 5, 500000), Decimal("1.50"), Decimal("1E+3"),
                         b"zaz\xc3\xb3\xc5\x82\xc4\x87", 1.1, 1.1, 2**62, 2**70, True, "2024-01-02", "01:02:03.5",
                         util.Duration(1, 2, 3), "10.0.0.1", [1.1, 2.5], {"b", "a"}, {"x": 1}, {1: b"\x00\xff"},
                         (1, "x"), None))
    got = json.loads(api.procx(args("cassandra", "-cassandra-retrieve-query", "SELECT * FROM q")))
    assert got == [{
        "u": str(u), "tu": str(u), "ts": "2024-01-02T03:04:05.5Z", "dec": "1.50", "dec2": "1000", "b": "zazółć",
        "f": 1.1, "d": 1.1, "big": 2**62, "vi": 2**70, "ok": True, "day": "2024-01-02T00:00:00Z",
        "tod": 3723500000000, "dur": {"Months": 1, "Days": 2, "Nanoseconds": 3}, "ip": "10.0.0.1",
        "fl": [1.1, 2.5], "tags": ["a", "b"], "m": {"x": 1}, "mb": {"1": "AP8="}, "tup": [1, "x"], "nul": None}]


def test_fake_user_types_are_objects() -> None:
    from drivers.cql.common import json_value

    address = namedtuple("address", "city zip")
    assert json_value(address("Anytown", 12345)) == {"city": "Anytown", "zip": 12345}


@pytest.mark.parametrize(("field", "payload"), [
    ("0.work", b"do it"), ("1.id", b"8"), ("#.id", b"[7,8]"), ("#(id==8).work", b"more"), ("5.id", None),
])
def test_fake_retrieve_field_selects_like_the_reference(jobs: World, field: str, payload: bytes | None) -> None:
    assert api.procx(args("scylla", "-scylla-retrieve-query", "SELECT * FROM q", "-scylla-retrieve-field",
                          field)) == payload


def test_fake_blob_selected_by_retrieve_field_is_exact_bytes(world: World) -> None:
    data = bytes(range(256))
    world.rows([("id", "Int32Type"), ("payload", "BytesType")], (1, data))
    assert api.procx(args("cassandra", "-cassandra-retrieve-query", "SELECT id, payload FROM q LIMIT 1",
                          "-cassandra-retrieve-field", "0.payload")) == data


def test_fake_no_rows_is_no_work_and_nothing_is_cleared(world: World, tmp_path: Path) -> None:
    world.rows(JOBS)
    assert api.procx(args("cassandra", "-cassandra-retrieve-query", "SELECT * FROM q",
                          "-cassandra-clear-query", "DELETE FROM q WHERE id = ?", "-cassandra-clear-params",
                          "{{0.id}}")) is None
    assert [e[0] for e in world.log] == ["connect", "prepare", "execute"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_fake_clear_after_success_binds_typed_values(jobs: World, driver: str) -> None:
    """⚠ #42: text around a template is kept (`id-{{0.id}}` -> `id-7`); "7" goes to an int column as 7."""
    clear = "UPDATE q SET note = ?, done = ? WHERE id = ? AND owner = ?"
    jobs.markers[clear] = [("note", "UTF8Type"), ("done", "BooleanType"), ("id", "Int32Type"), ("owner", "UUIDType")]
    owner = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    api.procx(args(driver, f"-{driver}-retrieve-query", "SELECT * FROM q", f"-{driver}-clear-query", clear,
                   f"-{driver}-clear-params", f"id-{{{{0.id}}}}/{{{{0.name}}}},true,{{{{0.id}}}},{owner}",
                   f"-{driver}-fail-query", "UPDATE q SET failed = true WHERE id = ?",
                   f"-{driver}-fail-params", "{{0.id}}"))
    assert jobs.executed()[1:] == [(clear, ["id-7/a<b", True, 7, uuid.UUID(owner)])]


def test_fake_fail_after_failure_with_templates_in_the_query(jobs: World) -> None:
    fail = "UPDATE q SET note = 'failed: {{0.name}}', attempts = {{0.id}} WHERE id = {{0.id}}"
    bound = "UPDATE q SET note = ?, attempts = ? WHERE id = ?"
    jobs.markers[bound] = [("note", "UTF8Type"), ("attempts", "LongType"), ("id", "Int32Type")]
    with pytest.raises(RuntimeError), api.work(args("cassandra", "-cassandra-retrieve-query", "SELECT * FROM q",
                                                    "-cassandra-clear-query", "DELETE FROM q WHERE id = 0",
                                                    "-cassandra-fail-query", fail)):
        raise RuntimeError("the child failed")
    assert jobs.executed()[1:] == [(bound, ["failed: a<b", 7, 7])]


def test_fake_params_never_leak_between_items(world: World) -> None:
    """⚠ #23: the original overwrote the clear params with the first item's values."""
    for n in (1, 2, 3):
        world.rows([("id", "Int32Type")], (n,))
    clear = "UPDATE q SET done = true WHERE id = ?"
    world.markers[clear] = [("id", "Int32Type")]
    seen = []
    for work in api.consume(args("cassandra", "-cassandra-retrieve-query", "SELECT id FROM q LIMIT 1",
                                 "-cassandra-retrieve-field", "0.id", "-cassandra-clear-query", clear,
                                 "-cassandra-clear-params", "{{0.id}}")):
        seen.append(work.payload)
        work.clear()
    assert seen == [b"1", b"2", b"3"]
    assert [v for q, v in world.executed() if q == clear] == [[1], [2], [3]]
    assert [e for e in world.log if e[0] == "prepare"].count(("prepare", clear)) == 1  # prepared once


def test_fake_server_error_on_clear_is_exit_69(jobs: World) -> None:
    jobs.fail_on = "nope"
    exc = refused(api.procx, args("cassandra", "-cassandra-keyspace", "ks", "-cassandra-retrieve-query",
                                  "SELECT * FROM q", "-cassandra-clear-query", "DELETE FROM nope WHERE id = 1"))
    assert exc.exit_code == 69
    assert str(exc) == ("driver cassandra: -cassandra-clear-query failed on localhost:9042 (keyspace ks): Error from "
                        'server: code=2200 [Invalid query] message="unconfigured table nope"')


# ---------------------------------------------------------------------------------------------- pushx
@pytest.mark.parametrize("driver", DRIVERS)
def test_fake_pushx_params_and_payload_by_column_type(world: World, driver: str) -> None:
    query = "INSERT INTO q (id, name, body, raw) VALUES (?, ?, ?, ?)"
    world.markers[query] = [("id", "Int32Type"), ("name", "UTF8Type"), ("body", "UTF8Type"), ("raw", "BytesType")]
    doc = b'{"id": 1, "name": "x\'); DROP TABLE q; --"}\n'
    api.pushx(doc, args(driver, f"-{driver}-query", query, f"-{driver}-params",
                        "{{id}},{{name}},{{pushx_payload}},{{pushx_payload}}"))
    assert world.executed() == [(query, [1, "x'); DROP TABLE q; --", doc.decode(), doc])]


def test_fake_pushx_templates_become_markers(world: World) -> None:
    bound = "INSERT INTO q (id, name, at, tags, price) VALUES (?, ?, ?, ?, ?)"
    world.markers[bound] = [("id", "UUIDType"), ("name", "UTF8Type"), ("at", "TimestampType"),
                            ("tags", "ListType(UTF8Type)"), ("price", "DecimalType")]
    doc = json.dumps({"id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "name": "it's", "at": "2024-01-02T03:04:05Z",
                      "tags": ["a", "b"], "price": 9.90}).encode()
    api.pushx(doc, args("cassandra", "-cassandra-query", "INSERT INTO q (id, name, at, tags, price) VALUES "
                                                         "({{id}}, '{{name}}', {{at}}, {{tags}}, {{price}})"))
    assert world.executed() == [(bound, [uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "it's",
                                         datetime.datetime(2024, 1, 2, 3, 4, 5), ["a", "b"], Decimal("9.9")])]


def test_fake_binary_payload_into_a_text_column_is_refused_not_mangled(world: World) -> None:
    query = "INSERT INTO q (body) VALUES (?)"
    world.markers[query] = [("body", "UTF8Type")]
    exc = refused(api.pushx, b"\xff\xfe", args("cassandra", "-cassandra-query", query,
                                               "-cassandra-params", "{{pushx_payload}}"))
    assert exc.exit_code == 69
    assert "the payload is not UTF-8 text but column body is text" in str(exc)
    assert world.executed() == []


def test_fake_pushx_params_variable_is_read(world: World) -> None:
    api.pushx(b"", args("scylla", "-scylla-query", "INSERT INTO q (a) VALUES (?)"),
              environ=clean_env(PUSHX_SCYLLA_PARAMS="from-variable"))
    assert world.executed() == [("INSERT INTO q (a) VALUES (?)", ["from-variable"])]


def test_fake_push_many_runs_each_statement(world: World) -> None:
    with api.Producer(args("cassandra", "-cassandra-query", "INSERT INTO q (a) VALUES ({{pushx_payload}})")) as p:
        assert p.push_many([b"a", b"b"]) == [None, None]
    assert world.executed() == [("INSERT INTO q (a) VALUES (?)", ["a"]), ("INSERT INTO q (a) VALUES (?)", ["b"])]


# ---------------------------------------------------------------------------------------------- bound values
@pytest.mark.parametrize(("value", "casstype_name", "bound"), [
    ("7", "Int32Type", 7), (" -7", "LongType", -7), (7.0, "Int32Type", 7), ("", "Int32Type", None),
    ("1.5", "DoubleType", 1.5), ("1.50", "DecimalType", Decimal("1.50")), ("T", "BooleanType", True),
    ("0", "BooleanType", False), ("2024-01-02T03:04:05+02:00", "TimestampType",
                                  datetime.datetime(2024, 1, 2, 1, 4, 5)),
    ("1704164645000", "TimestampType", datetime.datetime(2024, 1, 2, 3, 4, 5)), ("2024-01-02", "SimpleDateType", None),
    ('{"a": 1}', "MapType(UTF8Type,Int32Type)", {"a": 1}), ("[1,2]", "SetType(Int32Type)", {1, 2}),
    (7, "UTF8Type", "7"), (True, "UTF8Type", "true"), ("text", "BytesType", b"text"), ("", "UTF8Type", ""),
    ("[1.5]", "FrozenType(ListType(FloatType))", [1.5]),
])
def test_bound_values_follow_the_marker_type(value: object, casstype_name: str, bound: object) -> None:
    from cassandra.util import Date

    from drivers.cql.common import bind_value

    ctype = casstype(casstype_name)
    converted = bind_value(value, ctype, "c")
    decoded = ctype.from_binary(ctype.to_binary(converted, 4), 4) if converted is not None else None
    if casstype_name == "SimpleDateType":
        assert decoded == Date("2024-01-02")
    else:
        assert decoded == bound


@pytest.mark.parametrize(("value", "casstype_name"), [
    ("seven", "Int32Type"), ("1.5", "Int32Type"), (True, "Int32Type"), ("yes", "BooleanType"),
    ("not-a-uuid", "UUIDType"), ("[1", "ListType(Int32Type)"), ("{}", "ListType(Int32Type)"),
])
def test_unusable_values_are_refused_naming_the_column(value: object, casstype_name: str) -> None:
    from drivers.cql.common import BindError, bind_value

    with pytest.raises(BindError, match="column c is"):
        bind_value(value, casstype(casstype_name), "c")
