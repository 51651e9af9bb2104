"""pushx -bulk: one message per line, streamed in batches, against the real Redis at 127.0.0.1:6379 and sqlite."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

pytest.importorskip("redis", reason="pip install -e '.[redis]'")

from core import api, bulk  # noqa: E402
from tests.drivers.redis_helpers import client, connection_args, delete_keys, unique_key  # noqa: E402
from tests.support import clean_env, command, run, wait_for  # noqa: E402

LINES = b"".join(b"line %05d \xff\x00 payload\n" % i for i in range(10_000))


@pytest.fixture
def key():
    name = unique_key("bulk")
    yield name
    delete_keys(name)


@pytest.fixture
def redis_conn():
    conn = client()
    yield conn
    conn.close()


def rlist(key: str, *extra: str) -> list[str]:
    return [*connection_args("redis-list", key), "-bulk", *extra]


def sq(db: Path, *extra: str) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(db), "-bulk", *extra]


def queued(db: Path) -> list[bytes]:
    conn = sqlite3.connect(db)
    try:
        return [bytes(p) for (p,) in conn.execute("SELECT payload FROM procx_queue ORDER BY id")]
    finally:
        conn.close()


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([command("pushx"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())


def read_exactly(stream, size: int) -> bytes:
    """`size` bytes of a pipe, in a thread so that a test that expects them cannot hang."""
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(stream.read(size)), daemon=True)
    reader.start()
    reader.join(20)
    assert got, f"fewer than {size} bytes arrived"
    return got[0]


# -- round trips --------------------------------------------------------------------------------------------
def test_10k_lines_into_redis_list_in_order_and_passed_on(key: str, redis_conn) -> None:
    result = run("pushx", *rlist(key, "-out=-"), input=LINES)
    assert result.returncode == 0, result.stderr
    assert result.stdout == LINES  # -out=- passes exactly the input on
    items = redis_conn.lrange(key, 0, -1)
    assert items == LINES.split(b"\n")[:-1]
    assert sum(len(i) for i in items) == len(LINES) - 10_000


def test_10k_lines_into_sqlite_counts_and_bytes(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db, "-bulk-batch", "777", "-log-format", "json"), input=LINES)
    assert result.returncode == 0, result.stderr
    assert queued(db) == LINES.split(b"\n")[:-1]
    import json

    events = [json.loads(line) for line in result.stderr.splitlines()]
    pushed = [e for e in events if e.get("event") == "pushed"]
    assert [e["messages"] for e in pushed] == [777] * 12 + [10_000 - 777 * 12]
    assert sum(e["bytes"] for e in pushed) == len(LINES) - 10_000


def test_in_file_and_in_flag_are_split_too(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    data = tmp_path / "data.txt"
    data.write_bytes(b"a\nb\n")
    assert run("pushx", *sq(db, "-in-file", str(data))).returncode == 0
    assert run("pushx", *sq(db, "-in", "c\nd")).returncode == 0
    assert queued(db) == [b"a", b"b", b"c", b"d"]


def test_redis_stream_bulk_adds_one_entry_per_line(key: str, redis_conn) -> None:
    lines = b"".join(b"%d\n" % i for i in range(1200))
    args = [*connection_args("redis-stream", key), "-bulk", "-redis-stream-payload-field", "body"]
    result = run("pushx", *args, input=lines)
    assert result.returncode == 0, result.stderr
    entries = redis_conn.xrange(key)
    assert [fields[b"body"] for _, fields in entries] == lines.split(b"\n")[:-1]


# -- separators and empty lines -----------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "data", "messages"), [
    ("\\0", b"a\0b\nc\0\0d", [b"a", b"b\nc", b"d"]),
    ("\\r\\n", b"one\r\ntwo\nstill two\r\n\r\nthree\r", [b"one", b"two\nstill two", b"three\r"]),
    ("||", b"x||y|||z||", [b"x", b"y", b"|z"]),
    ("\\x1e", b"r1\x1er2", [b"r1", b"r2"]),
])
def test_separator(tmp_path: Path, flag: str, data: bytes, messages: list[bytes]) -> None:
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db, "-bulk-separator", flag, "-out=-"), input=data)
    assert result.returncode == 0, result.stderr
    assert queued(db) == messages
    assert result.stdout == data


def test_separator_from_its_variable(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db), input=b"a;b", env=clean_env(PUSHX_BULK_SEPARATOR=";"))
    assert result.returncode == 0, result.stderr
    assert queued(db) == [b"a", b"b"]


def test_empty_lines_are_skipped_but_passed_on(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    data = b"\n\na\n\nb\n\n"
    result = run("pushx", *sq(db, "-out=-"), input=data)
    assert (result.returncode, result.stdout) == (0, data)
    assert queued(db) == [b"a", b"b"]


def test_keep_empty_pushes_empty_lines(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    assert run("pushx", *sq(db, "-bulk-keep-empty"), input=b"\na\n\n").returncode == 0
    assert queued(db) == [b"", b"a", b""]


def test_out_file_gets_every_batch(tmp_path: Path) -> None:
    db, out, empty = tmp_path / "q.db", tmp_path / "copy.txt", tmp_path / "empty.txt"
    assert run("pushx", *sq(db, "-bulk-batch", "7", "-out", str(out)), input=LINES[:5000]).returncode == 0
    assert out.read_bytes() == LINES[:5000]
    assert run("pushx", *sq(db, "-out", str(empty)), input=b"").returncode == 0
    assert empty.read_bytes() == b""


def test_empty_input_pushes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db, "-out=-"), input=b"")
    assert (result.returncode, result.stdout) == (0, b"")
    assert queued(db) == []


def test_splitter_finds_separators_across_chunks() -> None:
    data = b"ab\r\n\r\ncd\r\nef"
    splitter = bulk.Splitter(b"\r\n")
    records = [r for i in range(len(data)) for r in splitter.feed(data[i : i + 1])]
    assert (records, splitter.rest()) == ([b"ab", b"", b"cd"], b"ef")


# -- streaming, tee and failures -------------------------------------------------------------------------
def test_first_batches_pushed_and_passed_on_before_the_input_ends(key: str, redis_conn) -> None:
    proc = start(*rlist(key, "-bulk-batch", "100", "-out=-"))
    try:
        first = b"".join(b"early %d\n" % i for i in range(150))
        proc.stdin.write(first)
        proc.stdin.flush()
        wait_for(lambda: redis_conn.llen(key) == 150)  # a full batch of 100, then 50 once the input paused
        assert read_exactly(proc.stdout, len(first)) == first
        proc.stdin.write(b"late\n")
        proc.stdin.close()
        assert proc.stdout.read() == b"late\n"
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert redis_conn.llen(key) == 151


def test_failure_mid_stream_stops_with_a_count_and_passes_nothing_more_on(key: str, redis_conn) -> None:
    proc = start(*rlist(key, "-bulk-batch", "100", "-out=-"))
    try:
        first = b"".join(b"ok %d\n" % i for i in range(100))
        proc.stdin.write(first + b"\n")  # an empty line too: skipped, and counted as a line of the input
        proc.stdin.flush()
        wait_for(lambda: redis_conn.llen(key) == 100)
        assert read_exactly(proc.stdout, len(first) + 1) == first + b"\n"
        redis_conn.delete(key)
        redis_conn.set(key, "not a list any more")  # the next RPUSH fails (WRONGTYPE)
        proc.stdin.write(b"lost 1\nlost 2\n")
        proc.stdin.close()
        assert proc.wait(timeout=20) == 69
        assert proc.stdout.read() == b""  # the failed batch is not passed on
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert err.count("\n") == 1 and "WRONGTYPE" in err, err
    assert "100 messages from the first 101 input lines were pushed" in err


def test_sqlite_failure_mid_stream_keeps_the_pushed_batches(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    run("pushx", "-driver", "sqlite", "-sqlite-path", str(db), "-in", "seed")
    proc = start(*sq(db, "-bulk-batch", "10"))
    try:
        proc.stdin.write(b"".join(b"%d\n" % i for i in range(10)))
        proc.stdin.flush()
        wait_for(lambda: len(queued(db)) == 11)
        conn = sqlite3.connect(db)
        conn.execute("DROP TABLE procx_queue")
        conn.commit()
        conn.close()
        proc.stdin.write(b"x\n")
        proc.stdin.close()
        assert proc.wait(timeout=20) == 69
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert "10 messages from the first 10 input lines were pushed" in err, err


def test_unreachable_provider_exits_69_and_passes_nothing_on() -> None:
    result = run("pushx", "-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-port", "1",
                 "-redis-key", "k", "-bulk", "-out=-", input=b"a\nb\n")
    assert (result.returncode, result.stdout) == (69, b"")
    assert b"127.0.0.1:1" in result.stderr


def test_memory_stays_bounded_while_streaming(key: str, redis_conn) -> None:
    """40 MB of input through a pipe: pushx's peak memory grows by far less than the input."""
    def peak_kib(lines: int) -> int:
        proc = subprocess.Popen([command("pushx"), *rlist(key)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=clean_env())
        line = b"m" * 399 + b"\n"
        block = line * 1000
        for _ in range(lines // 1000):
            proc.stdin.write(block)
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == 0, proc.stderr.read()
        return usage.ru_maxrss

    small = peak_kib(1000)
    big = peak_kib(100_000)
    assert redis_conn.llen(key) == 101_000
    assert big - small < 16 * 1024, f"peak RSS {small} KiB for 400 kB of input, {big} KiB for 40 MB"


# -- usage ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "flag"), [
    (["-bulk-separator", "\\q"], "-bulk-separator (PUSHX_BULK_SEPARATOR)"),
    (["-bulk-separator", ""], "-bulk-separator (PUSHX_BULK_SEPARATOR)"),
    (["-bulk-batch", "0"], "-bulk-batch (PUSHX_BULK_BATCH)"),
    (["-bulk-batch", "1000001"], "-bulk-batch (PUSHX_BULK_BATCH)"),
])
def test_bad_bulk_options_are_usage_errors(tmp_path: Path, args: list[str], flag: str) -> None:
    result = run("pushx", *sq(tmp_path / "q.db", *args), input=b"a\n")
    assert result.returncode == 2
    assert result.stderr.decode().startswith(f"pushx: {flag}")


