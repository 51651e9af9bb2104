"""The shared conformance suite every driver's tests instantiate with a backend.

A driver's test module defines a `Backend` for its provider and a test class deriving from `Conformance`
with a `backend` fixture. The suite drives the installed `pushx` and `procx` commands and the in-app API:
byte-for-byte round trips, several items, no work, clear, fail, a kill -9 between get and clear, a daemon
that drains on SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import api
from tests.support import clean_env, command, run, wait_for

PAYLOADS = {
    "empty": b"",
    "text": b"hello, world\n",
    "nul-bytes": b"\x00binary\x00\xff\xfe\x00",
    "non-utf8": bytes(range(256)),
    "unicode": "zażółć gęślą jaźń — 東京 — 🚀".encode(),
    "one-mib": bytes(i * 7 % 251 for i in range(1 << 20)),
}

NO_WAIT = ("-wait-for-work", "0")  # blocking drivers must not wait for work that will not come

# A child that copies its standard input to the file named by its first argument.
COPY_STDIN = [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"]


class Backend:
    """How the suite reaches one provider. Subclasses fill in the arguments and the capabilities."""

    driver = ""
    supports_empty = True  # an empty payload is work (not "no work")
    ordered = True  # items come back in the order they were pushed
    redelivers = True  # work taken by a procx that was killed comes back
    redelivery_wait = 10.0  # seconds until killed work is offered again (the provider's lease)
    api_items = (b"a", b"b")  # what the in-app API test pushes; its procx must see b"a" and b"b"

    def common_args(self) -> list[str]:
        """Arguments both pushx and procx need (the driver and its connection)."""
        raise NotImplementedError

    def push_args(self, n: int) -> list[str]:
        """Extra pushx arguments for the n-th push of a test (e.g. a distinct key)."""
        return []

    def procx_args(self) -> list[str]:
        """Extra procx arguments (selectors, clear/fail options)."""
        return []

    def pending(self) -> int:
        """How many items the provider still holds (available or taken but not cleared)."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return clean_env()

    # -- what tests call ------------------------------------------------------------------------
    def pushx(self, payload: bytes, n: int = 0) -> None:
        done = run("pushx", *self.common_args(), *self.push_args(n), input=payload, env=self.env())
        assert done.returncode == 0, done.stderr.decode(errors="replace")

    def procx(self, *child: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        return run("procx", *self.common_args(), *self.procx_args(), *extra, *child, env=self.env())

    def wait_redelivery(self) -> tuple[str, ...]:
        return ("-wait-for-work", f"{self.redelivery_wait + 5}s")

    def procx_argv(self, *child: str, extra: tuple[str, ...] = ()) -> list[str]:
        return [command("procx"), *self.common_args(), *self.procx_args(), *extra, *child]

    def api_args(self, side: str, n: int = 0) -> list[str]:
        return [*self.common_args(), *(self.push_args(n) if side == "pushx" else self.procx_args())]


class Conformance:
    """Derive from this and provide a `backend` fixture returning a fresh, empty Backend."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_round_trip_byte_for_byte(self, backend: Backend, name: str) -> None:
        payload = PAYLOADS[name]
        if not payload and not backend.supports_empty:
            pytest.skip(f"{backend.driver}: an empty payload means no work")
        backend.pushx(payload)
        done = backend.procx(extra=("-log-format", "json"))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b'"event": "got"' in done.stderr
        assert done.stdout == payload
        assert backend.pending() == 0

    def test_child_receives_payload_on_stdin(self, backend: Backend, tmp_path: Path) -> None:
        payload = PAYLOADS["non-utf8"]
        backend.pushx(payload)
        out = tmp_path / "got"
        done = backend.procx(*COPY_STDIN, str(out), extra=("-pass-work-as-stdin",))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert out.read_bytes() == payload
        assert backend.pending() == 0

    def test_several_items(self, backend: Backend) -> None:
        items = [f"item-{i}".encode() for i in range(3)]
        for n, item in enumerate(items):
            backend.pushx(item, n)
        taken = [backend.procx().stdout for _ in items]
        assert (taken if backend.ordered else sorted(taken)) == items
        assert backend.pending() == 0
        assert backend.procx(extra=NO_WAIT).stdout == b""

    def test_no_work_is_not_an_error(self, backend: Backend, tmp_path: Path) -> None:
        marker = tmp_path / "ran"
        done = backend.procx("touch", str(marker), extra=NO_WAIT)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert done.stdout == b""
        assert not marker.exists()

    def test_clear_removes(self, backend: Backend) -> None:
        backend.pushx(b"job")
        done = backend.procx("true")
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert backend.pending() == 0

    def test_fail_brings_back(self, backend: Backend) -> None:
        backend.pushx(b"job")
        done = backend.procx("sh", "-c", "exit 3")
        assert done.returncode == 3
        assert backend.pending() == 1
        assert backend.procx(extra=backend.wait_redelivery()).stdout == b"job"
        assert backend.pending() == 0

    @pytest.mark.slow
    def test_kill_between_get_and_clear_loses_nothing(self, backend: Backend, tmp_path: Path) -> None:
        if not backend.redelivers:
            pytest.skip(f"{backend.driver} cannot redeliver work taken by a dead consumer")
        kill_mid_job(backend, tmp_path)
        wait_for(lambda: backend.pending() == 1, timeout=10)  # a broker requeues a dead consumer's delivery soon
        assert backend.procx(extra=backend.wait_redelivery()).stdout == b"precious"
        assert backend.pending() == 0

    def test_daemon_processes_all_then_drains_on_sigterm(self, backend: Backend, tmp_path: Path) -> None:
        items = [f"d-{i}".encode() for i in range(5)]
        for n, item in enumerate(items):
            backend.pushx(item, n)
        results = tmp_path / "results"
        results.mkdir()
        script = ("import os, sys, uuid; d = sys.argv[1]; "
                  "open(os.path.join(d, uuid.uuid4().hex), 'wb').write(sys.stdin.buffer.read())")
        proc = subprocess.Popen(
            backend.procx_argv(sys.executable, "-c", script, str(results), extra=("-daemon", "-pass-work-as-stdin")),
            env=backend.env())
        try:
            wait_for(lambda: backend.pending() == 0 and len(list(results.iterdir())) == len(items), timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert sorted(p.read_bytes() for p in results.iterdir()) == sorted(items)

    def test_api_stream_with_explicit_clear_and_fail(self, backend: Backend) -> None:
        for n, item in enumerate(backend.api_items):
            api.pushx(item, backend.api_args("pushx", n), environ=backend.env())
        with pytest.raises(RuntimeError), api.work(backend.api_args("procx"), environ=backend.env()) as work:
            assert work is not None
            raise RuntimeError("the app failed")
        assert backend.pending() == 2
        seen = []
        for work in api.consume(backend.api_args("procx"), environ=backend.env()):
            seen.append(work.payload)
            work.clear()
        assert sorted(seen) == [b"a", b"b"]
        assert backend.pending() == 0


def kill_mid_job(backend: Backend, tmp_path: Path, payload: bytes = b"precious") -> None:
    """Push `payload`, start procx on it with a child that sleeps, and kill -9 procx (then the child) once the
    child runs: the work was taken and never cleared."""
    backend.pushx(payload)
    pidfile = tmp_path / "child.pid"
    script = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    proc = subprocess.Popen(backend.procx_argv(sys.executable, "-c", script), env=backend.env())
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text())
        proc.kill()
        proc.wait()
    finally:
        _kill_pidfile(pidfile)


def _kill_pidfile(pidfile: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
