"""A TDS (SQL Server wire protocol) server for the mssql tests: pysqlbridge on 127.0.0.1 and a free port.

pysqlbridge answers SELECTs over CSV files and refuses every write (INSERT/UPDATE/DELETE): only the driver's read
path can run against it. One server per test session, with the tables of TABLES and one SQL login whose password
comes from the environment (never written into the config file), stopped at the end. A server that cannot start
makes the tests that need it FAIL with its log (never a silent skip). `pip install pysqlbridge`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.drivers.conftest import _wait_until, free_port
from tests.support import stop_process

USER = "procx"
# Characters that broke the original's `password=…;` connection string, and a recognisable secret.
PASSWORD = "p@ss;w=rd s3cret'\""

TABLES = {
    "jobs": "id,name,work\n7,a<b,do it\n8,c,more\n",
    "events": "id,kind,note,amount\n1,alpha,50% off,1.5\n2,beta,zażółć,2.25\n3,alpha,third,-3\n",
}


@dataclass
class Tds:
    host: str
    port: int
    user: str
    password: str
    started_in: float

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@pytest.fixture(scope="session")
def tds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tds]:
    """pysqlbridge serving TABLES to the login USER/PASSWORD."""
    if importlib.util.find_spec("pysqlbridge") is None:
        pytest.fail("pysqlbridge is not installed: pip install pysqlbridge")
    base = tmp_path_factory.mktemp("tds")
    tables = []
    for name, text in TABLES.items():
        (base / f"{name}.csv").write_text(text, encoding="utf-8")
        tables.append({"name": name, "csv": str(base / f"{name}.csv")})
    config = base / "config.json"
    config.write_text(json.dumps({"tables": tables, "logins": [{"user": USER, "password": "${PROCX_TEST_TDS_PW}"}]}))
    port = free_port()
    log = base / "pysqlbridge.log"
    env = {**os.environ, "PROCX_TEST_TDS_PW": PASSWORD}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pysqlbridge", "--host", "127.0.0.1", "--port", str(port),
                                 "--config", str(config)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=base, env=env)
    try:
        took = _wait_until(lambda: _accepts(port), proc, "pysqlbridge", log)
        yield Tds("127.0.0.1", port, USER, PASSWORD, took)
    finally:
        with contextlib.suppress(Exception):
            stop_process(proc)
