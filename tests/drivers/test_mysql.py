"""mysql: the conformance suite, the cases every SQL driver shares (sql_cases.py) and the driver's own rules,
against the real MariaDB 10.11 on 127.0.0.1:3306.

The queue of the conformance suite is an InnoDB table per test (id auto_increment, payload LONGBLOB, attempts).
pushx inserts with `?` bound to {{pushx_payload}} (raw bytes: _binary); procx takes the oldest row with SELECT …
FOR UPDATE SKIP LOCKED (MariaDB 10.6+) inside -mysql-transaction, selects the payload column with
-mysql-retrieve-field 0.payload (exact bytes), clear deletes the row, fail counts an attempt and releases it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from core import api
from tests.drivers.sql_cases import HOST, SqlConformance, SqlDb, SqlDriver, SqlDriverCases, Tables, refused, stderr_text
from tests.drivers.sql_fixtures import db_fixture, jobs_fixture, tables_fixture  # noqa: F401 - fixtures
from tests.support import run

PORT = 3306


def my_connect():
    import pymysql

    try:
        return pymysql.connect(host=HOST, port=PORT, user="root", database="test", autocommit=True,
                               connect_timeout=5, charset="utf8mb4")
    except pymysql.Error as exc:  # a missing server fails the tests, never skips them
        pytest.fail(f"MariaDB is not reachable on {HOST}:{PORT}: {exc}")


MYSQL = SqlDriver(
    driver="mysql", prefix="mysql", port=PORT, user="root", numbered_params=False,
    queue_columns="id INT AUTO_INCREMENT PRIMARY KEY, payload LONGBLOB NOT NULL, attempts INT NOT NULL DEFAULT 0",
    serial="n INT AUTO_INCREMENT PRIMARY KEY", returning_n="", batch_breaker=b"x" * 20,
    missing_table="no_such_table_x' doesn't exist", syntax_error=("SQL syntax", "1064"), connect=my_connect,
    # InnoDB does not say which table a transaction locks rows in: any other session holding row locks
    lock_holders="SELECT trx_mysql_thread_id FROM information_schema.innodb_trx WHERE trx_rows_locked > 0 "
                 "AND trx_mysql_thread_id <> CONNECTION_ID() AND LENGTH(%s) > 0",
    end_session="KILL %s", table_options=" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
CONN = MYSQL.conn
take, put = MYSQL.take, MYSQL.put


@pytest.fixture(scope="module")
def sql() -> SqlDriver:
    """The driver under test, for the fixtures and cases of sql_fixtures.py and sql_cases.py."""
    return MYSQL


class TestMysqlConformance(SqlConformance):
    """The queue is an InnoDB table: LONGBLOB payloads, SKIP LOCKED (MariaDB 10.6+)."""


class TestMysqlAsEverySqlDriver(SqlDriverCases):
    """What every SQL driver does alike (sql_cases.py), against MariaDB."""


# ---------------------------------------------------------------------------------------------- rows JSON
def test_rows_json_is_the_go_encoding_with_numbers_as_numbers(jobs: str) -> None:
    """⚠ #43: without params the original's text protocol turned every value into a string ("id":"7")."""
    expected = b'[{"id":7,"name":"a\\u003cb","work":"do it"},{"id":8,"name":"c","work":"more"}]'
    assert take("-mysql-retrieve-query", f"SELECT * FROM {jobs} ORDER BY id") == expected
    assert take("-mysql-retrieve-query", f"SELECT * FROM {jobs} WHERE id > ? ORDER BY id",
                "-mysql-retrieve-params", "0") == expected


def test_column_types_are_the_same_with_and_without_params(tables: Tables) -> None:
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


