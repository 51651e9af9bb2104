"""Benchmarks of procx/pushx: cold start, daemon throughput (sqlite, redis-list), per-message overhead, import
cost, bulk push, memory (the issue's P1-P4; the sections on Redis and SQS are in bench/providers.py).

    .venv/bin/python bench/run.py [--runs N] [--items M] [--repeat K] [--quick]

Prints one table from one run on this machine. Not part of the test suite: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import providers  # noqa: E402 - bench/providers.py: the sections on real providers (P1, P2, P4)

from core import api  # noqa: E402
from drivers.sqlite import LEASE  # noqa: E402

PYTHON = sys.executable
PROVIDERS = ("boto3", "botocore", "google", "redis", "textual", "questionary", "dotenv")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_")) and k != "LOG_LEVEL"}
TRUE = "/bin/true"
PROCX, PUSHX = (str(Path(PYTHON).parent / name) for name in ("procx", "pushx"))


def row(label: str, *cells: str) -> None:
    print(f"   {label:<44}" + "".join(f"{c:>13}" for c in cells))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# -- 1. cold start ---------------------------------------------------------------------------------------
def cold_start(tmp: Path, runs: int) -> None:
    commands = {
        "python3 -c pass (venv interpreter)": [PYTHON, "-c", "pass"],
        "procx -h": [PROCX, "-h"],
        "pushx -driver fs (one message)": [PUSHX, "-driver", "fs", "-fs-folder", str(tmp / "fs"),
                                           "-fs-key", "k", "-in", "x"],
        "pushx -driver sqlite (one message)": [PUSHX, "-driver", "sqlite", "-sqlite-path",
                                               str(tmp / "q.db"), "-in", "x"],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    for round_ in range(runs + 1):  # round 0 warms the caches and creates the files; not counted
        for label, cmd in commands.items():  # interleaved, so that drift affects every command alike
            started = time.perf_counter()
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                print(f"   ! {label}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
            if round_:
                times[label].append(elapsed)
    base = statistics.median(times["python3 -c pass (venv interpreter)"])
    print(f"\n1. Cold start ({runs} runs each, interleaved)")
    row("", "median ms", "min ms", "× python")
    ratios = {}
    for label, values in times.items():
        ratios[label] = statistics.median(values) / base
        row(label, ms(statistics.median(values)), ms(min(values)), f"{ratios[label]:.2f}")
    verdict = ", ".join(f"{label.split()[2]} {r:.2f}× ({'met' if r <= 2.5 else 'NOT met'})"
                        for label, r in ratios.items() if label.startswith("pushx"))
    print(f"   target: pushx ≤ 2.5× python3 -c pass (median): {verdict}")


# -- 2./3. daemon throughput and per-message overhead --------------------------------------------------------
def fresh_queue(tmp: Path, name: str, items: int) -> str:
    path = str(tmp / f"{name}-{len(list(tmp.iterdir()))}.db")
    with api.Producer(["-driver", "sqlite", "-sqlite-path", path]) as producer:
        producer.push_many([b"item %d" % i for i in range(items)])
    return path


def procx_daemon(tmp: Path, items: int, concurrency: int) -> tuple[float, float] | None:
    """Seconds from starting `procx -daemon` until its queue is empty, and until the first item was gone
    (its start-up, within the 20 ms polling); None when procx failed."""
    path = fresh_queue(tmp, f"daemon{concurrency}", items)
    poll = sqlite3.connect(path, timeout=30)
    cmd = [PROCX, "-daemon", "-driver", "sqlite", "-sqlite-path", path, "-concurrency", str(concurrency),
           "-pass-work-as-stdin", TRUE]
    with open(tmp / "procx.err", "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=ENV, cwd=tmp)
        deadline, first = started + 30 + items * 0.05, 0.0
        while left := poll.execute("SELECT count(*) FROM procx_queue").fetchone()[0]:
            if proc.poll() is not None or time.perf_counter() > deadline:
                break
            if left < items and not first:
                first = time.perf_counter() - started
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        failed = proc.poll() is not None
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            failed = True
    left = poll.execute("SELECT count(*) FROM procx_queue").fetchone()[0]
    poll.close()
    if failed or left:
        print(f"   ! procx -concurrency {concurrency}: exit {proc.returncode}, {left} items left: "
              f"{(tmp / 'procx.err').read_text(errors='replace').strip()[-500:]}")
        return None
    return elapsed, first or elapsed


def bare_loop(tmp: Path, items: int) -> float:
    """The same work in-process: lease with the driver's SQL, run the child with the payload on stdin, delete."""
    path = fresh_queue(tmp, "bare", items)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")  # as drivers.sqlite.connect
    started = time.perf_counter()
    while True:
        now = time.time()
        leased = conn.execute(LEASE, (now + 30.0, uuid.uuid4().hex, "default", now)).fetchone()
        if leased is None:
            break
        subprocess.run([TRUE], input=bytes(leased[1]))
        conn.execute("DELETE FROM procx_queue WHERE id = ?", (leased[0],))
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def bare_subprocess(items: int) -> float:
    started = time.perf_counter()
    for i in range(items):
        subprocess.run([TRUE], input=b"item %d" % i)
    return time.perf_counter() - started


