"""mysql: the conformance suite and the driver's own rules, against the real MariaDB 10.11 on 127.0.0.1:3306.

The queue of the conformance suite is an InnoDB table per test (id auto_increment, payload LONGBLOB, attempts).
pushx inserts with `?` bound to {{pushx_payload}} (raw bytes: _binary); procx takes the oldest row with SELECT …
FOR UPDATE SKIP LOCKED (MariaDB 10.6+) inside -mysql-transaction, selects the payload column with
-mysql-retrieve-field 0.payload (exact bytes), clear deletes the row, fail counts an attempt and releases it.
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
from tests.support import clean_env, run

HOST, PORT = "127.0.0.1", 3306


def my_connect():
    import pymysql

    try:
        return pymysql.connect(host=HOST, port=PORT, user="root", database="test", autocommit=True,
                               connect_timeout=5, charset="utf8mb4")
    except pymysql.Error as exc:  # a missing server fails the tests, never skips them
        pytest.fail(f"MariaDB is not reachable on {HOST}:{PORT}: {exc}")


class Db:
    """A tiny helper over a PyMySQL connection for setting up and checking tables."""

    def __init__(self) -> None:
        self.conn = my_connect()

    def execute(self, sql: str, args: object = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def all(self, sql: str, args: object = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(r) for r in cur.fetchall()]

    def one(self, sql: str, args: object = None) -> object:
        return self.all(sql, args)[0][0]


@pytest.fixture(scope="module")
def db():
    d = Db()
    yield d
    d.conn.close()


@pytest.fixture
def tables(db):
    """new(columns) -> a fresh table name; every table is dropped afterwards."""
    made: list[str] = []

    def new(columns: str) -> str:
        name = f"procx_t_{uuid.uuid4().hex[:12]}"
        db.execute(f"CREATE TABLE {name} ({columns}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        made.append(name)
        return name

    yield new
    for name in made:
        db.execute(f"DROP TABLE IF EXISTS {name}")


QUEUE = "id INT AUTO_INCREMENT PRIMARY KEY, payload LONGBLOB NOT NULL, attempts INT NOT NULL DEFAULT 0"


class MysqlBackend(Backend):
    driver = "mysql"
    supports_empty = False  # an empty selection is "no work" (the original's rule, procx.md §7.5 #35)
    redelivery_wait = 0.0  # a killed procx's transaction rolls back at once

    def __init__(self, db: Db, table: str) -> None:
        self.db = db
        self.table = table

    def common_args(self) -> list[str]:
        return ["-driver", "mysql", "-mysql-host", HOST, "-mysql-port", str(PORT), "-mysql-user", "root",
                "-mysql-database", "test"]

    def push_args(self, n: int) -> list[str]:
        return ["-mysql-query", f"INSERT INTO {self.table} (payload) VALUES (?)", "-mysql-params", "{{pushx_payload}}"]

    def procx_args(self) -> list[str]:
        t = self.table
        return ["-mysql-retrieve-query", f"SELECT id, payload FROM {t} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                "-mysql-retrieve-field", "0.payload", "-mysql-transaction",
                "-mysql-clear-query", f"DELETE FROM {t} WHERE id = ?", "-mysql-clear-params", "{{0.id}}",
                "-mysql-fail-query", f"UPDATE {t} SET attempts = attempts + 1 WHERE id = {{{{0.id}}}}"]

    def pending(self) -> int:
        return self.db.one(f"SELECT count(*) FROM {self.table}")


class TestMysqlConformance(Conformance):
    @pytest.fixture
    def backend(self, db: Db, tables) -> MysqlBackend:
        return MysqlBackend(db, tables(QUEUE))


CONN = ["-driver", "mysql", "-mysql-host", HOST, "-mysql-port", str(PORT), "-mysql-user", "root",
        "-mysql-database", "test"]


def take(*args: str) -> bytes | None:
    """In-process procx without a command: take one item, clear it, return its payload (None: no work)."""
    return api.procx([*CONN, *args])


def put(data: bytes, *args: str) -> str | None:
    return api.pushx(data, [*CONN, *args])


def refused(fn, *args, **kwargs) -> ProcxError:
    with pytest.raises(ProcxError) as info:
        fn(*args, **kwargs)
    return info.value


def err(done: subprocess.CompletedProcess) -> str:
    return done.stderr.decode(errors="replace")


# ---------------------------------------------------------------------------------------------- rows JSON
@pytest.fixture
def jobs(db: Db, tables) -> str:
    name = tables("id INT PRIMARY KEY, name VARCHAR(20), work TEXT")
    db.execute(f"INSERT INTO {name} VALUES (7, 'a<b', 'do it'), (8, 'c', 'more')")
    return name


def test_rows_json_is_the_go_encoding_with_numbers_as_numbers(jobs: str) -> None:
    """⚠ #43: without params the original's text protocol turned every value into a string ("id":"7")."""
    expected = b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'
    assert take("-mysql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id") == expected
    assert take("-mysql-retrieve-query", f"SELECT * FROM {jobs} WHERE id > ? ORDER BY id",
                "-mysql-retrieve-params", "0") == expected


