"""The Node Firestore emulator (npm @firestore-emulator/server 0.3.15) for the gcp-firestore tests.

    from tests.drivers.cloud.firestore_server import start_firestore
    fs = start_firestore(tmp_path)   # installs the package into the cache folder if missing, binds 127.0.0.1
    fs.host                          # "127.0.0.1:PORT" for FIRESTORE_EMULATOR_HOST
    fs.stop()

The package is installed (once) with `npm install --prefix CACHE @firestore-emulator/server@0.3.15` into
$PROCX_TEST_CACHE/firestore-emulator (default ~/.cache/procx-tui-test/firestore-emulator), outside the repository.
Its own start() binds 0.0.0.0, so a small script (written next to the package) binds its gRPC server to loopback.
Node and npm must be installed; an emulator that cannot be installed or started makes the caller FAIL.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import free_port, start_server
from tests.support import ServerProcess

PACKAGE = "@firestore-emulator/server"
VERSION = "0.3.15"
INSTALL_TIMEOUT = 300.0

START_SCRIPT = """\
// Started by the procx-tui tests: the emulator's gRPC server on 127.0.0.1 and the port given as argument.
const path = require("path");
const { FirestoreServer } = require("@firestore-emulator/server");
const grpc = require(require.resolve("@grpc/grpc-js",
  { paths: [path.dirname(require.resolve("@firestore-emulator/server"))] }));
const fs = new FirestoreServer();
fs.server.bindAsync(`127.0.0.1:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(),
  (err) => { if (err) { console.error(err); process.exit(1); } console.log("ready"); });
process.on("SIGTERM", () => { fs.stop(); process.exit(0); });
"""


def cache_dir() -> Path:
    base = os.environ.get("PROCX_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "procx-tui-test")
    return Path(base) / "firestore-emulator"


def _installed(folder: Path) -> bool:
    manifest = folder / "node_modules" / "@firestore-emulator" / "server" / "package.json"
    return manifest.exists() and f'"version": "{VERSION}"' in manifest.read_text(errors="replace")


def install(folder: Path | None = None) -> Path:
    """The folder holding the pinned emulator package and the start script (installed when missing)."""
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _installed(folder):
                npm = shutil.which("npm")
                if npm is None:
                    pytest.fail("npm is not installed: the Firestore emulator is the npm package "
                                f"{PACKAGE}@{VERSION} (apt-get install -y nodejs npm)")
                done = subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                                       f"{PACKAGE}@{VERSION}"], capture_output=True, timeout=INSTALL_TIMEOUT)
                if done.returncode != 0 or not _installed(folder):
                    pytest.fail(f"npm install {PACKAGE}@{VERSION} into {folder} failed:\n"
                                f"{done.stderr.decode(errors='replace')[-2000:]}")
            script = folder / "start-firestore.js"
            if not script.exists() or script.read_text() != START_SCRIPT:
                script.write_text(START_SCRIPT)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


@dataclass
class Firestore(ServerProcess):
    proc: subprocess.Popen
    port: int
    log: Path
    started_in: float  # seconds from start to "ready" (the install, if any, not counted)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_firestore(tmpdir: str | Path) -> Firestore:
    """Install (once) and start the emulator on a free loopback port; returns when it says "ready"."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the Firestore emulator runs on Node.js (apt-get install -y nodejs)")
    folder = install()
    log = Path(tmpdir) / "firestore.log"
    port = free_port()
    proc, took = start_server([node, str(folder / "start-firestore.js"), str(port)],
                              lambda: "ready" in log.read_text(errors="replace"), "the Firestore emulator", log,
                              cwd=folder)
    return Firestore(proc, port, log, took)
