"""The benchmark sections on real providers (bench/run.py prints them): cold start against Redis and SQS (P1),
daemon throughput on redis-list (P2) and memory (P4). A section whose server or tool is missing says so and is
skipped. Redis is the machine's (127.0.0.1:6379); SQS is a moto server started here on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

PYTHON = sys.executable
BIN = Path(PYTHON).parent
PROCX, PUSHX = str(BIN / "procx"), str(BIN / "pushx")
TRUE = "/bin/true"
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_")) and k != "LOG_LEVEL"}
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1"}


def row(label: str, *cells: str) -> None:
    print(f"   {label:<44}" + "".join(f"{c:>13}" for c in cells))


def redis_client():
    """A client of the machine's Redis, or None (and why) when there is none."""
    try:
        import redis

        conn = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
        conn.ping()
        return conn, ""
    except Exception as exc:  # noqa: BLE001 - a benchmark without Redis skips the section
        return None, f"no Redis at 127.0.0.1:6379: {exc}"


@contextlib.contextmanager
def moto_server() -> Iterator[str | None]:
    """A moto server on a free loopback port for the duration; None when moto is not installed."""
    binary = BIN / "moto_server"
    if not binary.exists():
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2).close()
                break
            time.sleep(0.1)
        yield endpoint if proc.poll() is None else None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sqs_client(endpoint: str):
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                        region_name="us-east-1")