@pytest.mark.parametrize(("field", "payload"), [
    ("0.work", b"do it"), ("1.id", b"8"), ("#.id", b"[7,8]"), ("#(id==8).work", b"more"), ("5.id", None),
])
def test_retrieve_field_selects_like_the_reference(jobs: str, field: str, payload: bytes | None) -> None:
    assert take("-mysql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id", "-mysql-retrieve-field", field) == payload


def test_column_types_are_the_same_with_and_without_params(tables) -> None:
    name = tables("i INT, big BIGINT UNSIGNED, f DOUBLE, d DECIMAL(8,2), dt DATETIME(3), ts TIMESTAMP NULL, "
                  "da DATE, ti TIME, y YEAR, b LONGBLOB, t TEXT, j JSON, bi BIT(3), tb TINYINT(1), e ENUM('a','b'), "
                  "nul INT")
    api.pushx(b"", [*CONN, "-mysql-query",
                    f"INSERT INTO {name} VALUES (7, 18446744073709551615, 1.5, 1.50, '2024-01-02 03:04:05.5', "
                    "'2024-01-02 03:04:05', '2024-01-02', '01:02:03', 2024, x'61ff00', 'zażółć', '{\"a\": 1}', "
                    "b'101', 1, 'b', NULL)"])
    expected = [{"i": 7, "big": 18446744073709551615, "f": 1.5, "d": "1.50", "dt": "2024-01-02 03:04:05.500",
                 "ts": "2024-01-02 03:04:05", "da": "2024-01-02", "ti": "01:02:03", "y": 2024, "b": "a\ufffd\x00",
                 "t": "zażółć", "j": '{"a": 1}', "bi": "\x05", "tb": 1, "e": "b", "nul": None}]
    assert json.loads(take("-mysql-retrieve-query", f"SELECT * FROM {name}")) == expected
    assert json.loads(take("-mysql-retrieve-query", f"SELECT * FROM {name} WHERE i = ?",
                           "-mysql-retrieve-params", "7")) == expected


def test_percent_signs_with_and_without_params(jobs: str) -> None:
    query = f"SELECT id FROM {jobs} WHERE name LIKE 'a%' AND work LIKE '%o%'"
    assert take("-mysql-retrieve-query", query, "-mysql-retrieve-field", "0.id") == b"7"
    assert take("-mysql-retrieve-query", query + " AND id > ?", "-mysql-retrieve-params", "1",
                "-mysql-retrieve-field", "0.id") == b"7"


def test_blob_is_text_not_base64_in_selections_and_params(db: Db, tables) -> None:
    """⚠ #43: the original used base64 for byte values under a retrieve-field and in clear/fail params."""
    name = tables("id INT, b BLOB, seen TEXT")
    db.execute(f"INSERT INTO {name} VALUES (1, 'abc', NULL)")
    assert take("-mysql-retrieve-query", f"SELECT id, b FROM {name}", "-mysql-retrieve-field", "0",
                "-mysql-clear-query", f"UPDATE {name} SET seen = ? WHERE id = 1", "-mysql-clear-params",
                "{{0.b}}") == b'{"b":"abc","id":1}'
    assert db.one(f"SELECT seen FROM {name}") == "abc"


