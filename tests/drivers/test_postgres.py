"""postgres: the conformance suite, the cases every SQL driver shares (sql_cases.py) and the driver's own rules,
against the real PostgreSQL on 127.0.0.1:5432.

The queue of the conformance suite is a table per test (id serial, payload bytea, attempts int). pushx inserts
with `$1` bound to {{pushx_payload}} (raw bytes: bytea); procx takes the oldest row with SELECT … FOR UPDATE SKIP
LOCKED inside -psql-transaction, selects the payload column with -psql-retrieve-field 0.payload (exact bytes),
clear deletes the row, fail counts an attempt and releases it (COMMIT).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import api
from tests.drivers.sql_cases import (
    HOST,
    SqlConformance,
    SqlDb,
    SqlDriver,
    SqlDriverCases,
    SqlQueueBackend,
    Tables,
    refused,
    stderr_text,
)
from tests.drivers.sql_fixtures import db_fixture, jobs_fixture, tables_fixture  # noqa: F401 - fixtures
from tests.support import clean_env, command, wait_for

PORT = 5432


def pg_connect(dbname: str = "test"):
    import psycopg

    try:
        return psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=dbname, autocommit=True,
                               connect_timeout=5)
    except psycopg.OperationalError as exc:  # a missing server fails the tests, never skips them
        pytest.fail(f"PostgreSQL is not reachable on {HOST}:{PORT}: {exc}")


POSTGRES = SqlDriver(
    driver="postgres", prefix="psql", port=PORT, user="postgres", numbered_params=True,
    queue_columns="id serial PRIMARY KEY, payload bytea NOT NULL, attempts int NOT NULL DEFAULT 0",
    serial="n serial PRIMARY KEY", returning_n=" RETURNING n", batch_breaker=b"\xff",  # not UTF-8
    missing_table='relation "no_such_table_x" does not exist', syntax_error=("syntax error", "42601"),
    connect=pg_connect, end_session="SELECT pg_terminate_backend(%s)",
    lock_holders="SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                 "WHERE c.relname = %s AND l.pid <> pg_backend_pid()")
CONN = POSTGRES.conn
take, put, cli = POSTGRES.take, POSTGRES.put, POSTGRES.cli


@pytest.fixture(scope="module")
def sql() -> SqlDriver:
    """The driver under test, for the fixtures and cases of sql_fixtures.py and sql_cases.py."""
    return POSTGRES


@pytest.fixture(scope="module")
def pg(db: SqlDb):
    """The psycopg connection itself: `pg.execute(…).fetchone()`."""
    return db.conn


@pytest.fixture
def log_table(tables: Tables) -> str:
    return tables("n serial, a text, b text, c text, raw bytea")


class TestPostgresConformance(SqlConformance):
    """The queue is a table with a bytea payload column."""


class TestPostgresAsEverySqlDriver(SqlDriverCases):
    """What every SQL driver does alike (sql_cases.py), against PostgreSQL."""


# ---------------------------------------------------------------------------------------------- rows JSON
def test_rows_json_is_the_go_encoding(jobs: str) -> None:
    done = cli("procx", "-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id")
    assert done.returncode == 0, stderr_text(done)
    assert done.stdout == b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'


def test_retrieve_field_0_selects_the_whole_first_row(jobs: str) -> None:
    """The other selections are in SqlDriverCases."""
    assert take("-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id", "-psql-retrieve-field", "0") == \
        b'{"id":7,"name":"a\\u003cb","work":"do it"}'


def test_zero_rows_are_no_work_and_retrieve_params_are_literal(jobs: str) -> None:
    query = f"SELECT * FROM {jobs} WHERE id < $1 AND name <> $2"
    assert take("-psql-retrieve-query", query, "-psql-retrieve-params", "7,{{0.id}}") is None
    assert take("-psql-retrieve-query", query, "-psql-retrieve-params", "8,{{0.id}}") == \
        b'[{"id":7,"name":"a\\u003cb","work":"do it"}]'


def test_column_types(pg, tables: Tables) -> None:
    t = tables("i int, big bigint, f float8, b bool, t text, n numeric(6,2), u uuid, j jsonb, js json, "
               "ts timestamp, tz timestamptz, d date, by bytea, arr int[], iv interval, nul text")
    pg.execute(f"""INSERT INTO {t} VALUES (7, 12345678901234, 1.5, true, 'x', 1.50,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"b": 2, "a": 1}}', '{{"b":2}}', '2022-10-21 18:44:52.5',
        '2022-10-21 18:44:52+02', '2024-01-02', '\\x61ff00', '{{1,2}}', '1 day 02:00', NULL)""")
    assert json.loads(take("-psql-retrieve-query", f"SELECT * FROM {t}")) == [{
        "i": 7, "big": 12345678901234, "f": 1.5, "b": True, "t": "x", "n": "1.50",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": '{"a": 1, "b": 2}', "js": '{"b":2}',
        "ts": "2022-10-21T18:44:52.5Z", "tz": "2022-10-21T16:44:52Z", "d": "2024-01-02T00:00:00Z",
        "by": "a\ufffd\x00", "arr": "{1,2}", "iv": "1 day 02:00:00", "nul": None}]


def test_bytea_is_text_not_base64_in_selections_and_params(pg, tables: Tables) -> None:
    """⚠ #43: the original used base64 for byte values under a retrieve-field and in clear/fail params."""
    t = tables("id int, b bytea, seen text")
    pg.execute(f"INSERT INTO {t} VALUES (1, 'abc', NULL)")
    assert take("-psql-retrieve-query", f"SELECT id, b FROM {t}", "-psql-retrieve-field", "0",
                "-psql-clear-query", f"UPDATE {t} SET seen = $1 WHERE id = 1", "-psql-clear-params",
                "{{0.b}}") == b'{"b":"abc","id":1}'
    assert pg.execute(f"SELECT seen FROM {t}").fetchone()[0] == "abc"


