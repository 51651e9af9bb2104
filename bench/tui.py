"""Dashboard benchmarks: time to the first frame with 50 recorded runs, and responsiveness while a 100 MB log is
read and while it grows.

    .venv/bin/python bench/tui.py              # 5 cold starts, a 100 MB log
    .venv/bin/python bench/tui.py --quick      # 2 cold starts, a 20 MB log
    .venv/bin/python bench/tui.py --log-mb 200 --starts 10

Prints figures and the targets they are meant to meet; asserts nothing. Everything lives in a temporary folder.
Key latency is the time from a key arriving (posted as the terminal driver posts it) to the moment its action runs
(`f`, which toggles following the log), measured headless in this process while the log reader works in its
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.profiles import Profile, write  # noqa: E402
from core.runs import process_start_time  # noqa: E402

FIRST_FRAME = """
import sys, time
from pathlib import Path
t0 = float(sys.argv[2])
from procx_tui.app import Dashboard
imported = time.time()

class Timed(Dashboard):
    ready_at = populated_at = None
    def on_ready(self):
        self.ready_at = time.time()
        self._done()
    def apply(self, scan):
        super().apply(scan)
        if self.populated_at is None:
            self.populated_at = time.time()
        self._done()
    def _done(self):
        if self.ready_at and self.populated_at:
            self.exit()

