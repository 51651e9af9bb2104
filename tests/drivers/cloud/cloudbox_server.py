"""cloudbox 0.2.3 (a pure-Python GCP emulator) for the Pub/Sub and BigQuery tests: patched and started here.

    from tests.drivers.cloud.cloudbox_server import start_cloudbox
    box = start_cloudbox(tmp_path)     # one process, every port free, bound to 127.0.0.1
    box.pubsub_host                    # "127.0.0.1:PORT" for PUBSUB_EMULATOR_HOST
    box.bigquery_endpoint              # "http://127.0.0.1:PORT" for the BigQuery API endpoint option
    box.stop()

cloudbox declares Requires-Python >= 3.14 and relies on 3.14's lazy annotations; on 3.11 it imports only with
`from __future__ import annotations` at the top of its modules. `patch_cloudbox()` adds that line to the installed
package (idempotent, under a file lock, each file replaced atomically), so nobody patches it by hand. Install:
`pip install --ignore-requires-python cloudbox==0.2.3` (pip refuses it in an extra because of Requires-Python).
A cloudbox that is missing, of another version, or that does not start makes the caller FAIL with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import listening, start_server
from tests.support import ServerProcess

VERSION = "0.2.3"
FUTURE = "from __future__ import annotations"
# every listener cloudbox opens, by the variable that sets its port
PORT_VARIABLES = ("GCS", "PUBSUB", "PUBSUB_REST", "FIRESTORE", "SECRETMANAGER", "TASKS", "BIGQUERY", "SPANNER",
                  "LOGGING", "SCHEDULER", "ADMIN")
PROJECT = "px-test"


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together while choosing, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _package_dir() -> Path:
    from importlib import metadata
    from importlib.util import find_spec

    try:
        version = metadata.version("cloudbox")
    except metadata.PackageNotFoundError:
        pytest.fail(f"cloudbox is not installed: pip install --ignore-requires-python cloudbox=={VERSION}")
    if version != VERSION:
        pytest.fail(f"cloudbox {version} is installed; the tests need {VERSION} "
                    f"(pip install --ignore-requires-python cloudbox=={VERSION})")
    spec = find_spec("cloudbox")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("cloudbox is installed but its package folder cannot be found")
    return Path(next(iter(spec.submodule_search_locations)))


def patch_cloudbox() -> Path:
    """Prepend the __future__ import to every non-empty module of the installed cloudbox that lacks it."""
    package = _package_dir()
    lock_path = Path(tempfile.gettempdir()) / f"procx-cloudbox-{VERSION}-patch.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for path in sorted(package.rglob("*.py")):
                text = path.read_text(encoding="utf-8")
                if not text.strip() or FUTURE in text:
                    continue
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".patch-", suffix=".py")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        f.write(f"{FUTURE}\n{text}")
                    os.chmod(tmp, path.stat().st_mode & 0o777)
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
        except OSError as exc:
            pytest.fail(f"cannot patch cloudbox in {package} for Python {sys.version_info.major}."
                        f"{sys.version_info.minor}: {exc}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return package


@dataclass
class Cloudbox(ServerProcess):
    proc: subprocess.Popen
    ports: dict[str, int]  # by variable suffix: "PUBSUB", "BIGQUERY", ...
    log: Path
    started_in: float  # seconds from start to every port accepting connections
    project: str = PROJECT

    @property
    def pubsub_host(self) -> str:
        """host:port of the Pub/Sub gRPC listener (PUBSUB_EMULATOR_HOST)."""
        return f"127.0.0.1:{self.ports['PUBSUB']}"

    @property
    def bigquery_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['BIGQUERY']}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ADMIN']}"

    def admin(self, path: str) -> object:
        """GET one JSON document of cloudbox's admin API (e.g. /api/pubsub/subscriptions)."""
        with urllib.request.urlopen(self.admin_url + path, timeout=10) as resp:
            return json.loads(resp.read())


def start_cloudbox(tmpdir: str | Path) -> Cloudbox:
    """Patch (once) and start one cloudbox process on free loopback ports; returns when all ports listen."""
    patch_cloudbox()
    folder = Path(tmpdir)
    folder.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(PORT_VARIABLES, _free_ports(len(PORT_VARIABLES)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDBOX_")}
    env.update({f"CLOUDBOX_{name}_PORT": str(port) for name, port in ports.items()})
    env.update(CLOUDBOX_HOST="127.0.0.1", CLOUDBOX_PROJECT=PROJECT, CLOUDBOX_LOG_LEVEL="warning")
    log = folder / "cloudbox.log"
    proc, took = start_server([sys.executable, "-c", "from cloudbox.main import main; main()"],
                              lambda: all(listening(port) for port in ports.values()), "cloudbox", log, env=env,
                              cwd=folder)
    return Cloudbox(proc, ports, log, took)
