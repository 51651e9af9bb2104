"""The fault suite: procx daemons killed with SIGKILL mid-job, over and over, on sqlite, redis-list and rabbitmq;
a JetStream server stopped and started under a running daemon. Nothing may be lost, nothing duplicated.

The child records each payload it finished in a ledger (one atomic append) and exits 0. After every kill the
provider must hold each unfinished item exactly once (queued or leased) and every item it no longer holds must
be in the ledger: work disappears only after its child succeeded. At the end a final drain empties the queue and
every item is in the ledger; items finished twice (killed between the child's exit and the clear) are counted:
that is at-least-once, as the guarantee matrix says.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clean_env, command, run, wait_for

pytestmark = pytest.mark.slow

CYCLES = int(os.environ.get("PROCX_FAULT_CYCLES", "100"))
ITEMS = 2 * CYCLES + 20  # enough that every cycle finds work
LEASE = "1s"  # how soon the work of a killed procx is offered again
# the child: one write(2) of "<payload>\n" in append mode (atomic), a moment of work, exit 0. A child outlives a
# procx killed alone (it runs in its own process group) and then reads a cut payload: it refuses that (exit 1).
CHILD = ["sh", "-c", 'line=$(cat); sleep 0.02; case "$line" in item-[0-9][0-9][0-9][0-9]) ;; *) exit 1;; esac; '
         'printf "%s\\n" "$line" >> "$LEDGER"']


class Target:
    """One provider under test: how to fill it, procx's arguments, and what it still holds."""

    name = ""

    def fill(self, items: list[bytes]) -> None:
        raise NotImplementedError

    def args(self) -> list[str]:
        raise NotImplementedError

    def held(self) -> list[bytes]:
        """Every item the provider still holds (ready or leased), once per copy."""
        raise NotImplementedError

    def settle(self) -> None:
        """Wait until the provider has noticed that its consumer died (where it matters)."""

    def close(self) -> None:
        pass


class SqliteTarget(Target):
    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.path, self.queue = tmp / "faults.db", "jobs"

    def args(self) -> list[str]:
        return ["-driver", "sqlite", "-sqlite-path", str(self.path), "-sqlite-queue", self.queue,
                "-sqlite-visibility-timeout", LEASE]

    def fill(self, items: list[bytes]) -> None:
        from core import api

        with api.Producer(["-driver", "sqlite", "-sqlite-path", str(self.path), "-sqlite-queue", self.queue],
                          environ=clean_env()) as producer:
            producer.push_many(items)

    def held(self) -> list[bytes]:
        with sqlite3.connect(self.path, timeout=30) as conn:
            return [bytes(r[0]) for r in conn.execute("SELECT payload FROM procx_queue WHERE queue = ?",
                                                      (self.queue,))]


class RedisListTarget(Target):
    name = "redis-list"

    def __init__(self, tmp: Path) -> None:
        from tests.drivers.redis_helpers import client, unique_key

        self.key, self.conn = unique_key("faults"), client()

    def args(self) -> list[str]:
        from tests.drivers.redis_helpers import connection_args

        return [*connection_args("redis-list", self.key), "-redis-visibility-timeout", LEASE]

    def fill(self, items: list[bytes]) -> None:
        self.conn.rpush(self.key, *items)

    def held(self) -> list[bytes]:
        return self.conn.lrange(self.key, 0, -1) + self.conn.lrange(f"{self.key}:processing", 0, -1)

    def close(self) -> None:
        from tests.drivers.redis_helpers import delete_keys

        delete_keys(self.key)
        self.conn.close()


class RabbitTarget(Target):
    name = "rabbitmq"
    url = "amqp://guest:guest@127.0.0.1:5672/%2F"

    def __init__(self, tmp: Path) -> None:
        import pika

        self.conn = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel = self.conn.channel()
        self.queue = f"procx-faults-{uuid.uuid4().hex[:10]}"
        self.channel.queue_declare(self.queue, durable=True)

    def args(self) -> list[str]:
        return ["-driver", "rabbitmq", "-rabbitmq-url", self.url, "-rabbitmq-queue", self.queue]

    def fill(self, items: list[bytes]) -> None:
        for item in items:
            self.channel.basic_publish("", self.queue, item)

    def settle(self) -> None:
        """The broker requeues a dead consumer's unacked delivery when it sees the connection close."""
        wait_for(lambda: self.channel.queue_declare(self.queue, passive=True).method.consumer_count == 0,
                 timeout=30)

    def held(self) -> list[bytes]:
        """Every ready message, read without acknowledging on a channel that is then closed (all requeued)."""
        channel = self.conn.channel()
        bodies = []
        while True:
            method, _, body = channel.basic_get(self.queue, auto_ack=False)
            if method is None:
                break
            bodies.append(body)
        channel.close()
        return bodies

    def close(self) -> None:
        self.channel.queue_delete(self.queue)
        self.conn.close()


