"""Benchmarks of procx/pushx: cold start, sqlite daemon throughput, per-message overhead, import cost.

    .venv/bin/python bench/run.py [--runs N] [--items M] [--repeat K] [--quick]

Prints one table from one run on this machine. Not part of the test suite: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="cold-start runs per command (default 20; 5 with --quick)")
    parser.add_argument("--items", type=int, help="items through the daemon (default 2000; 200 with --quick)")
    parser.add_argument("--repeat", type=int, help="daemon measurements, the best counts (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small N, for a smoke run")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 20)
    items = args.items or (200 if args.quick else 2000)
    repeat = args.repeat or (1 if args.quick else 3)
    print(f"procx/pushx benchmark: Python {platform.python_version()} ({PYTHON}), {platform.system()} "
          f"{platform.machine()}, {os.cpu_count()} CPUs, runs={runs}, items={items}, repeat={repeat}")
    with tempfile.TemporaryDirectory(prefix="procx-bench-") as tmp:
        cold_start(Path(tmp), runs)
        throughput(Path(tmp), items, repeat)
        imports(Path(tmp))


if __name__ == "__main__":
    main()
