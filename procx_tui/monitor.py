"""What the dashboard shows about runs, computed away from the UI thread: no Textual here, only core and Rich.

`Monitor.scan()` runs in a worker thread: it notices run folders that appeared (started by anyone, in any process)
or went away, reloads the runs that have not ended, and reads their logs incrementally (a bounded number of bytes
per scan, so a 100 MB log is taken in steps and the screen stays live). It returns plain rows; the app applies
them on the UI thread.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text

from core.runs import DIED, EVENT_START, RUNNING, Events, Run, messages

STOPPING = "stopping"
STATUS_STYLE = {RUNNING: "bold green", "exited": "", "failed": "bold red", "stopped": "yellow", "died": "bold magenta",
                STOPPING: "italic yellow"}
LEVEL_STYLE = {"panic": "bold red", "fatal": "bold red", "error": "bold red", "warn": "yellow", "warning": "yellow",
               "info": "cyan", "debug": "dim", "trace": "dim"}
EVENT_STYLE = {"cleared": "bold green", "pushed": "bold green", "failed": "bold red", "error": "bold red",
               "got": "bold blue", "started": "bold", "stopped": "bold", "stopping": "bold yellow"}
SEVERITY = {"panic": 0, "fatal": 1, "error": 2, "warn": 3, "warning": 3, "info": 4, "debug": 5, "trace": 6}
LEVELS = ("error", "warn", "info", "debug")  # the level filter: this level and everything more severe
EVENTS = ("events", "output", "got", "cleared", "failed", "pushed", "error", "no-work", "started", "stopping",
          "stopped")


# the start of every event line of procx/pushx (core.log writes time, level, app, event in this order)
_EVENT = re.compile(r'\{"time": ([0-9.eE+-]+), "level": "[a-z]+", "app": "[^"]*", "event": "([a-z_-]+)"')


class Lines(deque):
    """The kept log lines, with the number ever added (so the UI can ask for what is new) and a lock, so the UI
    thread can copy them while a scan adds more."""

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self.total = 0
        self.lock = threading.Lock()

    def append(self, item: tuple[str, dict | None]) -> None:
        with self.lock:
            super().append(item)
            self.total += 1

    def skipped(self, count: int) -> None:
        """Lines counted but not kept (older than what is kept)."""
        with self.lock:
            self.total += count

    def since(self, seen: int) -> tuple[int, list[tuple[str, dict | None]]]:
        """(total, lines added after the first `seen`), as many of them as are still kept."""
        with self.lock:
            new = self.total - seen
            if new <= 0:
                return self.total, []
            return self.total, list(self)[-new:] if new < len(self) else list(self)


class Tail(Events):
    """core.runs.Events that reads at most `limit` bytes per call (a huge log is read in steps), and only parses
    the lines it keeps: older lines of a big chunk are just counted, from their fixed beginning."""

    def __init__(self, path: Path, keep: int = 2000) -> None:
        super().__init__(path, keep)
        self.lines = Lines(keep)
        self.size = 0

    STEP = 1 << 20  # bytes decoded and split at a time: short calls, so the UI thread gets its turn

    def read(self, limit: int = -1) -> Tail:
        """Read what was appended since the last call, at most `limit` bytes (all with -1); returns self."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            return self
        keep = self.lines.maxlen or 1 << 30
        pending: deque[str] = deque()  # the newest lines, parsed at the end; older ones are only counted
        counted = 0
        with f:
            self.size = f.seek(0, 2)
            f.seek(self.offset)
            left = self.size - self.offset if limit < 0 else min(limit, self.size - self.offset)
            while left > 0:
                chunk = f.read(min(self.STEP, left))
                if not chunk:
                    break
                left -= len(chunk)
                self.offset += len(chunk)
                data = self.partial + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    self.partial = data
                    continue
                self.partial = data[cut + 1:]
                for n, line in enumerate(data[:cut].decode("utf-8", errors="replace").split("\n")):
                    if len(pending) == keep:
                        self._count(pending.popleft())
                        counted += 1
                    pending.append(line)
                    if n % 1024 == 1023:
                        time.sleep(0)  # hand the interpreter to the UI thread if it waits (every ~2 ms)
        if counted:
            self.lines.skipped(counted)
        for line in pending:
            self._line(line)
        return self

    def _count(self, line: str) -> None:
        """What Events._line counts, without parsing the JSON (for lines that are not kept)."""
        start = line.find(EVENT_START)
        if start > 0:
            self._count(line[:start])
            line = line[start:]
        if not line.startswith("{"):
            return
        match = _EVENT.match(line) if '"messages": ' not in line else None  # bulk batches: parsed below
        many = 1
        if match is None:
            if '"app"' not in line:
                return
            event = None
            with contextlib.suppress(ValueError):
                event = json.loads(line)
            if not (isinstance(event, dict) and "app" in event):
                return
            name, stamp, many = str(event.get("event", "")), event.get("time", time.time()), messages(event)
        else:
            stamp, name = match.groups()
        self._tally(name, stamp, many)

    def stat(self) -> None:
        with contextlib.suppress(OSError):
            self.size = self.path.stat().st_size

    @property
    def behind(self) -> int:
        """Bytes of the log not read yet (as of the last read)."""
        return max(0, self.size - self.offset)



@dataclass
class RunRow:
    """One line of the runs table, plus what the details pane needs."""

    id: str
    status: str
    profile: str
    drivers: str
    started: float
    duration: float | None
    counts: dict[str, int]
    rate: float
    data: dict = field(repr=False, default_factory=dict)
    loading: float | None = None  # fraction of the log read, while a big log is being read


