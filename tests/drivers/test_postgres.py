"""postgres: the conformance suite and the driver's own rules, against the real PostgreSQL on 127.0.0.1:5432.

The queue of the conformance suite is a table per test (id serial, payload bytea, attempts int). pushx inserts
with `$1` bound to {{pushx_payload}} (raw bytes: bytea); procx takes the oldest row with SELECT … FOR UPDATE SKIP
LOCKED inside -psql-transaction, selects the payload column with -psql-retrieve-field 0.payload (exact bytes),
clear deletes the row, fail counts an attempt and releases it (COMMIT).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from core import api
from core.errors import ProcxError
from tests.conformance import Backend, Conformance
from tests.support import clean_env, command, run, wait_for

HOST, PORT = "127.0.0.1", 5432


def pg_connect(dbname: str = "test"):
    import psycopg

    try:
        return psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=dbname, autocommit=True,
                               connect_timeout=5)
    except psycopg.OperationalError as exc:  # a missing server fails the tests, never skips them
        pytest.fail(f"PostgreSQL is not reachable on {HOST}:{PORT}: {exc}")


@pytest.fixture(scope="module")
def pg():
    conn = pg_connect()
    yield conn
    conn.close()


@pytest.fixture
def table(pg) -> str:
    """A fresh queue table, dropped afterwards."""
    name = f"procx_q_{uuid.uuid4().hex[:12]}"
    pg.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, payload bytea NOT NULL, attempts int NOT NULL DEFAULT 0)")
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def scratch(pg) -> str:
    """A name for a table the test creates itself, dropped afterwards."""
    name = f"procx_t_{uuid.uuid4().hex[:12]}"
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


class PgBackend(Backend):
    """A table used as a queue, through the postgres driver (or cockroach: same wire protocol)."""

    driver = "postgres"
    supports_empty = False  # an empty selection is "no work" (the original's rule, procx.md §7.5 #35)
    redelivery_wait = 0.0  # a killed procx's transaction rolls back at once

    def __init__(self, conn, table: str, driver: str = "postgres", prefix: str = "psql") -> None:
        self.conn = conn
        self.table = table
        self.driver = driver
        self.prefix = prefix

    def common_args(self) -> list[str]:
        p = self.prefix
        return ["-driver", self.driver, f"-{p}-host", HOST, f"-{p}-port", str(PORT), f"-{p}-user", "postgres",
                f"-{p}-database", "test"]

    def push_args(self, n: int) -> list[str]:
        p = self.prefix
        return [f"-{p}-query", f"INSERT INTO {self.table} (payload) VALUES ($1)", f"-{p}-params", "{{pushx_payload}}"]

    def procx_args(self) -> list[str]:
        p, t = self.prefix, self.table
        return [f"-{p}-retrieve-query", f"SELECT id, payload FROM {t} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                f"-{p}-retrieve-field", "0.payload", f"-{p}-transaction",
                f"-{p}-clear-query", f"DELETE FROM {t} WHERE id = $1", f"-{p}-clear-params", "{{0.id}}",
                f"-{p}-fail-query", f"UPDATE {t} SET attempts = attempts + 1 WHERE id = {{{{0.id}}}}"]

    def pending(self) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]


class TestPostgresConformance(Conformance):
    @pytest.fixture
    def backend(self, pg, table: str) -> PgBackend:
        return PgBackend(pg, table)


CONN = ["-driver", "postgres", "-psql-host", HOST, "-psql-port", str(PORT), "-psql-user", "postgres",
        "-psql-database", "test"]


def take(*args: str) -> bytes | None:
    """In-process procx without a command: take one item, clear it, return its payload (None: no work)."""
    return api.procx([*CONN, *args])


def put(data: bytes, *args: str) -> str | None:
    """In-process pushx."""
    return api.pushx(data, [*CONN, *args])


def refused(fn, *args, **kwargs) -> ProcxError:
    with pytest.raises(ProcxError) as info:
        fn(*args, **kwargs)
    return info.value


def cli(tool: str, *args: str, data: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(tool, *CONN, *args, input=data, env=env)


def err(done: subprocess.CompletedProcess) -> str:
    return done.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------------------------- rows JSON
@pytest.fixture
def jobs(pg, scratch: str) -> str:
    """The worked example of procx.md §3.4 E: (7, 'a<b', 'do it') and (8, 'c', 'more')."""
    pg.execute(f"CREATE TABLE {scratch} (id int PRIMARY KEY, name text, work text)")
    pg.execute(f"INSERT INTO {scratch} VALUES (7, 'a<b', 'do it'), (8, 'c', 'more')")
    return scratch


def test_rows_json_is_the_go_encoding(jobs: str) -> None:
    done = cli("procx", "-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id")
    assert done.returncode == 0, err(done)
    assert done.stdout == b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'


@pytest.mark.parametrize(("field", "payload"), [
    ("0.work", b"do it"),
    ("1.id", b"8"),
    ("#.id", b"[7,8]"),
    ("0", b'{"id":7,"name":"a\\u003cb","work":"do it"}'),
    ("#(id==8).work", b"more"),
    ("5.id", None),  # empty selection: no work
])
def test_retrieve_field_selects_like_the_reference(jobs: str, field: str, payload: bytes | None) -> None:
    assert take("-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id", "-psql-retrieve-field", field) == payload


def test_zero_rows_are_no_work_and_retrieve_params_are_literal(jobs: str) -> None:
    query = f"SELECT * FROM {jobs} WHERE id < $1 AND name <> $2"
    assert take("-psql-retrieve-query", query, "-psql-retrieve-params", "7,{{0.id}}") is None
    assert take("-psql-retrieve-query", query, "-psql-retrieve-params", "8,{{0.id}}") == \
        b'[{"id":7,"name":"a\\u003cb","work":"do it"}]'


def test_column_types(pg, scratch: str) -> None:
    pg.execute(f"""CREATE TABLE {scratch} (i int, big bigint, f float8, b bool, t text, n numeric(6,2), u uuid,
        j jsonb, js json, ts timestamp, tz timestamptz, d date, by bytea, arr int[], iv interval, nul text)""")
    pg.execute(f"""INSERT INTO {scratch} VALUES (7, 12345678901234, 1.5, true, 'x', 1.50,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"b": 2, "a": 1}}', '{{"b":2}}', '2022-10-21 18:44:52.5',
        '2022-10-21 18:44:52+02', '2024-01-02', '\\x61ff00', '{{1,2}}', '1 day 02:00', NULL)""")
    assert json.loads(take("-psql-retrieve-query", f"SELECT * FROM {scratch}")) == [{
        "i": 7, "big": 12345678901234, "f": 1.5, "b": True, "t": "x", "n": "1.50",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": '{"a": 1, "b": 2}', "js": '{"b":2}',
        "ts": "2022-10-21T18:44:52.5Z", "tz": "2022-10-21T16:44:52Z", "d": "2024-01-02T00:00:00Z",
        "by": "a\ufffd\x00", "arr": "{1,2}", "iv": "1 day 02:00:00", "nul": None}]


def test_bytea_is_text_not_base64_in_selections_and_params(pg, scratch: str) -> None:
    """⚠ #43: the original used base64 for byte values under a retrieve-field and in clear/fail params."""
    pg.execute(f"CREATE TABLE {scratch} (id int, b bytea, seen text)")
    pg.execute(f"INSERT INTO {scratch} VALUES (1, 'abc', NULL)")
    assert take("-psql-retrieve-query", f"SELECT id, b FROM {scratch}", "-psql-retrieve-field", "0",
                "-psql-clear-query", f"UPDATE {scratch} SET seen = $1 WHERE id = 1", "-psql-clear-params",
                "{{0.b}}") == b'{"b":"abc","id":1}'
    assert pg.execute(f"SELECT seen FROM {scratch}").fetchone()[0] == "abc"


