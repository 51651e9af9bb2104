"""cockroach: against PostgreSQL (wire-compatible), not CockroachDB.

No CockroachDB server can run here (reference/backends.md): these tests drive the cockroach driver's own options
and code path against the real PostgreSQL on 127.0.0.1:5432, which speaks the same wire protocol. What only
CockroachDB does (serializable retries, 40001 restarts, the routing id being accepted) stays untested.
"""

from __future__ import annotations

import json
import uuid

import pytest

from core import api
from core.errors import ProcxError
from tests.conformance import Conformance
from tests.drivers.test_postgres import HOST, PORT, PgBackend, pg_connect
from tests.support import run


@pytest.fixture(scope="module")
def pg():
    conn = pg_connect()
    yield conn
    conn.close()


@pytest.fixture
def table(pg) -> str:
    name = f"procx_crdb_{uuid.uuid4().hex[:12]}"
    pg.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, payload bytea NOT NULL, attempts int NOT NULL DEFAULT 0)")
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


class TestCockroachConformanceAgainstPostgresqlWireCompatibleNotCockroachdb(Conformance):
    """The conformance suite through the cockroach driver, against PostgreSQL (wire-compatible), not CockroachDB."""

    @pytest.fixture
    def backend(self, pg, table: str) -> PgBackend:
        return PgBackend(pg, table, driver="cockroach", prefix="cockroach")


CONN = ["-driver", "cockroach", "-cockroach-host", HOST, "-cockroach-port", str(PORT), "-cockroach-user", "postgres",
        "-cockroach-database", "test"]


def refused(fn, *args) -> ProcxError:
    with pytest.raises(ProcxError) as info:
        fn(*args)
    return info.value


def test_routing_id_flag_is_sent_against_postgresql_not_cockroachdb() -> None:
    """⚠ #16: the original read the routing id from the variable only. PostgreSQL refuses the `--cluster` option
    that CockroachDB Cloud reads, which shows the flag reached the server."""
    exc = refused(api.procx, [*CONN, "-cockroach-routing-id", "my-cluster-123", "-cockroach-retrieve-query",
                              "SELECT 1"])
    assert exc.exit_code == 69
    assert '"cluster"' in str(exc)


def test_routing_id_variable_is_sent_against_postgresql_not_cockroachdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUSHX_COCKROACH_ROUTING_ID", "my-cluster-123")
    exc = refused(api.pushx, b"x", [*CONN, "-cockroach-query", "SELECT 1"])
    assert '"cluster"' in str(exc)


def test_default_port_is_26257() -> None:
    done = run("procx", "-driver", "cockroach", "-cockroach-host", HOST, "-cockroach-retrieve-query", "SELECT 1")
    assert done.returncode == 69
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "driver cockroach" in lines[0] and "127.0.0.1:26257" in lines[0]


def test_templates_bound_and_injection_stays_data_against_postgresql_not_cockroachdb(pg, table: str) -> None:
    hostile = "x'); DROP TABLE " + table + "; --"
    api.pushx(json.dumps({"p": hostile}).encode(),
              [*CONN, "-cockroach-query", f"INSERT INTO {table} (payload) VALUES (convert_to('{{{{p}}}}', 'UTF8'))"])
    assert api.procx([*CONN, "-cockroach-retrieve-query", f"SELECT id, payload FROM {table}",
                      "-cockroach-retrieve-field", "0.payload", "-cockroach-clear-query",
                      f"DELETE FROM {table} WHERE id = $1", "-cockroach-clear-params", "{{0.id}}"]) == hostile.encode()
    assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_pushx_without_query_is_a_usage_error() -> None:
    done = run("pushx", *CONN, "-in", "x")
    assert done.returncode == 2
    assert "-cockroach-query (PUSHX_COCKROACH_QUERY) is required" in done.stderr.decode()


def test_ssl_mode_is_sent_against_postgresql_not_cockroachdb() -> None:
    exc = refused(api.procx, [*CONN, "-cockroach-ssl-mode", "verify-full", "-cockroach-retrieve-query", "SELECT 1"])
    assert exc.exit_code == 69
    assert "SSL" in str(exc) or "root certificate" in str(exc)