# ---------------------------------------------------------------------------------------------- templates
def test_clear_params_keep_text_around_templates(db: Db, jobs: str, tables) -> None:
    """⚠ #42 fixed: `id-{{0.id}}` gives `id-7` (the original gave `7`)."""
    log = tables("a TEXT, b TEXT, c TEXT")
    take("-mysql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id LIMIT 1",
         "-mysql-clear-query", f"INSERT INTO {log} (a, b, c) VALUES (?, ?, ?)",
         "-mysql-clear-params", "done,{{0.id}},id-{{0.id}}/{{0.name}}")
    assert db.all(f"SELECT a, b, c FROM {log}") == [("done", "7", "id-7/a<b")]


def test_params_never_leak_between_items(db: Db, tables) -> None:
    """⚠ #23: the original overwrote the clear params with the first item's values (one source, many items)."""
    name = tables("id INT PRIMARY KEY, done BOOL NOT NULL DEFAULT 0")
    db.execute(f"INSERT INTO {name} (id) VALUES (1), (2), (3), (4)")
    args = [*CONN, "-mysql-retrieve-query", f"SELECT id FROM {name} WHERE NOT done ORDER BY id LIMIT 1",
            "-mysql-retrieve-field", "0.id",
            "-mysql-clear-query", f"UPDATE {name} SET done = 1 WHERE id = ?", "-mysql-clear-params", "{{0.id}}"]
    seen = []
    for work in api.consume(args):
        seen.append(work.payload)
        work.clear()
    assert seen == [b"1", b"2", b"3", b"4"]
    assert db.one(f"SELECT count(*) FROM {name} WHERE done") == 4


HOSTILE = ["x'); DROP TABLE victim; --", 'x"); DROP TABLE victim; --', "50% off \\' \\\" \\ ? {{id}}"]


@pytest.fixture
def victim(db: Db):
    name = f"victim_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {name} (x INT)")
    yield name
    db.execute(f"DROP TABLE IF EXISTS {name}")


def exists(db: Db, table: str) -> bool:
    return db.one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'test' AND table_name = %s",
                  [table]) == 1


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_pushed_data_stays_data(db: Db, tables, victim: str, name: str) -> None:
    t = tables("id INT, name TEXT, note TEXT")
    hostile = name.replace("victim", victim)
    doc = json.dumps({"id": 1, "name": hostile}).encode()
    put(doc, "-mysql-query", f"INSERT INTO {t} (id, name, note) VALUES ({{{{id}}}}, '{{{{name}}}}', 'q')")
    put(doc, "-mysql-query", f'INSERT INTO {t} (id, name, note) VALUES ({{{{id}}}}, "{{{{name}}}}", "d")')
    put(doc, "-mysql-query", f"INSERT INTO {t} (id, name, note) VALUES (?, ?, 'p')", "-mysql-params", "{{id}},{{name}}")
    assert db.all(f"SELECT id, name, note FROM {t} ORDER BY note") == [
        (1, hostile, "d"), (1, hostile, "p"), (1, hostile, "q")]
    assert exists(db, victim)


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_retrieved_rows_stays_data(db: Db, tables, victim: str, name: str) -> None:
    hostile = name.replace("victim", victim)
    t = tables("id INT, name TEXT, done TEXT")
    db.execute(f"INSERT INTO {t} (id, name) VALUES (1, %s), (2, 'other')", [hostile])
    take("-mysql-retrieve-query", f"SELECT id, name FROM {t} WHERE id = 1",
         "-mysql-clear-query", f"UPDATE {t} SET done = CONCAT('yes:', \"{{{{0.name}}}}\") WHERE name = {{{{0.name}}}}")
    assert db.all(f"SELECT id, done FROM {t} ORDER BY id") == [(1, "yes:" + hostile), (2, None)]
    assert exists(db, victim)