# ---------------------------------------------------------------------------------------------- templates
def test_procx_payload_param_is_the_rows_json(jobs: str, log_table: str, pg) -> None:
    take("-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id LIMIT 1", "-psql-retrieve-field", "0.work",
         "-psql-clear-query", f"INSERT INTO {log_table} (raw, a) VALUES ($1, $2)",
         "-psql-clear-params", "{{procx_payload}},{{procx_payload}}")
    rows_json = '[{"id":7,"name":"a\\u003cb","work":"do it"}]'
    assert pg.execute(f"SELECT raw, a FROM {log_table}").fetchone() == (rows_json.encode(), rows_json)


HOSTILE = ["x'); DROP TABLE victim; --", 'x"); DROP TABLE victim; --', "50% off \\' \" $1 ? {{id}}"]


@pytest.fixture
def victim(tables: Tables) -> str:
    """A table the hostile strings try to drop."""
    return tables("x int", prefix="victim")


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_pushed_data_stays_data(pg, tables: Tables, victim: str, name: str) -> None:
    t = tables("id int, name text, note text")
    hostile = name.replace("victim", victim)
    doc = json.dumps({"id": 1, "name": hostile}).encode()
    put(doc, "-psql-query", f"INSERT INTO {t} (id, name, note) VALUES ({{{{id}}}}, '{{{{name}}}}', 'q')")
    put(doc, "-psql-query", f'INSERT INTO {t} (id, name, note) VALUES ({{{{id}}}}, "{{{{name}}}}", \'d\')')
    put(doc, "-psql-query", f"INSERT INTO {t} (id, name, note) VALUES ($1, $2, 'p')", "-psql-params",
        "{{id}},{{name}}")
    assert pg.execute(f"SELECT id, name, note FROM {t} ORDER BY note").fetchall() == [
        (1, hostile, "d"), (1, hostile, "p"), (1, hostile, "q")]
    assert pg.execute("SELECT to_regclass(%s)", [victim]).fetchone()[0] is not None


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_retrieved_rows_stays_data(pg, tables: Tables, victim: str, name: str) -> None:
    hostile = name.replace("victim", victim)
    t = tables("id int, name text, done text")
    pg.execute(f"INSERT INTO {t} (id, name) VALUES (1, %s), (2, 'other')", [hostile])
    take("-psql-retrieve-query", f"SELECT id, name FROM {t} WHERE id = 1",
         "-psql-clear-query", f"UPDATE {t} SET done = 'yes:' || '{{{{0.name}}}}' WHERE name = {{{{0.name}}}}")
    assert pg.execute(f"SELECT id, done FROM {t} ORDER BY id").fetchall() == [(1, "yes:" + hostile), (2, None)]
    assert pg.execute("SELECT to_regclass(%s)", [victim]).fetchone()[0] is not None


