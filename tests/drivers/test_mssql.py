"""mssql: the read path against the pysqlbridge TDS emulator; the write path at the pymssql boundary.

pysqlbridge (tests/drivers/tds_server.py) is read-only, so the shared conformance suite (which pushes) cannot run:
the retrieve query, its bound params, the rows JSON, -mssql-retrieve-field, no work, bad queries and logins run
over the wire with pymssql. The clear/fail/pushx statements and -mssql-transaction are tested as what the driver
hands to pymssql (a recording connection in place of pymssql.connect): the `test_boundary_*` tests. Nothing here
shows how a real SQL Server executes those statements.
"""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from core import api
from core.template import go_json
from drivers.sql.mssql import MssqlDatabase
from tests.drivers import tds_server
from tests.drivers.conftest import free_port
from tests.drivers.sql_cases import refused, stderr_text
from tests.drivers.tds_server import PASSWORD, Tds
from tests.support import clean_env, run

tds = tds_server.tds  # the session's server


def conn(server: Tds) -> list[str]:
    return ["-driver", "mssql", "-mssql-host", server.host, "-mssql-port", str(server.port),
            "-mssql-user", server.user, "-mssql-password", server.password]


def take(server: Tds, *args: str) -> bytes | None:
    return api.procx([*conn(server), *args])


# ---------------------------------------------------------------------------------------------- read path
def test_rows_json_is_the_go_encoding(tds: Tds) -> None:
    expected = b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'
    assert take(tds, "-mssql-retrieve-query", "SELECT id, name, work FROM jobs ORDER BY id") == expected


@pytest.mark.parametrize("query", [
    "SELECT TOP 1 id, kind FROM events WHERE kind = ? AND id > ? ORDER BY id",
    "SELECT TOP 1 id, kind FROM events WHERE kind = @p1 AND id > @p2 ORDER BY id",
    "SELECT TOP 1 id, kind FROM events WHERE id > $2 AND kind = $1 ORDER BY id",
    "SELECT TOP 1 id, kind FROM events WHERE kind = ?1 AND id > :2 ORDER BY id",
])
def test_retrieve_query_binds_its_params_in_every_placeholder_style(tds: Tds, query: str) -> None:
    expected = b'[{"id":3,"kind":"alpha"}]'
    assert take(tds, "-mssql-retrieve-query", query, "-mssql-retrieve-params", "alpha,1") == expected


def test_params_stay_data_and_percent_signs_stay_percent_signs(tds: Tds) -> None:
    hostile = "x' OR '1'='1"
    query = "SELECT id FROM events WHERE note LIKE '50%' OR kind = ?"
    assert take(tds, "-mssql-retrieve-query", query, "-mssql-retrieve-params", hostile) == b'[{"id":1}]'
    assert take(tds, "-mssql-retrieve-query", "SELECT id FROM events WHERE note LIKE '%off'") == b'[{"id":1}]'
    assert take(tds, "-mssql-retrieve-query", "SELECT id FROM events WHERE kind = ?", "-mssql-retrieve-params",
                hostile) is None


def test_unicode_and_column_types(tds: Tds) -> None:
    query = ("SELECT TOP 1 note, CAST(id AS BIGINT) AS big, CAST('2024-01-02 03:04:05.5' AS DATETIME) AS t, "
             "CAST('2024-01-02' AS DATE) AS d, CAST(1 AS BIT) AS b, NULL AS z FROM events WHERE id = ?")
    assert json.loads(take(tds, "-mssql-retrieve-query", query, "-mssql-retrieve-params", "2")) == [
        {"note": "zażółć", "big": 2, "t": "2024-01-02T03:04:05.5Z", "d": "2024-01-02T00:00:00Z", "b": True,
         "z": None}]


@pytest.mark.parametrize(("field", "payload"), [
    ("0.work", b"do it"), ("1.id", b"8"), ("#.id", b"[7,8]"), ("#(id==8).work", b"more"),
    ("0", b'{"id":7,"name":"a\\u003cb","work":"do it"}'), ("5.id", None),
])
def test_retrieve_field_selects_like_the_reference(tds: Tds, field: str, payload: bytes | None) -> None:
    assert take(tds, "-mssql-retrieve-query", "SELECT id, name, work FROM jobs ORDER BY id",
                "-mssql-retrieve-field", field) == payload