def throughput(tmp: Path, items: int, repeat: int) -> None:
    runs: dict[str, list] = {"bare": [], "one": [], "two": [], "spawn": []}
    for _ in range(repeat):  # interleaved; the best of each counts, as load from elsewhere only slows a run down
        runs["bare"].append(bare_loop(tmp, items))
        runs["one"].append(procx_daemon(tmp, items, 1))
        runs["two"].append(procx_daemon(tmp, items, 2))
        runs["spawn"].append(bare_subprocess(items))
    bare, spawn = min(runs["bare"]), min(runs["spawn"])
    one, two = (min((r for r in runs[k] if r), default=None) for k in ("one", "two"))
    print(f"\n2. Daemon throughput over sqlite ({items} items, best of {repeat}, {TRUE} with the payload on stdin)")
    row("", "items/s", "ms/item", "vs bare", "start-up ms")
    row("bare loop (LEASE, subprocess.run, DELETE)", f"{items / bare:.0f}", f"{bare / items * 1000:.3f}", "100%")
    for label, result in (("procx -daemon -concurrency 1", one), ("procx -daemon -concurrency 2", two)):
        if result is None:
            row(label, "failed")
            continue
        elapsed, first = result
        row(label, f"{items / elapsed:.0f}", f"{elapsed / items * 1000:.3f}", f"{bare / elapsed:.0%}", ms(first))
    print("   (procx is timed from its process start: start-up = until the first item was gone, ±20 ms)")
    daemon = one[0] if one else None
    if daemon is not None:
        ratio = bare / daemon
        verdict = "met" if ratio >= 0.9 else "NOT met"
        print(f"   target: procx -concurrency 1 ≥ 90% of the bare loop: {ratio:.0%} ({verdict})")

    print(f"\n3. Per-message overhead ({items} items, best of {repeat})")
    row("", "ms/item")
    row("subprocess.run(['/bin/true'], input=payload)", f"{spawn / items * 1000:.3f}")
    if daemon is not None:
        overhead = (daemon - spawn) / items * 1000
        row("procx -daemon -concurrency 1", f"{daemon / items * 1000:.3f}")
        row("overhead (procx − subprocess.run)", f"{overhead:.3f}")
        print(f"   target: ≤ 1.5 ms: {'met' if overhead <= 1.5 else 'NOT met'}")


# -- 4. import cost ---------------------------------------------------------------------------------------
def import_tree(code: str) -> list[tuple[int, int, str]]:
    """(depth, cumulative µs, module) of the imports made by `python -X importtime -c code`, after start-up."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", code], capture_output=True, text=True, env=ENV,
                          cwd=ROOT)
    tree = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        tree.append((depth, int(cumulative), name.strip()))
        if depth == 0 and name.strip() == "site":  # the interpreter's own start-up ends with site
            tree.clear()
    return tree


def import_row(label: str, code: str, root: str | None = None) -> None:
    """Total import time of `code` (or of module `root` alone) and its heaviest imports."""
    tree = import_tree(code)
    if root is not None:
        at = next((i for i, (d, _, n) in enumerate(tree) if d == 0 and n == root), None)
        if at is None:
            print(f"   ! {root} not found in the -X importtime output")
            return
        total, below = tree[at][1], []
        for depth, cumulative, name in reversed(tree[:at]):  # a subtree precedes its root
            if depth == 0:
                break
            if depth == 1:
                below.append((cumulative, name))
    else:
        below = [(c, n) for d, c, n in tree if d == 0]
        total = sum(c for c, _ in below)
    row(label, f"{total / 1000:.1f} ms")
    print("      heaviest (ms): " + ", ".join(f"{n} {c / 1000:.1f}" for c, n in sorted(below, reverse=True)[:4]))


def imports(tmp: Path) -> None:
    print("\n4. Import cost (-X importtime, cumulative)")
    import_row("import core.cli", "import core.cli", root="core.cli")
    argv = ["-driver", "sqlite", "-sqlite-path", str(tmp / "imports.db"), "-in", "x"]
    import_row("all imports of a pushx -driver sqlite run", f"from core import cli; cli.main('pushx', {argv!r})")
    code = ("import contextlib, io, sys\nfrom core import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main('procx', ['-h'])\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {PROVIDERS!r})))")
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    loaded = done.stdout.strip() if done.returncode == 0 else f"! failed: {done.stderr.strip()[-300:]}"
    print(f"   provider modules loaded by procx -h ({', '.join(PROVIDERS)}): {loaded or 'none'}")


# -- 5. bulk push (P3) ------------------------------------------------------------------------------------
def best_of(repeat: int, runs: dict[str, object]) -> dict[str, float | None]:
    """The best time of each measurement (callables returning seconds or None), interleaved `repeat` times."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeat):
        for label, measure in runs.items():
            elapsed = measure()  # type: ignore[operator]
            if elapsed is not None:
                times[label].append(elapsed)
    return {label: min(values) if values else None for label, values in times.items()}