# ---------------------------------------------------------------------------------------------- templates
@pytest.fixture
def log_table(pg) -> str:
    name = f"procx_log_{uuid.uuid4().hex[:12]}"
    pg.execute(f"CREATE TABLE {name} (n serial, a text, b text, c text, raw bytea)")
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


def test_clear_params_keep_text_around_templates(jobs: str, log_table: str, pg) -> None:
    """⚠ #42 fixed: `id-{{0.id}}` gives `id-7` (the original gave `7`); literals and bare templates as before."""
    take("-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id LIMIT 1",
         "-psql-clear-query", f"INSERT INTO {log_table} (a, b, c) VALUES ($1, $2, $3)",
         "-psql-clear-params", "done,{{0.id}},id-{{0.id}}/{{0.name}}")
    assert pg.execute(f"SELECT a, b, c FROM {log_table}").fetchall() == [("done", "7", "id-7/a<b")]


def test_procx_payload_param_is_the_rows_json(jobs: str, log_table: str, pg) -> None:
    take("-psql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id LIMIT 1", "-psql-retrieve-field", "0.work",
         "-psql-clear-query", f"INSERT INTO {log_table} (raw, a) VALUES ($1, $2)",
         "-psql-clear-params", "{{procx_payload}},{{procx_payload}}")
    rows_json = '[{"id":7,"name":"a\\u003cb","work":"do it"}]'
    assert pg.execute(f"SELECT raw, a FROM {log_table}").fetchone() == (rows_json.encode(), rows_json)