def test_blob_is_text_not_base64_in_selections_and_params(db: SqlDb, tables: Tables) -> None:
    """⚠ #43: the original used base64 for byte values under a retrieve-field and in clear/fail params."""
    name = tables("id INT, b BLOB, seen TEXT")
    db.execute(f"INSERT INTO {name} VALUES (1, 'abc', NULL)")
    assert take("-mysql-retrieve-query", f"SELECT id, b FROM {name}", "-mysql-retrieve-field", "0",
                "-mysql-clear-query", f"UPDATE {name} SET seen = ? WHERE id = 1", "-mysql-clear-params",
                "{{0.b}}") == b'{"b":"abc","id":1}'
    assert db.one(f"SELECT seen FROM {name}") == "abc"


# ---------------------------------------------------------------------------------------------- injection
HOSTILE = ["x'); DROP TABLE victim; --", 'x"); DROP TABLE victim; --', "50% off \\' \\\" \\ ? {{id}}"]


@pytest.fixture
def victim(tables: Tables) -> str:
    """A table the hostile strings try to drop."""
    return tables("x INT", prefix="victim")


def exists(db: SqlDb, table: str) -> bool:
    return db.one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'test' AND table_name = %s",
                  [table]) == 1


@pytest.mark.parametrize("name", HOSTILE)
def test_injection_in_pushed_data_stays_data(db: SqlDb, tables: Tables, victim: str, name: str) -> None:
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
def test_injection_in_retrieved_rows_stays_data(db: SqlDb, tables: Tables, victim: str, name: str) -> None:
    hostile = name.replace("victim", victim)
    t = tables("id INT, name TEXT, done TEXT")
    db.execute(f"INSERT INTO {t} (id, name) VALUES (1, %s), (2, 'other')", [hostile])
    take("-mysql-retrieve-query", f"SELECT id, name FROM {t} WHERE id = 1",
         "-mysql-clear-query", f"UPDATE {t} SET done = CONCAT('yes:', \"{{{{0.name}}}}\") WHERE name = {{{{0.name}}}}")
    assert db.all(f"SELECT id, done FROM {t} ORDER BY id") == [(1, "yes:" + hostile), (2, None)]
    assert exists(db, victim)


def test_backslash_escapes_in_literals_are_understood(db: SqlDb, tables: Tables) -> None:
    t = tables("n INT AUTO_INCREMENT PRIMARY KEY, a TEXT, b TEXT")
    put(b'{"v": "x"}', "-mysql-query", f"INSERT INTO {t} (a) VALUES ('it\\'s {{{{v}}}}\\n')")
    put(b'{"v": "y"}', "-mysql-query", f"INSERT INTO {t} (a, b) VALUES ('it\\'s ?\\\\', ?)", "-mysql-params",
        "{{v}}")
    assert db.all(f"SELECT a, b FROM {t} ORDER BY n") == [("it's x\n", None), ("it's ?\\", "y")]


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_payload_to_text_json_and_blob_columns(db: SqlDb, tables: Tables) -> None:
    t = tables("id INT AUTO_INCREMENT PRIMARY KEY, t TEXT, j JSON, b LONGBLOB")
    data = '{"name": "zażółć", "n": 1}\n'.encode()
    assert put(data, "-mysql-query", f"INSERT INTO {t} (t, j, b) VALUES (?, ?, ?)", "-mysql-params",
               "{{pushx_payload}},{{pushx_payload}},{{pushx_payload}}") == "1"  # the auto_increment id
    assert db.all(f"SELECT t, j, b FROM {t}") == [(data.decode(), data.decode(), data)]


def test_pushx_binary_into_text_column_is_refused_not_mangled(db: SqlDb, tables: Tables) -> None:
    t = tables("t TEXT")
    exc = refused(put, b"\xff\xfe", "-mysql-query", f"INSERT INTO {t} (t) VALUES ({{{{pushx_payload}}}})")
    assert exc.exit_code == 69
    assert "Incorrect string value" in str(exc)
    assert db.one(f"SELECT count(*) FROM {t}") == 0


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def user(db: SqlDb) -> Iterator[tuple[str, str]]:
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
    lines = stderr_text(done).strip().splitlines()
    assert len(lines) == 1, lines
    assert "Access denied" in lines[0] and "driver mysql" in lines[0] and "127.0.0.1:3306" in lines[0]
    assert "s3cret" not in lines[0]


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
