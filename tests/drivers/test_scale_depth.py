"""`procx-tui depth` for drivers that KEDA scales with a query (postgres, mysql) or a stored count (etcd): the
number is the answer of the profile's scale query on the real servers, and nothing is taken."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from core import profiles
from tests.drivers.test_mysql import my_connect
from tests.drivers.test_postgres import pg_connect
from tests.support import clean_env, command

PASSWORD = "Sc4le-Depth-Pw-do-not-leak"


def depth(home: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([command("procx-tui"), "depth", name, *extra], capture_output=True, text=True,
                          env=clean_env(PROCX_TUI_HOME=str(home)), timeout=60)


def save(home: Path, name: str, **variables: str) -> None:
    profiles.write(profiles.Profile(name, {"PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": "true", **variables}),
                   home / "profiles")


@pytest.fixture
def pg_jobs():
    conn = pg_connect()
    name = f"procx_depth_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, status text NOT NULL)")
    conn.execute(f"INSERT INTO {name} (status) VALUES ('new'), ('new'), ('done'), ('new')")
    yield name
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def test_postgres_depth_is_the_scale_query_answer(pg_jobs: str, tmp_path: Path) -> None:
    save(tmp_path, "pg", PROCX_DRIVER="postgres", PROCX_PSQL_HOST="127.0.0.1", PROCX_PSQL_PORT="5432",
         PROCX_PSQL_USER="postgres", PROCX_PSQL_DATABASE="test", PROCX_PSQL_TRANSACTION="true",
         PROCX_PSQL_RETRIEVE_QUERY=f"SELECT * FROM {pg_jobs} WHERE status = 'new' LIMIT 1",
         PROCX_TUI_SCALE_QUERY=f"SELECT count(*) FROM {pg_jobs} WHERE status = 'new'")
    done = depth(tmp_path, "pg")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "procx (postgres): 3 waiting (KEDA scaler: postgresql)"
    flag = depth(tmp_path, "pg", "--json", "--scale-query", f"SELECT count(*) FROM {pg_jobs}")  # the flag wins
    assert json.loads(flag.stdout)["sides"]["procx"]["depth"] == 4
    with pg_connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {pg_jobs} WHERE status = 'new'").fetchone()[0] == 3


def test_sql_without_a_scale_query_says_how_to_give_one(tmp_path: Path) -> None:
    save(tmp_path, "pg", PROCX_DRIVER="postgres", PROCX_PSQL_HOST="127.0.0.1", PROCX_PSQL_USER="postgres",
         PROCX_PSQL_DATABASE="test", PROCX_PSQL_RETRIEVE_QUERY="SELECT 1")
    done = depth(tmp_path, "pg")
    assert done.returncode == 0, done.stderr
    assert "counts with a query: give it with --scale-query" in done.stdout


def test_a_bad_scale_query_is_one_line_without_the_password(tmp_path: Path) -> None:
    conn = my_connect()
    user = f"px{uuid.uuid4().hex[:8]}"
    conn.cursor().execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
    try:
        save(tmp_path, "my", PROCX_DRIVER="mysql", PROCX_MYSQL_HOST="127.0.0.1", PROCX_MYSQL_PORT="3306",
             PROCX_MYSQL_USER=user, PROCX_MYSQL_PASSWORD=PASSWORD, PROCX_MYSQL_RETRIEVE_QUERY="SELECT 1")
        ok = depth(tmp_path, "my", "--scale-query", "SELECT 7 + 5")
        assert ok.stdout.strip() == "procx (mysql): 12 waiting (KEDA scaler: mysql)", ok.stderr
        bad = depth(tmp_path, "my", "--scale-query", "SELECT count(*) FROM no_such_table_here")
        assert bad.returncode == 69
        line = bad.stdout.strip()
        assert line.startswith("procx (mysql): reachable, but driver mysql: the scale query failed on ") and \
            "(error 1046)" in line and len(line.splitlines()) == 1  # no database selected
        assert PASSWORD not in bad.stdout + bad.stderr
    finally:
        conn.cursor().execute(f"DROP USER '{user}'@'%'")
        conn.close()


def test_etcd_depth_is_the_number_at_the_scale_key(etcd, tmp_path: Path) -> None:
    key = f"procx-depth/{uuid.uuid4().hex[:8]}/count"
    etcd.call("kv/put", {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(b"17").decode()})
    save(tmp_path, "e", PROCX_DRIVER="etcd", PROCX_ETCD_HOSTS=f"127.0.0.1:{etcd.port}",
         PROCX_ETCD_RETRIEVE_KEY="procx-depth/jobs/", PROCX_TUI_SCALE_QUERY=key)
    done = depth(tmp_path, "e")
    assert done.stdout.strip() == "procx (etcd): 17 waiting (KEDA scaler: etcd)", done.stderr
    missing = depth(tmp_path, "e", "--scale-query", "procx-depth/none")
    assert missing.returncode == 69
    assert "scale key 'procx-depth/none' does not exist" in missing.stdout