def test_params_never_leak_between_items(pg, scratch: str) -> None:
    """⚠ #23: the original overwrote the clear params with the first item's values (one source, many items)."""
    pg.execute(f"CREATE TABLE {scratch} (id int PRIMARY KEY, done bool DEFAULT false)")
    pg.execute(f"INSERT INTO {scratch} (id) SELECT generate_series(1, 4)")
    args = [*CONN, "-psql-retrieve-query", f"SELECT id FROM {scratch} WHERE NOT done ORDER BY id LIMIT 1",
            "-psql-retrieve-field", "0.id",
            "-psql-clear-query", f"UPDATE {scratch} SET done = true WHERE id = $1", "-psql-clear-params", "{{0.id}}"]
    seen = []
    for work in api.consume(args):
        seen.append(work.payload)
        work.clear()
    assert seen == [b"1", b"2", b"3", b"4"]
    assert pg.execute(f"SELECT count(*) FROM {scratch} WHERE done").fetchone()[0] == 4


HOSTILE = ["x'); DROP TABLE victim; --", 'x"); DROP TABLE victim; --', "50% off \\' \" $1 ? {{id}}"]


@pytest.fixture
def victim(pg):
    name = f"victim_{uuid.uuid4().hex[:8]}"
    pg.execute(f"CREATE TABLE {name} (x int)")
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_pushed_data_stays_data(pg, scratch: str, victim: str, name: str) -> None:
    pg.execute(f"CREATE TABLE {scratch} (id int, name text, note text)")
    hostile = name.replace("victim", victim)
    doc = json.dumps({"id": 1, "name": hostile}).encode()
    put(doc, "-psql-query", f"INSERT INTO {scratch} (id, name, note) VALUES ({{{{id}}}}, '{{{{name}}}}', 'q')")
    put(doc, "-psql-query", f'INSERT INTO {scratch} (id, name, note) VALUES ({{{{id}}}}, "{{{{name}}}}", \'d\')')
    put(doc, "-psql-query", f"INSERT INTO {scratch} (id, name, note) VALUES ($1, $2, 'p')", "-psql-params",
        "{{id}},{{name}}")
    assert pg.execute(f"SELECT id, name, note FROM {scratch} ORDER BY note").fetchall() == [
        (1, hostile, "d"), (1, hostile, "p"), (1, hostile, "q")]
    assert pg.execute("SELECT to_regclass(%s)", [victim]).fetchone()[0] is not None


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_retrieved_rows_stays_data(pg, scratch: str, victim: str, name: str) -> None:
    hostile = name.replace("victim", victim)
    pg.execute(f"CREATE TABLE {scratch} (id int, name text, done text)")
    pg.execute(f"INSERT INTO {scratch} (id, name) VALUES (1, %s), (2, 'other')", [hostile])
    take("-psql-retrieve-query", f"SELECT id, name FROM {scratch} WHERE id = 1",
         "-psql-clear-query", f"UPDATE {scratch} SET done = 'yes:' || '{{{{0.name}}}}' WHERE name = {{{{0.name}}}}")
    assert pg.execute(f"SELECT id, done FROM {scratch} ORDER BY id").fetchall() == [(1, "yes:" + hostile), (2, None)]
    assert pg.execute("SELECT to_regclass(%s)", [victim]).fetchone()[0] is not None


