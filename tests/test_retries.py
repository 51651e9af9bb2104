"""Bounded retries (extensions): -max-attempts, the -dead-letter target, -retry-backoff, and lease loss.

End to end through the installed procx on sqlite (the provider's own attempt count), on fs (procx's own count,
kept across restarts in the state directory), and on the real servers that count deliveries themselves:
redis-stream (XPENDING/XAUTOCLAIM delivery count) and JetStream (num_delivered) on the pre-running servers,
aws-sqs (ApproximateReceiveCount) on the moto server.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import pytest

from core import retry
from core.errors import UsageError
from core.log import Logger
from core.options import PROCX
from core.procx import Procx
from core.settings import load
from core.work import Work
from tests.drivers.cloud.conftest import Moto, moto  # noqa: F401 - the session-scoped moto server fixture
from tests.support import clean_env, run, unusable, wait_for
from tests.test_exit_codes import queues
from tests.test_procx_cli import enqueue, events, finish, one_line_error, popen, rows, script, sq

PY = sys.executable
SECRET = "dlq-s3cret-pw"
FAILS = "import sys; sys.exit(3)"


def named(result, event: str) -> list[dict]:
    return [e for e in events(result.stderr) if e.get("event") == event]


def fails(tmp_path: Path) -> list[str]:
    return [PY, script(tmp_path, "fails.py", FAILS)]


def state_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose state directory (procx's own attempt counts) is private to the test."""
    return clean_env(PROCX_TUI_STATE=str(tmp_path / "state"), **extra)


# -- options (in process) ---------------------------------------------------------------------------------

def test_backoff_doubles_from_the_base_and_is_capped():
    _, config = load(PROCX, ["-driver", "local", "-retry-backoff", "2s", "-retry-backoff-max", "10s"], {})
    policy = retry.Policy(config)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 1000)] == [2, 4, 8, 10, 10, 10]
    _, config = load(PROCX, ["-driver", "local"], {})
    assert retry.Policy(config).delay(7) == 0  # off by default: the original's behaviour
    assert (config["max-attempts"], config["dead-letter"]) == (0, "")


def test_exhausted_only_with_a_limit():
    _, config = load(PROCX, ["-driver", "local", "-max-attempts", "3"], {})
    policy = retry.Policy(config)
    assert [policy.exhausted(Work(b"x", attempt=n)) for n in (1, 2, 3, 4)] == [False, False, True, True]
    _, config = load(PROCX, ["-driver", "local"], {})
    assert not retry.Policy(config).exhausted(Work(b"x", attempt=10 ** 6))


@pytest.mark.parametrize(("args", "expected"), [
    (["-max-attempts", "-1"], "-max-attempts (PROCX_MAX_ATTEMPTS): must be 0"),
    (["-retry-backoff", "-1s"], "-retry-backoff (PROCX_RETRY_BACKOFF): must not be negative"),
    (["-dead-letter", "-driver nope"], "-dead-letter (PROCX_DEAD_LETTER): pushx arguments: "),
    (["-dead-letter", "-driver fs"], "-fs-folder"),
    (["-dead-letter", "-driver fs -fs-folder /tmp -fs-key k extra"], "unexpected 'extra'"),
    (["-dead-letter", "-driver fs -fs-folder /tmp -fs-key k -in x"], "-in does not apply"),
    (["-dead-letter", "-driver fs -fs-folder '/tmp"], "cannot split"),
])
def test_bad_values_are_usage_errors_naming_the_flag(args, expected):
    with pytest.raises(UsageError) as info:
        load(PROCX, ["-driver", "local", *args], {})
    assert expected in str(info.value)


def test_a_secret_inline_in_dead_letter_is_refused_without_showing_it(tmp_path):
    with pytest.raises(UsageError) as info:
        load(PROCX, ["-driver", "local", "-dead-letter", f"-driver redis-list -redis-key k -redis-password {SECRET}"],
             {})
    assert "-redis-password is a secret" in str(info.value) and SECRET not in str(info.value)
    dlq = tmp_path / "dlq.env"  # the way to give it: an env file (its ${VAR} read procx's environment)
    dlq.write_text("PUSHX_DRIVER=redis-list\nPUSHX_REDIS_KEY=k\nPUSHX_REDIS_PASSWORD=${DLQ_PASSWORD}\n")
    _, config = load(PROCX, ["-driver", "local", "-dead-letter", f"-env-file {dlq}"], {})
    target = retry.target_config(config["dead-letter"])
    assert target.driver == "redis-list" and target["redis-key"] == "k"


