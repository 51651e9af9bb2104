"""One check for every driver whose keep-alive reports a lost lease: procx runs a child that would sleep for 30 s,
the test takes the lease away while it runs, and procx must stop the child (SIGTERM: exit 143), log `lease-lost`
then `failed`, and clear nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import clean_env, command, wait_for


def lose_lease_while_child_runs(argv: list[str], take_away: Callable[[], object], tmp_path: Path,
                                env: dict[str, str] | None = None) -> list[dict]:
    """Run `procx argv` with a sleeping child, call take_away() once the child runs; return procx's JSON events
    after checking the child was stopped and the work failed back."""
    started = tmp_path / "started"
    child = [sys.executable, "-c", f"import time; open({str(started)!r}, 'w').close(); time.sleep(30)"]
    err_path = tmp_path / "procx.err"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([command("procx"), *argv, "-log-format", "json", "-grace-period", "5s", *child],
                                stderr=err, env=env or clean_env())
    try:
        wait_for(started.exists, timeout=15)
        take_away()
        assert proc.wait(timeout=20) == 143, err_path.read_text()  # the child got SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    found = [json.loads(line) for line in err_path.read_text().splitlines() if line.startswith("{")]
    assert [e["event"] for e in found if e["event"] in ("lease-lost", "failed", "cleared")] == ["lease-lost", "failed"]
    return found