def test_go_placeholders_in_any_order(pg, log_table: str) -> None:
    put(b'{"k": "second"}', "-psql-query", f"INSERT INTO {log_table} (a, b, c) VALUES ($2, $1, $2)",
        "-psql-params", "first,{{k}}")
    assert pg.execute(f"SELECT a, b, c FROM {log_table}").fetchone() == ("second", "first", "second")


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_payload_to_text_json_and_bytea_columns(pg, scratch: str) -> None:
    pg.execute(f"CREATE TABLE {scratch} (id serial, t text, j jsonb, b bytea)")
    data = '{"name": "zażółć", "n": 1}\n'.encode()
    ident = put(data, "-psql-query", f"INSERT INTO {scratch} (t, j, b) VALUES ($1, $2, $3) RETURNING id",
                "-psql-params", "{{pushx_payload}},{{pushx_payload}},{{pushx_payload}}")
    assert ident == "1"  # RETURNING gives pushx the id
    assert pg.execute(f"SELECT t, j, b FROM {scratch}").fetchone() == (data.decode(), {"name": "zażółć", "n": 1},
                                                                      data)


def test_pushx_binary_into_text_column_is_refused_not_mangled(pg, scratch: str) -> None:
    pg.execute(f"CREATE TABLE {scratch} (t text)")
    exc = refused(put, b"\xff\xfe", "-psql-query", f"INSERT INTO {scratch} (t) VALUES ({{{{pushx_payload}}}})")
    assert exc.exit_code == 69
    assert "not UTF-8" in str(exc) and "bytea" in str(exc)
    assert pg.execute(f"SELECT count(*) FROM {scratch}").fetchone()[0] == 0


def test_pushx_without_query_is_a_usage_error() -> None:
    """The original exited 0 having written nothing (pushx.md §6 #9)."""
    done = cli("pushx", data=b"lost?")
    assert done.returncode == 2
    assert "-psql-query (PUSHX_PSQL_QUERY) is required" in err(done)