TARGETS = {t.name: t for t in (SqliteTarget, RedisListTarget, RabbitTarget)}


@pytest.fixture(params=sorted(TARGETS))
def target(request, tmp_path: Path) -> Iterator[Target]:
    made = TARGETS[request.param](tmp_path)
    yield made
    made.close()


def ledger_lines(ledger: Path) -> list[bytes]:
    return ledger.read_bytes().splitlines() if ledger.exists() else []


def check_nothing_lost(target: Target, items: set[bytes], ledger: Path) -> None:
    """No item held twice, and every item the provider no longer holds was finished by a child. A broker may
    take a moment to requeue a dead consumer's delivery, so a missing item is looked for again for 5 s."""
    def missing() -> set[bytes]:
        held = collections.Counter(target.held())
        doubled = [item for item, n in held.items() if n > 1]
        assert not doubled, f"{target.name}: held more than once: {doubled[:5]}"
        assert set(held) <= items, f"{target.name}: unknown items held: {sorted(set(held) - items)[:5]}"
        return items - set(held) - set(ledger_lines(ledger))

    lost: set[bytes] = set()

    def nothing_lost() -> bool:
        nonlocal lost
        lost = missing()
        return not lost

    try:
        wait_for(nothing_lost, timeout=5, interval=0.2)
    except AssertionError:
        raise AssertionError(f"{target.name}: gone without having been done: {sorted(lost)[:5]}") from None


def test_kill_9_mid_job_loses_nothing(target: Target, tmp_path: Path) -> None:
    rng = random.Random(1234)  # the same kill moments on every run
    items = [f"item-{i:04d}".encode() for i in range(ITEMS)]
    target.fill(items)
    ledger = tmp_path / "ledger"
    env = clean_env(LEDGER=str(ledger))
    argv = [command("procx"), *target.args(), "-daemon", "-pass-work-as-stdin", *CHILD]
    kills = 0
    log = tmp_path / "procx.log"
    for _ in range(CYCLES):
        before = len(ledger_lines(ledger))
        with open(log, "ab") as err:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            # wait for the daemon to be at work (a job finished), then kill it at a random moment of the next
            wait_for(lambda p=proc, n=before: p.poll() is not None or len(ledger_lines(ledger)) > n, timeout=30)
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(rng.uniform(0, 0.05))  # a random point of the next job: get, child, clear
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # procx (its child has a process group of its own)
                kills += 1
            proc.wait(timeout=10)
        target.settle()
        check_nothing_lost(target, set(items), ledger)
        if len(set(ledger_lines(ledger))) == len(items):
            break
    time.sleep(1.1)  # the leases of the last killed procx expire (sqlite, redis-list)
    done = run("procx", *target.args(), "-daemon", "-until-empty", "-pass-work-as-stdin", *CHILD, env=env,
               timeout=120)
    assert done.returncode == 0, done.stderr
    assert target.held() == []
    finished = collections.Counter(ledger_lines(ledger))
    assert set(finished) == set(items)
    again = sum(n - 1 for n in finished.values())
    print(f"{target.name}: {kills} kills, {len(items)} items, {again} finished twice (killed before the clear)")


def test_jetstream_server_restart_under_a_daemon_loses_nothing(tmp_path: Path) -> None:
    """A JetStream server of our own, stopped and started again (same store) while a daemon works."""
    from tests.drivers.test_nats import _js_call, free_port

    port, store = free_port(), tmp_path / "js"
    url = f"nats://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=10)
        return proc

    server = start()
    ledger = tmp_path / "ledger"
    items = [f"item-{i:04d}".encode() for i in range(40)]

    async def make(js, nc):
        await js.add_stream(name="FAULTS", subjects=["faults.jobs"], retention="workqueue")
        for item in items:
            await js.publish("faults.jobs", item)

    daemon = None
    try:
        _js_call(make, url)
        args = ["-driver", "nats", "-nats-url", url, "-nats-subject", "faults.jobs", "-nats-jetstream",
                "-nats-stream", "FAULTS", "-nats-ack-wait", "2s"]
        with open(tmp_path / "procx.log", "ab") as err:
            daemon = subprocess.Popen([command("procx"), *args, "-daemon", "-pass-work-as-stdin", *CHILD],
                                      env=clean_env(LEDGER=str(ledger)), stdout=subprocess.DEVNULL, stderr=err,
                                      start_new_session=True)
        wait_for(lambda: len(ledger_lines(ledger)) >= 5, timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        time.sleep(0.5)  # the daemon sees the server gone, mid-run
        server = start()
        wait_for(lambda: set(ledger_lines(ledger)) == set(items), timeout=90)
        assert daemon.poll() is None  # it recovered and kept going
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)
        server.terminate()
        server.wait(timeout=30)
