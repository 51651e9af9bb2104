"""Starting a CLI imports no provider library it does not use, nor the TUI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core import registry
from tests.support import clean_env

HEAVY = ("boto3", "botocore", "google", "redis", "textual", "questionary", "rich", "prompt_toolkit", "psycopg",
         "pymysql", "pika", "nats", "confluent_kafka", "pymongo", "elasticsearch", "cassandra", "dotenv")

PROBE = """
import io, json, sys, contextlib
from core.cli import main
with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())):
    status = main(sys.argv[1], sys.argv[2:])
sys.stderr.write(json.dumps([status, sorted(sys.modules)]))
"""


def modules_after(tool: str, *args: str, cwd: str | None = None) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, tool, *args], capture_output=True, env=clean_env(),
                          cwd=cwd, timeout=60)
    status, modules = json.loads(done.stderr.decode().strip().splitlines()[-1])
    return status, {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("argv", [
    ("procx", "-h"),
    ("procx", "-driver", "kafka", "-h"),
    ("pushx", "-h"),
])
def test_help_imports_no_provider_library(argv: tuple[str, ...]) -> None:
    status, modules = modules_after(*argv)
    assert status == 0
    assert not modules & set(HEAVY)


def test_pushx_to_fs_imports_no_provider_library(tmp_path) -> None:
    status, modules = modules_after("pushx", "-driver", "fs", "-fs-folder", str(tmp_path), "-fs-key", "k",
                                    "-in", "x")
    assert status == 0
    assert (tmp_path / "k").read_bytes() == b"x"
    assert not modules & set(HEAVY)


def test_every_declaration_imports_without_client_libraries() -> None:
    code = ("import json, sys; from core import registry; [registry.get(n) for n in registry.names()]; "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, env=clean_env())
    modules = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert not modules & set(HEAVY)
    assert len(registry.names()) >= 34


@pytest.mark.parametrize("driver", ["redis-list", "redis-stream", "redis-pubsub"])
def test_pushx_to_redis_speaks_resp_without_redis_py(driver: str) -> None:
    """pushx's redis sides use the small wire client (drivers/redis/wire.py): redis-py takes ~100 ms to import."""
    key = f"procx-lazy-{driver}-{id(driver)}"
    extra = ("-redis-stream-payload-field", "data") if driver == "redis-stream" else ()
    status, modules = modules_after("pushx", "-driver", driver, "-redis-host", "127.0.0.1", "-redis-key", key,
                                    *extra, "-in", "x")
    assert status == 0
    assert not modules & set(HEAVY)
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "del", key], capture_output=True, check=False)