def test_pushx_params_variable_is_read_and_a_flag_beats_it(pg, log_table: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """PUSHX_PSQL_QUERY_PARAMS (the original's name) sets the params; a flag replaces it (the original appended)."""
    query = f"INSERT INTO {log_table} (a) VALUES ($1)"
    monkeypatch.setenv("PUSHX_PSQL_QUERY_PARAMS", "from-variable")
    put(b"", "-psql-query", query)
    put(b"", "-psql-query", query, "-psql-params", "from-flag")
    assert [r[0] for r in pg.execute(f"SELECT a FROM {log_table} ORDER BY n")] == ["from-variable", "from-flag"]


def test_push_many_in_one_transaction(pg, log_table: str) -> None:
    args = [*CONN, "-psql-query", f"INSERT INTO {log_table} (a) VALUES ({{{{pushx_payload}}}}) RETURNING n"]
    with api.Producer(args) as producer:
        assert producer.push_many([b"a", b"b", b"c"]) == ["1", "2", "3"]
    with api.Producer(args) as producer:
        exc = refused(producer.push_many, [b"d", b"\xff"])  # the second fails: the first is rolled back
    assert exc.exit_code == 69
    assert [r[0] for r in pg.execute(f"SELECT a FROM {log_table} ORDER BY n")] == ["a", "b", "c"]


# ---------------------------------------------------------------------------------------------- delivery
def test_two_workers_take_each_row_once(pg, table: str, tmp_path: Path) -> None:
    backend = PgBackend(pg, table)
    pg.execute(f"INSERT INTO {table} (payload) SELECT convert_to(g::text, 'UTF8') FROM generate_series(1, 30) g")
    log = tmp_path / "done.log"
    script = "import sys, time; time.sleep(0.02); open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
    done = subprocess.run(backend.procx_argv(sys.executable, "-c", script, str(log),
                                             extra=("-daemon", "-until-empty", "-concurrency", "2",
                                                    "-pass-work-as-stdin")),
                          env=clean_env(), capture_output=True, timeout=60)
    assert done.returncode == 0, err(done)
    assert sorted(int(x) for x in log.read_text().split()) == list(range(1, 31))
    assert backend.pending() == 0


def test_a_held_row_is_skipped_by_others_and_comes_back_after_fail(pg, table: str) -> None:
    backend = PgBackend(pg, table)
    pg.execute(f"INSERT INTO {table} (payload) VALUES ('one')")
    args = backend.api_args("procx")
    with pytest.raises(RuntimeError), api.work(args) as work:
        assert work.payload == b"one"
        assert api.procx(args) is None  # locked: another worker sees no work
        raise RuntimeError("child failed")
    assert pg.execute(f"SELECT attempts FROM {table}").fetchone()[0] == 1  # the fail query ran and committed
    assert api.procx(args) == b"one"
    assert backend.pending() == 0


def test_without_transaction_statements_commit_on_their_own(pg, table: str) -> None:
    """The original's mode: the retrieve query claims nothing, so a second reader sees the same row."""
    pg.execute(f"INSERT INTO {table} (payload) VALUES ('one')")
    args = [*CONN, "-psql-retrieve-query", f"SELECT id, payload FROM {table} ORDER BY id LIMIT 1",
            "-psql-retrieve-field", "0.payload", "-psql-clear-query", f"DELETE FROM {table} WHERE id = {{{{0.id}}}}"]
    with api.work(args) as work:
        assert work.payload == b"one"
        assert api.procx(args[:-2]) == b"one"
    assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_wait_for_work_polls_until_a_row_arrives(pg, table: str) -> None:
    backend = PgBackend(pg, table)
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
def test_unreachable_port_is_one_line_exit_69() -> None:
    done = run("procx", "-driver", "postgres", "-psql-host", HOST, "-psql-port", "1", "-psql-user", "postgres",
               "-psql-password", "s3cret-p@ss", "-psql-retrieve-query", "SELECT 1")
    assert done.returncode == 69
    lines = err(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert "driver postgres" in lines[0] and "127.0.0.1:1" in lines[0]
    assert "s3cret" not in err(done)


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


def test_missing_table_consumes_nothing(pg, table: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = cli("procx", "-psql-retrieve-query", "SELECT * FROM no_such_table_x", "touch", str(marker))
    assert done.returncode == 69
    assert 'relation "no_such_table_x" does not exist' in err(done)
    assert "-psql-retrieve-query" in err(done)
    assert not marker.exists()
    # a clear query on a missing table: the work was done, the clear failed, the row stays (rolled back)
    pg.execute(f"INSERT INTO {table} (payload) VALUES ('keep')")
    backend = PgBackend(pg, table)
    args = [a if a != f"DELETE FROM {table} WHERE id = $1" else "DELETE FROM no_such_table_x WHERE id = $1"
            for a in backend.procx_args()]
    exc = refused(take, *args)
    assert exc.exit_code == 69
    assert "-psql-clear-query failed" in str(exc)
    assert backend.pending() == 1
    assert pg.execute(f"SELECT attempts FROM {table}").fetchone()[0] == 0


def test_malformed_query_consumes_nothing(pg, table: str) -> None:
    pg.execute(f"INSERT INTO {table} (payload) VALUES ('keep')")
    done = cli("procx", "-psql-retrieve-query", f"SELEC id FROM {table}", "-psql-clear-query", f"DELETE FROM {table}")
    assert done.returncode == 69
    assert "syntax error" in err(done) and "42601" in err(done)
    assert len(err(done).strip().splitlines()) == 1
    exc = refused(put, b"x", "-psql-query", f"INSERT INTO {table} (payload) VALUS ($1)", "-psql-params",
                  "{{pushx_payload}}")
    assert exc.exit_code == 69
    assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1


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
    assert done.returncode == 0, err(done)
    assert b"-psql-transaction" in done.stdout


def test_variables_configure_procx(jobs: str) -> None:
    env = clean_env(PROCX_DRIVER="postgres", PROCX_PSQL_HOST=HOST, PROCX_PSQL_USER="postgres",
                    PROCX_PSQL_DATABASE="test", PROCX_PSQL_RETRIEVE_QUERY=f"SELECT work FROM {jobs} ORDER BY id",
                    PROCX_PSQL_RETRIEVE_FIELD="1.work")
    done = subprocess.run([command("procx")], capture_output=True, env=env)
    assert done.returncode == 0, err(done)
    assert done.stdout == b"more"
