"""redis-pubsub: driver-specific tests instead of the conformance suite, on the pre-running Redis at 6379.

The shared conformance suite pushes first and runs procx afterwards. Redis pub/sub keeps nothing: a message
published while nobody is subscribed is dropped by the server, so every conformance round trip would find no
work, and nothing can be failed back or redelivered after a kill (at-most-once by nature). These tests subscribe
first (a running procx, confirmed with PUBSUB NUMSUB), then publish, and check the round trip byte for byte;
they also pin down the at-most-once behaviour the driver declares. Connection errors, passwords, TLS and the
reconnect of a daemon are in test_redis_common.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import api, settings
from core.work import connect
from tests.conformance import PAYLOADS
from tests.drivers.redis_helpers import client, connection_args, unique_key
from tests.support import clean_env, command, run, wait_for


@pytest.fixture
def channel() -> str:
    return unique_key("channel")


def args(channel: str, *extra: str) -> list[str]:
    return [*connection_args("redis-pubsub", channel), *extra]


def subscribers(channel: str) -> int:
    conn = client()
    try:
        return dict(conn.pubsub_numsub(channel))[channel.encode()]
    finally:
        conn.close()


def source(channel: str):
    from drivers.redis.pubsub import RedisPubSubSource

    _, config = settings.load("procx", args(channel), {})
    return connect(RedisPubSubSource(config))


# A child that stores its standard input in a new file of the folder given as first argument (written aside and
# renamed, so that a file in the folder is complete).
STORE = ("import os, sys, uuid; d = sys.argv[1]; n = uuid.uuid4().hex; t = os.path.join(d, '.' + n); "
         "open(t, 'wb').write(sys.stdin.buffer.read()); os.rename(t, os.path.join(d, n))")


def test_daemon_round_trip_byte_for_byte(channel: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    proc = subprocess.Popen([command("procx"), *args(channel, "-daemon", "-pass-work-as-stdin"),
                             sys.executable, "-c", STORE, str(results)], env=clean_env())
    try:
        wait_for(lambda: subscribers(channel) == 1, timeout=15)
        for payload in PAYLOADS.values():
            api.pushx(payload, args(channel))
        wait_for(lambda: len(list(results.glob("[!.]*"))) == len(PAYLOADS), timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(p.read_bytes() for p in results.glob("[!.]*")) == sorted(PAYLOADS.values())
    wait_for(lambda: subscribers(channel) == 0)


@pytest.mark.parametrize("name", ["nul-bytes", "one-mib"])
def test_one_shot_procx_waits_for_one_message(channel: str, name: str) -> None:
    proc = subprocess.Popen([command("procx"), *args(channel, "-wait-for-work", "20s")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        wait_for(lambda: subscribers(channel) == 1, timeout=15)
        api.pushx(PAYLOADS[name], args(channel))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out == PAYLOADS[name]


def test_no_message_is_not_an_error(channel: str) -> None:
    done = run("procx", *args(channel, "-wait-for-work", "0"), "touch", "never")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


def test_message_published_without_subscriber_is_lost(channel: str) -> None:
    """At-most-once by nature: PUBLISH succeeds with nobody listening, and the message is gone."""
    done = run("pushx", *args(channel), "-in", "into the void")
    assert done.returncode == 0
    with api.work(args(channel), wait=0.3) as work:
        assert work is None


def test_subscription_is_kept_across_gets_without_leaking(channel: str) -> None:
    src = source(channel)
    conn = client()
    try:
        assert subscribers(channel) == 1  # subscribed (and confirmed) by open()
        assert src.get(0) is None
        conn.publish(channel, b"one")
        assert src.get(5).payload == b"one"
        conn.publish(channel, b"two")  # arrives between two gets: buffered, not lost
        conn.publish(channel, b"three")
        assert src.get(5).payload == b"two"  # waits only until the message has arrived
        assert src.get(5).payload == b"three"
        assert src.get(0) is None
        assert subscribers(channel) == 1  # one subscription for the whole run: none added per get
    finally:
        src.close()
    wait_for(lambda: subscribers(channel) == 0)


def test_failed_job_is_not_redelivered_and_the_daemon_goes_on(channel: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    script = ("import sys; p = sys.stdin.read(); open(sys.argv[1], 'a').write(p + '\\n'); "
              "sys.exit(1 if p == 'bad' else 0)")
    proc = subprocess.Popen([command("procx"), *args(channel, "-daemon", "-pass-work-as-stdin"),
                             sys.executable, "-c", script, str(log)], env=clean_env())
    try:
        wait_for(lambda: subscribers(channel) == 1, timeout=15)
        for payload in (b"bad", b"good"):
            api.pushx(payload, args(channel))
        wait_for(lambda: log.exists() and "good" in log.read_text(), timeout=15)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert log.read_text().split() == ["bad", "good"]


def test_several_workers_are_refused(channel: str) -> None:
    done = run("procx", *args(channel, "-daemon", "-concurrency", "2"), "true")
    assert done.returncode == 2
    assert b"-concurrency" in done.stderr


def test_batch_publish(channel: str) -> None:
    src = source(channel)
    try:
        with api.Producer(args(channel)) as producer:
            producer.push_many([b"a", b"b", b"\x00"])
        assert [src.get(5).payload for _ in range(3)] == [b"a", b"b", b"\x00"]
    finally:
        src.close()
