"""Every dashboard test gets its own profiles and state folders, UTC, and no colour/theme settings from outside;
runs a test leaves running are stopped."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from core import runs


class Homes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "cfg"
        self.state = root / "state"
        self.profiles = self.config / "profiles"
        self.runs = self.state / "runs"


@pytest.fixture(autouse=True)
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    h = Homes(tmp_path)
    monkeypatch.setenv("PROCX_TUI_HOME", str(h.config))
    monkeypatch.setenv("PROCX_TUI_STATE", str(h.state))
    for var in ("NO_COLOR", "TEXTUAL_THEME", "COLORFGBG", "PROCX_TUI_THEME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    yield h
    for run in runs.all_runs(h.runs):
        if run.alive() and run.data.get("runner_pid") != os.getpid():
            with contextlib.suppress(Exception):
                run.stop(grace=5)


@pytest.fixture(autouse=True)
def utc():
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
