"""redis-stream: consumer groups (XREADGROUP/XACK, XAUTOCLAIM), on the pre-running Redis at 6379.

The conformance suite runs with -redis-stream-payload-field (raw bytes in one field: binary-safe round trips);
the original's JSON-object payloads are tested below. Connection errors, passwords, TLS and the reconnect of a
daemon are in test_redis_common.py.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from core import api
from tests.conformance import Conformance
from tests.drivers.redis_helpers import client, connection_args
from tests.drivers.redis_queue_cases import (
    RedisKeyBackend,
    fresh_key,
    two_daemons_work_off,
)
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import clean_env, run

GROUP = "workers"


class RedisStreamBackend(RedisKeyBackend):
    driver = "redis-stream"

    def common_args(self) -> list[str]:
        return [*super().common_args(), "-redis-stream-payload-field", "data"]

    def procx_args(self) -> list[str]:
        return ["-redis-stream-consumer-group", GROUP, "-redis-stream-claim-idle", "1s"]

    def pending(self) -> int:
        """Entries not yet acknowledged: not yet delivered to the group (lag) plus delivered but pending."""
        with closing(client()) as conn:
            if not conn.exists(self.key):
                return 0
            groups = {g["name"].decode(): g for g in conn.xinfo_groups(self.key)}
            if GROUP not in groups:
                return conn.xlen(self.key)
            return int(groups[GROUP]["lag"]) + int(groups[GROUP]["pending"])


@pytest.fixture
def key() -> Iterator[str]:
    yield from fresh_key("stream")


class TestRedisStreamConformance(Conformance):
    @pytest.fixture
    def backend(self, key: str) -> RedisStreamBackend:
        return RedisStreamBackend(key)


def args(key: str, *extra: str) -> list[str]:
    return [*connection_args("redis-stream", key), *extra]


def group_info(key: str, group: str = "procx") -> dict:
    return {g["name"].decode(): g for g in client().xinfo_groups(key)}[group]


def test_json_object_payload_as_the_original(key: str) -> None:
    pushed = ('{"b": "x<&>", "a": 1.50, "c": true, "d": null, "big": 12345678901234567890, "e": "é", "f": 1e3}'
              '\n{"ignored": "second value"}')
    entry_id = api.pushx(pushed, args(key))
    conn = client()
    [(got_id, fields)] = conn.xrange(key)
    assert got_id.decode() == entry_id
    assert fields == {b"a": b"1.5", b"b": b"x<&>", b"big": b"12345678901234567890", b"c": b"1", b"d": b"",
                      b"e": "é".encode(), b"f": b"1000"}
    assert api.procx(args(key)) == ('{"a":"1.5","b":"x\\u003c\\u0026\\u003e","big":"12345678901234567890",'
                                     '"c":"1","d":"","e":"é","f":"1000"}').encode()


def test_fields_written_by_others_are_decoded_leniently(key: str) -> None:
    client().xadd(key, {b"z": b"\xff\xfe", b"a": b"plain"})
    assert json.loads(api.procx(args(key))) == {"a": "plain", "z": "\ufffd\ufffd"}


def test_value_keys_keep_only_those_fields(key: str) -> None:
    api.pushx('{"a": "1", "b": "2", "c": "3"}', args(key))
    assert api.procx(args(key, "-redis-stream-value-keys", "c,,a")) == b'{"a":"1","c":"3"}'


def test_missing_value_key_is_an_error_and_the_entry_stays(key: str) -> None:
    entry_id = api.pushx('{"a": "1"}', args(key))
    done = run("procx", *args(key, "-redis-stream-value-keys", "a,nope", "-redis-stream-claim-idle", "0.2s"))
    assert done.returncode == 69
    assert f"entry {entry_id} has no field 'nope'".encode() in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert group_info(key)["pending"] == 1
    with api.work(args(key, "-redis-stream-claim-idle", "0.2s"), wait=5) as again:
        assert again.payload == b'{"a":"1"}'
        assert again.attempt == 2
    assert group_info(key)["pending"] == 0


@pytest.mark.parametrize(("payload", "message"), [
    (b"[1, 2]", b"not a JSON array"),
    (b'"text"', b"not a JSON string"),
    (b"42", b"not a JSON number"),
    (b"{}", b"at least one"),
    (b"{not json", b"must be a JSON object"),
    (b'{"a": {"nested": 1}}', b"field 'a' holds a JSON object"),
    (b'{"a": [1]}', b"field 'a' holds a JSON array"),
    (b'{"a": NaN}', b"must be a JSON object"),
    (b"\xff{}", b"must be a JSON object"),
])
def test_pushx_refuses_what_is_not_a_flat_json_object(key: str, payload: bytes, message: bytes) -> None:
    done = run("pushx", *args(key), input=payload)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not client().exists(key)


def test_message_id_option(key: str) -> None:
    assert api.pushx('{"a": "1"}', args(key, "-redis-message-id", "5-1")) == "5-1"
    done = run("pushx", *args(key, "-redis-message-id", "5-1"), "-in", '{"a": "2"}')
    assert done.returncode == 69
    assert b"equal or smaller" in done.stderr
    with api.work(args(key)) as work:
        assert work.id == "5-1"


def test_group_is_created_from_the_first_entry(key: str) -> None:
    """Entries pushed before any procx ran are worked on (the group starts at 0, not at $)."""
    api.pushx('{"n": "1"}', args(key))
    api.pushx('{"n": "2"}', args(key))
    assert api.procx(args(key, "-redis-stream-consumer-group", "fresh")) == b'{"n":"1"}'
    assert api.procx(args(key, "-redis-stream-consumer-group", "fresh")) == b'{"n":"2"}'
    assert group_info(key, "fresh")["pending"] == 0


def test_existing_group_is_used_as_it_is(key: str) -> None:
    conn = client()
    api.pushx('{"n": "old"}', args(key))
    conn.xgroup_create(key, "late", id="$")  # the user chose to skip the old entries
    api.pushx('{"n": "new"}', args(key))
    assert api.procx(args(key, "-redis-stream-consumer-group", "late")) == b'{"n":"new"}'
    assert api.procx(args(key, "-redis-stream-consumer-group", "late")) is None


def test_without_a_group_the_procx_group_is_used(key: str) -> None:
    api.pushx('{"n": "1"}', args(key))
    assert api.procx(args(key)) == b'{"n":"1"}'
    assert group_info(key, "procx")["pending"] == 0


def test_default_consumer_is_hostname_pid_and_is_forgotten_when_idle(key: str) -> None:
    api.pushx('{"n": "1"}', args(key))
    conn = client()
    with api.work(args(key)) as work:
        [pending] = conn.xpending_range(key, "procx", "-", "+", 1)
        assert pending["consumer"].decode() == f"{socket.gethostname()}-{os.getpid()}"
        assert work.id == pending["message_id"].decode()
    assert conn.xinfo_consumers(key, "procx") == []


@pytest.mark.parametrize("how", ["flag", "alias", "variable"])
def test_consumer_name_flag_alias_and_variable(key: str, how: str) -> None:
    api.pushx('{"n": "1"}', args(key))
    extra = {"flag": ("-redis-steam-consumer-name", "alice"),
             "alias": ("-redis-stream-consumer-name", "alice"),
             "variable": ()}[how]
    environ = {"PROCX_REDIS_STREAM_CONSUMER_NAME": "alice"} if how == "variable" else {}
    conn = client()
    with api.work(args(key, *extra), environ=environ):
        [pending] = conn.xpending_range(key, "procx", "-", "+", 1)
        assert pending["consumer"] == b"alice"
    assert [c["name"] for c in conn.xinfo_consumers(key, "procx")] == [b"alice"]  # a named consumer is kept


def test_clear_op_del_deletes_and_default_clear_acks(key: str) -> None:
    conn = client()
    api.pushx('{"n": "1"}', args(key))
    api.pushx('{"n": "2"}', args(key))
    assert api.procx(args(key)) == b'{"n":"1"}'
    assert conn.xlen(key) == 2 and group_info(key)["pending"] == 0  # acked, kept
    assert api.procx(args(key, "-redis-stream-clear-op", "del")) == b'{"n":"2"}'
    assert conn.xlen(key) == 1 and group_info(key)["pending"] == 0


@pytest.mark.parametrize(("op", "left"), [("ack", 1), ("del", 0)])
def test_fail_op_ack_or_del_drops_the_entry(key: str, op: str, left: int) -> None:
    api.pushx('{"n": "1"}', args(key))
    done = run("procx", *args(key, "-redis-stream-fail-op", op), "false")
    assert done.returncode == 1
    conn = client()
    assert conn.xlen(key) == left
    assert group_info(key)["pending"] == 0
    assert api.procx(args(key)) is None


def test_failed_entry_comes_back_at_once_with_its_attempt_count(key: str) -> None:
    api.pushx('{"n": "1"}', args(key))
    for attempt in (1, 2, 3):
        with pytest.raises(RuntimeError), api.work(args(key)) as work:
            assert work.attempt == attempt
            raise RuntimeError("child failed")
    with api.work(args(key)) as work:
        assert work.attempt == 4
    assert group_info(key)["pending"] == 0


def test_held_entry_is_not_claimed_while_its_procx_lives(key: str) -> None:
    import time

    api.pushx('{"n": "1"}', args(key))
    short = args(key, "-redis-stream-claim-idle", "0.6s")
    with api.work(short) as work:
        assert work is not None
        until = time.monotonic() + 1.5  # well past the claim idle time
        while time.monotonic() < until:
            assert api.procx(short) is None, "a renewed entry was claimed by another consumer"
            time.sleep(0.1)
    assert group_info(key)["pending"] == 0


def test_payload_field_missing_is_an_error(key: str) -> None:
    client().xadd(key, {b"other": b"x"})
    done = run("procx", *args(key, "-redis-stream-payload-field", "data"))
    assert done.returncode == 69
    assert b"has no field 'data'" in done.stderr


def test_payload_field_and_value_keys_conflict(key: str) -> None:
    done = run("procx", *args(key, "-redis-stream-payload-field", "data", "-redis-stream-value-keys", "a"))
    assert done.returncode == 2
    assert b"-redis-stream-value-keys" in done.stderr


def test_stream_deleted_while_running_is_recreated(key: str) -> None:
    with api.Producer(args(key)) as producer:
        producer.push('{"n": "1"}')
    from core import settings
    from core.work import connect
    from drivers.redis.stream import RedisStreamSource

    _, config = settings.load("procx", args(key), {})
    source = connect(RedisStreamSource(config))
    try:
        work = source.get(0)
        assert work.payload == b'{"n":"1"}'
        source.clear(work)
        client().delete(key)  # group gone with it
        api.pushx('{"n": "2"}', args(key))  # a new stream, no group
        assert source.get(1).payload == b'{"n":"2"}'
    finally:
        source.close()


def test_original_variables_configure_it(key: str) -> None:
    env = clean_env(PROCX_DRIVER="redis-stream", PROCX_REDIS_HOST="127.0.0.1", PROCX_REDIS_KEY=key,
                    PROCX_REDIS_STREAM_CONSUMER_GROUP="g1", PROCX_REDIS_STREAM_CLEAR_OP="del",
                    PUSHX_DRIVER="redis-stream", PUSHX_REDIS_KEY=key, PUSHX_REDIS_MESSAGE_ID="7-7")
    assert run("pushx", "-in", '{"v": "env"}', env=env).returncode == 0
    done = run("procx", env=env)
    assert done.returncode == 0 and done.stdout == b'{"v":"env"}'
    assert client().xlen(key) == 0


def test_two_daemons_with_two_workers_take_each_entry_once(key: str, tmp_path: Path) -> None:
    raw = args(key, "-redis-stream-payload-field", "n")
    taken = two_daemons_work_off(raw, tmp_path, settled=lambda: group_info(key)["pending"] == 0)
    assert sorted(taken) == list(range(40))
    info = group_info(key)
    assert info["pending"] == 0 and info["lag"] == 0
    assert client().xinfo_consumers(key, "procx") == []  # the defaulted consumers left the group when they closed


# -- queue depth (procx-tui depth / check; the number KEDA's redis-streams scaler reads in lagCount mode) -----
def test_depth_is_the_group_lag_without_pending_entries(key: str) -> None:
    with closing(client()) as conn:
        for i in range(5):
            conn.xadd(key, {"data": f"job-{i}"})
        with closing(api._source(args(key, "-redis-stream-payload-field", "data"), clean_env())) as source:
            assert source.depth() == 5  # the group was created from the first entry: nothing delivered yet
            work = api._take(source, 0)
            assert work is not None
            assert source.depth() == 4 == int(group_info(key)["lag"])  # delivered, pending: not counted
            source.fail(work)  # stays pending (claimed again later), still not in the lag
            assert source.depth() == 4
            conn.xadd(key, {"data": "late"})
            assert source.depth() == 5


# -- lease loss: another consumer claims the entry, procx stops the child and leaves the entry to it ----------
def test_an_entry_claimed_by_another_consumer_stops_the_child(key: str, tmp_path: Path) -> None:
    with closing(client()) as conn:
        conn.xadd(key, {"data": "long job"})

        def claim_as_thief() -> None:
            """Another consumer takes the pending entry over."""
            [entry] = conn.xpending_range(key, "procx", "-", "+", 1)
            conn.xclaim(key, "procx", "thief", 0, [entry["message_id"]])

        lose_lease_while_child_runs(args(key, "-redis-stream-payload-field", "data", "-redis-stream-claim-idle", "1s"),
                                    claim_as_thief, tmp_path)
        [pending] = conn.xpending_range(key, "procx", "-", "+", 10)
        assert pending["consumer"] == b"thief"  # the entry stays the thief's: procx did not take it back
