"""sqlite: the embedded durable queue, through the conformance suite and its own lease rules."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import api
from tests.conformance import Backend, Conformance
from tests.support import clean_env, command, run, wait_for


class SqliteBackend(Backend):
    driver = "sqlite"
    redelivery_wait = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path

    def common_args(self) -> list[str]:
        return ["-driver", "sqlite", "-sqlite-path", str(self.path)]

    def procx_args(self) -> list[str]:
        return ["-sqlite-visibility-timeout", "1s"]

    def pending(self) -> int:
        if not self.path.exists():
            return 0
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT count(*) FROM procx_queue").fetchone()[0]


class TestSqliteConformance(Conformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> SqliteBackend:
        return SqliteBackend(tmp_path / "queue.db")


def args(path: Path, *extra: str) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(path), *extra]


def test_attempts_are_counted_across_failures(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    api.pushx(b"x", args(db))
    for expected in (1, 2, 3):
        with pytest.raises(ValueError), api.work(args(db)) as work:
            assert work.attempt == expected
            raise ValueError


def test_fail_delay_keeps_the_item_back(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    api.pushx(b"x", args(db))
    done = run("procx", *args(db, "-sqlite-fail-delay", "1h"), "false")
    assert done.returncode == 1
    assert api.procx(args(db)) is None  # not offered again yet
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM procx_queue").fetchone()[0] == 1


def test_queues_in_one_file_are_separate(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    api.pushx(b"a", args(db, "-sqlite-queue", "one"))
    api.pushx(b"b", args(db, "-sqlite-queue", "two"))
    assert api.procx(args(db, "-sqlite-queue", "two")) == b"b"
    assert api.procx(args(db, "-sqlite-queue", "one")) == b"a"


def test_a_leased_item_is_not_given_twice(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    api.pushx(b"only", args(db))
    with api.work(args(db)) as first:
        assert first is not None
        assert api.procx(args(db)) is None
    assert api.procx(args(db)) is None  # cleared when the block ended


def test_expired_lease_comes_back_and_late_clear_does_not_delete_it(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    api.pushx(b"slow", args(db))
    short = args(db, "-sqlite-visibility-timeout", "0.2s")
    with api.work(short) as first:
        wait_for(lambda: _available(db) == 1, timeout=5)
        with api.work(short) as second:
            assert second is not None and second.payload == b"slow"
            assert second.attempt == 2
            first.clear()  # the first holder lost its lease: its clear must not remove the second's item
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT count(*) FROM procx_queue").fetchone()[0] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM procx_queue").fetchone()[0] == 0


def _available(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM procx_queue WHERE available_at <= ?", (time.time(),)).fetchone()[0]


def test_two_daemons_on_one_file_take_each_item_once(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with api.Producer(args(db)) as producer:
        producer.push_many([f"{i}".encode() for i in range(40)])
    log = tmp_path / "done.log"
    script = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
    procs = [subprocess.Popen([command("procx"), *args(db, "-daemon", "-pass-work-as-stdin"),
                               sys.executable, "-c", script, str(log)], env=clean_env()) for _ in range(2)]
    try:
        wait_for(lambda: log.exists() and len(log.read_text().split()) >= 40, timeout=30)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            assert p.wait(timeout=10) == 0
    assert sorted(int(line) for line in log.read_text().split()) == list(range(40))


def test_missing_folder_is_created(tmp_path: Path) -> None:
    assert run("pushx", *args(tmp_path / "new" / "q.db"), "-in", "x").returncode == 0
    assert api.procx(args(tmp_path / "new" / "q.db")) == b"x"


def test_unusable_path_is_a_provider_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    done = run("pushx", *args(tmp_path / "file" / "q.db"), "-in", "x")
    assert done.returncode == 69
    assert b"cannot create the folder" in done.stderr