def test_go_placeholders_in_any_order(pg, log_table: str) -> None:
    put(b'{"k": "second"}', "-psql-query", f"INSERT INTO {log_table} (a, b, c) VALUES ($2, $1, $2)",
        "-psql-params", "first,{{k}}")
    assert pg.execute(f"SELECT a, b, c FROM {log_table}").fetchone() == ("second", "first", "second")


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_payload_to_text_json_and_bytea_columns(pg, tables: Tables) -> None:
    t = tables("id serial, t text, j jsonb, b bytea")
    data = '{"name": "zażółć", "n": 1}\n'.encode()
    ident = put(data, "-psql-query", f"INSERT INTO {t} (t, j, b) VALUES ($1, $2, $3) RETURNING id",
                "-psql-params", "{{pushx_payload}},{{pushx_payload}},{{pushx_payload}}")
    assert ident == "1"  # RETURNING gives pushx the id
    assert pg.execute(f"SELECT t, j, b FROM {t}").fetchone() == (data.decode(), {"name": "zażółć", "n": 1}, data)


def test_pushx_binary_into_text_column_is_refused_not_mangled(pg, tables: Tables) -> None:
    t = tables("t text")
    exc = refused(put, b"\xff\xfe", "-psql-query", f"INSERT INTO {t} (t) VALUES ({{{{pushx_payload}}}})")
    assert exc.exit_code == 69
    assert "not UTF-8" in str(exc) and "bytea" in str(exc)
    assert pg.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------- delivery
def test_without_transaction_statements_commit_on_their_own(pg, tables: Tables) -> None:
    """The original's mode: the retrieve query claims nothing, so a second reader sees the same row."""
    table = tables(POSTGRES.queue_columns)
    pg.execute(f"INSERT INTO {table} (payload) VALUES ('one')")
    args = [*CONN, "-psql-retrieve-query", f"SELECT id, payload FROM {table} ORDER BY id LIMIT 1",
            "-psql-retrieve-field", "0.payload", "-psql-clear-query", f"DELETE FROM {table} WHERE id = {{{{0.id}}}}"]
    with api.work(args) as work:
        assert work.payload == b"one"
        assert api.procx(args[:-2]) == b"one"
    assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_wait_for_work_polls_until_a_row_arrives(pg, tables: Tables) -> None:
    backend = SqlQueueBackend(POSTGRES, tables)
    proc = subprocess.Popen(backend.procx_argv(extra=("-wait-for-work", "20s")), env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'procx'")
                 .fetchone()[0] > 0)
        put(b"late", *backend.push_args(0))
        out, errs = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errs
    assert out == b"late"


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_user_is_refused() -> None:
    """The server trusts 127.0.0.1, so a wrong password cannot fail here; an unknown role is the auth failure."""
    exc = refused(api.pushx, b"x", ["-driver", "postgres", "-psql-host", HOST, "-psql-user", "no_such_role_x",
                                    "-psql-password", "s3cret-p@ss", "-psql-query", "SELECT 1"])
    assert exc.exit_code == 69
    assert 'role "no_such_role_x" does not exist' in str(exc)
    assert "s3cret" not in str(exc)


def test_password_with_url_characters_is_escaped(jobs: str) -> None:
    """⚠ #45: the original pasted credentials into a URL unescaped."""
    assert take("-psql-password", "p@ss:w/rd?x=y&z %41 'q' \\", "-psql-retrieve-query",
                f"SELECT id FROM {jobs} ORDER BY id LIMIT 1", "-psql-retrieve-field", "0.id") == b"7"


