"""Helpers of the redis driver tests: clients of the pre-running Redis, unique keys, throwaway redis-servers."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import wait_for

HOST = "127.0.0.1"
PORT = 6379  # the pre-running Redis (reference/backends.md)
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def client(port: int = PORT, password: str | None = None):
    import redis

    return redis.Redis(host=HOST, port=port, password=password, socket_timeout=10)


def unique_key(what: str) -> str:
    return f"procx-test-{what}-{uuid.uuid4().hex[:12]}"


def delete_keys(key: str, port: int = PORT) -> None:
    """Remove a test's list/stream and the keys procx derives from it."""
    conn = client(port)
    try:
        conn.delete(key, f"{key}:processing", f"{key}:processing:leases")
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def connection_args(driver: str, key: str, port: int = PORT) -> list[str]:
    return ["-driver", driver, "-redis-host", HOST, "-redis-port", str(port), "-redis-key", key]


class RedisServer:
    """A redis-server of our own on a free port (no persistence), for tests that kill it or configure it."""

    def __init__(self, folder: Path, *extra: str, port: int | None = None, tls: bool = False) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.extra = list(extra)
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self.log = folder / f"redis-{self.port}.log"

    def argv(self) -> list[str]:
        listen = ["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)]
        return [REDIS_SERVER, *listen, "--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.folder), *self.extra]

    def start(self) -> RedisServer:
        if not Path(REDIS_SERVER).exists():
            pytest.fail(f"redis-server not found at {REDIS_SERVER}: apt-get install redis-server")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(self._listening, timeout=10)
        except AssertionError:
            self.stop()
            pytest.fail(f"redis-server on port {self.port} did not start: {self.log.read_text()[-2000:]}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"redis-server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((HOST, self.port)) == 0

    def kill(self) -> None:
        """kill -9 (nothing is saved: the data is gone, as after a crash without persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        wait_for(self._port_free, timeout=10)
        self.start()

    def _port_free(self) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, self.port))
            except OSError:
                return False
            return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def running(folder: Path, *extra: str, tls: bool = False):
    server = RedisServer(folder, *extra, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()
