"""gcp-storage-emulator for the gcp-gcs tests: one in-memory process on a free loopback port.

    server = start_gcs(tmp_path)      # fails the caller with the reason if it cannot start
    server.host                       # "http://127.0.0.1:PORT" for STORAGE_EMULATOR_HOST
    server.stop()

Install: pip install gcp-storage-emulator (in the test-cloud extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import answers, free_port, start_server
from tests.support import ServerProcess


@dataclass
class GcsServer(ServerProcess):
    proc: subprocess.Popen
    port: int
    log: Path
    started_in: float = 0.0

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_gcs(tmpdir: str | Path) -> GcsServer:
    """Start the emulator in memory on a free loopback port; returns when it answers."""
    binary = shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("gcp-storage-emulator is not installed: pip install gcp-storage-emulator "
                    "(or pip install -e '.[test-cloud]')")
    folder = Path(tmpdir)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "gcs-emulator.log"
    ready = f"http://127.0.0.1:{port}/storage/v1/b?project=px-test"
    proc, took = start_server([binary, "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
                              lambda: answers(ready), "gcp-storage-emulator", log, cwd=folder)
    return GcsServer(proc, port, log, took)
