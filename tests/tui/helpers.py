"""Helpers for the dashboard tests: waiting with a deadline, fabricated runs, pushing work."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core import api
from core.profiles import Profile, write
from core.runs import process_start_time

NOW = 1780000000.0  # 2026-05-28 20:26:40 UTC: the fixed clock of the snapshot tests
DEAD_PID = 4194305  # above the kernel's largest pid: never alive


async def wait_until(pilot, condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:
    """Let the app run until `condition()` is truthy; fail with `what` (or the condition) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {detail or condition}")
        await pilot.pause(0.05)


def event(stamp: float, name: str, level: str = "info", app: str = "procx", **fields: object) -> str:
    return json.dumps({"time": stamp, "level": level, "app": app, "event": name, "driver": "sqlite", **fields})


def fabricate_run(runs_dir: Path, run_id: str, profile: Profile, *, started: float, status: str = "exited",
                  ended: float | None = None, exit_code: int | None = 0, alive: bool = False,
                  lines: list[str] = (), child: list[str] = ("node", "worker.js")) -> Path:
    """A run folder as the supervisor writes it, with fixed times and ids (alive: its runner is this process)."""
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    argv = [sys.executable, "-m", "core", "procx", "-env-file", str(profile.path), "-log-format", "json", *child]
    push = [sys.executable, "-m", "core", "pushx", "-env-file", str(profile.path), "-log-format", "json"]
    commands = {"procx": [argv], "pushx": [push], "pipeline": [argv, push]}[profile.kind]
    data = {"profile": profile.name, "profile_path": str(profile.path), "kind": profile.kind,
            "drivers": {side: profile.driver(side) for side in profile.sides()}, "commands": commands,
            "started": started, "ended": ended, "status": status, "exit_code": exit_code,
            "runner_pid": os.getpid() if alive else DEAD_PID,
            "runner_start": process_start_time(os.getpid()) if alive else "1", "pids": [DEAD_PID]}
    (folder / "run.json").write_text(json.dumps(data))
    (folder / "output.log").write_text("".join(line + "\n" for line in lines))
    return folder


def sqlite_profile(folder: Path, name: str, db: Path, *, kind: str = "procx", command: str = "",
                   description: str = "", **extra: str) -> Profile:
    variables = {"PROCX_TUI_KIND": kind}
    if description:
        variables["PROCX_TUI_DESCRIPTION"] = description
    if kind in ("procx", "pipeline"):
        variables.update(PROCX_DRIVER="sqlite", PROCX_SQLITE_PATH=str(db))
        if command:
            variables["PROCX_TUI_COMMAND"] = command
    if kind in ("pushx", "pipeline"):
        variables.update(PUSHX_DRIVER="sqlite", PUSHX_SQLITE_PATH=str(db))
    variables.update(extra)
    profile = Profile(name, variables)
    write(profile, folder)
    return profile


def push(db: str | Path, *payloads: str, queue: str = "default") -> None:
    for payload in payloads:
        api.pushx(payload.encode(), ["-driver", "sqlite", "-sqlite-path", str(db), "-sqlite-queue", queue])


def worker_command() -> str:
    """The demo worker's command when node is missing: a Python child that prints the payload file."""
    if shutil.which("node"):
        return ""
    return f"{sys.executable} -c 'import os,sys; sys.stdout.write(open(os.environ[\"PROCX_PAYLOAD_FILE\"]).read())'"
