"""The seed's streaming pipeline on real servers: `procx pushx` moving a Redis list into PostgreSQL rows.

PROCX_* configure procx (redis-list, payload on stdin, daemon, 500 ms interval); PUSHX_* reach the child pushx
through procx's environment (procx never passes its own PROCX_* settings on). The INSERT is the seed's, with
`{{field}}` templates that become bound parameters: a name built to break out of the query stays data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import pytest

from tests.drivers.redis_helpers import delete_keys
from tests.drivers.test_postgres import pg_connect
from tests.support import BIN, clean_env, command, wait_for

HOSTILE = 'x"); DROP TABLE {table}; --'


@pytest.fixture
def rows_table():
    conn = pg_connect()
    name = f"procx_seed_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE TABLE {name} (id int, name text, another text)")
    yield conn, name
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def test_procx_pushx_streams_a_redis_list_into_postgres(rows_table) -> None:
    conn, table = rows_table
    key = f"procx-test-seed-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="127.0.0.1", PROCX_REDIS_KEY=key,
        PROCX_PASS_WORK_AS_STDIN="true", PROCX_DAEMON="true", PROCX_DAEMON_INTERVAL="500",
        PUSHX_DRIVER="postgres", PUSHX_PSQL_HOST="127.0.0.1", PUSHX_PSQL_USER="postgres",
        PUSHX_PSQL_DATABASE="test",
        PUSHX_PSQL_QUERY=f'INSERT INTO {table} (id, name, another) VALUES ({{{{id}}}}, "{{{{name}}}}", '
                         f'"{{{{another}}}}")')
    daemon = subprocess.Popen([command("procx"), "pushx"], env=env, stderr=subprocess.PIPE)
    try:
        items = [{"id": 1, "name": "first", "another": "a"},
                 {"id": 2, "name": HOSTILE.format(table=table), "another": "it's \"quoted\""},
                 {"id": 3, "name": "zażółć 東京", "another": "c"}]
        for item in items:
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "lpush", key, json.dumps(item)], check=True,
                           capture_output=True)
        wait_for(lambda: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 3, timeout=30)
        rows = conn.execute(f"SELECT id, name, another FROM {table} ORDER BY id").fetchall()
        assert rows == [(i["id"], i["name"], i["another"]) for i in items]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0, daemon.stderr.read().decode()
    finally:
        if daemon.poll() is None:
            daemon.kill()
        delete_keys(key)