def sqs_queue(endpoint: str) -> str:
    return sqs_client(endpoint).create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def medians(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, float | None]:
    """The median wall time of each command, interleaved; round 0 warms the caches and is not counted."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    failed: set[str] = set()
    for round_ in range(runs + 1):
        for label, (cmd, env) in commands.items():
            started = time.perf_counter()
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            elapsed = time.perf_counter() - started
            if done.returncode != 0 and label not in failed:
                failed.add(label)
                print(f"   ! {label}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()[-300:]}")
            elif round_:
                times[label].append(elapsed)
    return {label: None if label in failed else statistics.median(v) for label, v in times.items()}


def cold_start(runs: int) -> None:
    """P1: pushx one message to redis-list vs redis-cli, and to aws-sqs vs the AWS CLI, against the same servers."""
    print(f"\nP1. Cold start against real providers ({runs} runs each, interleaved, median)")
    row("", "median ms", "× python", "× rival")
    commands: dict[str, tuple[list[str], dict[str, str]]] = {"python3 -c pass": ([PYTHON, "-c", "pass"], ENV)}
    conn, why = redis_client()
    key = f"procx-bench-{uuid.uuid4().hex[:8]}"
    if conn is not None:
        commands["pushx -driver redis-list"] = ([PUSHX, "-driver", "redis-list", "-redis-host", "127.0.0.1",
                                                 "-redis-key", key, "-in", "x"], ENV)
        if shutil.which("redis-cli"):
            commands["redis-cli lpush"] = (["redis-cli", "-h", "127.0.0.1", "lpush", key, "x"], ENV)
    with moto_server() as endpoint:
        if endpoint is not None:
            url = sqs_queue(endpoint)
            env = {**ENV, **AWS, "AWS_ENDPOINT_URL": endpoint}
            commands["pushx -driver aws-sqs"] = ([PUSHX, "-driver", "aws-sqs", "-aws-sqs-queue-url", url, "-in", "x"],
                                                 env)
            if shutil.which("aws"):
                commands["aws sqs send-message"] = (["aws", "sqs", "send-message", "--queue-url", url,
                                                     "--message-body", "x", "--endpoint-url", endpoint], env)
        result = medians(commands, runs)
    if conn is not None:
        conn.delete(key)
    base = result["python3 -c pass"]
    rivals = {"pushx -driver redis-list": "redis-cli lpush", "pushx -driver aws-sqs": "aws sqs send-message"}
    for label, elapsed in result.items():
        if elapsed is None:
            row(label, "failed")
            continue
        rival = result.get(rivals.get(label, ""))
        row(label, f"{elapsed * 1000:.1f}", f"{elapsed / base:.2f}" if base else "",
            f"{elapsed / rival:.2f}" if rival else "")
    if conn is None:
        print(f"   (redis rows skipped: {why})")
    if "pushx -driver aws-sqs" not in result:
        print("   (aws-sqs rows skipped: moto is not installed: pip install -e '.[test-cloud]')")
    elif "aws sqs send-message" not in result:
        print("   (the AWS CLI is not installed: pip install awscli)")
    for label, target, what in (("pushx -driver redis-list", 2.5, "python3 -c pass"),
                                ("pushx -driver aws-sqs", 0.3, "aws sqs send-message")):
        mine, theirs = result.get(label), result.get(what)
        if mine and theirs:
            ratio = mine / theirs
            print(f"   target: {label} ≤ {target}× {what}: {ratio:.2f}× ({'met' if ratio <= target else 'NOT met'})")


def bare_redis_loop(conn, key: str, items: int) -> float:
    """What procx does per item, in-process: LMOVE to a processing list, run the child, LREM."""
    processing = f"{key}:bare"
    started = time.perf_counter()
    while (item := conn.lmove(key, processing, "LEFT", "RIGHT")) is not None:
        subprocess.run([TRUE], input=item)
        conn.lrem(processing, 1, item)
    return time.perf_counter() - started


def procx_redis(conn, key: str, items: int, concurrency: int) -> tuple[float, float] | None:
    """Seconds from starting `procx -daemon` on the list until it is empty and nothing is in flight, and until the
    first item was gone (its start-up, within the 5 ms polling)."""
    cmd = [PROCX, "-daemon", "-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-key", key,
           "-concurrency", str(concurrency), "-pass-work-as-stdin", TRUE]
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=ENV)
        deadline, first = started + 30 + items * 0.05, 0.0
        while (left := conn.llen(key)) or conn.llen(f"{key}:processing"):
            if proc.poll() is not None or time.perf_counter() > deadline:
                break
            if left < items and not first:
                first = time.perf_counter() - started
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        failed = proc.poll() is not None or bool(conn.llen(key))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if failed:
            err.seek(0)
            print(f"   ! procx -concurrency {concurrency}: {err.read().decode(errors='replace')[-400:]}")
            return None
    return elapsed, first or elapsed


def throughput(items: int, repeat: int) -> None:
    """P2: procx -daemon on redis-list with /bin/true vs the bare LMOVE + subprocess + LREM loop."""
    conn, why = redis_client()
    if conn is None:
        print(f"\nP2. Daemon throughput on redis-list: skipped ({why})")
        return
    key = f"procx-bench-{uuid.uuid4().hex[:8]}"
    payloads = [b"item %06d" % i for i in range(items)]
    runs: dict[str, list] = {"bare": [], "one": [], "two": []}
    measures: dict[str, Callable[[], object]] = {
        "bare": lambda: bare_redis_loop(conn, key, items),
        "one": lambda: procx_redis(conn, key, items, 1),
        "two": lambda: procx_redis(conn, key, items, 2)}
    try:
        for _ in range(repeat):
            for name, measure in measures.items():
                conn.delete(key, f"{key}:processing", f"{key}:processing:leases", f"{key}:bare")
                conn.rpush(key, *payloads)
                result = measure()
                if result is not None:
                    runs[name].append(result)
    finally:
        conn.delete(key, f"{key}:processing", f"{key}:processing:leases", f"{key}:bare")
    print(f"\nP2. Daemon throughput on redis-list ({items} items, best of {repeat}, {TRUE} with the payload on stdin)")
    row("", "items/s", "ms/item", "vs bare", "start-up ms", "steady")
    bare = min(runs["bare"])
    row("bare loop (LMOVE, subprocess.run, LREM)", f"{items / bare:.0f}", f"{bare / items * 1000:.3f}", "100%")
    for name, label in (("one", "procx -daemon -concurrency 1"), ("two", "procx -daemon -concurrency 2")):
        if not runs[name]:
            row(label, "failed")
            continue
        elapsed, first = min(runs[name])
        steady = bare * (items - 1) / items / (elapsed - first) if elapsed > first else 0.0
        row(label, f"{items / elapsed:.0f}", f"{elapsed / items * 1000:.3f}", f"{bare / elapsed:.0%}",
            f"{first * 1000:.0f}", f"{steady:.0%}")
    if runs["one"]:
        elapsed, first = min(runs["one"])
        ratio = bare / elapsed
        print("   (procx is timed from its process start; steady: after its first item, i.e. without start-up)")
        print(f"   target: procx -concurrency 1 ≥ 90% of the bare loop: {ratio:.0%} with start-up "
              f"({'met' if ratio >= 0.9 else 'NOT met'})")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the child is /bin/true: nothing)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def daemon_rss(argv: list[str], env: dict[str, str], feed: Callable[[], None], fed: Callable[[], bool]) -> float:
    """The RSS of a procx daemon after it worked through what `feed` queued (fed() says when it is done)."""
    proc = subprocess.Popen([PROCX, *argv, "-daemon", "-pass-work-as-stdin", TRUE], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        feed()
        deadline = time.monotonic() + 120
        while not fed() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        return rss_mb(proc.pid) if proc.poll() is None else float("nan")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def memory(items: int) -> None:
    """P4: a procx daemon's resident memory after `items` jobs, on redis-list and on aws-sqs (moto)."""
    print(f"\nP4. Memory of a procx daemon after {items} jobs (VmRSS)")
    row("", "MB")
    conn, why = redis_client()
    if conn is not None:
        key = f"procx-bench-{uuid.uuid4().hex[:8]}"
        mb = daemon_rss(["-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-key", key], ENV,
                        lambda: conn.rpush(key, *[b"job %d" % i for i in range(items)]),
                        lambda: not conn.llen(key) and not conn.llen(f"{key}:processing"))
        conn.delete(key, f"{key}:processing", f"{key}:processing:leases")
        row("procx -daemon -driver redis-list", f"{mb:.1f}")
        print(f"   target: ≤ 50 MB on redis-list: {'met' if mb <= 50 else 'NOT met'}")
    else:
        print(f"   (redis-list skipped: {why})")
    with moto_server() as endpoint:
        if endpoint is None:
            print("   (aws-sqs skipped: moto is not installed)")
            return
        url = sqs_queue(endpoint)
        client = sqs_client(endpoint)

        def feed() -> None:
            for start in range(0, items, 10):
                client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"job {i}"}
                                                                 for i in range(start, min(start + 10, items))])

        def fed() -> bool:
            attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

        mb = daemon_rss(["-driver", "aws-sqs", "-aws-sqs-queue-url", url, "-aws-sqs-wait-time", "1"],
                        {**ENV, **AWS, "AWS_ENDPOINT_URL": endpoint}, feed, fed)
        row("procx -daemon -driver aws-sqs", f"{mb:.1f}")