def test_backslash_escapes_in_literals_are_understood(db: Db, tables) -> None:
    t = tables("n INT AUTO_INCREMENT PRIMARY KEY, a TEXT, b TEXT")
    put(b'{"v": "x"}', "-mysql-query", f"INSERT INTO {t} (a) VALUES ('it\\'s {{{{v}}}}\\n')")
    put(b'{"v": "y"}', "-mysql-query", f"INSERT INTO {t} (a, b) VALUES ('it\\'s ?\\\\', ?)", "-mysql-params",
        "{{v}}")
    assert db.all(f"SELECT a, b FROM {t} ORDER BY n") == [("it's x\n", None), ("it's ?\\", "y")]


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_payload_to_text_json_and_blob_columns(db: Db, tables) -> None:
    t = tables("id INT AUTO_INCREMENT PRIMARY KEY, t TEXT, j JSON, b LONGBLOB")
    data = '{"name": "zażółć", "n": 1}\n'.encode()
    assert put(data, "-mysql-query", f"INSERT INTO {t} (t, j, b) VALUES (?, ?, ?)", "-mysql-params",
               "{{pushx_payload}},{{pushx_payload}},{{pushx_payload}}") == "1"  # the auto_increment id
    assert db.all(f"SELECT t, j, b FROM {t}") == [(data.decode(), data.decode(), data)]


def test_pushx_binary_into_text_column_is_refused_not_mangled(db: Db, tables) -> None:
    t = tables("t TEXT")
    exc = refused(put, b"\xff\xfe", "-mysql-query", f"INSERT INTO {t} (t) VALUES ({{{{pushx_payload}}}})")
    assert exc.exit_code == 69
    assert "Incorrect string value" in str(exc)
    assert db.one(f"SELECT count(*) FROM {t}") == 0


def test_pushx_without_query_is_a_usage_error() -> None:
    """The original exited 0 having written nothing (pushx.md §6 #9)."""
    done = run("pushx", *CONN, input=b"lost?")
    assert done.returncode == 2
    assert "-mysql-query (PUSHX_MYSQL_QUERY) is required" in err(done)


def test_pushx_params_variable_is_read_and_a_flag_beats_it(db: Db, tables, monkeypatch: pytest.MonkeyPatch) -> None:
    t = tables("n INT AUTO_INCREMENT PRIMARY KEY, a TEXT")
    monkeypatch.setenv("PUSHX_MYSQL_QUERY_PARAMS", "from-variable")
    put(b"", "-mysql-query", f"INSERT INTO {t} (a) VALUES (?)")
    put(b"", "-mysql-query", f"INSERT INTO {t} (a) VALUES (?)", "-mysql-params", "from-flag")
    assert db.all(f"SELECT a FROM {t} ORDER BY n") == [("from-variable",), ("from-flag",)]


def test_push_many_in_one_transaction(db: Db, tables) -> None:
    t = tables("n INT AUTO_INCREMENT PRIMARY KEY, a VARCHAR(10)")
    args = [*CONN, "-mysql-query", f"INSERT INTO {t} (a) VALUES ({{{{pushx_payload}}}})"]
    with api.Producer(args) as producer:
        assert producer.push_many([b"a", b"b"]) == ["1", "2"]
    with api.Producer(args) as producer:
        exc = refused(producer.push_many, [b"c", b"x" * 20])  # the second is too long: the first is rolled back
    assert exc.exit_code == 69
    assert db.all(f"SELECT a FROM {t} ORDER BY n") == [("a",), ("b",)]


# ---------------------------------------------------------------------------------------------- delivery
def test_two_workers_take_each_row_once(db: Db, tables, tmp_path: Path) -> None:
    backend = MysqlBackend(db, tables(QUEUE))
    db.execute(f"INSERT INTO {backend.table} (payload) VALUES " + ", ".join(f"('{i}')" for i in range(1, 31)))
    log = tmp_path / "done.log"
    script = "import sys, time; time.sleep(0.02); open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
    done = subprocess.run(backend.procx_argv(sys.executable, "-c", script, str(log),
                                             extra=("-daemon", "-until-empty", "-concurrency", "2",
                                                    "-pass-work-as-stdin")),
                          env=clean_env(), capture_output=True, timeout=60)
    assert done.returncode == 0, err(done)
    assert sorted(int(x) for x in log.read_text().split()) == list(range(1, 31))
    assert backend.pending() == 0


