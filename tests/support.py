"""Test helpers: the installed commands, a clean environment, waiting for conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    """The installed console script (procx, pushx, procx-tui) of this environment."""
    path = BIN / name
    assert path.exists(), f"{path} is not installed: pip install -e '.[test]'"
    return str(path)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any PROCX_*/PUSHX_* or LOG_LEVEL, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_")) and k != "LOG_LEVEL"}
    env.update(extra)
    return env


def run(tool: str, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
        cwd: str | Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run procx/pushx to completion, capturing bytes."""
    return subprocess.run([command(tool), *args], input=input if input is not None else b"",
                          capture_output=True, env=env or clean_env(), cwd=cwd, timeout=timeout)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> object:
    """Poll until `condition()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition}")
        time.sleep(interval)


def unusable(tmp_path: Path) -> Path:
    """A database path whose folder cannot exist (a file stands in its way): the provider fails to open."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker / "q.db"


# -- servers the tests start (emulators, fakes): one process each, on a free loopback port -------------------
def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a server's log, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds (nothing when it has ended already)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class ServerProcess:
    """What the handles of started servers share (they hold `proc` and `log`): memory, the log's end, stop."""

    proc: subprocess.Popen
    log: Path

    def rss_mib(self) -> float:
        """Resident memory of the server process, MiB (0 when it is gone)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def tail(self, lines: int = 20) -> str:
        return log_tail(self.log, lines)

    def stop(self) -> None:
        stop_process(self.proc)