root = Path(sys.argv[1])
app = Timed(root / "profiles", root / "state", install_examples=False)
app.run(headless=True, size=(120, 40))
print(imported - t0, app.ready_at - t0, app.populated_at - t0, len(app.rows))
"""


def event(stamp: float, name: str, **fields: object) -> str:
    return json.dumps({"time": round(stamp, 6), "level": "info", "app": "procx", "event": name, "driver": "sqlite",
                       **fields})


def make_profiles(root: Path) -> Profile:
    profile = Profile("orders", {"PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": "node worker.js",
                                 "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": "queue.db", "PROCX_DAEMON": "true"})
    write(profile, root / "profiles")
    write(Profile("feed", {"PROCX_TUI_KIND": "pushx", "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": "queue.db"}),
          root / "profiles")
    return profile


def run_folder(root: Path, run_id: str, profile: Profile, started: float, running: bool) -> Path:
    folder = root / "state" / "runs" / run_id
    folder.mkdir(parents=True)
    data = {"profile": profile.name, "profile_path": str(profile.path), "kind": "procx",
            "drivers": {"procx": "sqlite"}, "started": started, "ended": None if running else started + 60,
            "status": "running" if running else "exited", "exit_code": None if running else 0,
            "commands": [[sys.executable, "-m", "core", "procx", "-env-file", str(profile.path), "node", "worker.js"]],
            "runner_pid": os.getpid() if running else 4194305,
            "runner_start": process_start_time(os.getpid()) if running else "1"}
    (folder / "run.json").write_text(json.dumps(data))
    return folder


def fifty_runs(root: Path, lines: int = 300) -> None:
    """50 recorded runs (2 of them running) with a few hundred log lines each."""
    profile = make_profiles(root)
    now = time.time()
    for i in range(50):
        started = now - (50 - i) * 3600
        folder = run_folder(root, time.strftime("%Y%m%d-%H%M%S-", time.localtime(started)) + f"{i:04x}", profile,
                            started, running=i >= 48)
        body = []
        for n in range(lines // 3):
            body += [event(started + n, "got", id=str(n)), f'{{"id":{n},"ok":true}}', event(started + n, "cleared",
                                                                                          id=str(n))]
        (folder / "output.log").write_text("\n".join(body) + "\n")


def big_log(root: Path, megabytes: int) -> tuple[Path, int]:
    """A running run whose log is `megabytes` MB of events and output; (its log, its number of cleared events)."""
    profile = make_profiles(root)
    now = time.time()
    folder = run_folder(root, time.strftime("%Y%m%d-%H%M%S-", time.localtime(now)) + "beef", profile, now - 3600,
                        running=True)
    block, cleared = [], 0
    for n in range(3000):
        block += [event(now - 3600 + n, "got", id=str(n), bytes=42, attempt=1),
                  f'{{"id":{n},"name":"item {n}","metadata":{{"processedBy":"bench"}}}}',
                  event(now - 3600 + n, "cleared", id=str(n), duration_ms=12.5)]
    chunk = ("\n".join(block) + "\n").encode()
    per_chunk = len(block) // 3
    log = folder / "output.log"
    with open(log, "wb") as f:
        while f.tell() < megabytes * 1_000_000:
            f.write(chunk)
            cleared += per_chunk
    return log, cleared


def cold_starts(count: int) -> list[tuple[float, float, float, int]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="procx-tui-bench-") as tmp:
        root = Path(tmp)
        fifty_runs(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_"))}
        for _ in range(count):
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", FIRST_FRAME, str(root), repr(t0)], capture_output=True,
                                 text=True, env=env, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            imported, ready, populated, rows = out.stdout.split()[-4:]
            results.append((float(imported), float(ready), float(populated), int(rows)))
    return results


async def responsiveness(megabytes: int) -> dict[str, object]:
    from textual import events

    from procx_tui.app import Dashboard

    handled: list[float] = []

    class Probe(Dashboard):
        def action_toggle_follow(self) -> None:
            handled.append(time.perf_counter())
            super().action_toggle_follow()

    async def press(pilot) -> float:
        """Deliver the key as the terminal driver does; how long until its action ran."""
        n = len(handled)
        sent = time.perf_counter()
        pilot.app.post_message(events.Key("f", "f"))
        deadline = sent + 30
        while len(handled) == n and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        return handled[n] - sent if len(handled) > n else 30.0

    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="procx-tui-bench-") as tmp:
        root = Path(tmp)
        made = time.perf_counter()
        log, cleared = big_log(root, megabytes)
        figures["log"] = f"{log.stat().st_size / 1e6:.0f} MB, {cleared * 3:,} lines (written in "
        figures["log"] += f"{time.perf_counter() - made:.1f}s)"

        app = Probe(root / "profiles", root / "state", install_examples=False)
        started = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            idle = []
            loading = []
            deadline = time.perf_counter() + 300

            def counted() -> int:
                return sum(r.counts["cleared"] for r in app.rows.values())

            while counted() < cleared and time.perf_counter() < deadline:
                loading.append(await press(pilot))
                await asyncio.sleep(0.01)
            figures["read"] = time.perf_counter() - started
            figures["loading"] = loading
            for _ in range(20):
                idle.append(await press(pilot))
            figures["idle"] = idle

            # the log grows: a writer appends ~1 MB/s of lines while keys are pressed
            stop = threading.Event()
            written = [0]

            def writer() -> None:
                with open(log, "a") as f:
                    n = 0
                    while not stop.is_set():
                        batch = "".join(event(time.time(), "cleared", id=f"w{n + i}") + "\n" for i in range(500))
                        f.write(batch)
                        f.flush()
                        n += 500
                        written[0] = n
                        time.sleep(0.05)

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            growing = []
            end = time.perf_counter() + 5
            while time.perf_counter() < end:
                growing.append(await press(pilot))
                await asyncio.sleep(0.01)
            stop.set()
            thread.join()
            figures["growing"] = growing
            figures["appended"] = written[0]

            # how soon a new line shows in the live log (the poll runs every 0.5 s)
            marker = f"marker-{time.time()}"
            with open(log, "a") as f:
                f.write(marker + "\n")
            appended = time.perf_counter()
            view = app.query_one("#log")
            while not any(marker in strip.text for strip in view.lines[-50:]):
                await pilot.pause(0.01)
                if time.perf_counter() - appended > 30:
                    break
            figures["visible"] = time.perf_counter() - appended
    return figures


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   max {ms[-1]:6.1f} ms   (n={len(ms)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=5, help="cold starts to time (default 5)")
    p.add_argument("--log-mb", type=int, default=100, help="size of the big log in MB (default 100)")
    p.add_argument("--quick", action="store_true", help="2 starts and a 20 MB log")
    args = p.parse_args()
    if args.quick:
        args.starts, args.log_mb = 2, 20
    print(f"procx-tui dashboard benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")

    results = cold_starts(args.starts)
    imported = statistics.median(r[0] for r in results)
    ready = statistics.median(r[1] for r in results)
    populated = statistics.median(r[2] for r in results)
    print(f"cold start with 50 recorded runs (median of {len(results)}, from `python` to ...)")
    print(f"  imports done           {imported:6.2f} s")
    print(f"  first frame            {ready:6.2f} s   target <= 1 s: {'met' if ready <= 1 else 'NOT met'}")
    print(f"  runs table filled      {populated:6.2f} s   ({results[0][3]} runs)")

    figures = asyncio.run(responsiveness(args.log_mb))
    print(f"\na running run with a {figures['log']}")
    print(f"  read and counted in    {figures['read']:6.2f} s   (in a worker thread, 16 MB per scan, "
          f"from the app's start)")
    print(f"  key latency, reading   {stats(figures['loading'])}")
    print(f"  key latency, idle      {stats(figures['idle'])}")
    print(f"  key latency, growing   {stats(figures['growing'])}   ({figures['appended']:,} lines appended in 5 s)")
    print(f"  a new line visible in  {figures['visible']:6.2f} s   (poll every 0.5 s)")


if __name__ == "__main__":
    main()