def test_a_held_row_is_skipped_by_others_and_comes_back_after_fail(db: Db, tables) -> None:
    backend = MysqlBackend(db, tables(QUEUE))
    db.execute(f"INSERT INTO {backend.table} (payload) VALUES ('one')")
    args = backend.api_args("procx")
    with pytest.raises(RuntimeError), api.work(args) as work:
        assert work.payload == b"one"
        assert api.procx(args) is None  # locked: another worker sees no work
        raise RuntimeError("child failed")
    assert db.one(f"SELECT attempts FROM {backend.table}") == 1  # the fail query ran and committed
    assert api.procx(args) == b"one"
    assert backend.pending() == 0


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def user(db: Db):
    """A user with a password full of DSN characters (root has none here)."""
    name, password = f"procx_{uuid.uuid4().hex[:8]}", "p@ss:w/rd;x=y&z 'q' \"\\"
    db.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY %s", [password])
    db.execute(f"GRANT ALL ON test.* TO '{name}'@'127.0.0.1'")
    yield name, password
    db.execute(f"DROP USER '{name}'@'127.0.0.1'")


def test_password_is_passed_intact_and_a_wrong_one_is_refused(user: tuple[str, str], jobs: str) -> None:
    name, password = user
    args = ["-driver", "mysql", "-mysql-host", HOST, "-mysql-user", name, "-mysql-database", "test",
            "-mysql-retrieve-query", f"SELECT id FROM {jobs} ORDER BY id LIMIT 1", "-mysql-retrieve-field", "0.id"]
    assert api.procx([*args, "-mysql-password", password]) == b"7"
    done = run("procx", *args, "-mysql-password", "wrong-s3cret")
    assert done.returncode == 69
    lines = err(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert "Access denied" in lines[0] and "driver mysql" in lines[0] and "127.0.0.1:3306" in lines[0]
    assert "s3cret" not in lines[0]


def test_unreachable_port_is_one_line_exit_69() -> None:
    done = run("pushx", "-driver", "mysql", "-mysql-host", HOST, "-mysql-port", "1", "-mysql-password", "s3cret",
               "-mysql-query", "SELECT 1", "-in", "x")
    assert done.returncode == 69
    lines = err(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert "driver mysql" in lines[0] and "127.0.0.1:1" in lines[0]
    assert "s3cret" not in err(done)


def test_missing_table_consumes_nothing(db: Db, tables, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = run("procx", *CONN, "-mysql-retrieve-query", "SELECT * FROM no_such_table_x", "touch", str(marker))
    assert done.returncode == 69
    assert "no_such_table_x' doesn't exist" in err(done) and "-mysql-retrieve-query" in err(done)
    assert not marker.exists()
    backend = MysqlBackend(db, tables(QUEUE))
    db.execute(f"INSERT INTO {backend.table} (payload) VALUES ('keep')")
    args = [a if not a.startswith("DELETE") else "DELETE FROM no_such_table_x WHERE id = ?"
            for a in backend.procx_args()]
    exc = refused(take, *args)
    assert exc.exit_code == 69
    assert "-mysql-clear-query failed" in str(exc)
    assert backend.pending() == 1
    assert db.one(f"SELECT attempts FROM {backend.table}") == 0


def test_malformed_query_consumes_nothing(db: Db, tables) -> None:
    t = tables(QUEUE)
    db.execute(f"INSERT INTO {t} (payload) VALUES ('keep')")
    done = run("procx", *CONN, "-mysql-retrieve-query", f"SELEC id FROM {t}", "-mysql-clear-query", f"DELETE FROM {t}")
    assert done.returncode == 69
    assert "SQL syntax" in err(done) and "1064" in err(done)
    assert len(err(done).strip().splitlines()) == 1
    exc = refused(put, b"x", "-mysql-query", f"INSERT INTO {t} (payload) VALUS (?)", "-mysql-params",
                  "{{pushx_payload}}")
    assert exc.exit_code == 69
    assert db.one(f"SELECT count(*) FROM {t}") == 1


@pytest.mark.parametrize(("args", "message"), [
    (("-mysql-clear-query", "DELETE FROM t WHERE id = {{0.id}} AND x = ?", "-mysql-clear-params", "a"),
     "holds {{templates}}"),
    (("-mysql-clear-query", "DELETE FROM t WHERE id = ? AND x = ?", "-mysql-clear-params", "a"), "no parameter"),
    (("-mysql-retrieve-params", "1",), "not used by any placeholder"),
])
def test_bad_statement_settings_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    exc = refused(take, "-mysql-retrieve-query", "SELECT 1", *args)
    assert exc.exit_code == 2
    assert message in str(exc)