def timed_pushx(args: list[str], env: dict[str, str] | None = None, stdin: Path | None = None) -> float | None:
    with open(stdin or os.devnull, "rb") as source:
        started = time.perf_counter()
        done = subprocess.run([PUSHX, *args], stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env or ENV)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        print(f"   ! pushx {' '.join(args[:2])}: exit {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
        return None
    return elapsed


def bulk_table(title: str, lines: int, results: dict[str, float | None], baseline: str, target: float) -> None:
    print(f"\n{title}")
    row("", "msgs/s", "seconds", f"vs {baseline.split()[0]}")
    base = results[baseline]
    for label, elapsed in results.items():
        if elapsed is None:
            row(label, "failed")
            continue
        row(label, f"{lines / elapsed:.0f}", f"{elapsed:.3f}", f"{base / elapsed:.0%}" if base else "")
    bulk = results["pushx -bulk (whole process)"]
    if bulk and base:
        verdict = "met" if base / bulk >= target else "NOT met"
        print(f"   target: pushx -bulk ≥ {target:.0%} of {baseline}: {base / bulk:.0%} ({verdict})")


def bulk_lines(tmp: Path, lines: int) -> Path:
    path = tmp / f"bulk-{lines}.txt"
    if not path.exists():
        path.write_bytes(b"".join(b"item %07d of the bulk benchmark\n" % i for i in range(lines)))
    return path


def bulk_redis(tmp: Path, lines: int, repeat: int) -> None:
    """100k lines into redis-list: pushx -bulk against redis-py pipelining (RPUSH per line, executed per 1000)."""
    try:
        import redis

        admin = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10)
        admin.ping()
    except Exception as exc:  # noqa: BLE001 - a benchmark without Redis skips this section
        print(f"\n5. Bulk push into redis-list: skipped (no Redis at 127.0.0.1:6379: {exc})")
        return
    data = bulk_lines(tmp, lines)
    key = f"procx-bench-{uuid.uuid4().hex[:8]}"
    args = ["-driver", "redis-list", "-redis-host", "127.0.0.1", "-redis-key", key, "-bulk"]

    def checked(elapsed: float | None) -> float | None:
        count = admin.llen(key)
        admin.delete(key)
        if count != lines:
            print(f"   ! {count} items in the list, not {lines}")
            return None
        return elapsed

    def raw(multi: bool) -> float:
        started = time.perf_counter()
        conn = redis.Redis(host="127.0.0.1", port=6379)
        items = data.read_bytes().split(b"\n")[:-1]
        if multi:
            for at in range(0, len(items), 500):
                conn.rpush(key, *items[at : at + 500])
        else:
            pipe = conn.pipeline(transaction=False)
            for n, item in enumerate(items, 1):
                pipe.rpush(key, item)
                if n % 1000 == 0:
                    pipe.execute()
            pipe.execute()
        conn.close()
        return time.perf_counter() - started

    results = best_of(repeat, {
        "redis-py pipeline (RPUSH per line, per 1000)": lambda: checked(raw(multi=False)),
        "redis-py RPUSH of 500 values at a time": lambda: checked(raw(multi=True)),
        "pushx -bulk (whole process)": lambda: checked(timed_pushx([*args, "-in-file", str(data)])),
        "start-up": lambda: timed_pushx(args),  # the same pushx with no input
    })
    start_up = results.pop("start-up") or 0.0
    bulk = results["pushx -bulk (whole process)"]
    if bulk and bulk > start_up:
        results["pushx -bulk, its start-up excluded"] = bulk - start_up
    bulk_table(f"5. Bulk push: {lines} lines into redis-list (best of {repeat}; pushx start-up "
               f"{start_up * 1000:.0f} ms, in the whole-process time)", lines, results,
               "redis-py pipeline (RPUSH per line, per 1000)", 0.7)
    admin.close()


