"""The run supervisor: detached runs recorded in the state folder, their events, stop/restart/remove, and the
procx-tui subcommands over it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import api, profiles, runs
from core.errors import UsageError
from core.profiles import Profile
from tests.support import clean_env, command, wait_for


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROCX_TUI_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("PROCX_TUI_STATE", str(tmp_path / "state"))
    return tmp_path


def worker(tmp_path: Path, name: str = "worker", **extra: str) -> Profile:
    variables = {"PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(tmp_path / "q.db"), "PROCX_DAEMON": "true",
                 "PROCX_PASS_WORK_AS_STDIN": "true", "PROCX_TUI_COMMAND": "cat", **extra}
    profile = Profile(name, variables)
    profiles.write(profile)
    return profile


def queue(tmp_path: Path) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db")]


def test_a_daemon_run_is_recorded_counted_and_stopped(homes: Path) -> None:
    profile = worker(homes)
    with api.Producer(queue(homes)) as producer:
        producer.push_many([b"one\n", b"two\n"])
    run = runs.start(profile)
    events = runs.Events(run.log_path)
    wait_for(lambda: events.read().counts["cleared"] == 2)
    assert run.status == runs.RUNNING
    assert any(line == "one" for line, event in events.lines if event is None)  # the child's output
    record = run.record()
    assert record["profile"] == "worker" and record["drivers"] == {"procx": "sqlite"}
    run.stop(grace=10)
    run.reload()
    assert run.status == runs.STOPPED
    assert run.data["exit_code"] == 0  # procx drained and exited 0 on SIGTERM


def test_a_run_outlives_its_starter_and_is_found_again(homes: Path) -> None:
    profile = worker(homes)
    code = ("import sys; from core import profiles, runs; "
            "print(runs.start(profiles.find('worker')).id)")
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**clean_env(), "PROCX_TUI_HOME": str(homes / "cfg"),
                                  "PROCX_TUI_STATE": str(homes / "state")})
    run = runs.find(started.stdout.strip()[:12])
    assert run.status == runs.RUNNING
    api.pushx(b"late\n", queue(homes))
    wait_for(lambda: runs.Events(run.log_path).read().counts["cleared"] == 1)
    run.stop(grace=10)
    assert profile.name == run.data["profile"]


def test_a_killed_runner_is_reported_as_died(homes: Path) -> None:
    run = runs.start(worker(homes))
    os.killpg(run.data["runner_pid"], signal.SIGKILL)
    wait_for(lambda: run.status == runs.DIED)


def test_a_failing_one_shot_run_records_the_childs_status(homes: Path) -> None:
    profile = worker(homes, PROCX_DAEMON="false", PROCX_TUI_COMMAND="sh -c 'exit 3'")
    api.pushx(b"x", queue(homes))
    run = runs.start(profile)
    wait_for(lambda: run.reload().status != runs.RUNNING)
    assert (run.status, run.data["exit_code"]) == (runs.FAILED, 3)
    assert runs.Events(run.log_path).read().counts["failed"] == 1


def test_a_pipeline_run(homes: Path) -> None:
    out = homes / "out"
    profile = Profile("pipe", {"PROCX_TUI_KIND": "pipeline", "PROCX_TUI_COMMAND": "cat",
                               "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(homes / "q.db"),
                               "PROCX_PASS_WORK_AS_STDIN": "true", "PUSHX_DRIVER": "fs",
                               "PUSHX_FS_FOLDER": str(out), "PUSHX_FS_KEY": "result"})
    profiles.write(profile)
    api.pushx(b"through the pipe", queue(homes))
    run = runs.start(profile)
    wait_for(lambda: run.reload().status != runs.RUNNING)
    assert run.status == runs.EXITED, (run.log_path.read_text())
    assert (out / "result").read_bytes() == b"through the pipe"
    counts = runs.Events(run.log_path).read().counts
    assert (counts["cleared"], counts["pushed"]) == (1, 1)


def test_an_invalid_profile_does_not_start(homes: Path) -> None:
    profile = Profile("bad", {"PROCX_DRIVER": "sqlite"})
    profiles.write(profile)
    with pytest.raises(UsageError, match="PROCX_SQLITE_PATH"):
        runs.start(profile)
    assert runs.all_runs() == []


def test_exported_settings_do_not_leak_into_a_run(homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCX_SQLITE_QUEUE", "elsewhere")  # would beat the profile's env file
    profile = worker(homes, PROCX_DAEMON="false")
    api.pushx(b"x", queue(homes))
    run = runs.start(profile)
    wait_for(lambda: run.reload().status != runs.RUNNING)
    assert runs.Events(run.log_path).read().counts["cleared"] == 1


def test_restart_and_remove(homes: Path) -> None:
    run = runs.start(worker(homes))
    with pytest.raises(UsageError, match="stop it first"):
        run.remove()
    new = runs.restart(run)
    assert new.id != run.id and new.status == runs.RUNNING
    assert run.reload().status == runs.STOPPED
    new.stop(grace=10)
    run.remove()
    assert [r.id for r in runs.all_runs()] == [new.id]


def test_events_reader_holds_back_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    event = {"time": 1.0, "app": "procx", "event": "cleared", "driver": "x"}
    log.write_text(json.dumps(event) + "\n" + '{"time": 2.0, "app": "procx", "ev')
    events = runs.Events(log).read()
    assert events.counts["cleared"] == 1 and len(events.lines) == 1
    with open(log, "a") as f:
        f.write('ent": "failed"}\nplain output\n')
    events.read()
    assert events.counts["failed"] == 1
    assert [line for line, e in events.lines if e is None] == ["plain output"]


def tui(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**clean_env(), "PROCX_TUI_HOME": str(home / "cfg"), "PROCX_TUI_STATE": str(home / "state")}
    return subprocess.run([command("procx-tui"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_headless_subcommands(homes: Path) -> None:
    worker(homes, PROCX_DAEMON="false")
    api.pushx(b"hello\n", queue(homes))
    assert json.loads(tui("profiles", "list", "--json", home=homes).stdout)[0]["name"] == "worker"
    assert tui("profiles", "validate", "worker", home=homes).returncode == 0
    check = json.loads(tui("check", "worker", "--json", home=homes).stdout)
    assert check["sides"]["procx"] == {"driver": "sqlite", "reachable": True, "depth": 1, "error": None}
    done = tui("run", "worker", home=homes)
    assert done.returncode == 0 and "hello" in done.stdout
    listed = json.loads(tui("runs", "--json", home=homes).stdout)
    assert listed[0]["status"] == "exited" and listed[0]["counters"]["cleared"] == 1
    assert "hello" in tui("logs", "last", home=homes).stdout
    assert tui("rm", listed[0]["id"][:10], home=homes).returncode == 0
    assert tui("profiles", "rm", "worker", home=homes).returncode == 0


def test_detached_run_stop_and_errors(homes: Path) -> None:
    worker(homes)
    run_id = tui("run", "worker", "--detach", home=homes).stdout.strip()
    assert tui("stop", run_id, home=homes).stdout.strip().endswith("stopped")
    bad = tui("stop", "nope", home=homes)
    assert bad.returncode == 2 and bad.stderr.startswith("procx-tui: no run matching")
    typo = tui("profiles", "validate", "wokrer", home=homes)
    assert typo.returncode == 2 and "did you mean 'worker'" in typo.stderr


def test_rate_counts_the_messages_of_bulk_batches(tmp_path: Path) -> None:
    """A pushx -bulk batch is one event for many messages: the rate counts them all, however large the batch."""
    log = tmp_path / "output.log"
    batches = [{"app": "pushx", "event": "pushed", "time": 100.0 + n, "messages": 5000} for n in range(5)]
    log.write_text("".join(json.dumps(b) + "\n" for b in batches)
                   + json.dumps({"app": "procx", "event": "cleared", "time": 104.5}) + "\n")
    events = runs.Events(log).read()
    assert events.counts["pushed"] == 25000
    assert events.rate(now=105.0) == 25001 / 10
    assert events.rate(window=2.0, now=105.0) == 10001 / 2  # batches at 103 and 104, and the clear