def test_bulk_options_without_bulk_are_usage_errors(tmp_path: Path) -> None:
    result = run("pushx", "-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db"), "-bulk-batch", "5",
                 input=b"a\n")
    assert result.returncode == 2
    assert b"-bulk-batch (PUSHX_BULK_BATCH): only used with -bulk" in result.stderr
    assert not (tmp_path / "q.db").exists()


# -- the in-app API -------------------------------------------------------------------------------------------
def test_api_push_bulk_from_bytes_and_streams(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with api.Producer(["-driver", "sqlite", "-sqlite-path", str(db)]) as producer:
        assert producer.push_bulk(b"a\nb\n\nc") == 3
        assert producer.push_bulk("d;e", separator=";") == 2
        assert producer.push_bulk(io.BytesIO(b"f\n\ng\n"), keep_empty=True, batch=1) == 3
    assert queued(db) == [b"a", b"b", b"c", b"d", b"e", b"f", b"", b"g"]


def test_api_push_bulk_failure_says_how_many_were_pushed(key: str, redis_conn) -> None:
    class Breaks(io.RawIOBase):
        """Two batches of input, and the list turns into a string in between."""

        def __init__(self) -> None:
            self.chunks = [b"1\n2\n", b"3\n"]

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if len(self.chunks) == 1:
                redis_conn.delete(key)
                redis_conn.set(key, "x")
            return self.chunks.pop(0) if self.chunks else b""

    with (api.Producer(connection_args("redis-list", key)) as producer,
          pytest.raises(api.ProcxError, match="2 messages from the first 2 input lines were pushed")):
        producer.push_bulk(Breaks(), batch=2)


# -- the batch APIs of rabbitmq and nats (JetStream) ----------------------------------------------------------------
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"
NUMBERED = b"".join(b"n%d\n" % i for i in range(1200))


@pytest.fixture
def rabbit_queue():
    pika = pytest.importorskip("pika", reason="pip install -e '.[rabbitmq]'")
    conn = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    channel = conn.channel()
    name = unique_key("bulk")
    channel.queue_declare(name, durable=True)
    yield channel, name
    channel.queue_delete(name)
    conn.close()


def test_rabbitmq_bulk_commits_each_batch(rabbit_queue) -> None:
    channel, queue = rabbit_queue
    args = ["-driver", "rabbitmq", "-rabbitmq-url", RABBITMQ, "-rabbitmq-queue", queue, "-bulk"]
    result = run("pushx", *args, input=NUMBERED)
    assert result.returncode == 0, result.stderr
    bodies = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        assert got[1].delivery_mode == 2 and got[1].message_id
        bodies.append(got[2])
    assert bodies == NUMBERED.split(b"\n")[:-1]


def test_rabbitmq_bulk_unroutable_batch_is_an_error(rabbit_queue) -> None:
    args = ["-driver", "rabbitmq", "-rabbitmq-url", RABBITMQ, "-rabbitmq-exchange", "amq.direct",
            "-rabbitmq-routing-key", unique_key("nobody"), "-bulk", "-out=-"]
    result = run("pushx", *args, input=b"a\nb\n")
    assert (result.returncode, result.stdout) == (69, b"")
    assert b"2 of 2 messages of the batch: no queue is bound" in result.stderr
    assert b"no message was pushed" in result.stderr


def test_nats_jetstream_bulk_publishes_in_order() -> None:
    pytest.importorskip("nats", reason="pip install -e '.[nats]'")
    from tests.drivers.test_nats import _js_call, delete_stream, make_stream

    name, subject = make_stream()
    try:
        result = run("pushx", "-driver", "nats", "-nats-url", "nats://127.0.0.1:4222", "-nats-subject", subject,
                     "-nats-jetstream", "-bulk", input=NUMBERED)
        assert result.returncode == 0, result.stderr

        async def stored(js, nc):
            info = await js.stream_info(name)
            return info.state.messages, [(await js.get_msg(name, seq)).data for seq in (1, 2, 600, 1200)]

        assert _js_call(stored) == (1200, [b"n0", b"n1", b"n599", b"n1199"])
    finally:
        delete_stream(name)
