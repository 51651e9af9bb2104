"""Document-store emulators the mongodb and elasticsearch tests start: nx-27017 (MongoDB wire protocol on SQLite)
and noida-db's Elasticsearch API (ES 8.15.3), each once per session on 127.0.0.1 and a free port, stopped at the end.

A test module imports the fixture it needs (`from tests.drivers.doc_servers import mongo_server`). A server that
cannot start makes the tests FAIL with its log. Install both with `pip install nx-27017 noida-db`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import socketserver
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import Cert, answers, free_port, serving


@dataclass
class MongoServer:
    port: int
    started_in: float
    host: str = "127.0.0.1"

    def client(self):
        import pymongo

        return pymongo.MongoClient(self.host, self.port, directConnection=True, serverSelectionTimeoutMS=5000)


def _mongo_ready(port: int) -> bool:
    import pymongo
    from pymongo.errors import PyMongoError

    socket.create_connection(("127.0.0.1", port), timeout=1).close()  # OSError until it listens
    try:
        with pymongo.MongoClient("127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=1000) as client:
            return client.admin.command("ping").get("ok") == 1
    except PyMongoError:
        return False


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """nx-27017 0.8 with an in-memory database (no authentication, no TLS)."""
    binary = Path(sys.executable).parent / "nx-27017"
    if not binary.exists():
        pytest.fail(f"nx-27017 is not installed ({binary}): pip install nx-27017")
    base = tmp_path_factory.mktemp("nx-27017")
    port = free_port()
    log = base / "nx.log"
    cmd = [str(binary), "--db", "memory", "--host", "127.0.0.1", "-p", str(port), "--log-file", str(log),
           "--pid-file", str(base / "nx.pid")]
    with serving(cmd, lambda: _mongo_ready(port), "nx-27017", base / "nx.out", cwd=base) as took:
        yield MongoServer(port, took)


@dataclass
class EsServer:
    port: int
    started_in: float

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: object = None) -> dict:
        """One request (for test set-up and checks); an HTTP error answers its JSON body."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    def refresh(self, index: str) -> None:
        """Make what was written searchable now (the server refreshes about once a second, like Elasticsearch)."""
        self.call("POST", f"/{index}/_refresh")

    def sources(self, index: str) -> dict[str, dict]:
        """Every document of the index by id (the index refreshed first)."""
        self.refresh(index)
        found = self.call("POST", f"/{index}/_search", {"size": 1000, "query": {"match_all": {}}})
        return {h["_id"]: h["_source"] for h in found.get("hits", {}).get("hits", [])}


@pytest.fixture(scope="session")
def es_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsServer]:
    """noida-db 0.2's Elasticsearch service (it answers as ES 8.15.3), run directly so that there is one process."""
    try:
        import noida_db
    except ImportError:
        pytest.fail("noida-db is not installed: pip install noida-db")
    binary = Path(noida_db.__file__).parent / "noida-db"
    if not binary.exists() or shutil.which(str(binary)) is None:
        pytest.fail(f"noida-db's server binary is missing or not executable: {binary}")
    base = tmp_path_factory.mktemp("noida")
    port = free_port()
    log = base / "noida.log"
    cmd = [str(binary), "start", "--host", "127.0.0.1", "--only", "elasticsearch", "--elasticsearch-port", str(port),
           "--data-dir", str(base / "data")]
    with serving(cmd, lambda: answers(f"http://127.0.0.1:{port}/"), "noida-db", log, cwd=base) as took:
        yield EsServer(port, took)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _tls_proxy(upstream: int, cert: Cert) -> Iterator[int]:
    """A TLS-terminating proxy on a free port in front of 127.0.0.1:upstream (threads; certificate: cert)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)

    class Proxy(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                client = context.wrap_socket(self.request, server_side=True)
            except (OSError, ssl.SSLError):
                return  # the client refused the certificate
            with client, socket.create_connection(("127.0.0.1", upstream)) as server:
                back = threading.Thread(target=_pump, args=(server, client), daemon=True)
                back.start()
                _pump(client, server)
                back.join(10)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

    with Server(("127.0.0.1", 0), Proxy) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


@pytest.fixture(scope="session")
def es_tls(es_server: EsServer, tls_cert: Cert) -> Iterator[str]:
    """An https:// address in front of noida (which serves plain HTTP only)."""
    with _tls_proxy(es_server.port, tls_cert) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def mongo_tls(mongo_server: MongoServer, tls_cert: Cert) -> Iterator[int]:
    """A port speaking TLS in front of nx-27017 (which has no TLS)."""
    with _tls_proxy(mongo_server.port, tls_cert) as port:
        yield port
