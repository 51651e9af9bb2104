"""The installed `procx-tui` in a real terminal (tmux): keys in, screen text out.

Each test has its own tmux server (-L), a 120x40 pane, and records the program's exit status with
`; echo $? > rc` (more reliable than asking tmux whether the pane died). Needs tmux (apt-get install tmux).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support import command
from tests.tui.helpers import push

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]


class Terminal:
    def __init__(self, root: Path) -> None:
        self.socket = f"procx-tui-test-{uuid.uuid4().hex[:8]}"
        self.rc = root / "rc"
        self.root = root

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def start(self, env: dict[str, str], *argv: str) -> None:
        settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = (f"cd {shlex.quote(str(self.root))} && env -u NO_COLOR -u TEXTUAL_THEME -u COLUMNS -u LINES {settings} "
                f"{shlex.join(argv)}; echo $? > {shlex.quote(str(self.rc))}")
        self.tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", line)
        self.tmux("set-option", "-t", "app", "remain-on-exit", "on")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen after {timeout}s:\n{text}")
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "app", *keys)

    def exit_status(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while not (self.rc.exists() and self.rc.read_text().strip()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not exit:\n{self.screen()}")
            time.sleep(0.05)
        return int(self.rc.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal(homes):
    t = Terminal(homes.root)
    yield t
    t.close()


def environment(homes) -> dict[str, str]:
    return {"PROCX_TUI_HOME": str(homes.config), "PROCX_TUI_STATE": str(homes.state), "TERM": "xterm-256color"}


def test_wizard_profile_launch_watch_tail_page_stop(homes, terminal) -> None:
    db = homes.root / "queue.db"
    wizard = subprocess.run(
        [command("procx-tui"), "wizard", "--yes", "--no-check", "--name", "e2e", "--kind", "procx",
         "--procx-driver", "sqlite", "--set", f"PROCX_SQLITE_PATH={db}", "--set", "PROCX_DAEMON=true",
         "--command", "printenv PROCX_PAYLOAD", "--description", "made by the wizard"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert wizard.returncode == 0, wizard.stderr
    push(db, "item-0", "item-1", "item-2")
    paged = homes.root / "paged.log"
    pager = homes.root / "pager.sh"
    pager.write_text(f"#!/bin/sh\ncp \"$1\" {shlex.quote(str(paged))}\n")
    pager.chmod(0o755)
    env = {**environment(homes), "PAGER": str(pager)}
    terminal.start(env, command("procx-tui"))
    terminal.wait_for(r"e2e\s+procx\s+sqlite\s+made by the wizard")
    terminal.keys("l")  # the highlighted (only) profile
    terminal.wait_for(r"running\s+e2e")
    terminal.wait_for(r"e2e\s+sqlite.*3/3/0")
    push(db, "item-3", "item-4")
    terminal.wait_for(r"e2e\s+sqlite.*5/5/0")
    terminal.wait_for(r"item-4")  # the child's output, in the live log
    terminal.wait_for(r"info\s+procx cleared driver=sqlite id=5")
    terminal.keys("o")  # the whole log in $PAGER (the terminal is handed over and back)
    deadline = time.monotonic() + 15
    while not (paged.exists() and "item-4" in paged.read_text()):
        assert time.monotonic() < deadline, "the pager was not run"
        time.sleep(0.05)
    terminal.wait_for(r"running\s+e2e")  # back in the dashboard
    terminal.keys("s")
    terminal.wait_for(r"stopped\s+e2e", timeout=20)
    terminal.keys("q")
    assert terminal.exit_status() == 0


def test_first_start_help_and_the_demo_feed(homes, terminal) -> None:
    terminal.start(environment(homes), command("procx-tui"))
    terminal.wait_for(r"installed 6 example\s+profiles|installed \d+ example")
    terminal.wait_for(r"demo-feed\s+procx\s+local \| sqlite")
    terminal.keys("?")
    terminal.wait_for(r"launch a run of the highlighted profile")
    terminal.keys("Escape")
    terminal.wait_for(r"Runs")
    terminal.keys("l")  # demo-feed is the first profile: procx pushx, a job every 2 seconds
    terminal.wait_for(r"running\s+demo-feed\s+local\s+\|\s+sqlite.*[1-9]/[1-9]/0", timeout=20)
    terminal.keys("s")  # stop it
    terminal.wait_for(r"stopped\s+demo-feed", timeout=30)
    terminal.keys("q")
    assert terminal.exit_status() == 0
