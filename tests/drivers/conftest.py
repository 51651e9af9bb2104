"""Servers the driver tests start themselves: ActiveMQ (STOMP) and etcd on 127.0.0.1 and free ports.

Each server is started once per test session, from its Debian package, and stopped at the end. A server that
cannot start makes the tests that need it FAIL with the reason (never a silent skip). CI installs them with
`apt-get install -y --no-install-recommends activemq etcd-server etcd-client` (openssl and Java 17 are present).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import log_tail, stop_process

ACTIVEMQ_JAR = Path("/usr/share/activemq/bin/activemq.jar")
ACTIVEMQ_USER, ACTIVEMQ_PASSWORD = "procx", "amq-s3cret"
ETCD_USER, ETCD_PASSWORD = "procx", "etcd-s3cret"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, log: Path) -> float:
    """Seconds until `ready()`; fails the test (with the server's log) if the process dies or time runs out."""
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} while starting:\n{log_tail(log)}")
        with contextlib.suppress(OSError):
            if ready():
                return time.monotonic() - started
        if time.monotonic() - started > START_TIMEOUT:
            pytest.fail(f"{what} did not become ready within {START_TIMEOUT:.0f}s:\n{log_tail(log)}")
        time.sleep(0.05)


def listening(port: int) -> bool:
    """127.0.0.1:port accepts a connection (OSError until it does)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def answers(url: str) -> bool:
    """A GET of `url` answers 200 (False until the server does)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_server(cmd: list[str], ready: Callable[[], bool], what: str, log: Path,
                 **popen: Any) -> tuple[subprocess.Popen, float]:
    """Start a server with its output in `log` and wait until `ready()` (see _wait_until): the process and the
    seconds it took. One that does not get ready is stopped and fails the test."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **popen)
    try:
        return proc, _wait_until(ready, proc, what, log)
    except BaseException:
        stop_process(proc)
        raise


@contextlib.contextmanager
def serving(cmd: list[str], ready: Callable[[], bool], what: str, log: Path, **popen: Any) -> Iterator[float]:
    """start_server() for the length of a block: yields the seconds until ready, stops the server at the end."""
    proc, took = start_server(cmd, ready, what, log, **popen)
    try:
        yield took
    finally:
        stop_process(proc)


# ---------------------------------------------------------------------------------------------- certificates
@dataclass
class Cert:
    """A self-signed server certificate for 127.0.0.1/localhost (also usable as its own CA and as a client
    certificate), an unrelated CA that does not trust it, and a PKCS#12 keystore of it for Java."""

    cert: Path
    key: Path
    other_ca: Path
    p12: Path
    p12_password: str = "procx-test"


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (apt-get install -y openssl)")
    done = subprocess.run(["openssl", *args], capture_output=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key), "-out", str(cert),
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "extendedKeyUsage=serverAuth,clientAuth")
    return cert, key


def ca_signed_cert(folder: Path) -> dict[str, Path]:
    """A CA ("ca", "ca-key") and a server certificate for 127.0.0.1 that it signed ("server", "server-key")."""
    files = {n: folder / f"{n}.pem" for n in ("ca", "ca-key", "server", "server-key")}
    csr, ext = folder / "server.csr", folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=procx-test-ca",
             "-keyout", str(files["ca-key"]), "-out", str(files["ca"]))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(files["server-key"]),
             "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey", str(files["ca-key"]),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(files["server"]))
    return files


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(folder, "server")
    other, _ = _self_signed(folder, "other")
    result = Cert(cert, key, other, folder / "server.p12")
    _openssl("pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-name", "server",
             "-out", str(result.p12), "-passout", f"pass:{result.p12_password}")
    return result


# ---------------------------------------------------------------------------------------------- ActiveMQ
@dataclass
class ActiveMQ:
    host: str
    port: int  # STOMP
    tls_port: int  # STOMP over TLS (certificate: the tls_cert fixture)
    user: str
    password: str
    started_in: float

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls_address(self) -> str:
        return f"{self.host}:{self.tls_port}"


ACTIVEMQ_XML = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans
    http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
    http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="procx-test" useJmx="false"
          persistent="false" schedulerSupport="false" advisorySupport="false" dataDirectory="{data}">
    <plugins>
      <statisticsBrokerPlugin/>
      <!-- anonymous clients may use the destinations named procx.*; the user {user} may use all -->
      <simpleAuthenticationPlugin anonymousAccessAllowed="true">
        <users>
          <authenticationUser username="{user}" password="{password}" groups="users"/>
        </users>
      </simpleAuthenticationPlugin>
      <authorizationPlugin>
        <map>
          <authorizationMap>
            <authorizationEntries>
              <authorizationEntry queue=">" read="users" write="users" admin="users"/>
              <authorizationEntry topic=">" read="users" write="users" admin="users"/>
              <authorizationEntry queue="procx.>" read="users,anonymous" write="users,anonymous"
                                  admin="users,anonymous"/>
              <authorizationEntry topic="procx.>" read="users,anonymous" write="users,anonymous"
                                  admin="users,anonymous"/>
            </authorizationEntries>
          </authorizationMap>
        </map>
      </authorizationPlugin>
    </plugins>
    <sslContext>
      <sslContext keyStore="file:{p12}" keyStorePassword="{p12_password}" keyStoreType="PKCS12"/>
    </sslContext>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
      <transportConnector name="stomp+ssl" uri="stomp+ssl://127.0.0.1:{tls_port}"/>
    </transportConnectors>
  </broker>
</beans>
"""


def _stomp_ready(port: int) -> bool:
    """A STOMP CONNECT answered by CONNECTED: the broker accepts clients."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:127.0.0.1\n\n\x00")
        data = b""
        while b"\x00" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        with contextlib.suppress(OSError):
            s.sendall(b"DISCONNECT\n\n\x00")
        return data.startswith(b"CONNECTED")


