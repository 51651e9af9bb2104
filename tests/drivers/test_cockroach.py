"""cockroach: against PostgreSQL (wire-compatible), not CockroachDB.

No CockroachDB server can run here (reference/backends.md): these tests drive the cockroach driver's own options
and code path against the real PostgreSQL on 127.0.0.1:5432, which speaks the same wire protocol. What only
CockroachDB does (serializable retries, 40001 restarts, the routing id being accepted) stays untested.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from core import api
from tests.drivers.sql_cases import HOST, SqlConformance, SqlDb, SqlDriver, Tables, assert_pushx_needs_a_query, refused
from tests.drivers.sql_fixtures import db_fixture, tables_fixture  # noqa: F401 - fixtures
from tests.drivers.test_postgres import POSTGRES
from tests.support import run

COCKROACH = dataclasses.replace(POSTGRES, driver="cockroach", prefix="cockroach")  # the server is PostgreSQL's
CONN = COCKROACH.conn


@pytest.fixture(scope="module")
def sql() -> SqlDriver:
    """The driver under test, for the fixtures and cases of sql_fixtures.py and sql_cases.py."""
    return COCKROACH


class TestCockroachConformanceAgainstPostgresqlWireCompatibleNotCockroachdb(SqlConformance):
    """The conformance suite through the cockroach driver, against PostgreSQL (wire-compatible), not CockroachDB."""


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


def test_templates_bound_and_injection_stays_data_against_postgresql_not_cockroachdb(db: SqlDb,
                                                                                      tables: Tables) -> None:
    table = tables(COCKROACH.queue_columns)
    hostile = "x'); DROP TABLE " + table + "; --"
    api.pushx(json.dumps({"p": hostile}).encode(),
              [*CONN, "-cockroach-query", f"INSERT INTO {table} (payload) VALUES (convert_to('{{{{p}}}}', 'UTF8'))"])
    assert api.procx([*CONN, "-cockroach-retrieve-query", f"SELECT id, payload FROM {table}",
                      "-cockroach-retrieve-field", "0.payload", "-cockroach-clear-query",
                      f"DELETE FROM {table} WHERE id = $1", "-cockroach-clear-params", "{{0.id}}"]) == hostile.encode()
    assert db.one(f"SELECT count(*) FROM {table}") == 0


def test_pushx_without_query_is_a_usage_error() -> None:
    assert_pushx_needs_a_query(COCKROACH)


def test_ssl_mode_is_sent_against_postgresql_not_cockroachdb() -> None:
    exc = refused(api.procx, [*CONN, "-cockroach-ssl-mode", "verify-full", "-cockroach-retrieve-query", "SELECT 1"])
    assert exc.exit_code == 69
    assert "SSL" in str(exc) or "root certificate" in str(exc)