def test_target_ignores_pushx_variables_of_procx_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PUSHX_DRIVER", "redis-list")  # meant for the child's own pushx, not for the target
    monkeypatch.setenv("PUSHX_SQLITE_QUEUE", "from-env")
    target = retry.target_config(f"-driver sqlite -sqlite-path {tmp_path / 'd.db'}")
    assert (target.driver, target["sqlite-queue"]) == ("sqlite", "default")


def test_max_attempts_needs_a_dead_letter_target():
    _, config = load(PROCX, ["-driver", "local", "-max-attempts", "3"], {})
    with pytest.raises(UsageError) as info:
        Procx(config, Logger("procx"))
    assert "-max-attempts (PROCX_MAX_ATTEMPTS)" in str(info.value) and "-dead-letter" in str(info.value)
    _, config = load(PROCX, ["-driver", "local", "-max-attempts", "3", "-exit-codes", "3=dead-letter",
                             "-dead-letter", "-driver fs -fs-folder /tmp -fs-key k"], {})
    Procx(config, Logger("procx"))  # any driver, with a -dead-letter target


def test_max_attempts_without_target_from_the_command_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "job").write_bytes(b"x")
    text = one_line_error(run("procx", "-driver", "fs", "-fs-folder", str(folder), "-fs-key", "job",
                              "-max-attempts", "2", "true"))
    assert "-max-attempts (PROCX_MAX_ATTEMPTS)" in text and "driver fs" in text
    assert (folder / "job").read_bytes() == b"x"


# -- sqlite end to end: the provider's own count -----------------------------------------------------------

def test_n_attempts_then_the_dead_letter_queue(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"poison", b"ok")
    result = run("procx", *sq(db, "-daemon", "-until-empty", "-log-format", "json", "-max-attempts", "3"),
                 PY, script(tmp_path, "c.py", "import os, sys; sys.exit(os.environ['PROCX_PAYLOAD'] == 'poison')"))
    assert result.returncode == 0, result.stderr
    assert [(e["id"], e["attempt"]) for e in named(result, "failed")] == [("1", 1), ("1", 2)]
    [dead] = named(result, "dead-lettered")
    assert (dead["id"], dead["attempt"], dead["status"]) == ("1", 3, 1)
    assert [e["id"] for e in named(result, "cleared")] == ["2"]
    assert queues(db) == {"default.dead": [b"poison"]}


