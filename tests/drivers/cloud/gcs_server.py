"""gcp-storage-emulator for the gcp-gcs tests: one in-memory process on a free loopback port.

    server = start_gcs(tmp_path)      # fails the caller with the reason if it cannot start
    server.host                       # "http://127.0.0.1:PORT" for STORAGE_EMULATOR_HOST
    server.stop()

Install: pip install gcp-storage-emulator (in the test-cloud extra).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ServerProcess

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GcsServer(ServerProcess):
    proc: subprocess.Popen
    port: int
    log: Path
    started_in: float = 0.0

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"



def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/storage/v1/b?project=px-test", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_gcs(tmpdir: str | Path) -> GcsServer:
    binary = shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("gcp-storage-emulator is not installed: pip install gcp-storage-emulator "
                    "(or pip install -e '.[test-cloud]')")
    folder = Path(tmpdir)
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = folder / "gcs-emulator.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    server = GcsServer(proc, port, log)
    while not _ready(server.host):
        if proc.poll() is not None:
            pytest.fail(f"gcp-storage-emulator exited with status {proc.returncode} while starting:\n{server.tail()}")
        if time.monotonic() - started > START_TIMEOUT:
            server.stop()
            pytest.fail(f"gcp-storage-emulator did not answer within {START_TIMEOUT:.0f}s:\n{server.tail()}")
        time.sleep(0.05)
    server.started_in = time.monotonic() - started
    return server
