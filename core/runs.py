"""The run supervisor: start runs from profiles as detached process groups, record them, stop, restart, remove.

Each run has a folder under the state directory holding run.json (id, profile, commands, pids, start/end, exit
status) and output.log (the JSON events of procx/pushx and the child's output). A run outlives the TUI that
started it: the TUI reattaches by reading the folders, and a run whose runner died without recording its end is
reported as "died".
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from core.errors import UsageError
from core.profiles import Profile, validate

RUNNING, EXITED, FAILED, STOPPED, DIED = "running", "exited", "failed", "stopped", "died"


def state_dir() -> Path:
    """PROCX_TUI_STATE, else $XDG_STATE_HOME/procx-tui, else ~/.local/state/procx-tui."""
    if os.environ.get("PROCX_TUI_STATE"):
        return Path(os.environ["PROCX_TUI_STATE"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "procx-tui"


def runs_dir() -> Path:
    return state_dir() / "runs"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (to tell it from a later process that got the same pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] == b"Z":  # a zombie has finished
        return None
    return fields[19].decode()


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def commands(profile: Profile, python: str = sys.executable) -> list[list[str]]:
    """The command lines of a run: procx, pushx, or procx and pushx joined by a pipe."""
    path = str(profile.path)
    procx = [python, "-m", "core", "procx", "-env-file", path, "-log-format", "json", *profile.command]
    pushx = [python, "-m", "core", "pushx", "-env-file", path, "-log-format", "json"]
    return {"procx": [procx], "pushx": [pushx], "pipeline": [procx, pushx]}[profile.kind]


class Run:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.id = folder.name
        self.data: dict = json.loads((folder / "run.json").read_text())

    @property
    def log_path(self) -> Path:
        return self.folder / "output.log"

    def reload(self) -> Run:
        self.data = json.loads((self.folder / "run.json").read_text())
        return self

    @property
    def status(self) -> str:
        status = self.data.get("status", RUNNING)
        if status == RUNNING and not self.alive():
            return DIED
        return status

    def alive(self) -> bool:
        pid, started = self.data.get("runner_pid"), self.data.get("runner_start")
        return bool(pid) and process_start_time(pid) == started

    @property
    def duration(self) -> float:
        end = self.data.get("ended") or (time.time() if self.status == RUNNING else self.data.get("started"))
        return max(0.0, end - self.data["started"])

    def record(self) -> dict:
        return {**self.data, "id": self.id, "status": self.status, "duration": round(self.duration, 3),
                "log": str(self.log_path), "counters": Events(self.log_path).read().counters()}

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the run (procx drains: its child gets the signal and a grace period); SIGKILL to the whole
        group if it has not ended after `grace` seconds."""
        if not self.alive():
            return
        pid = self.data["runner_pid"]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.data.update(status=STOPPED, ended=time.time(), exit_code=-signal.SIGKILL)
            write_json(self.folder / "run.json", self.data)

    def remove(self) -> None:
        if self.alive():
            raise UsageError(f"run {self.id} is running: stop it first")
        shutil.rmtree(self.folder)