@pytest.fixture(scope="session")
def activemq(tmp_path_factory: pytest.TempPathFactory, tls_cert: Cert) -> Iterator[ActiveMQ]:
    """Apache ActiveMQ Classic (Debian's package), non-persistent, STOMP and STOMP+TLS on loopback."""
    java = shutil.which("java")
    if not ACTIVEMQ_JAR.exists() or java is None:
        pytest.fail("ActiveMQ is not installed: apt-get install -y --no-install-recommends activemq "
                    f"({ACTIVEMQ_JAR} or java missing)")
    base = tmp_path_factory.mktemp("activemq")
    conf, data = base / "conf", base / "data"
    conf.mkdir()
    data.mkdir()
    port, tls_port = free_port(), free_port()
    (conf / "activemq.xml").write_text(ACTIVEMQ_XML.format(
        data=data, user=ACTIVEMQ_USER, password=ACTIVEMQ_PASSWORD, p12=tls_cert.p12,
        p12_password=tls_cert.p12_password, port=port, tls_port=tls_port))
    (conf / "log4j.properties").write_text(  # Debian's build logs through log4j 1.2
        "log4j.rootLogger=WARN, out\nlog4j.appender.out=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.out.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.out.layout.ConversionPattern=%-5p %c{1} | %m%n\n")
    (conf / "log4j2.properties").write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.console.ref=Console\n"
        "appender.console.type=Console\nappender.console.name=Console\n"
        "appender.console.layout.type=PatternLayout\nappender.console.layout.pattern=%5p | %m%n\n")
    log = base / "activemq.log"
    # Java is started directly (not through /usr/bin/activemq, which switches to the activemq user and forces a
    # 512 MiB heap), so that the fixture owns the process and can stop it.
    cmd = [java, "-Xms64m", "-Xmx256m", "-Djava.awt.headless=true",
           f"-Dactivemq.classpath={conf}", "-Dactivemq.home=/usr/share/activemq", f"-Dactivemq.base={base}",
           f"-Dactivemq.conf={conf}", f"-Dactivemq.data={data}",
           f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
           "-jar", str(ACTIVEMQ_JAR), "start", f"xbean:file:{conf / 'activemq.xml'}"]
    with serving(cmd, lambda: _stomp_ready(port), "ActiveMQ", log, cwd=base) as took:
        yield ActiveMQ("127.0.0.1", port, tls_port, ACTIVEMQ_USER, ACTIVEMQ_PASSWORD, took)


# ---------------------------------------------------------------------------------------------- etcd
@dataclass
class Etcd:
    port: int
    tls_port: int | None
    started_in: float
    user: str = ""
    password: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def call(self, path: str, body: dict, token: str = "") -> dict:
        """One request to the v3 JSON gateway (for test set-up and checks)."""
        req = urllib.request.Request(f"{self.endpoint}/v3/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": token} if token else {})})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"
    except (urllib.error.URLError, ValueError):
        return False


def _start_etcd(base: Path, tls: Cert | None) -> tuple[subprocess.Popen, Etcd, Path]:
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("etcd is not installed: apt-get install -y --no-install-recommends etcd-server etcd-client")
    port, peer = free_port(), free_port()
    tls_port = free_port() if tls else None
    listen = f"http://127.0.0.1:{port}" + (f",https://127.0.0.1:{tls_port}" if tls else "")
    cmd = [binary, "--name", "t", "--data-dir", str(base / "data"), "--listen-client-urls", listen,
           "--advertise-client-urls", f"http://127.0.0.1:{port}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}", "--initial-cluster",
           f"t=http://127.0.0.1:{peer}", "--log-level", "warn"]
    if tls:
        cmd += ["--cert-file", str(tls.cert), "--key-file", str(tls.key)]
    log = base / "etcd.log"
    proc, took = start_server(cmd, lambda: _etcd_healthy(port), "etcd", log, cwd=base)
    return proc, Etcd(port, tls_port, took), log


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory, tls_cert: Cert) -> Iterator[Etcd]:
    """etcd 3.4 (Debian's package): plain HTTP and TLS client listeners, no authentication."""
    proc = None
    try:
        proc, server, _ = _start_etcd(tmp_path_factory.mktemp("etcd"), tls_cert)
        yield server
    finally:
        if proc is not None:
            stop_process(proc)


@pytest.fixture(scope="session")
def etcd_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A second etcd with authentication on: user ETCD_USER may read and write every key."""
    proc = None
    try:
        proc, server, log = _start_etcd(tmp_path_factory.mktemp("etcd-auth"), None)
        try:
            server.call("auth/user/add", {"name": "root", "password": "root-pw"})
            server.call("auth/role/add", {"name": "root"})
            server.call("auth/user/grant", {"user": "root", "role": "root"})
            server.call("auth/user/add", {"name": ETCD_USER, "password": ETCD_PASSWORD})
            server.call("auth/role/add", {"name": "rw"})
            server.call("auth/role/grant", {"name": "rw", "perm": {"permType": "READWRITE", "key": "AA==",
                                                                    "range_end": "AA=="}})
            server.call("auth/user/grant", {"user": ETCD_USER, "role": "rw"})
            server.call("auth/enable", {})
        except (urllib.error.URLError, OSError) as exc:
            pytest.fail(f"cannot enable authentication on etcd: {exc}\n{log_tail(log)}")
        server.user, server.password = ETCD_USER, ETCD_PASSWORD
        yield server
    finally:
        if proc is not None:
            stop_process(proc)


@pytest.fixture
def unique() -> str:
    """A name unique to this test run (uuid based), for queues, keys and prefixes."""
    import uuid

    return uuid.uuid4().hex[:12]

