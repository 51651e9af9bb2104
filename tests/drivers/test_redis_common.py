"""What the three redis drivers share: bad input (unreachable server, passwords, settings), TLS, and a daemon that
keeps going when its server is killed and restarted.

Throwaway redis-servers (/usr/bin/redis-server, no persistence) run on free ports from session fixtures: one
with --requirepass, one with TLS only (certificates made with openssl), one that the reconnect tests kill -9 and
restart on the same port. A server that cannot start fails the tests with its log.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import api
from tests.drivers.redis_helpers import HOST, RedisServer, client, connection_args, delete_keys, free_port, unique_key
from tests.support import clean_env, command, run, wait_for

DRIVERS = ("redis-list", "redis-pubsub", "redis-stream")
SECRET = "s3cret-Pa55word"
PAYLOAD = '{"a": "1"}'  # valid for every driver (a JSON object for redis-stream)


@pytest.fixture(scope="session")
def password_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-auth"), "--requirepass", SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the TLS test certificates: apt-get install openssl")
    d = tmp_path_factory.mktemp("redis-tls")

    def sh(*argv: str) -> None:
        done = subprocess.run([openssl, *argv], cwd=d, capture_output=True)
        if done.returncode:
            pytest.fail(f"openssl {' '.join(argv)}: {done.stderr.decode()}")

    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
       "-subj", "/CN=procx test CA")
    for name, cn in (("server", "localhost"), ("client", "procx")):
        sh("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
           "-subj", f"/CN={cn}")
        sh("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", f"{name}.crt", "-days", "2", "-extfile", "ext")
    return {name: d / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory, tls_files):
    server = RedisServer(tmp_path_factory.mktemp("redis-tls-server"), "--tls-cert-file", str(tls_files["server.crt"]),
                         "--tls-key-file", str(tls_files["server.key"]), "--tls-ca-cert-file",
                         str(tls_files["ca.crt"]), "--tls-auth-clients", "yes", tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def restartable_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-restart")).start()
    yield server
    server.stop()


def tool_args(tool: str, driver: str) -> list[str]:
    return ["-in", PAYLOAD] if tool == "pushx" else ["-wait-for-work", "0"]


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err
    return err


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("tool", ["procx", "pushx"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_unreachable_server_is_one_line_naming_driver_host_and_port(driver: str, tool: str) -> None:
    port = free_port()
    done = run(tool, *connection_args(driver, "k", port), *tool_args(tool, driver))
    assert_one_line_error(done, 69, f"driver {driver}", f"{HOST}:{port}", "unreachable")


@pytest.mark.parametrize("tool", ["procx", "pushx"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_wrong_password_is_refused_without_showing_it(password_server, driver: str, tool: str) -> None:
    wrong = "not-the-Pa55word"
    done = run(tool, *connection_args(driver, "k", password_server.port), "-redis-password", wrong,
               *tool_args(tool, driver))
    err = assert_one_line_error(done, 69, f"driver {driver}", f"{HOST}:{password_server.port}",
                                "authentication failed")
    assert wrong not in err and SECRET not in err


@pytest.mark.parametrize("driver", DRIVERS)
def test_missing_password_is_refused(password_server, driver: str) -> None:
    done = run("procx", *connection_args(driver, "k", password_server.port), "-wait-for-work", "0")
    assert_one_line_error(done, 69, f"driver {driver}", "authentication failed")


@pytest.mark.parametrize("driver", ["redis-list", "redis-stream"])
def test_password_works_and_a_wrong_one_consumes_nothing(password_server, driver: str) -> None:
    key = unique_key("auth")
    good = [*connection_args(driver, key, password_server.port), "-redis-password", SECRET]
    env = clean_env(PUSHX_REDIS_PASSWORD=SECRET)  # the variable works as well
    assert run("pushx", *connection_args(driver, key, password_server.port), "-in", PAYLOAD, env=env).returncode == 0
    bad = run("procx", *connection_args(driver, key, password_server.port), "-redis-password", "wrong")
    assert bad.returncode == 69
    done = run("procx", *good)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == (b'{"a":"1"}' if driver == "redis-stream" else PAYLOAD.encode())
    client(password_server.port, SECRET).delete(key, f"{key}:processing", f"{key}:processing:leases")


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(("extra", "flag"), [
    (("-redis-port", "http"), "-redis-port"),
    (("-redis-port", "0"), "-redis-port"),
    (("-redis-key", ""), "-redis-key"),
    (("-redis-enable-tls", "-redis-tls-ca-file", "/nonexistent/ca.pem"), "-redis-enable-tls"),
])
def test_bad_settings_exit_2_naming_the_flag(driver: str, extra: tuple[str, ...], flag: str) -> None:
    done = run("procx", *connection_args(driver, "k"), *extra, "-wait-for-work", "0")
    assert_one_line_error(done, 2, flag)


# ------------------------------------------------------------------------------------------------ TLS
def tls_args(tls_server, tls_files, key: str, *extra: str, ca: bool = True, cert: bool = True) -> list[str]:
    out = [*connection_args("redis-list", key, tls_server.port), "-redis-enable-tls"]
    if ca:
        out += ["-redis-tls-ca-file", str(tls_files["ca.crt"])]
    if cert:
        out += ["-redis-tls-cert-file", str(tls_files["client.crt"]), "-redis-tls-key-file",
                str(tls_files["client.key"])]
    return [*out, *extra]


def test_tls_with_ca_and_client_certificate(tls_server, tls_files) -> None:
    key = unique_key("tls")
    api.pushx(b"\x00over tls", tls_args(tls_server, tls_files, key))
    assert api.procx(tls_args(tls_server, tls_files, key)) == b"\x00over tls"


def test_tls_verifies_the_server_certificate(tls_server, tls_files) -> None:
    done = run("procx", *tls_args(tls_server, tls_files, "k", ca=False), "-wait-for-work", "0")
    assert_one_line_error(done, 69, "driver redis-list", f"{HOST}:{tls_server.port}", "CERTIFICATE_VERIFY_FAILED")


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_tls_skip_verify(tls_server, tls_files, how: str) -> None:
    key = unique_key("tls")
    extra = ("-redis-tls-skip-verify",) if how == "flag" else ()
    env = clean_env(PROCX_REDIS_TLS_INSECURE="true", PUSHX_REDIS_TLS_INSECURE="true")
    assert run("pushx", *tls_args(tls_server, tls_files, key, *extra, ca=False), "-in", "x", env=env).returncode == 0
    done = run("procx", *tls_args(tls_server, tls_files, key, *extra, ca=False), env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"x"


def test_tls_server_refuses_a_client_without_certificate(tls_server, tls_files) -> None:
    done = run("procx", *tls_args(tls_server, tls_files, "k", cert=False), "-wait-for-work", "0")
    assert_one_line_error(done, 69, "driver redis-list", f"{HOST}:{tls_server.port}")


# ------------------------------------------------------------------------------------------------ reconnect
DAEMON_EXTRA = {
    "redis-list": ("-redis-visibility-timeout", "2s"),
    "redis-pubsub": (),
    "redis-stream": ("-redis-stream-payload-field", "data", "-redis-stream-claim-idle", "2s"),
}
PUSH_EXTRA = {"redis-list": (), "redis-pubsub": (), "redis-stream": ("-redis-stream-payload-field", "data")}


@pytest.mark.slow
@pytest.mark.parametrize("driver", DRIVERS)
def test_daemon_keeps_going_when_the_server_is_killed_and_restarted(restartable_server, driver: str,
                                                                    tmp_path: Path) -> None:
    server = restartable_server
    key = unique_key("restart")
    base = connection_args(driver, key, server.port)
    log, stderr = tmp_path / "done.log", tmp_path / "stderr"
    script = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"

    def ready() -> bool:
        if driver != "redis-pubsub":
            return True
        try:
            return dict(client(server.port).pubsub_numsub(key)).get(key.encode(), 0) == 1
        except Exception:  # noqa: BLE001 - the server is coming back
            return False

    def push(items: range) -> None:
        with api.Producer([*base, *PUSH_EXTRA[driver]]) as producer:
            for i in items:
                producer.push(f"item-{i}")

    def done_items() -> list[str]:
        return log.read_text().split() if log.exists() else []

    with open(stderr, "wb") as err:
        proc = subprocess.Popen([command("procx"), *base, *DAEMON_EXTRA[driver], "-daemon", "-pass-work-as-stdin",
                                 "-log-format", "json", sys.executable, "-c", script, str(log)],
                                env=clean_env(), stderr=err)
    try:
        wait_for(ready, timeout=15)
        push(range(5))
        wait_for(lambda: len(done_items()) == 5, timeout=20)
        server.restart()  # kill -9 and start again on the same port: the daemon's connection breaks
        wait_for(ready, timeout=30)
        push(range(5, 10))
        wait_for(lambda: len(done_items()) == 10, timeout=30)
        assert proc.poll() is None, "the daemon stopped"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        delete_keys(key, server.port) if server.proc and server.proc.poll() is None else None
    assert sorted(done_items()) == sorted(f"item-{i}" for i in range(10))  # each item once, none lost
    if driver == "redis-pubsub":  # its connection was in use when the server died: the outage is reported
        assert f"{HOST}:{server.port}".encode() in stderr.read_bytes()
