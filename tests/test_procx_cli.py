"""The installed `procx` command: local and sqlite drivers, payload delivery, child environment, exit
statuses, errors, JSON events, signals, the daemon."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.settings import load
from drivers.sqlite import SqliteSink
from tests.support import clean_env, command, run, unusable, wait_for

PY = sys.executable
SECRET = "s3cr3t-token-value"


# -- helpers ------------------------------------------------------------------------------------------

def enqueue(db: Path, *payloads: bytes, queue: str = "default") -> None:
    """Put work into a sqlite queue in process (fast), as pushx would."""
    _, config = load("pushx", ["-driver", "sqlite", "-sqlite-path", str(db), "-sqlite-queue", queue], {})
    sink = SqliteSink(config)
    sink.open()
    try:
        sink.push_many(list(payloads))
    finally:
        sink.close()


def rows(db: Path) -> list[tuple[bytes, int, str | None, float]]:
    """(payload, attempts, lease, available_at) of every item still queued, oldest first."""
    conn = sqlite3.connect(db)
    try:
        return [(bytes(p), a, lease, at) for p, a, lease, at in
                conn.execute("SELECT payload, attempts, lease, available_at FROM procx_queue ORDER BY id")]
    finally:
        conn.close()


def sq(db: Path, *more: str) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(db), *more]


def script(tmp_path: Path, name: str, body: str) -> str:
    """A python child script; returns its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def popen(*args: str, env: dict[str, str] | None = None, stderr_file: Path | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    err = open(stderr_file, "wb") if stderr_file else subprocess.PIPE  # noqa: SIM115 - closed by the caller's wait
    try:
        return subprocess.Popen([command("procx"), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, env=env or clean_env(), cwd=cwd)
    finally:
        if stderr_file:
            err.close()


def finish(proc: subprocess.Popen, timeout: float = 15) -> tuple[int, bytes]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def events(text: bytes | str) -> list[dict]:
    if isinstance(text, bytes):
        text = text.decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def logged(path: Path, event: str) -> bool:
    return path.exists() and any(e.get("event") == event for e in events(path.read_text()))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result
    assert result.stdout == b""
    text = result.stderr.decode()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert text.startswith("procx: ")
    return text


# Child scripts. The default delivery gives the child no PATH, so children are started by absolute path.
DUMP = """
import json, os, sys
out = sys.argv[1]
data = {"env": dict(os.environ), "argv": sys.argv[2:], "stdin": sys.stdin.buffer.read().decode("latin-1")}
path = os.environ.get("PROCX_PAYLOAD_FILE")
if path:
    data["file"] = open(path, "rb").read().decode("latin-1")
with open(out + ".tmp", "w") as f:
    json.dump(data, f)
os.rename(out + ".tmp", out)
sys.exit(int(os.environ.get("DUMP_EXIT", "0")))
"""


def dumped(path: Path) -> dict:
    wait_for(path.exists, timeout=10)
    return json.loads(path.read_text())


# -- local driver, one shot ---------------------------------------------------------------------------

def test_local_no_command_prints_payload_without_newline():
    result = run("procx", "-driver", "local", env=clean_env(PROCX_PAYLOAD="abc"))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"abc", b"")


def test_local_no_payload_no_output():
    result = run("procx", "-driver", "local")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_driver_from_variable():
    result = run("procx", env=clean_env(PROCX_DRIVER="local", PROCX_PAYLOAD="via-var"))
    assert (result.returncode, result.stdout) == (0, b"via-var")


@pytest.mark.parametrize("code", [3, 1, 42])
def test_child_exit_status_is_passed_through(code):
    result = run("procx", "-driver", "local", "sh", "-c", f"exit {code}", env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == code


def test_child_killed_by_signal_is_128_plus_signal():
    result = run("procx", "-driver", "local", "sh", "-c", "kill -9 $$", env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == 128 + 9


def test_command_not_found():
    result = run("procx", "-driver", "local", "no-such-command-procx-test", env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == 127
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "no-such-command-procx-test" in lines[0] and "not found" in lines[0]


def test_command_path_not_found(tmp_path):
    result = run("procx", "-driver", "local", str(tmp_path / "missing"), env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == 127


def test_command_not_executable(tmp_path):
    target = tmp_path / "not-executable.sh"
    target.write_text("#!/bin/sh\nexit 0\n")
    target.chmod(0o644)
    result = run("procx", "-driver", "local", str(target), env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == 126
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and str(target) in lines[0]
    result = run("procx", "-driver", "local", "./not-executable.sh", env=clean_env(PROCX_PAYLOAD="abc"),
                 cwd=tmp_path)
    assert result.returncode == 126


def test_daemon_equals_false_runs_echo_once():
    result = run("procx", "-driver", "local", "-daemon=false", "echo", env=clean_env(PROCX_PAYLOAD="abc"))
    assert (result.returncode, result.stdout) == (0, b"\n")


def test_command_arguments_are_untouched(tmp_path):
    out = tmp_path / "out.json"
    result = run("procx", "-driver", "local", PY, script(tmp_path, "dump.py", DUMP), str(out),
                 "-c", "echo $X", "-daemon", "--", "-", env=clean_env(PROCX_PAYLOAD="abc"))
    assert result.returncode == 0
    assert dumped(out)["argv"] == ["-c", "echo $X", "-daemon", "--", "-"]


# -- the child's environment --------------------------------------------------------------------------

def host_env(**extra: str) -> dict[str, str]:
    return clean_env(LC_CTYPE="C.UTF-8", PROCX_PAYLOAD="the-payload", PROCX_SECRET_PASSWORD=SECRET,
                     PUSHX_X="for-pushx", PROCX_LOG_FORMAT="text", **extra)


def test_default_delivery_child_env_is_only_the_payload():
    result = run("procx", "-driver", "local", "env", "-0", env=host_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(b"\0")[:-1] == [b"PROCX_PAYLOAD=the-payload"]


def test_stdin_delivery_child_env_is_procx_env_without_procx_variables(tmp_path):
    out = tmp_path / "out.json"
    env = host_env()
    result = run("procx", "-driver", "local", "-pass-work-as-stdin", PY, script(tmp_path, "d.py", DUMP), str(out),
                 env=env)
    assert result.returncode == 0, result.stderr
    seen = dumped(out)
    assert seen["stdin"] == "the-payload"
    assert seen["env"] == {k: v for k, v in env.items() if not k.startswith("PROCX_")}
    assert seen["env"]["PUSHX_X"] == "for-pushx"


@pytest.mark.parametrize("delivery", [[], ["-pass-work-as-stdin"], ["-pass-work-as-arg"]])
def test_hostenv_child_gets_everything(tmp_path, delivery):
    out = tmp_path / "out.json"
    env = host_env()
    result = run("procx", "-driver", "local", "-hostenv", *delivery, PY, script(tmp_path, "d.py", DUMP), str(out),
                 env=env)
    assert result.returncode == 0, result.stderr
    assert dumped(out)["env"] == env


def test_hostenv_from_variable(tmp_path):
    out = tmp_path / "out.json"
    env = host_env(PROCX_HOSTENV="yes")
    assert run("procx", "-driver", "local", PY, script(tmp_path, "d.py", DUMP), str(out), env=env).returncode == 0
    assert dumped(out)["env"] == env


# -- payload file -------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [0, 5])
def test_payload_file_is_given_and_removed(tmp_path, status):
    out = tmp_path / "out.json"
    env = host_env(DUMP_EXIT=str(status))
    result = run("procx", "-driver", "local", "-payload-file", "payload.bin", PY,
                 script(tmp_path, "d.py", DUMP), str(out), env=env, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    seen = dumped(out)
    assert seen["env"]["PROCX_PAYLOAD_FILE"] == str(tmp_path / "payload.bin")
    assert seen["file"] == "the-payload"
    assert "PROCX_PAYLOAD" not in seen["env"] and "PROCX_SECRET_PASSWORD" not in seen["env"]
    assert seen["env"]["PUSHX_X"] == "for-pushx"
    assert not (tmp_path / "payload.bin").exists()


@pytest.mark.parametrize("status", [0, 5])
def test_keep_payload_file(tmp_path, status):
    out = tmp_path / "out.json"
    result = run("procx", "-driver", "local", "-payload-file", str(tmp_path / "p.bin"), "-keep-payload-file", PY,
                 script(tmp_path, "d.py", DUMP), str(out), env=host_env(DUMP_EXIT=str(status)))
    assert result.returncode == status
    assert (tmp_path / "p.bin").read_bytes() == b"the-payload"


def test_payload_file_that_cannot_be_written_fails_the_work(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"x")
    result = run("procx", *sq(db, "-payload-file", str(tmp_path / "no-such-dir" / "p")), "true")
    assert result.returncode == 74
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "payload file" in lines[0]
    assert len(rows(db)) == 1 and rows(db)[0][2] is None


def test_arg_file_and_stdin_each_get_the_full_payload(tmp_path):
    db = tmp_path / "q.db"
    payload = ("x" * 100_000 + "é\n end").encode()  # above a pipe buffer, below one argument's limit
    enqueue(db, payload)
    out = tmp_path / "out.json"
    result = run("procx", *sq(db, "-pass-work-as-arg", "-pass-work-as-stdin", "-payload-file", str(tmp_path / "p")),
                 PY, script(tmp_path, "d.py", DUMP), str(out))
    assert result.returncode == 0, result.stderr
    seen = dumped(out)
    text = payload.decode("latin-1")
    assert seen["argv"] == [payload.decode()]
    assert seen["stdin"] == text
    assert seen["file"] == text
    assert "PROCX_PAYLOAD" not in seen["env"]
    assert rows(db) == []


def test_nul_byte_payload_as_variable_fails_with_advice(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"a\0b")
    result = run("procx", *sq(db), "true")
    assert result.returncode == 126
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "-pass-work-as-stdin" in lines[0] and "-payload-file" in lines[0]
    [(payload, attempts, lease, _)] = rows(db)
    assert (payload, attempts, lease) == (b"a\0b", 1, None)  # failed back, not lost


def test_binary_payload_through_stdin_is_byte_exact(tmp_path):
    db = tmp_path / "q.db"
    payload = bytes(range(256)) * 4 + b"\0\r\n\xff"
    enqueue(db, payload)
    out = tmp_path / "stdin.bin"
    copy = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    result = run("procx", *sq(db, "-pass-work-as-stdin"), PY, "-c", copy)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == payload
    assert rows(db) == []


def test_binary_payload_printed_without_command(tmp_path):
    db = tmp_path / "q.db"
    payload = bytes(range(256))
    enqueue(db, payload)
    result = run("procx", *sq(db))
    assert (result.returncode, result.stdout) == (0, payload)
    assert rows(db) == []


def test_sqlite_clear_after_success(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"one", b"two")
    assert run("procx", *sq(db), "true").returncode == 0
    assert [r[0] for r in rows(db)] == [b"two"]


def test_sqlite_fail_after_failure_then_taken_again(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"two")
    assert run("procx", *sq(db), "false").returncode == 1
    [(payload, attempts, lease, _)] = rows(db)
    assert (payload, attempts, lease) == (b"two", 1, None)
    assert run("procx", *sq(db)).stdout == b"two"
    assert rows(db) == []


def test_sqlite_empty_queue_is_no_work(tmp_path):
    result = run("procx", *sq(tmp_path / "q.db"), "false")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


# -- help, version, usage errors ----------------------------------------------------------------------

def test_help_lists_drivers():
    result = run("procx", "-h")
    assert (result.returncode, result.stderr) == (0, b"")
    text = result.stdout.decode()
    assert text.startswith("Usage: procx")
    for name in ("sqlite", "fs", "local", "aws-sqs", "redis-list", "gcp-pubsub"):
        assert f"\n  {name} " in text
    assert run("procx", "--help").stdout == result.stdout


def test_driver_help_lists_its_options():
    result = run("procx", "-driver", "sqlite", "-h")
    assert result.returncode == 0
    text = result.stdout.decode()
    for needle in ("-sqlite-path", "PROCX_SQLITE_PATH", "-sqlite-fail-delay", "-sqlite-visibility-timeout",
                   "-daemon"):
        assert needle in text
    assert "aws-sqs" not in text


def test_version():
    result = run("procx", "-v")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("procx version ")
    assert run("procx", "--version").stdout == result.stdout


def test_unknown_flag_error():
    text = one_line_error(run("procx", "-driver", "local", "-deamon", "echo"))
    assert "flag provided but not defined: -deamon" in text and "did you mean -daemon?" in text


def test_bad_int_variable_error():
    text = one_line_error(run("procx", "-driver", "local", env=clean_env(PROCX_DAEMON_INTERVAL="abc")))
    assert "PROCX_DAEMON_INTERVAL" in text and "-daemon-interval" in text and "'abc'" in text


def test_unknown_driver_error():
    text = one_line_error(run("procx", "-driver", "sqlit"))
    assert "unknown driver 'sqlit'" in text and "did you mean 'sqlite'?" in text


def test_missing_driver_and_required_option():
    assert "PROCX_DRIVER" in one_line_error(run("procx"))
    assert "-sqlite-path (PROCX_SQLITE_PATH)" in one_line_error(run("procx", "-driver", "sqlite"))


def test_missing_env_file_error(tmp_path):
    text = one_line_error(run("procx", "-env-file", str(tmp_path / "x.env")))
    assert "-env-file" in text


def test_env_file_profile(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text("PROCX_DRIVER=local\nPROCX_PAYLOAD=from-profile\n")
    result = run("procx", "-env-file", str(profile))
    assert (result.returncode, result.stdout) == (0, b"from-profile")


def test_foreign_flag_warns_and_runs(tmp_path):
    result = run("procx", "-driver", "local", "-redis-host", "h", env=clean_env(PROCX_PAYLOAD="p"))
    assert (result.returncode, result.stdout) == (0, b"p")
    assert b"-redis-host" in result.stderr


def test_unreachable_provider_exit_69(tmp_path):
    result = run("procx", *sq(unusable(tmp_path)), "true")
    assert result.returncode == 69
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "sqlite" in lines[0]


# -- JSON events --------------------------------------------------------------------------------------

def test_json_events(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"one", b"two")
    ok = run("procx", *sq(db, "-log-format", "json"), "true")
    assert ok.returncode == 0
    got = events(ok.stderr)
    by_event = {e["event"]: e for e in got if "event" in e}
    assert {"got", "cleared"} <= set(by_event)
    for name in ("got", "cleared"):
        assert by_event[name]["driver"] == "sqlite" and by_event[name]["id"] == "1"
        assert by_event[name]["app"] == "procx"
    assert by_event["got"]["bytes"] == 3
    bad = run("procx", *sq(db, "-log-format=json"), "sh", "-c", "exit 4")
    assert bad.returncode == 4
    by_event = {e["event"]: e for e in events(bad.stderr) if "event" in e}
    assert by_event["failed"]["id"] == "2" and by_event["failed"]["status"] == 4
    assert by_event["failed"]["driver"] == "sqlite"
    assert "cleared" not in by_event


def test_json_error_event(tmp_path):
    result = run("procx", *sq(unusable(tmp_path), "-log-format", "json"))
    assert result.returncode == 69
    [error] = [e for e in events(result.stderr) if e.get("event") == "error"]
    assert error["exit"] == 69 and error["level"] == "error"


PLUGIN = '''
from core.options import DriverSpec, Option
from core.work import Source, Work


class VaultSource(Source):
    def get(self, wait):
        token = self.config["vault-token"]
        return Work(b"payload", "v-1", meta={"token": token})

    def clear(self, work):
        raise RuntimeError("server rejected token " + self.config["vault-token"])

    def fail(self, work):
        pass


SPEC = DriverSpec("vault", "a test driver with a secret", [
    Option("vault-token", secret=True, required=True, help="token"),
    Option("vault-url", help="url"),
], source="procx_test_vault:VaultSource")
'''


@pytest.fixture
def vault_env(tmp_path) -> dict[str, str]:
    """A third-party driver registered through the entry point group, with a secret option."""
    site = tmp_path / "site"
    dist = site / "procx_test_vault-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: procx-test-vault\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[procx_tui.drivers]\nvault = procx_test_vault:SPEC\n")
    (site / "procx_test_vault.py").write_text(PLUGIN)
    return clean_env(PYTHONPATH=str(site))


def test_secret_never_logged(vault_env):
    args = ("-driver", "vault", "-vault-token", SECRET, "-vault-url", f"https://user:{SECRET}x@host/",
            "-log-format", "json")
    result = run("procx", *args, "true", env=vault_env)
    assert result.returncode == 69
    found = events(result.stderr)
    assert {"got", "error"} <= {e.get("event") for e in found}
    assert SECRET not in result.stderr.decode()
    assert "********" in result.stderr.decode()
    result = run("procx", *args, "false", env=vault_env)
    assert result.returncode == 1
    assert "failed" in {e.get("event") for e in events(result.stderr)}
    assert SECRET not in result.stderr.decode()
    text = run("procx", "-driver", "vault", "-vault-token", SECRET, "true", env=vault_env).stderr.decode()
    assert "server rejected token" in text and SECRET not in text


# -- signals and the daemon ---------------------------------------------------------------------------

TERM_CHILD = """
import os, pathlib, signal, subprocess, sys, time
d = pathlib.Path(sys.argv[1])
grandchild = subprocess.Popen(["/bin/sleep", "30"])
def on_term(signum, frame):
    (d / "child-got-term").write_text(os.environ.get("PROCX_PAYLOAD", ""))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
signal.signal(signal.SIGTERM, on_term)
(d / "grandchild.pid").write_text(str(grandchild.pid))
(d / "started").write_text("")
time.sleep(30)
"""

IGNORE_TERM_CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
(pathlib.Path(sys.argv[1]) / "started").write_text("")
time.sleep(30)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_one_shot_fails_work_back(tmp_path, signum):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    proc = popen(*sq(db), PY, script(tmp_path, "c.py", TERM_CHILD), str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists())
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    proc.send_signal(signum)
    code, _ = finish(proc)
    assert code == 0
    if signum == signal.SIGTERM:  # the child's handler saw its payload (SIGINT's default action ends it)
        assert (tmp_path / "child-got-term").read_text() == "job"
    wait_for(lambda: not alive(grandchild))  # the whole process group got the signal
    [(payload, attempts, lease, at)] = rows(db)
    assert (payload, attempts, lease) == (b"job", 1, None)
    assert at <= time.time()
    assert run("procx", *sq(db)).stdout == b"job"  # and it can be taken again


def test_child_ignoring_sigterm_is_killed_after_grace_period(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-grace-period", "1s", "-log-format", "json"), PY,
                 script(tmp_path, "c.py", IGNORE_TERM_CHILD), str(tmp_path), stderr_file=err)
    wait_for(lambda: (tmp_path / "started").exists())
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, _ = finish(proc)
    elapsed = time.monotonic() - started
    assert code == 0
    assert 0.8 <= elapsed < 10
    [failed] = [e for e in events(err.read_text()) if e.get("event") == "failed"]
    assert failed["status"] == 128 + signal.SIGKILL
    assert [r[:3] for r in rows(db)] == [(b"job", 1, None)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_stops_at_once(tmp_path, signum):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-grace-period", "60s", "-log-format", "json"), PY,
                 script(tmp_path, "c.py", IGNORE_TERM_CHILD), str(tmp_path), stderr_file=err)
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signum)
    wait_for(lambda: logged(err, "stopping"))
    started = time.monotonic()
    proc.send_signal(signum)
    code, _ = finish(proc)
    assert code == 128 + signum
    assert time.monotonic() - started < 5
    assert [r[:3] for r in rows(db)] == [(b"job", 1, None)]  # killed child: its work is failed back


def test_daemon_sigterm_drains(tmp_path):
    """The running child finishes its work on SIGTERM: that item is cleared, nothing more is taken."""
    db = tmp_path / "q.db"
    enqueue(db, b"first", b"second")
    child = script(tmp_path, "c.py", """
        import os, pathlib, signal, sys, time
        d = pathlib.Path(sys.argv[1])
        def on_term(signum, frame):
            (d / "done").write_text(os.environ["PROCX_PAYLOAD"])
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        (d / "started").write_text("")
        time.sleep(30)
    """)
    proc = popen(*sq(db, "-daemon"), PY, child, str(tmp_path))
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGTERM)
    code, _ = finish(proc)
    assert code == 0
    assert (tmp_path / "done").read_text() == "first"
    assert [r[:3] for r in rows(db)] == [(b"second", 0, None)]


def test_daemon_sigterm_when_idle(tmp_path):
    db = tmp_path / "q.db"
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-daemon", "-log-format", "json"), "true", stderr_file=err)
    wait_for(lambda: logged(err, "started"))
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 0


BARRIER_CHILD = """
import os, pathlib, sys, time
d = pathlib.Path(sys.argv[1])
payload = os.environ["PROCX_PAYLOAD"]
(d / f"started-{payload}").write_text("")
deadline = time.monotonic() + 10
while len(list(d.glob("started-*"))) < 2:   # the first two items must run side by side
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.01)
fd = os.open(d / "done.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (payload + "\\n").encode())
os.close(fd)
"""


def test_daemon_concurrency_processes_each_item_once(tmp_path):
    db = tmp_path / "q.db"
    items = [f"item-{i}" for i in range(6)]
    enqueue(db, *(i.encode() for i in items))
    work = tmp_path / "work"
    work.mkdir()
    proc = popen(*sq(db, "-daemon", "-concurrency", "2"), PY, script(tmp_path, "c.py", BARRIER_CHILD), str(work))
    done = work / "done.txt"
    wait_for(lambda: done.exists() and len(done.read_text().splitlines()) == len(items) and not rows(db))
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 0
    assert sorted(done.read_text().splitlines()) == items


def test_daemon_keeps_going_after_a_failed_job(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"good-1", b"bad", b"good-2")
    out = tmp_path / "done.txt"
    child = script(tmp_path, "c.py", f"""
        import os, sys
        payload = os.environ["PROCX_PAYLOAD"]
        if payload == "bad":
            sys.exit(3)
        with open({str(out)!r}, "a") as f:
            f.write(payload + "\\n")
    """)
    proc = popen(*sq(db, "-daemon", "-sqlite-fail-delay", "1m"), PY, child)
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 2)
    wait_for(lambda: [r[:3] for r in rows(db)] == [(b"bad", 1, None)])
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 0
    assert out.read_text().splitlines() == ["good-1", "good-2"]
    [(_, attempts, _, available_at)] = rows(db)
    assert attempts == 1 and available_at > time.time() + 30  # held back by -sqlite-fail-delay, not spinning


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_idle_daemon_does_not_busy_loop(tmp_path):
    db = tmp_path / "q.db"
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-daemon", "-log-format", "json"), "true", stderr_file=err)
    try:
        wait_for(lambda: logged(err, "started"))
        before = cpu_seconds(proc.pid)
        time.sleep(1.0)  # an observation window, not synchronisation
        used = cpu_seconds(proc.pid) - before
        assert used < 0.15, f"idle daemon used {used:.2f}s of CPU in 1s"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert finish(proc)[0] == 0


def test_daemon_picks_up_work_pushed_later(tmp_path):
    db = tmp_path / "q.db"
    out = tmp_path / "out.txt"
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-daemon", "-log-format", "json"), "sh", "-c", f'printf %s "$PROCX_PAYLOAD" >> {out}',
                 stderr_file=err)
    wait_for(lambda: logged(err, "started"))
    enqueue(db, b"late")
    wait_for(lambda: out.exists() and out.read_text() == "late", timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 0