def test_one_shot_runs_count_across_restarts(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    codes = [run("procx", *sq(db, "-max-attempts", "2"), *fails(tmp_path)).returncode for _ in range(2)]
    assert codes == [3, 0]  # the last attempt's work was dealt with: dead-lettered
    assert queues(db) == {"default.dead": [b"job"]}


def test_exit_codes_fail_mapping_counts_too_and_drop_is_not_dead_lettered(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    result = run("procx", *sq(db, "-daemon", "-until-empty", "-log-format", "json", "-max-attempts", "2",
                              "-exit-codes", "0=fail"), "true")
    assert [e["attempt"] for e in named(result, "failed")] == [1]
    assert [e["attempt"] for e in named(result, "dead-lettered")] == [2]
    db2 = tmp_path / "q2.db"
    enqueue(db2, b"job")
    result = run("procx", *sq(db2, "-max-attempts", "1", "-exit-codes", "3=drop", "-log-format", "json"),
                 *fails(tmp_path))
    assert named(result, "dropped") and not named(result, "dead-lettered") and queues(db2) == {}


def test_a_command_that_cannot_start_is_never_dead_lettered(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    for _ in range(2):
        assert run("procx", *sq(db, "-max-attempts", "1"), str(tmp_path / "missing")).returncode == 127
    assert queues(db) == {"default": [b"job"]}  # a broken setup, not poison work


def test_dead_letter_to_another_driver_is_byte_identical(tmp_path):
    db = tmp_path / "q.db"
    payload = bytes(range(256)) * 3 + b"\0\r\n  "
    enqueue(db, payload)
    folder = tmp_path / "dlq"
    folder.mkdir()
    result = run("procx", *sq(db, "-max-attempts", "1", "-pass-work-as-stdin", "-log-format", "json",
                              "-dead-letter", f"-driver fs -fs-folder {folder} -fs-key dead.bin"), *fails(tmp_path))
    assert result.returncode == 0, result.stderr
    assert named(result, "dead-lettered")
    assert (folder / "dead.bin").read_bytes() == payload
    assert queues(db) == {}  # cleared from the source only after the push: not in <queue>.dead either


def test_dead_letter_target_from_an_env_file_for_exit_codes_too(tmp_path):
    db, other = tmp_path / "q.db", tmp_path / "dlq.db"
    enqueue(db, b"exit-3 \xff\0")
    env_file = tmp_path / "dlq.env"
    env_file.write_text(f"PUSHX_DRIVER=sqlite\nPUSHX_SQLITE_PATH={other}\nPUSHX_SQLITE_QUEUE=poison\n")
    result = run("procx", *sq(db, "-exit-codes", "3=dead-letter", "-pass-work-as-stdin",
                              "-dead-letter", f"-env-file {env_file}"), *fails(tmp_path))
    assert result.returncode == 0, result.stderr
    assert queues(db) == {} and queues(other) == {"poison": [b"exit-3 \xff\0"]}


def test_a_failing_dead_letter_push_fails_the_work_back(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    bad = unusable(tmp_path)
    result = run("procx", *sq(db, "-max-attempts", "1", "-log-format", "json",
                              "-dead-letter", f"-driver sqlite -sqlite-path {bad}"), *fails(tmp_path))
    assert result.returncode == 3
    [error] = named(result, "error")
    assert error["error"].startswith("-dead-letter: driver sqlite: cannot ")
    assert named(result, "failed") and not named(result, "dead-lettered")
    assert [r[:3] for r in rows(db)] == [(b"job", 1, None)]  # back in its queue, not lost
    again = run("procx", *sq(db, "-max-attempts", "1", "-dead-letter", f"-driver sqlite -sqlite-path {db} "
                             "-sqlite-queue later"), *fails(tmp_path))
    assert again.returncode == 0 and queues(db) == {"later": [b"job"]}  # the next attempt reaches a target


# -- back-off ----------------------------------------------------------------------------------------------

def test_backoff_sets_the_next_available_time_doubling_and_capped(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    args = sq(db, "-retry-backoff", "100s", "-retry-backoff-max", "250s", "-log-format", "json")
    waits = []
    for expected in (100, 200, 250):
        before = time.time()
        result = run("procx", *args, *fails(tmp_path))
        [failed] = named(result, "failed")
        [(_, _, lease, available)] = rows(db)
        assert lease is None and before + expected - 1 < available < time.time() + expected + 1
        waits.append(failed["retry_in"])
        assert named(run("procx", *args), "no-work")  # not offered again yet
        with sqlite3.connect(db) as conn:  # let time pass
            conn.execute("UPDATE procx_queue SET available_at = 0")
    assert waits == [100, 200, 250]


def test_fail_delay_wins_when_longer_and_no_backoff_by_default(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    before = time.time()
    run("procx", *sq(db, "-sqlite-fail-delay", "1h", "-retry-backoff", "1s"), *fails(tmp_path))
    assert rows(db)[0][3] > before + 3500
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE procx_queue SET available_at = 0")
    run("procx", *sq(db), *fails(tmp_path))
    assert rows(db)[0][3] <= time.time()


# -- procx's own count (a driver whose provider keeps none) ---------------------------------------------------

def test_fs_attempts_are_counted_by_procx_across_restarts(tmp_path):
    folder, db = tmp_path / "in", tmp_path / "dlq.db"
    folder.mkdir()
    (folder / "job").write_bytes(b"fs job")
    args = ["-driver", "fs", "-fs-folder", str(folder), "-fs-key", "job", "-fs-clear-op", "rm", "-max-attempts", "3",
            "-log-format", "json", "-dead-letter", f"-driver sqlite -sqlite-path {db}"]
    env = state_env(tmp_path)
    out = tmp_path / "attempt"
    child = [PY, script(tmp_path, "c.py", "import os, sys; open(sys.argv[1], 'a').write("
                                          "os.environ['PROCX_ATTEMPT'] + ' '); sys.exit(5)"), str(out)]
    results = [run("procx", *args, *child, env=env) for _ in range(3)]
    assert [r.returncode for r in results] == [5, 5, 0]
    assert out.read_text().split() == ["1", "2", "3"]  # the child sees procx's count too
    assert named(results[2], "dead-lettered")[0]["attempt"] == 3
    # pushed to the target, then cleared as the driver clears (-fs-clear-op rm)
    assert not (folder / "job").exists() and queues(db) == {"default": [b"fs job"]}
    with sqlite3.connect(tmp_path / "state" / "attempts.db") as conn:
        assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0  # forgotten once finished


def test_fs_count_is_forgotten_after_success_and_kept_per_folder(tmp_path):
    env = state_env(tmp_path)
    found = {}
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "job").write_bytes(b"x")
        found[name] = ["-driver", "fs", "-fs-folder", str(folder), "-fs-key", "job", "-max-attempts", "5",
                       "-dead-letter", f"-driver fs -fs-folder {tmp_path} -fs-key dead"]
    assert run("procx", *found["a"], *fails(tmp_path), env=env).returncode == 3
    assert run("procx", *found["a"], *fails(tmp_path), env=env).returncode == 3
    got = run("procx", *found["b"], "-log-format", "json", *fails(tmp_path), env=env)
    assert named(got, "got")[0]["attempt"] == 1  # another folder: another count
    assert run("procx", *found["a"], "-fs-clear-op", "rm", "true", env=env).returncode == 0
    (tmp_path / "a" / "job").write_bytes(b"x")
    got = run("procx", *found["a"], "-log-format", "json", *fails(tmp_path), env=env)
    assert named(got, "got")[0]["attempt"] == 1  # done once: a new job of that name starts again at 1


# -- lease loss -----------------------------------------------------------------------------------------------

LONG_CHILD = """
import pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
def stopped(signum, frame):
    (folder / "terminated").write_text(str(signum))
    sys.exit(143)
signal.signal(signal.SIGTERM, stopped if sys.argv[2] == "obey" else signal.SIG_IGN)
(folder / "started").write_text("")
time.sleep(60)
"""


@pytest.mark.parametrize("child_mode", ["obey", "ignore"])
def test_a_stolen_lease_stops_the_child_and_fails_the_work_back(tmp_path, child_mode):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-sqlite-visibility-timeout", "0.3s", "-grace-period", "0.5s", "-log-format", "json",
                     "-max-attempts", "1"), PY, script(tmp_path, "c.py", LONG_CHILD), str(tmp_path), child_mode,
                 stderr_file=err)
    wait_for(lambda: (tmp_path / "started").exists())
    first_expiry = rows(db)[0][3]
    wait_for(lambda: rows(db)[0][3] > first_expiry + 0.3)  # the keep-alive holds the lease past its first expiry
    with sqlite3.connect(db) as conn:  # another consumer takes the item (as after an expired lease)
        conn.execute("UPDATE procx_queue SET lease = 'thief', attempts = attempts + 1")
    code, _ = finish(proc)
    found = events(err.read_text())
    [lost] = [e for e in found if e["event"] == "lease-lost"]
    assert "another consumer" in lost["reason"] and lost["id"] == "1"
    [failed] = [e for e in found if e["event"] == "failed"]
    if child_mode == "obey":
        assert (tmp_path / "terminated").read_text() == str(signal.SIGTERM)
        assert code == failed["status"] == 143
    else:  # killed after the grace period
        assert code == failed["status"] == 128 + signal.SIGKILL
    assert not [e for e in found if e["event"] == "dead-lettered"]  # a lost lease is no attempt of ours
    assert [r[:3] for r in rows(db)] == [(b"job", 2, "thief")]  # the thief's lease is untouched


def test_keep_alive_holds_a_job_longer_than_the_visibility_timeout(tmp_path):
    """While the child outlives the visibility timeout five times over, no other procx can take the item."""
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    proc = popen(*sq(db, "-sqlite-visibility-timeout", "0.2s", "-log-format", "json"), PY, "-c",
                 f"import pathlib, time; pathlib.Path({str(tmp_path / 'started')!r}).touch(); time.sleep(1)")
    wait_for(lambda: (tmp_path / "started").exists())
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:  # another consumer keeps looking while the child runs
        assert run("procx", *sq(db, "-log-format", "json")).stdout == b""
    code, _ = finish(proc)
    assert code == 0 and rows(db) == []


def test_a_lost_lease_fails_the_work_back_unless_the_child_succeeded(tmp_path):
    from types import SimpleNamespace

    _, config = load(PROCX, [*sq(tmp_path / "q.db"), "-max-attempts", "1"], {})
    procx = Procx(config, Logger("procx"))
    child = SimpleNamespace(ran=True)
    work = Work(b"x", "1", attempt=5, exact=True)
    assert procx.action(3, child, work) == "dead-letter"
    work.lost = "taken by another consumer"
    assert procx.action(0, child, work) == "clear"  # done: clearing is harmless where the lease is gone
    assert procx.action(3, child, work) == procx.action(143, child, work) == "fail"  # never dead-lettered


def test_lose_calls_the_watcher_once_and_only_before_the_end():
    seen = []
    work = Work(b"x", "1")
    work.lose("early")
    work.watch(lambda w: seen.append(w.lost))
    work.lose("again")
    assert seen == ["early"]
    done = Work(b"y")
    done.done = "cleared"
    done.lose("late")
    assert done.lost == ""


# -- real servers: the provider's own delivery counter ------------------------------------------------------------

def redis_args(key: str) -> list[str]:
    return ["-driver", "redis-stream", "-redis-host", "127.0.0.1", "-redis-port", "6379", "-redis-key", key,
            "-redis-stream-payload-field", "data", "-redis-stream-claim-idle", "20s"]


def test_redis_stream_delivery_count_dead_letters_after_n(tmp_path):
    import redis

    key = f"procx-test-retries-{uuid.uuid4().hex[:12]}"
    conn = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
    try:
        conn.xadd(key, {"data": b"stream \0\xff job"})
        db = tmp_path / "dlq.db"
        result = run("procx", *redis_args(key), "-daemon", "-until-empty", "-log-format", "json",
                     "-max-attempts", "3", "-pass-work-as-stdin", "-dead-letter", f"-driver sqlite -sqlite-path {db}",
                     *fails(tmp_path))
        assert result.returncode == 0, result.stderr
        assert [e["attempt"] for e in named(result, "failed")] == [1, 2]
        assert [e["attempt"] for e in named(result, "dead-lettered")] == [3]
        assert queues(db) == {"default": [b"stream \0\xff job"]}
        assert conn.xpending(key, "procx")["pending"] == 0  # acknowledged once dead-lettered
    finally:
        conn.delete(key)
        conn.close()


def test_redis_stream_backoff_delays_the_next_claim(tmp_path):
    import redis

    key = f"procx-test-retries-{uuid.uuid4().hex[:12]}"
    conn = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
    try:
        conn.xadd(key, {"data": b"job"})
        args = [*redis_args(key), "-wait-for-work", "0", "-retry-backoff", "15s"]
        assert run("procx", *args, *fails(tmp_path)).returncode == 3
        [entry] = conn.xpending_range(key, "procx", "-", "+", 1)
        assert 4_000 <= entry["time_since_delivered"] < 10_000  # idle 20s - 15s: claimable in about 15 seconds
        assert named(run("procx", *args, "-log-format", "json"), "no-work")  # not offered again yet
    finally:
        conn.delete(key)
        conn.close()


def test_jetstream_num_delivered_dead_letters_after_n(tmp_path):
    import asyncio

    import nats

    subject = f"procx.retries.{uuid.uuid4().hex[:12]}"
    stream = f"RETRIES_{uuid.uuid4().hex[:8]}"

    async def setup() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[subject])
        await js.publish(subject, b"js job")
        await nc.close()

    async def teardown() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(setup())
    try:
        db = tmp_path / "dlq.db"
        args = ["-driver", "nats", "-nats-url", "nats://127.0.0.1:4222", "-nats-subject", subject,
                "-nats-jetstream", "-nats-durable", "procx-retries", "-log-format", "json", "-max-attempts", "2",
                "-dead-letter", f"-driver sqlite -sqlite-path {db}", "-wait-for-work", "5s"]
        first = run("procx", *args, *fails(tmp_path))
        second = run("procx", *args, *fails(tmp_path))
        assert first.returncode == 3 and named(first, "failed")[0]["attempt"] == 1
        assert second.returncode == 0 and named(second, "dead-lettered")[0]["attempt"] == 2
        assert queues(db) == {"default": [b"js job"]}
    finally:
        asyncio.run(teardown())


def test_sqs_receive_count_dead_letters_and_backoff_hides_the_message(moto: Moto, tmp_path):  # noqa: F811
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName=f"retries-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="sqs job")
    db = tmp_path / "dlq.db"
    args = ["-driver", "aws-sqs", "-aws-sqs-queue-url", url, "-log-format", "json", "-max-attempts", "2",
            "-dead-letter", f"-driver sqlite -sqlite-path {db}", "-wait-for-work", "0"]
    first = run("procx", *args, *fails(tmp_path), env=moto.env())
    second = run("procx", *args, *fails(tmp_path), env=moto.env())
    assert first.returncode == 3 and named(first, "failed")[0]["attempt"] == 1
    assert second.returncode == 0 and named(second, "dead-lettered")[0]["attempt"] == 2
    assert queues(db) == {"default": [b"sqs job"]}
    sqs.send_message(QueueUrl=url, MessageBody="later")
    third = run("procx", *args, "-retry-backoff", "30s", *fails(tmp_path), env=moto.env())
    assert third.returncode == 3 and named(third, "failed")[0]["retry_in"] == 30
    hidden = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert hidden == []  # ChangeMessageVisibility 30: not offered again at once


def test_redis_list_backoff_keeps_the_item_leased_for_the_delay(tmp_path):
    import redis

    key = f"procx-test-retries-{uuid.uuid4().hex[:12]}"
    conn = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
    try:
        conn.rpush(key, b"list job")
        args = ["-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-port", "6379", "-redis-key", key,
                "-log-format", "json", "-wait-for-work", "0"]
        before = time.time()
        assert run("procx", *args, "-retry-backoff", "0.5s", *fails(tmp_path)).returncode == 3
        deadline = conn.zscore(f"{key}:processing:leases", b"list job")
        assert deadline is not None and before + 0.4 < deadline / 1000 < time.time() + 0.6
        assert conn.llen(key) == 0 and conn.lrange(f"{key}:processing", 0, -1) == [b"list job"]
        wait_for(lambda: time.time() * 1000 > deadline + 50, timeout=5)
        assert run("procx", *args).stdout == b"list job"  # back after the delay (and cleared: no command)
        assert run("procx", *args, "-retry-backoff", "0", *fails(tmp_path)).returncode == 0  # nothing left
    finally:
        conn.delete(key, f"{key}:processing", f"{key}:processing:leases")
        conn.close()


def test_rabbitmq_dead_letter_rejects_to_the_queues_dead_letter_exchange(tmp_path):
    import pika

    url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue = f"procx-retries-{uuid.uuid4().hex[:12]}"
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    try:
        channel.queue_declare(f"{queue}.dlq", durable=True)
        channel.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": "",
                                                              "x-dead-letter-routing-key": f"{queue}.dlq"})
        channel.basic_publish("", queue, b"rabbit \0\xff job")
        result = run("procx", "-driver", "rabbitmq", "-rabbitmq-url", url, "-rabbitmq-queue", queue,
                     "-max-attempts", "1", "-pass-work-as-stdin", "-log-format", "json", "-wait-for-work", "5s",
                     *fails(tmp_path), env=state_env(tmp_path))
        assert result.returncode == 0 and named(result, "dead-lettered"), result.stderr
        _, _, body = channel.basic_get(f"{queue}.dlq", auto_ack=True)
        assert body == b"rabbit \0\xff job"
        assert channel.queue_declare(queue, passive=True).method.message_count == 0
    finally:
        channel.queue_delete(queue)
        channel.queue_delete(f"{queue}.dlq")
        conn.close()


def test_sqs_heartbeat_reports_a_lost_receipt(moto: Moto, monkeypatch):  # noqa: F811
    from drivers.aws.sqs import SqsSource

    for name, value in moto.variables().items():
        monkeypatch.setenv(name, value)
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName=f"retries-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    _, config = load(PROCX, ["-driver", "aws-sqs", "-aws-sqs-queue-url", url, "-aws-sqs-visibility-timeout", "1"],
                     dict(moto.variables()))
    source = SqsSource(config)
    source.open()
    try:
        work = source.get(1)
        seen = []
        work.watch(lambda w: seen.append(w.lost))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=work.handle.receipt)  # someone else finished it
        wait_for(lambda: seen, timeout=5)
        assert "SQS refused" in seen[0] and work.id in seen[0], seen
    finally:
        source.close()