def test_no_rows_is_no_work_and_runs_nothing(tds: Tds, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = run("procx", *conn(tds), "-mssql-retrieve-query", "SELECT id FROM jobs WHERE id = ?",
               "-mssql-retrieve-params", "99", "touch", str(marker), env=clean_env())
    assert done.returncode == 0, stderr_text(done)
    assert done.stdout == b"" and not marker.exists()


def test_child_gets_the_payload(tds: Tds) -> None:
    done = run("procx", *conn(tds), "-mssql-retrieve-query", "SELECT TOP 1 work FROM jobs ORDER BY id DESC",
               "-mssql-retrieve-field", "0.work", "-pass-work-as-stdin", "cat", env=clean_env())
    assert done.returncode == 0, stderr_text(done)
    assert done.stdout == b"more"


def test_bad_query_is_one_line_exit_69_and_runs_nothing(tds: Tds, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = run("procx", *conn(tds), "-mssql-retrieve-query", "SELECT * FROM no_such_table_x", "touch", str(marker),
               env=clean_env())
    assert done.returncode == 69
    lines = stderr_text(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert "-mssql-retrieve-query failed" in lines[0] and "no_such_table_x" in lines[0] and "(error 208)" in lines[0]
    assert "DB-Lib" not in lines[0]
    assert not marker.exists()


def test_password_with_connection_string_characters_logs_in(tds: Tds) -> None:
    """⚠ pushx.md §6 #6: `;` `=` `'` in the password broke the original's connection string."""
    assert set(";='\"") <= set(PASSWORD)
    assert take(tds, "-mssql-retrieve-query", "SELECT TOP 1 id FROM jobs ORDER BY id",
                "-mssql-retrieve-field", "0.id") == b"7"


def test_wrong_password_is_one_line_exit_69_without_the_secret(tds: Tds) -> None:
    args = [a if a != tds.password else "wrong-pw-s3cret" for a in conn(tds)]
    done = run("procx", *args, "-mssql-retrieve-query", "SELECT 1", env=clean_env(LOG_LEVEL="debug"))
    assert done.returncode == 69
    lines = [line for line in stderr_text(done).strip().splitlines() if line.startswith("procx:")]
    assert len(lines) == 1, stderr_text(done)  # the one error line (debug logging adds event lines)
    assert "Login failed for user 'procx'" in lines[0] and tds.address in lines[0]
    assert "wrong-pw-s3cret" not in stderr_text(done) and "s3cret" not in stderr_text(done)


def test_unreachable_server_is_one_line_exit_69() -> None:
    port = free_port()
    done = run("pushx", "-driver", "mssql", "-mssql-host", "127.0.0.1", "-mssql-port", str(port),
               "-mssql-password", "unused-s3cret", "-mssql-query", "SELECT 1", "-in", "x", env=clean_env())
    assert done.returncode == 69
    lines = stderr_text(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"driver mssql: cannot connect to 127.0.0.1:{port}" in lines[0] and "Connection refused" in lines[0]
    assert "s3cret" not in stderr_text(done)


def test_the_emulator_refuses_writes(tds: Tds) -> None:
    """Why the write path is tested at the boundary only: pysqlbridge never writes."""
    exc = refused(api.pushx, b"x", [*conn(tds), "-mssql-query", "INSERT INTO jobs (id) VALUES (?)",
                                    "-mssql-params", "9"])
    assert exc.exit_code == 69
    assert "-mssql-query failed" in str(exc) and "INSERT is not supported" in str(exc)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("args", "message"), [
    (("-mssql-clear-query", "DELETE FROM t WHERE id = {{0.id}} AND x = ?", "-mssql-clear-params", "a"),
     "holds {{templates}}"),
    (("-mssql-clear-query", "DELETE FROM t WHERE id = @p2", "-mssql-clear-params", "a"), "no parameter"),
    (("-mssql-retrieve-params", "1"), "not used by any placeholder"),
])
def test_bad_statement_settings_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = run("procx", "-driver", "mssql", "-mssql-retrieve-query", "SELECT 1", *args, env=clean_env())
    assert done.returncode == 2
    assert message in stderr_text(done)


def test_required_queries_are_usage_errors() -> None:
    done = run("procx", "-driver", "mssql", "-mssql-host", "127.0.0.1", env=clean_env())
    assert done.returncode == 2 and "-mssql-retrieve-query" in stderr_text(done)
    done = run("pushx", "-driver", "mssql", "-mssql-host", "127.0.0.1", input=b"lost?", env=clean_env())
    assert done.returncode == 2 and "-mssql-query (PUSHX_MSSQL_QUERY) is required" in stderr_text(done)


# ---------------------------------------------------------------------------------------------- boundary
class Log(list):
    """What the driver did, in order; `connected`: the keyword arguments of the last pymssql.connect."""

    connected: dict[str, object]


class FakeConnection:
    """Stands in for a pymssql connection: records what the driver hands to it, answers SELECTs from `rows`."""

    def __init__(self, log: list, rows: list[tuple[list[str], list[tuple]]], fail_on: str = "",
                 **kwargs: object) -> None:
        self.log, self.rows, self.fail_on = log, rows, fail_on
        log.append(("connect", kwargs.pop("autocommit")))
        log.connected = kwargs

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def autocommit(self, on: bool) -> None:
        self.log.append(("autocommit", on))

    def commit(self) -> None:
        self.log.append(("commit",))

    def rollback(self) -> None:
        self.log.append(("rollback",))

    def close(self) -> None:
        self.log.append(("close",))


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.description = None
        self.result: list[tuple] = []

    def execute(self, sql: str, params: tuple) -> None:
        import pymssql

        self.conn.log.append(("execute", sql, params))
        if self.conn.fail_on and self.conn.fail_on in sql:
            raise pymssql.OperationalError(547, b"The DELETE statement conflicted.DB-Lib error message 20018, "
                                                b"severity 16:\nGeneral SQL Server error: Check messages from the "
                                                b"SQL Server\n")
        if sql.lstrip().upper().startswith("SELECT") and self.conn.rows:
            columns, self.result = self.conn.rows.pop(0)
            self.description = [(c, 1, None, None, None, None, None) for c in columns]

    def fetchall(self) -> list[tuple]:
        return self.result

    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """fake(rows, fail_on="") -> the log of what the driver handed to pymssql (instead of a server)."""
    import pymssql

    log = Log()
    state: dict = {"rows": [], "fail_on": ""}

    def connect(**kwargs: object) -> FakeConnection:
        return FakeConnection(log, state["rows"], state["fail_on"], **kwargs)

    monkeypatch.setattr(pymssql, "connect", connect)

    def setup(rows: list[tuple[list[str], list[tuple]]] = (), fail_on: str = "") -> list:
        state["rows"][:] = list(rows)
        state["fail_on"] = fail_on
        return log

    return setup


OFFLINE = ["-driver", "mssql", "-mssql-host", "db.example", "-mssql-user", "u", "-mssql-password", "pw-s3cret",
           "-mssql-database", "work"]
JOB = (["id", "name"], [(7, "x'); DROP TABLE t; --")])


def executed(log: list) -> list[tuple[str, tuple]]:
    return [(entry[1], entry[2]) for entry in log if entry[0] == "execute"]


def test_boundary_connect_arguments_are_keywords_not_a_connection_string(fake) -> None:
    log = fake([JOB])
    api.procx([*OFFLINE, "-mssql-port", "1444", "-mssql-retrieve-query", "SELECT id, name FROM t"])
    assert log[0] == ("connect", True)
    assert log.connected == {"server": "db.example", "port": "1444", "user": "u", "password": "pw-s3cret",
                             "database": "work", "login_timeout": 10, "appname": "procx", "charset": "UTF-8"}


def test_boundary_clear_params_keep_text_around_templates_and_go_as_parameters(fake) -> None:
    """⚠ #42: `id-{{0.id}}` gives `id-7` (the original gave `7`); ? and @pN become %s."""
    log = fake([JOB])
    api.procx([*OFFLINE, "-mssql-retrieve-query", "SELECT TOP 1 id, name FROM t WITH (READPAST) ORDER BY id",
               "-mssql-clear-query", "UPDATE t SET note = ?, tag = @p2 WHERE id = @p3 AND note NOT LIKE '5%'",
               "-mssql-clear-params", "done,id-{{0.id}}/{{0.name}},{{0.id}}"])
    assert executed(log) == [
        ("SELECT TOP 1 id, name FROM t WITH (READPAST) ORDER BY id", ()),
        ("UPDATE t SET note = %s, tag = %s WHERE id = %s AND note NOT LIKE '5%%'",
         ("done", "id-7/x'); DROP TABLE t; --", "7")),
    ]


def test_boundary_fail_query_templates_become_typed_parameters(fake) -> None:
    log = fake([JOB])
    with pytest.raises(RuntimeError), api.work([
            *OFFLINE, "-mssql-retrieve-query", "SELECT id, name FROM t",
            "-mssql-fail-query", "UPDATE t SET n = n + 1, why = N'failed: {{0.name}}', "
                                 "who = '{{0.name}}' WHERE id = {{0.id}} AND [w?] = ':1'"]):
        raise RuntimeError("child failed")
    sql, params = executed(log)[1]
    assert sql == "UPDATE t SET n = n + 1, why = %s, who = %s WHERE id = %s AND [w?] = ':1'"
    assert params == ("failed: x'); DROP TABLE t; --", "x'); DROP TABLE t; --", 7)


def test_boundary_placeholders_reorder_and_leave_literals_alone(fake) -> None:
    log = fake([JOB])
    api.procx([*OFFLINE, "-mssql-retrieve-query", "SELECT id, name FROM t",
               "-mssql-clear-query", "EXEC done @id = $2, @name = $1, @x = '@p1 ? $1', @y = N'@p2' -- ? @p1",
               "-mssql-clear-params", "{{0.name}},{{0.id}}"])
    assert executed(log)[1] == ("EXEC done @id = %s, @name = %s, @x = '@p1 ? $1', @y = N'@p2' -- ? @p1",
                                ("7", "x'); DROP TABLE t; --"))


def test_boundary_params_never_leak_between_items(fake) -> None:
    """⚠ #23: the original overwrote the clear params with the first item's values."""
    log = fake([(["id"], [(1,)]), (["id"], [(2,)]), (["id"], [(3,)])])
    args = [*OFFLINE, "-mssql-retrieve-query", "SELECT TOP 1 id FROM t WHERE done = 0",
            "-mssql-clear-query", "UPDATE t SET done = 1 WHERE id = ?", "-mssql-clear-params", "{{0.id}}"]
    seen = []
    for work in api.consume(args):
        seen.append(work.payload)
        work.clear()
    assert [p for s, p in executed(log) if s.startswith("UPDATE")] == [("1",), ("2",), ("3",)]
    assert len(seen) == 3


def test_boundary_transaction_holds_the_row_until_clear_or_fail(fake) -> None:
    log = fake([JOB, JOB])
    query = "SELECT TOP 1 id, name FROM t WITH (UPDLOCK, READPAST, ROWLOCK) ORDER BY id"
    args = [*OFFLINE, "-mssql-transaction", "-mssql-retrieve-query", query,
            "-mssql-clear-query", "DELETE FROM t WHERE id = ?", "-mssql-clear-params", "{{0.id}}",
            "-mssql-fail-query", "UPDATE t SET attempts = attempts + 1 WHERE id = {{0.id}}"]
    api.procx(args)
    with pytest.raises(RuntimeError), api.work(args):
        raise RuntimeError("child failed")
    steps = [e[:2] if e[0] == "execute" else e for e in log]
    assert steps == [("connect", False), ("execute", query), ("execute", "DELETE FROM t WHERE id = %s"), ("commit",),
                     ("close",),
                     ("connect", False), ("execute", query), ("execute", "UPDATE t SET attempts = attempts + 1 "
                                                                         "WHERE id = %s"), ("commit",), ("close",)]


def test_boundary_failed_clear_rolls_back_and_is_exit_69_without_the_secret(fake) -> None:
    log = fake([JOB], fail_on="DELETE")
    exc = refused(api.procx, [*OFFLINE, "-mssql-transaction", "-mssql-retrieve-query", "SELECT id, name FROM t",
                              "-mssql-clear-query", "DELETE FROM t WHERE id = {{0.id}}"])
    assert exc.exit_code == 69
    assert str(exc) == ("driver mssql: -mssql-clear-query failed on db.example:1433 (database work, user u): "
                        "The DELETE statement conflicted. (error 547)")
    assert ("rollback",) in log and ("commit",) not in log


def test_transaction_option_names_the_sql_server_lock_hints() -> None:
    from core import registry

    spec = registry.get("mssql")
    help_text = next(o.help for o in spec.options if o.name == "mssql-transaction")
    assert "WITH (UPDLOCK, READPAST, ROWLOCK)" in help_text and "SKIP LOCKED" not in help_text


@pytest.mark.parametrize(("payload", "bound"), [
    (b'{"id": 1}\n', '{"id": 1}\n'),  # UTF-8 text: N'…' (NVARCHAR)
    (b"\x00\xff\xfe", b"\x00\xff\xfe"),  # not UTF-8: 0x… (VARBINARY), byte for byte
])
def test_boundary_pushx_payload_is_text_when_utf8_else_bytes(fake, payload: bytes, bound: object) -> None:
    log = fake()
    api.pushx(payload, [*OFFLINE, "-mssql-query", "INSERT INTO q (a) VALUES (?)", "-mssql-params",
                        "{{pushx_payload}}"])
    api.pushx(payload, [*OFFLINE, "-mssql-query", "INSERT INTO q (a) VALUES ({{pushx_payload}})"])
    assert executed(log) == [("INSERT INTO q (a) VALUES (%s)", (bound,))] * 2


def test_boundary_pushx_templates_and_hostile_values(fake) -> None:
    log = fake()
    doc = json.dumps({"id": 1, "name": "x'); DROP TABLE t; --", "price": 9.9, "ok": True}).encode()
    api.pushx(doc, [*OFFLINE, "-mssql-query",
                    "INSERT INTO t (id, name, label, price, ok) VALUES ({{id}}, \"{{name}}\", N'n: {{name}}', "
                    "{{price}}, {{ok}})"])
    api.pushx(doc, [*OFFLINE, "-mssql-query", "INSERT INTO t (id, name) VALUES (?, ?)", "-mssql-params",
                    "{{id}},{{name}}"])
    assert executed(log) == [
        ("INSERT INTO t (id, name, label, price, ok) VALUES (%s, %s, %s, %s, %s)",
         (1, "x'); DROP TABLE t; --", "n: x'); DROP TABLE t; --", 9.9, True)),
        ("INSERT INTO t (id, name) VALUES (%s, %s)", ("1", "x'); DROP TABLE t; --")),
    ]
    from pymssql import _mssql

    # what pymssql then sends: the values quoted as literals by pymssql itself
    sent = _mssql.substitute_params(*executed(log)[1])
    assert sent == b"INSERT INTO t (id, name) VALUES (N'1', N'x''); DROP TABLE t; --')"


def test_boundary_pushx_params_variable_is_read(fake) -> None:
    log = fake()
    api.pushx(b"", [*OFFLINE, "-mssql-query", "INSERT INTO t (a) VALUES (?)"],
              environ=clean_env(PUSHX_MSSQL_QUERY_PARAMS="from-variable"))
    assert executed(log) == [("INSERT INTO t (a) VALUES (%s)", ("from-variable",))]


def test_boundary_push_many_is_one_transaction(fake) -> None:
    log = fake()
    args = [*OFFLINE, "-mssql-query", "INSERT INTO t (a) VALUES ({{pushx_payload}})"]
    with api.Producer(args) as producer:
        producer.push_many([b"a", b"b"])
    assert [e[0] for e in log] == ["connect", "autocommit", "execute", "execute", "commit", "autocommit", "close"]
    log.clear()
    fake(fail_on="VALUES (%s) -- boom")
    with api.Producer([*args[:-1], args[-1] + " -- boom"]) as producer:
        exc = refused(producer.push_many, [b"c"])
    assert exc.exit_code == 69
    assert [e[0] for e in log] == ["connect", "autocommit", "execute", "rollback", "autocommit", "close"]


def test_column_values_the_emulator_cannot_send() -> None:
    """pysqlbridge sends DECIMAL as FLOAT and has no UNIQUEIDENTIFIER/DATETIMEOFFSET: what pymssql would give for
    them, rendered as go-mssqldb's values are (⚠ the original gave a UNIQUEIDENTIFIER's raw 16 bytes)."""
    values = [Decimal("1.50"), Decimal("5.0000"), Decimal("1E+3"), uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
              datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5),
              datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))]
    assert go_json([MssqlDatabase.convert(None, v) for v in values]) == (
        '["1.50","5.0000","1000","3F2504E0-4F89-11D3-9A0C-0305E82C3301","2024-01-02T00:00:00Z",'
        '"2024-01-02T03:04:05Z","2024-01-02T03:04:05+02:00"]')


def test_time_column_is_a_time_on_year_one() -> None:
    assert go_json(MssqlDatabase.convert(None, datetime.time(12, 34, 56, 500000))) == '"0001-01-01T12:34:56.5Z"'