@dataclass
class Scan:
    rows: list[RunRow]
    behind: bool  # some log is still being read: scan again soon


class Monitor:
    def __init__(self, folder: Path, clock: Callable[[], float] = time.time, keep: int = 2000,
                 budget: int = 16 << 20) -> None:
        self.folder = folder
        self.clock = clock
        self.keep = keep
        self.budget = budget  # bytes of logs read per scan
        self.runs: dict[str, Run] = {}
        self.tails: dict[str, Tail] = {}
        self.done: set[str] = set()  # ended, and the log read to its end: nothing changes any more
        self.rows: dict[str, RunRow] = {}
        self.lock = threading.Lock()  # one scan at a time

    def tail(self, run_id: str) -> Tail | None:
        return self.tails.get(run_id)

    def scan(self) -> Scan:
        with self.lock:
            return self._scan()

    def _scan(self) -> Scan:
        try:
            present = {p.name: p for p in self.folder.iterdir() if (p / "run.json").is_file()}
        except FileNotFoundError:
            present = {}
        for gone in set(self.runs) - set(present):
            self.runs.pop(gone, None)
            self.tails.pop(gone, None)
            self.rows.pop(gone, None)
            self.done.discard(gone)
        budget = self.budget
        behind = False
        # newest first: the runs someone is looking at get their logs read first
        for run_id in sorted(present, reverse=True):
            if run_id in self.done:
                continue
            run = self.runs.get(run_id)
            try:
                if run is None:
                    run = self.runs[run_id] = Run(present[run_id])
                    self.tails[run_id] = Tail(run.log_path, self.keep)
                else:
                    run.reload()
            except (OSError, ValueError):  # being written or removed right now: next scan
                continue
            tail = self.tails[run_id]
            status = run.status
            if budget > 0:
                before = tail.offset
                tail.read(budget)
                budget -= tail.offset - before
            else:
                tail.stat()
            if tail.behind:
                behind = True
            elif status not in (RUNNING, DIED):  # a died run's orphans may still write
                self.done.add(run_id)
            self.rows[run_id] = self._row(run, status, tail)
        rows = [self.rows[r] for r in sorted(self.rows, reverse=True)]
        return Scan(rows, behind)

    def _row(self, run: Run, status: str, tail: Tail) -> RunRow:
        data = run.data
        started = float(data.get("started") or 0)
        now = self.clock()
        if status == RUNNING:
            duration: float | None = max(0.0, now - started)
        elif data.get("ended"):
            duration = max(0.0, float(data["ended"]) - started)
        else:
            duration = None  # died: its end was never recorded
        drivers = " | ".join(str(d) for d in (data.get("drivers") or {}).values())
        loading = tail.offset / tail.size if tail.behind and tail.size else None
        return RunRow(run.id, status, str(data.get("profile", "?")), drivers, started, duration, dict(tail.counts),
                      tail.rate(now=now) if status == RUNNING else 0.0, dict(data), loading)


# -- formatting -------------------------------------------------------------------------------------
def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def started_text(started: float, now: float) -> str:
    if not started:
        return "-"
    when = time.localtime(started)
    same_day = time.strftime("%Y%m%d", when) == time.strftime("%Y%m%d", time.localtime(now))
    return time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M", when)


def counters_text(counts: dict[str, int]) -> str:
    text = f"{counts.get('got', 0)}/{counts.get('cleared', 0)}/{counts.get('failed', 0)}"
    if counts.get("pushed"):
        text += f" +{counts['pushed']}"
    return text


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def command_text(argv: list[str], profile_path: str | None = None) -> str:
    """A recorded command line for people: `python -m core procx ...` shows as `procx ...`, and the profile's
    file by its name only."""
    argv = list(argv)
    if len(argv) >= 4 and argv[1:3] == ["-m", "core"] and (argv[0] == sys.executable or "python" in argv[0]):
        argv = argv[3:]
    if profile_path:
        argv = [Path(a).name if a == profile_path else a for a in argv]
    return shlex.join(argv)


def clock_text(stamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp % 1 * 1000):03d}"


def render_line(line: str, event: dict | None) -> Text:
    """A log line for the screen: JSON events as `time level app event key=value ...`, output as it is."""
    if event is None:
        return Text(line)
    out = Text()
    stamp = event.get("time")
    if isinstance(stamp, int | float):
        out.append(clock_text(stamp) + " ", style="dim")
    level = str(event.get("level", ""))
    out.append(f"{level:<5} ", style=LEVEL_STYLE.get(level, ""))
    out.append(f"{event.get('app', '')} ", style="dim")
    name = event.get("event")
    if name:
        out.append(str(name), style=EVENT_STYLE.get(str(name), "bold"))
    else:
        out.append(str(event.get("msg", "")))
    for key, value in event.items():
        if key in ("time", "level", "app", "event", "msg"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.append(f" {key}=", style="dim")
        out.append(text)
    return out


def matches(line: str, event: dict | None, level: str | None, kind: str | None) -> bool:
    """Whether a log line passes the filters: level (this or more severe), event name, events, output."""
    if level:
        if event is None:
            return False
        with contextlib.suppress(KeyError):
            if SEVERITY[str(event.get("level", "info"))] > SEVERITY[level]:
                return False
    if kind:
        if kind == "output":
            if event is not None:
                return False
        elif kind == "events":
            if event is None:
                return False
        elif event is None or event.get("event") != kind:
            return False
    return True
