"""What the SQL driver tests share: one driver's flags, calls and dialect (`SqlDriver`), tables on its server,
a queue table as the conformance backend (`SqlConformance`) and the cases every SQL driver passes alike
(`SqlDriverCases`).

A driver's test module defines a module-scoped `sql` fixture returning its `SqlDriver`, imports the fixtures of
sql_fixtures.py (`db`, `tables`, `jobs`) and derives a test class from each suite; its own tests cover only
what its dialect and driver do differently.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import api
from core.errors import ProcxError
from tests.conformance import Backend, Conformance
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import clean_env, run, wait_for

HOST = "127.0.0.1"


def refused(fn: Callable[..., object], *args: object, **kwargs: object) -> ProcxError:
    """Call `fn`, which must raise ProcxError; return the error."""
    with pytest.raises(ProcxError) as info:
        fn(*args, **kwargs)
    return info.value


def stderr_text(done: subprocess.CompletedProcess) -> str:
    """A finished command's standard error as text."""
    return done.stderr.decode(errors="replace")


@dataclass(frozen=True)
class SqlDriver:
    """One SQL driver as the tests drive it: its flags and server, and the dialect bits the shared cases need."""

    driver: str  # -driver
    prefix: str  # of its flags: -{prefix}-query
    port: int
    user: str
    numbered_params: bool  # placeholders are $1, $2 … (else ?)
    queue_columns: str  # the conformance queue: id (auto-numbered), payload (raw bytes), attempts
    serial: str  # an auto-numbered primary key column `n`
    returning_n: str  # what an INSERT appends so that pushx returns `n` ("" where the driver returns it)
    batch_breaker: bytes  # an item that fails to insert into a VARCHAR(10) column
    missing_table: str  # the error about the table no_such_table_x
    syntax_error: tuple[str, ...]  # what the error of a malformed statement holds
    connect: Callable[[], Any]  # a DB-API connection to the server (autocommit) for setting up and checking
    lock_holders: str  # the sessions holding row locks in the table named by %s (not this one)
    end_session: str  # ends the session whose id is %s, as an administrator would
    table_options: str = ""  # appended to CREATE TABLE

    def options(self, **values: str | bool) -> list[str]:
        """`retrieve_query="…"` -> `-psql-retrieve-query …`; True stands for a flag without a value."""
        out: list[str] = []
        for name, value in values.items():
            flag = f"-{self.prefix}-{name.replace('_', '-')}"
            out += [flag] if value is True else [flag, str(value)]
        return out

    @property
    def conn(self) -> list[str]:
        """The driver and its connection (host, port, user, database test)."""
        return ["-driver", self.driver, *self.options(host=HOST, port=str(self.port), user=self.user,
                                                      database="test")]

    def param(self, n: int) -> str:
        """The n-th statement placeholder (1-based)."""
        return f"${n}" if self.numbered_params else "?"

    def params(self, count: int) -> str:
        """`$1, $2, …` or `?, ?, …`."""
        return ", ".join(self.param(n) for n in range(1, count + 1))

    def take(self, *args: str, **options: str | bool) -> bytes | None:
        """In-process procx without a command: take one item, clear it, return its payload (None: no work)."""
        return api.procx([*self.conn, *args, *self.options(**options)])

    def put(self, data: bytes, *args: str, **options: str | bool) -> str | None:
        """In-process pushx."""
        return api.pushx(data, [*self.conn, *args, *self.options(**options)])

    def cli(self, tool: str, *args: str, data: bytes = b"", env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
        """The installed procx or pushx, connected."""
        return run(tool, *self.conn, *args, input=data, env=env)


class SqlDb:
    """A DB-API connection (psycopg or PyMySQL, autocommit) for setting up and checking tables; `%s` binds."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[object] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def all(self, sql: str, args: Sequence[object] | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(row) for row in cur.fetchall()]

    def one(self, sql: str, args: Sequence[object] | None = None) -> Any:
        """The first column of the first row."""
        return self.all(sql, args)[0][0]


class Tables:
    """`tables(columns)` -> the name of a fresh table; `drop_all()` removes every table made."""

    def __init__(self, db: SqlDb, sql: SqlDriver) -> None:
        self.db = db
        self.options = sql.table_options
        self.made: list[str] = []

    def __call__(self, columns: str, prefix: str = "procx_t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.db.execute(f"CREATE TABLE {name} ({columns}){self.options}")
        self.made.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.made:
            self.db.execute(f"DROP TABLE IF EXISTS {name}")


class SqlQueueBackend(Backend):
    """A fresh table used as a queue. pushx inserts the payload bound to a placeholder; procx takes the oldest
    row with SELECT … FOR UPDATE SKIP LOCKED inside -{prefix}-transaction and selects its payload column (exact
    bytes); clear deletes the row, fail counts an attempt and releases it."""

    supports_empty = False  # an empty selection is "no work" (the original's rule, procx.md §7.5 #35)
    redelivery_wait = 0.0  # a killed procx's transaction rolls back at once

    def __init__(self, sql: SqlDriver, tables: Tables) -> None:
        self.sql = sql
        self.driver = sql.driver
        self.db = tables.db
        self.table = tables(sql.queue_columns, prefix="procx_q")

    def common_args(self) -> list[str]:
        return self.sql.conn

    def push_args(self, n: int) -> list[str]:
        return self.sql.options(query=f"INSERT INTO {self.table} (payload) VALUES ({self.sql.param(1)})",
                                params="{{pushx_payload}}")

    def procx_args(self) -> list[str]:
        t = self.table
        return self.sql.options(
            retrieve_query=f"SELECT id, payload FROM {t} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
            retrieve_field="0.payload", transaction=True,
            clear_query=f"DELETE FROM {t} WHERE id = {self.sql.param(1)}", clear_params="{{0.id}}",
            fail_query=f"UPDATE {t} SET attempts = attempts + 1 WHERE id = {{{{0.id}}}}")

    def pending(self) -> int:
        return self.db.one(f"SELECT count(*) FROM {self.table}")

    def attempts(self) -> int:
        """The attempts of the one row left."""
        return self.db.one(f"SELECT attempts FROM {self.table}")


def assert_pushx_needs_a_query(sql: SqlDriver) -> None:
    """The original exited 0 having written nothing (pushx.md §6 #9)."""
    done = sql.cli("pushx", data=b"lost?")
    assert done.returncode == 2
    assert f"-{sql.prefix}-query (PUSHX_{sql.prefix.upper()}_QUERY) is required" in stderr_text(done)


FIELD_SELECTIONS = [
    ("0.work", b"do it"),
    ("1.id", b"8"),
    ("#.id", b"[7,8]"),
    ("#(id==8).work", b"more"),
    ("5.id", None),  # empty selection: no work
]


class SqlConformance(Conformance):
    """The conformance suite on a fresh queue table of the module's `sql` driver."""

    @pytest.fixture
    def backend(self, sql: SqlDriver, tables: Tables) -> SqlQueueBackend:
        return SqlQueueBackend(sql, tables)


class SqlDriverCases:
    """The cases every SQL driver passes alike, on the fixtures `sql`, `db`, `tables` and `jobs`."""

    # -- the held transaction ------------------------------------------------------------------------------------
    def test_a_held_transaction_whose_connection_dies_stops_the_child(self, sql: SqlDriver, tables: Tables,
                                                                      tmp_path: Path) -> None:
        """The keep-alive pings the transaction's connection while the child runs: once the server ended it (and
        rolled back, freeing the row for another procx), procx stops the child and leaves the row alone."""
        queue = SqlQueueBackend(sql, tables)
        queue.db.execute(f"INSERT INTO {queue.table} (payload) VALUES (%s)", [b"long job"])

        def end_the_session() -> None:
            holders = wait_for(lambda: queue.db.all(sql.lock_holders, [queue.table]))
            for (session,) in holders:
                queue.db.execute(sql.end_session, [session])

        events = lose_lease_while_child_runs([*sql.conn, *queue.procx_args(),
                                              *sql.options(transaction_keepalive="0.2s")], end_the_session, tmp_path)
        lost = next(e for e in events if e["event"] == "lease-lost")
        assert "the connection holding the transaction" in lost["reason"]
        assert (queue.pending(), queue.attempts()) == (1, 0)  # rolled back by the server: not failed, not cleared

    @pytest.mark.parametrize(("field", "payload"), FIELD_SELECTIONS)
    def test_retrieve_field_selects_like_the_reference(self, sql: SqlDriver, jobs: str, field: str,
                                                       payload: bytes | None) -> None:
        assert sql.take(retrieve_query=f"SELECT * FROM {jobs} ORDER BY id", retrieve_field=field) == payload

    # -- templates ----------------------------------------------------------------------------------------------
    def test_clear_params_keep_text_around_templates(self, sql: SqlDriver, db: SqlDb, jobs: str,
                                                     tables: Tables) -> None:
        """⚠ #42 fixed: `id-{{0.id}}` gives `id-7` (the original gave `7`); literals and bare templates as before."""
        log = tables("a TEXT, b TEXT, c TEXT")
        sql.take(retrieve_query=f"SELECT * FROM {jobs} ORDER BY id LIMIT 1",
                 clear_query=f"INSERT INTO {log} (a, b, c) VALUES ({sql.params(3)})",
                 clear_params="done,{{0.id}},id-{{0.id}}/{{0.name}}")
        assert db.all(f"SELECT a, b, c FROM {log}") == [("done", "7", "id-7/a<b")]

    def test_params_never_leak_between_items(self, sql: SqlDriver, db: SqlDb, tables: Tables) -> None:
        """⚠ #23: the original overwrote the clear params with the first item's values (one source, many items)."""
        name = tables("id INT PRIMARY KEY, done BOOL NOT NULL DEFAULT false")
        db.execute(f"INSERT INTO {name} (id) VALUES (1), (2), (3), (4)")
        args = [*sql.conn, *sql.options(
            retrieve_query=f"SELECT id FROM {name} WHERE NOT done ORDER BY id LIMIT 1", retrieve_field="0.id",
            clear_query=f"UPDATE {name} SET done = true WHERE id = {sql.param(1)}", clear_params="{{0.id}}")]
        seen = []
        for work in api.consume(args):
            seen.append(work.payload)
            work.clear()
        assert seen == [b"1", b"2", b"3", b"4"]
        assert db.one(f"SELECT count(*) FROM {name} WHERE done") == 4

    # -- pushx --------------------------------------------------------------------------------------------------
    def test_pushx_without_query_is_a_usage_error(self, sql: SqlDriver) -> None:
        assert_pushx_needs_a_query(sql)

    def test_pushx_params_variable_is_read_and_a_flag_beats_it(self, sql: SqlDriver, db: SqlDb, tables: Tables,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """PUSHX_…_QUERY_PARAMS (the original's name) sets the params; a flag replaces it (the original appended)."""
        log = tables(f"{sql.serial}, a TEXT")
        query = f"INSERT INTO {log} (a) VALUES ({sql.param(1)})"
        monkeypatch.setenv(f"PUSHX_{sql.prefix.upper()}_QUERY_PARAMS", "from-variable")
        sql.put(b"", query=query)
        sql.put(b"", query=query, params="from-flag")
        assert db.all(f"SELECT a FROM {log} ORDER BY n") == [("from-variable",), ("from-flag",)]

    def test_push_many_in_one_transaction(self, sql: SqlDriver, db: SqlDb, tables: Tables) -> None:
        log = tables(f"{sql.serial}, a VARCHAR(10)")
        args = [*sql.conn, *sql.options(query=f"INSERT INTO {log} (a) VALUES ({{{{pushx_payload}}}}){sql.returning_n}")]
        with api.Producer(args) as producer:
            assert producer.push_many([b"a", b"b", b"c"]) == ["1", "2", "3"]
        with api.Producer(args) as producer:
            exc = refused(producer.push_many, [b"d", sql.batch_breaker])  # the second fails: the first is rolled back
        assert exc.exit_code == 69
        assert db.all(f"SELECT a FROM {log} ORDER BY n") == [("a",), ("b",), ("c",)]

    # -- delivery -----------------------------------------------------------------------------------------------
    def test_two_workers_take_each_row_once(self, sql: SqlDriver, tables: Tables, tmp_path: Path) -> None:
        backend = SqlQueueBackend(sql, tables)
        backend.db.execute(f"INSERT INTO {backend.table} (payload) VALUES "
                           + ", ".join(f"('{i}')" for i in range(1, 31)))
        log = tmp_path / "done.log"
        script = "import sys, time; time.sleep(0.02); open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
        done = subprocess.run(backend.procx_argv(sys.executable, "-c", script, str(log),
                                                 extra=("-daemon", "-until-empty", "-concurrency", "2",
                                                        "-pass-work-as-stdin")),
                              env=clean_env(), capture_output=True, timeout=60)
        assert done.returncode == 0, stderr_text(done)
        assert sorted(int(x) for x in log.read_text().split()) == list(range(1, 31))
        assert backend.pending() == 0

    def test_a_held_row_is_skipped_by_others_and_comes_back_after_fail(self, sql: SqlDriver, tables: Tables) -> None:
        backend = SqlQueueBackend(sql, tables)
        backend.db.execute(f"INSERT INTO {backend.table} (payload) VALUES ('one')")
        args = backend.api_args("procx")
        with pytest.raises(RuntimeError), api.work(args) as work:
            assert work.payload == b"one"
            assert api.procx(args) is None  # locked: another worker sees no work
            raise RuntimeError("child failed")
        assert backend.attempts() == 1  # the fail query ran and committed
        assert api.procx(args) == b"one"
        assert backend.pending() == 0

    # -- bad input ----------------------------------------------------------------------------------------------
    def test_unreachable_port_is_one_line_exit_69(self, sql: SqlDriver) -> None:
        """Both sides: one line naming the driver and the address, never the password."""
        server = sql.options(host=HOST, port="1", user=sql.user, password="s3cret-p@ss")
        for tool, work in (("procx", sql.options(retrieve_query="SELECT 1")),
                           ("pushx", [*sql.options(query="SELECT 1"), "-in", "x"])):
            done = run(tool, "-driver", sql.driver, *server, *work)
            assert done.returncode == 69, tool
            lines = stderr_text(done).strip().splitlines()
            assert len(lines) == 1, lines
            assert f"driver {sql.driver}" in lines[0] and "127.0.0.1:1" in lines[0]
            assert "s3cret" not in stderr_text(done)

    def test_missing_table_consumes_nothing(self, sql: SqlDriver, tables: Tables, tmp_path: Path) -> None:
        marker = tmp_path / "ran"
        done = sql.cli("procx", *sql.options(retrieve_query="SELECT * FROM no_such_table_x"), "touch", str(marker))
        assert done.returncode == 69
        assert sql.missing_table in stderr_text(done) and f"-{sql.prefix}-retrieve-query" in stderr_text(done)
        assert not marker.exists()
        # a clear query on a missing table: the work was done, the clear failed, the row stays (rolled back)
        backend = SqlQueueBackend(sql, tables)
        backend.db.execute(f"INSERT INTO {backend.table} (payload) VALUES ('keep')")
        args = [f"DELETE FROM no_such_table_x WHERE id = {sql.param(1)}" if a.startswith("DELETE") else a
                for a in backend.procx_args()]
        exc = refused(sql.take, *args)
        assert exc.exit_code == 69
        assert f"-{sql.prefix}-clear-query failed" in str(exc)
        assert backend.pending() == 1
        assert backend.attempts() == 0

    def test_malformed_query_consumes_nothing(self, sql: SqlDriver, db: SqlDb, tables: Tables) -> None:
        t = tables(sql.queue_columns)
        db.execute(f"INSERT INTO {t} (payload) VALUES ('keep')")
        done = sql.cli("procx", *sql.options(retrieve_query=f"SELEC id FROM {t}", clear_query=f"DELETE FROM {t}"))
        assert done.returncode == 69
        assert all(part in stderr_text(done) for part in sql.syntax_error), stderr_text(done)
        assert len(stderr_text(done).strip().splitlines()) == 1
        exc = refused(sql.put, b"x", query=f"INSERT INTO {t} (payload) VALUS ({sql.param(1)})",
                      params="{{pushx_payload}}")
        assert exc.exit_code == 69
        assert db.one(f"SELECT count(*) FROM {t}") == 1