def moto_server(tmp: Path) -> tuple[subprocess.Popen, str] | None:
    binary = Path(PYTHON).parent / "moto_server"
    if not binary.exists():
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "moto.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                return proc, endpoint
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    return None


def bulk_sqs(tmp: Path, lines: int, repeat: int) -> None:
    """Lines into aws-sqs on moto: pushx -bulk against boto3 send_message_batch (10 per request)."""
    started = moto_server(tmp)
    if started is None:
        print("\n6. Bulk push into aws-sqs (moto): skipped (moto_server is not installed or did not start)")
        return
    proc, endpoint = started
    variables = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        import boto3

        sqs = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name="us-east-1").client("sqs", endpoint_url=endpoint)
        data = bulk_lines(tmp, lines)

        def queue() -> str:
            return sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]

        def checked(url: str, elapsed: float | None) -> float | None:
            count = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                        ["Attributes"]["ApproximateNumberOfMessages"])
            sqs.delete_queue(QueueUrl=url)
            if count != lines:
                print(f"   ! {count} messages in the queue, not {lines}")
                return None
            return elapsed

        def raw() -> float | None:
            url = queue()
            begun = time.perf_counter()
            client = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                           region_name="us-east-1").client("sqs", endpoint_url=endpoint)
            items = data.read_text().split("\n")[:-1]
            for at in range(0, len(items), 10):
                client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": body}
                                                                 for n, body in enumerate(items[at : at + 10])])
            return checked(url, time.perf_counter() - begun)

        def bulk() -> float | None:
            url = queue()
            args = ["-driver", "aws-sqs", "-aws-sqs-queue-url", url, "-bulk", "-in-file", str(data)]
            return checked(url, timed_pushx(args, {**ENV, **variables}))

        results = best_of(repeat, {"boto3 send_message_batch (10 per request)": raw,
                                   "pushx -bulk (whole process)": bulk})
        bulk_table(f"6. Bulk push: {lines} lines into aws-sqs on moto (best of {repeat})", lines, results,
                   "boto3 send_message_batch (10 per request)", 0.7)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="cold-start runs per command (default 20; 5 with --quick)")
    parser.add_argument("--items", type=int, help="items through the daemon (default 2000; 200 with --quick)")
    parser.add_argument("--repeat", type=int, help="daemon measurements, the best counts (default 3; 1 with --quick)")
    parser.add_argument("--bulk-lines", type=int,
                        help="lines into redis-list with pushx -bulk (default 100000; 10000 with --quick)")
    parser.add_argument("--sqs-lines", type=int, help="lines into aws-sqs on moto (default 1000; 200 with --quick)")
    parser.add_argument("--bulk-only", action="store_true", help="only the bulk-push sections (5 and 6)")
    parser.add_argument("--memory-jobs", type=int, help="jobs before the daemons' memory is read (default 1000)")
    parser.add_argument("--quick", action="store_true", help="small N, for a smoke run")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 20)
    items = args.items or (200 if args.quick else 2000)
    repeat = args.repeat or (1 if args.quick else 3)
    bulk = args.bulk_lines or (10_000 if args.quick else 100_000)
    sqs = args.sqs_lines or (200 if args.quick else 1000)
    print(f"procx/pushx benchmark: Python {platform.python_version()} ({PYTHON}), {platform.system()} "
          f"{platform.machine()}, {os.cpu_count()} CPUs, runs={runs}, items={items}, repeat={repeat}")
    # as an installed package is (pip byte-compiles), and as the rivals' are; with PYTHONDONTWRITEBYTECODE set
    # nothing else would, and every start would compile the sources again (~0.1 s)
    for package in ("core", "drivers", "procx_tui"):
        compileall.compile_dir(ROOT / package, quiet=1)
    print("(core, drivers and procx_tui byte-compiled first, as pip does for an installed package)")
    with tempfile.TemporaryDirectory(prefix="procx-bench-") as tmp:
        if not args.bulk_only:
            cold_start(Path(tmp), runs)
            throughput(Path(tmp), items, repeat)
            imports(Path(tmp))
        if not args.bulk_only:
            providers.cold_start(runs)
            providers.throughput(items, repeat)
        bulk_redis(Path(tmp), bulk, repeat)
        bulk_sqs(Path(tmp), sqs, min(repeat, 2))  # moto answers a few hundred requests a second
        if not args.bulk_only:
            providers.memory(args.memory_jobs or (200 if args.quick else 1000))


if __name__ == "__main__":
    main()
