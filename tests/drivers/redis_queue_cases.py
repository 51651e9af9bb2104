"""What the redis-list and redis-stream tests share: a conformance backend on one key, a fresh key per test, two
daemons sharing one queue, and a procx whose work another consumer takes over while its child runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from core import api
from tests.conformance import Backend
from tests.drivers.redis_helpers import connection_args, delete_keys, unique_key
from tests.support import clean_env, command, wait_for


class RedisKeyBackend(Backend):
    """A queue on one key of the pre-running Redis, with leases of a second."""

    redelivery_wait = 1.0

    def __init__(self, key: str) -> None:
        self.key = key

    def common_args(self) -> list[str]:
        return connection_args(self.driver, self.key)


def fresh_key(what: str) -> Iterator[str]:
    """The body of a `key` fixture: a key no other test uses, deleted afterwards with the keys derived from it."""
    name = unique_key(what)
    yield name
    delete_keys(name)


def two_daemons_work_off(args: list[str], tmp_path: Path, settled: Callable[[], bool], count: int = 40) -> list[int]:
    """Push the numbers 0 … count-1, run two procx daemons of two workers each until every number is logged and
    `settled()`, stop them with SIGTERM (each must exit 0); the numbers their children logged, in order taken."""
    with api.Producer(args) as producer:
        producer.push_many([f"{i}".encode() for i in range(count)])
    log = tmp_path / "done.log"
    script = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
    procs = [subprocess.Popen([command("procx"), *args, "-daemon", "-concurrency", "2", "-pass-work-as-stdin",
                               sys.executable, "-c", script, str(log)], env=clean_env()) for _ in range(2)]
    try:
        wait_for(lambda: log.exists() and len(log.read_text().split()) >= count and settled(), timeout=30)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            assert p.wait(timeout=10) == 0
    return [int(line) for line in log.read_text().split()]