def test_empty_user_keeps_host_port_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """⚠ #45: with no user the original dropped host, port and database (libpq defaults applied)."""
    for name, value in (("PGUSER", "postgres"), ("PGDATABASE", "postgres"), ("PGPORT", "5432")):
        monkeypatch.setenv(name, value)
    args = ["-driver", "postgres", "-psql-host", HOST, "-psql-database", "test"]
    assert api.procx([*args, "-psql-port", "5432", "-psql-retrieve-query", "SELECT current_database() AS db",
                      "-psql-retrieve-field", "0.db"]) == b"test"
    exc = refused(api.procx, [*args, "-psql-port", "1", "-psql-retrieve-query", "SELECT 1"])
    assert exc.exit_code == 69
    assert "127.0.0.1:1" in str(exc)


def test_ssl_mode_is_sent() -> None:
    """This server has ssl off: `require` must fail (so the mode reached libpq), `prefer` falls back."""
    exc = refused(take, "-psql-ssl-mode", "require", "-psql-retrieve-query", "SELECT 1")
    assert exc.exit_code == 69
    assert "SSL" in str(exc)
    assert take("-psql-ssl-mode", "prefer", "-psql-retrieve-query", "SELECT 1 AS one", "-psql-retrieve-field",
                "0.one") == b"1"


def test_tls_files_without_ssl_mode_are_a_usage_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    exc = refused(take, "-psql-tls-root-cert", str(ca), "-psql-retrieve-query", "SELECT 1")
    assert exc.exit_code == 2
    assert "-psql-ssl-mode is disable" in str(exc)
    exc = refused(take, "-psql-ssl-mode", "verify-full", "-psql-tls-root-cert", str(tmp_path / "nope.pem"),
                  "-psql-retrieve-query", "SELECT 1")
    assert exc.exit_code == 2
    assert "no such file" in str(exc)


@pytest.mark.parametrize(("args", "message"), [
    (("-psql-clear-query", "DELETE FROM t WHERE id = {{0.id}} AND x = $1", "-psql-clear-params", "a"),
     "holds {{templates}}"),
    (("-psql-clear-query", "DELETE FROM t WHERE id = $2", "-psql-clear-params", "a"), "no parameter"),
    (("-psql-fail-query", "UPDATE t SET x = 1", "-psql-fail-params", "a"), "not used by any placeholder"),
    (("-psql-clear-query", "DELETE FROM t WHERE n = 'abc"), "unterminated"),
    (("-psql-retrieve-params", "1",), "not used by any placeholder"),
])
def test_bad_statement_settings_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    exc = refused(take, "-psql-retrieve-query", "SELECT 1", *args)
    assert exc.exit_code == 2
    assert message in str(exc)


def test_query_key_is_accepted_and_ignored(jobs: str) -> None:
    assert take("-psql-query-key", "-psql-retrieve-query", f"SELECT id FROM {jobs} ORDER BY id LIMIT 1",
                "-psql-retrieve-field", "0.id") == b"7"


def test_procx_help_does_not_import_psycopg() -> None:
    code = ("import sys; from core.cli import main; main('procx', ['-driver', 'postgres', '-h']); "
            "assert 'psycopg' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=clean_env())
    assert done.returncode == 0, stderr_text(done)
    assert b"-psql-transaction" in done.stdout


def test_variables_configure_procx(jobs: str) -> None:
    env = clean_env(PROCX_DRIVER="postgres", PROCX_PSQL_HOST=HOST, PROCX_PSQL_USER="postgres",
                    PROCX_PSQL_DATABASE="test", PROCX_PSQL_RETRIEVE_QUERY=f"SELECT work FROM {jobs} ORDER BY id",
                    PROCX_PSQL_RETRIEVE_FIELD="1.work")
    done = subprocess.run([command("procx")], capture_output=True, env=env)
    assert done.returncode == 0, stderr_text(done)
    assert done.stdout == b"more"
