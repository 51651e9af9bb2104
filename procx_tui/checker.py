"""The connection check, run as a separate process (`python -m procx_tui check PROFILE --json`): the dashboard
never imports a provider's client library nor runs a driver in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from core.profiles import Profile, write

TIMEOUT = 60.0


def environment() -> dict[str, str]:
    """The dashboard's environment without PROCX_*/PUSHX_* settings (a profile means the same everywhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def check_path(path: Path, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """(every side reachable, one line per side) for a saved profile file."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "procx_tui", "check", str(path), "--json", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment())
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as exc:  # a timeout, or the screen went away: the check process goes too
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            return False, f"the check did not finish within {timeout:g}s"
        raise
    try:
        report = json.loads(out.decode())
    except ValueError:
        lines = err.decode(errors="replace").strip().splitlines()
        return False, lines[-1] if lines else f"the check failed (exit status {proc.returncode})"
    lines = []
    for side, r in report.get("sides", {}).items():
        if r.get("error"):
            state = "reachable, but" if r.get("reachable") else "UNREACHABLE:"
            lines.append(f"{side} ({r.get('driver')}): {state} {r['error']}")
        else:
            depth = "" if r.get("depth") is None else f", {r['depth']} waiting"
            lines.append(f"{side} ({r.get('driver')}): reachable{depth}")
    ok = bool(lines) and not any(r.get("error") for r in report.get("sides", {}).values())
    return ok, "\n".join(lines) or "nothing to check"


async def check_profile(profile: Profile, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Check a profile that may not be saved: it is written to a temporary folder for the check."""
    with tempfile.TemporaryDirectory(prefix="procx-tui-check-") as tmp:
        probe = Profile(profile.name, profile.variables)
        path = write(probe, Path(tmp))
        return await check_path(path, timeout)