def start(profile: Profile, folder: Path | None = None) -> Run:
    """Start a run of `profile` in the background (its own session, detached from the caller)."""
    errors = [p for p in validate(profile) if p.level == "error"]
    if errors:
        raise UsageError(f"profile {profile.name}: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1
                                                                     else ""))
    if profile.path is None:
        raise UsageError(f"profile {profile.name} is not saved")
    root = folder or runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    run_folder = root / run_id
    run_folder.mkdir()
    data = {"profile": profile.name, "profile_path": str(profile.path), "kind": profile.kind,
            "drivers": {side: profile.driver(side) for side in profile.sides()}, "commands": commands(profile),
            "started": time.time(), "ended": None, "status": RUNNING, "exit_code": None}
    write_json(run_folder / "run.json", data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_"))}
    # a child command may be procx or pushx themselves (`procx pushx`): they are next to this interpreter
    path = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    env.update(PYTHONUNBUFFERED="1", PUSHX_ENV_FILE=str(profile.path), PATH=path)
    for var in ("PROCX_TUI_HOME", "PROCX_TUI_STATE"):
        if var in os.environ:
            env[var] = os.environ[var]
    with open(run_folder / "runner.log", "ab") as err:
        subprocess.Popen([sys.executable, "-m", "core.runner", str(run_folder)], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + 10
    while "runner_pid" not in json.loads((run_folder / "run.json").read_text()):  # the runner records itself
        if time.monotonic() > deadline:
            tail = (run_folder / "runner.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise UsageError(f"run {run_id} did not start: {tail[0] if tail else 'no runner'}")
        time.sleep(0.01)
    return Run(run_folder)


def all_runs(folder: Path | None = None) -> list[Run]:
    root = folder or runs_dir()
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(root.iterdir()):
        if (path / "run.json").is_file():
            try:
                runs.append(Run(path))
            except (OSError, ValueError):
                continue
    return runs


def find(run_id: str, folder: Path | None = None) -> Run:
    """A run by id or unique id prefix ("last" is the newest)."""
    runs = all_runs(folder)
    if run_id == "last" and runs:
        return runs[-1]
    matches = [r for r in runs if r.id.startswith(run_id)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise UsageError(f"{what} matching '{run_id}' (procx-tui runs lists them)")
    return matches[0]


def restart(run: Run, folder: Path | None = None) -> Run:
    from core.profiles import read

    run.stop()
    return start(read(Path(run.data["profile_path"])), folder or run.folder.parent)


EVENT_START = '{"time": '  # how every JSON event line of procx and pushx begins


def messages(event: dict) -> int:
    """How many messages an event stands for: a `pushed` event of pushx -bulk carries `messages`."""
    try:
        return max(1, int(event.get("messages", 1)))
    except (TypeError, ValueError):
        return 1


class Events:
    """Reads a run's log incrementally: JSON events become counters, other lines are output."""

    COUNTED = ("got", "cleared", "failed", "pushed", "error", "dropped", "dead-lettered")

    def __init__(self, path: Path, keep: int = 2000) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = dict.fromkeys(self.COUNTED, 0)
        self.recent: deque[tuple[float, int]] = deque(maxlen=10000)  # (time, items) of finish events: the rate
        self.lines: deque[tuple[str, dict | None]] = deque(maxlen=keep)

    def read(self) -> Events:
        """Read what was appended since the last call; returns self."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self
        self.offset += len(chunk)
        data = self.partial + chunk
        *complete, self.partial = data.split(b"\n")  # a partial last line waits for its end
        for raw in complete:
            self._line(raw.decode("utf-8", errors="replace"))
        return self

    def _line(self, line: str) -> None:
        start = line.find(EVENT_START)
        if start > 0:  # output of the child without a final newline, then an event on the same line
            self._line(line[:start])
            line = line[start:]
        event = None
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not (isinstance(event, dict) and "app" in event):
                event = None
        if event is not None:
            # a pushx -bulk batch is one event for many messages
            self._tally(str(event.get("event", "")), event.get("time", time.time()), messages(event))
        self.lines.append((line, event))

    def _tally(self, name: str, stamp: object, many: int) -> None:
        if name in self.counts:
            self.counts[name] += many
        if name in ("cleared", "failed", "pushed"):
            self.recent.append((float(stamp), many))

    def counters(self) -> dict[str, float]:
        return {**self.counts, "rate": round(self.rate(), 2)}

    def rate(self, window: float = 10.0, now: float | None = None) -> float:
        """Items finished per second over the `window` seconds before `now` (default: the later of the clock and
        the last event)."""
        if not self.recent:
            return 0.0
        if now is None:
            now = max(time.time(), self.recent[-1][0])
        return sum(many for stamp, many in list(self.recent) if stamp >= now - window) / window
