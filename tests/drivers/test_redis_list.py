"""redis-list: the reliable queue (LMOVE into a processing list, leases), on the pre-running Redis at 6379.

Connection errors, passwords, TLS and the reconnect of a daemon are in test_redis_common.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from core import api, settings
from tests.conformance import Conformance
from tests.drivers.redis_helpers import client, connection_args, unique_key
from tests.drivers.redis_queue_cases import (
    RedisKeyBackend,
    fresh_key,
    two_daemons_work_off,
)
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import clean_env, command, run, wait_for


class RedisListBackend(RedisKeyBackend):
    driver = "redis-list"

    def procx_args(self) -> list[str]:
        return ["-redis-visibility-timeout", "1s"]

    def pending(self) -> int:
        with closing(client()) as conn:
            return conn.llen(self.key) + conn.llen(f"{self.key}:processing")


@pytest.fixture
def key() -> Iterator[str]:
    yield from fresh_key("list")


def args(key: str, *extra: str) -> list[str]:
    return [*connection_args("redis-list", key), *extra]


class TestRedisListConformance(Conformance):
    @pytest.fixture
    def backend(self, key: str) -> RedisListBackend:
        return RedisListBackend(key)


def test_fifo_head_is_the_left_end_and_pushx_appends_at_the_tail(key: str) -> None:
    conn = client()
    conn.lpush(key, b"first")  # written by another program at the head
    api.pushx(b"last", args(key))
    assert conn.lrange(key, 0, -1) == [b"first", b"last"]
    assert api.procx(args(key)) == b"first"
    assert api.procx(args(key)) == b"last"


def test_taken_item_waits_in_the_processing_list_with_a_lease(key: str) -> None:
    conn = client()
    api.pushx(b"job", args(key))
    with api.work(args(key)) as work:
        assert work.payload == b"job"
        assert conn.llen(key) == 0
        assert conn.lrange(f"{key}:processing", 0, -1) == [b"job"]
        assert conn.zscore(f"{key}:processing:leases", b"job") is not None
    assert conn.exists(key, f"{key}:processing", f"{key}:processing:leases") == 0


def test_failed_item_goes_back_to_the_tail(key: str) -> None:
    for item in (b"a", b"b"):
        api.pushx(item, args(key))
    done = run("procx", *args(key), "false")
    assert done.returncode == 1
    conn = client()
    assert conn.lrange(key, 0, -1) == [b"b", b"a"]
    assert conn.llen(f"{key}:processing") == 0
    assert conn.exists(f"{key}:processing:leases") == 0


def test_processing_key_option(key: str) -> None:
    processing = f"{key}:mine"
    conn = client()
    api.pushx(b"x", args(key))
    try:
        with api.work(args(key, "-redis-processing-key", processing)) as work:
            assert work.payload == b"x"
            assert conn.lrange(processing, 0, -1) == [b"x"]
            assert conn.llen(f"{key}:processing") == 0
        assert conn.llen(processing) == 0
    finally:
        conn.delete(processing, f"{processing}:leases")


def test_live_lease_is_renewed_while_the_item_is_held(key: str) -> None:
    """Work held longer than the visibility timeout is not given to another procx while its procx lives."""
    api.pushx(b"long", args(key))
    short = args(key, "-redis-visibility-timeout", "0.6s")
    with api.work(short) as work:
        assert work.payload == b"long"
        until = time.monotonic() + 1.5  # well past the visibility timeout
        while time.monotonic() < until:
            assert api.procx(short) is None, "a renewed lease was taken over"
            time.sleep(0.1)
    conn = client()
    assert conn.exists(key, f"{key}:processing", f"{key}:processing:leases") == 0


def test_item_left_without_a_lease_comes_back(key: str) -> None:
    """procx died between BLMOVE and writing the lease: the item gets one and comes back after it."""
    conn = client()
    conn.rpush(f"{key}:processing", b"orphan")
    done = run("procx", *args(key, "-redis-visibility-timeout", "0.3s", "-wait-for-work", "5s"))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"orphan"
    assert conn.exists(key, f"{key}:processing", f"{key}:processing:leases") == 0


def test_equal_payloads_in_flight_are_both_kept(key: str) -> None:
    api.pushx(b"same", args(key))
    api.pushx(b"same", args(key))
    conn = client()
    with api.work(args(key)) as first, api.work(args(key)) as second:
        assert first.payload == second.payload == b"same"
        assert conn.llen(f"{key}:processing") == 2
        first.fail()
        assert conn.lrange(key, 0, -1) == [b"same"]
        assert conn.zscore(f"{key}:processing:leases", b"same") is not None  # the second copy keeps its lease
    assert conn.llen(f"{key}:processing") == 0
    assert conn.exists(f"{key}:processing:leases") == 0
    assert conn.lrange(key, 0, -1) == [b"same"]


def test_wait_blocks_server_side_with_blmove(key: str) -> None:
    """With -wait-for-work procx waits in BLMOVE (no polling) and takes an item pushed meanwhile."""
    proc = subprocess.Popen([command("procx"), *args(key, "-wait-for-work", "20s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        conn = client()
        wait_for(lambda: any(c.get("cmd") == "blmove" for c in conn.client_list()), timeout=10)
        api.pushx(b"late", args(key))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out == b"late"


def test_lua_looking_payload_stays_data(key: str) -> None:
    canary = unique_key("canary")
    conn = client()
    conn.set(canary, b"alive")
    try:
        evil = b"'); redis.call('FLUSHALL'); redis.call('DEL', KEYS[1]) --\x00"
        api.pushx(evil, args(key))
        assert api.procx(args(key)) == evil
        assert conn.get(canary) == b"alive"
    finally:
        conn.delete(canary)


def test_binary_batch_push(key: str) -> None:
    items = [bytes([i]) * i for i in range(256)]
    with api.Producer(args(key)) as producer:
        producer.push_many(items)
    assert client().lrange(key, 0, -1) == items


@pytest.mark.parametrize(("extra", "message"), [
    (("-redis-processing-key", "SAME"), "-redis-processing-key: must differ"),
    (("-redis-visibility-timeout", "0s"), "-redis-visibility-timeout"),
    (("-redis-visibility-timeout", "soon"), "-redis-visibility-timeout"),
    (("-redis-port", "99999"), "-redis-port"),
])
def test_bad_settings_are_usage_errors(key: str, extra: tuple[str, ...], message: str) -> None:
    extra = tuple(key if e == "SAME" else e for e in extra)
    api.pushx(b"keep", args(key))
    done = run("procx", *args(key, *extra))
    assert done.returncode == 2
    assert message.encode() in done.stderr
    assert client().lrange(key, 0, -1) == [b"keep"]


def test_missing_key_is_a_usage_error() -> None:
    for tool in ("procx", "pushx"):
        done = run(tool, "-driver", "redis-list", "-redis-port", "6379", *(("-in", "x") if tool == "pushx" else ()))
        assert done.returncode == 2
        assert b"-redis-key" in done.stderr


def test_original_variables_configure_it(key: str) -> None:
    env = clean_env(PROCX_DRIVER="redis-list", PROCX_REDIS_HOST="127.0.0.1", PROCX_REDIS_PORT="6379",
                    PROCX_REDIS_KEY=key, PUSHX_DRIVER="redis-list", PUSHX_REDIS_KEY=key)
    assert run("pushx", "-in", "from-env", env=env).returncode == 0
    done = run("procx", env=env)
    assert done.returncode == 0 and done.stdout == b"from-env"


def test_processing_defaults_follow_the_key(key: str) -> None:
    from drivers.redis.list import keys

    _, config = settings.load("procx", args(key), {})
    assert keys(config) == (key, f"{key}:processing", f"{key}:processing:leases")


def test_two_daemons_with_two_workers_take_each_item_once(key: str, tmp_path: Path) -> None:
    taken = two_daemons_work_off(args(key), tmp_path, settled=lambda: RedisListBackend(key).pending() == 0)
    assert sorted(taken) == list(range(40))
    assert RedisListBackend(key).pending() == 0


def test_key_of_another_type_is_a_provider_error_and_is_left_alone(key: str) -> None:
    client().set(key, b"a string")
    for tool, extra in (("procx", ("-wait-for-work", "0")), ("pushx", ("-in", "x"))):
        done = run(tool, *args(key, *extra))
        assert done.returncode == 69
        assert done.stderr.decode().strip() == (f"{tool}: driver redis-list: redis at 127.0.0.1:6379: "
                                                f"{'get work' if tool == 'procx' else 'push'} failed: WRONGTYPE "
                                                "Operation against a key holding the wrong kind of value")
    assert client().get(key) == b"a string"


# -- queue depth (procx-tui depth / check; the number KEDA's redis scaler reads) ---------------------------
def test_depth_is_the_list_length_without_items_in_flight(key: str) -> None:
    with closing(client()) as conn:
        conn.rpush(key, *[f"job-{i}".encode() for i in range(5)])
        with closing(api._source(args(key), clean_env())) as source:
            assert source.depth() == 5 == conn.llen(key)
            work = api._take(source, 0)
            assert work is not None
            # the taken item is in the processing list: KEDA's scaler (LLEN of the list) does not count it
            assert source.depth() == 4 == conn.llen(key)
            assert conn.llen(f"{key}:processing") == 1
            source.fail(work)  # back to the tail: waiting again
            assert source.depth() == 5
            for _ in range(5):
                taken = api._take(source, 0)
                assert taken is not None
                source.clear(taken)
            assert source.depth() == 0


def test_depth_command_reports_what_is_queued(key: str, tmp_path: Path) -> None:
    import json

    from core import profiles

    home = tmp_path / "home"
    variables = {"PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": "true", "PROCX_DRIVER": "redis-list",
                 "PROCX_REDIS_HOST": "127.0.0.1", "PROCX_REDIS_PORT": "6379", "PROCX_REDIS_KEY": key}
    profiles.write(profiles.Profile("depth-test", variables), home / "profiles")
    conn = client()
    try:
        conn.rpush(key, b"a", b"b", b"c")
        done = subprocess.run([command("procx-tui"), "depth", "depth-test", "--json"], capture_output=True,
                              env=clean_env(PROCX_TUI_HOME=str(home)), timeout=60)
        assert done.returncode == 0, done.stderr
        side = json.loads(done.stdout)["sides"]["procx"]
        assert (side["depth"], side["keda"], side["reachable"]) == (3, "redis", True)
        assert conn.llen(key) == 3  # nothing was taken
        text = subprocess.run([command("procx-tui"), "depth", "depth-test"], capture_output=True, text=True,
                              env=clean_env(PROCX_TUI_HOME=str(home)), timeout=60)
        assert text.stdout.strip() == "procx (redis-list): 3 waiting (KEDA scaler: redis)"
    finally:
        conn.close()


# -- lease loss: the keep-alive finds the lease gone, procx stops the child and fails the work back ----------
def test_a_lost_lease_stops_the_child_and_leaves_the_item_once_in_the_list(key: str, tmp_path: Path) -> None:
    with closing(client()) as conn:
        conn.rpush(key, b"long job")

        def retake_expired() -> None:
            """What another procx's TAKE does with an expired lease: the item back to the list, the lease away."""
            conn.lrem(f"{key}:processing", 1, b"long job")
            conn.zrem(f"{key}:processing:leases", b"long job")
            conn.rpush(key, b"long job")

        lose_lease_while_child_runs(args(key, "-redis-visibility-timeout", "0.6s"), retake_expired, tmp_path)
        assert conn.lrange(key, 0, -1) == [b"long job"] and conn.llen(f"{key}:processing") == 0
