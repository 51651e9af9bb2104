"""The exit-code contract (-exit-codes, an extension) and the work's variables in the child's environment
(PROCX_WORK_ID, PROCX_ATTEMPT): parsing in process, each action through the installed procx on sqlite, the
sqlite dead-letter queue, and the original's default left unchanged."""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import exitcodes, runs
from core.errors import UsageError
from core.general import general
from core.log import Logger
from core.options import PROCX, PUSHX
from core.procx import Procx, work_variables
from core.settings import load
from core.work import Work
from drivers.sqlite import SqliteSource
from tests.support import clean_env, run, wait_for
from tests.test_procx_cli import dumped, enqueue, events, finish, one_line_error, popen, rows, script, sq

PY = sys.executable

# A child that records its environment and exits with the status its payload names ("exit-N"; 0 otherwise).
EXIT_BY_PAYLOAD = """
import json, os, sys
payload = os.environ.get("PROCX_PAYLOAD", "")
if len(sys.argv) > 1:
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps(dict(os.environ)) + "\\n")
sys.exit(int(payload[5:]) if payload.startswith("exit-") else 0)
"""


def queues(db: Path) -> dict[str, list[bytes]]:
    """Every queue of the file with its payloads, oldest first."""
    conn = sqlite3.connect(db)
    try:
        found: dict[str, list[bytes]] = {}
        for queue, payload in conn.execute("SELECT queue, payload FROM procx_queue ORDER BY id"):
            found.setdefault(queue, []).append(bytes(payload))
        return found
    finally:
        conn.close()


def child(tmp_path: Path) -> str:
    return script(tmp_path, "exit.py", EXIT_BY_PAYLOAD)


def procx_json(db: Path, *args: str, env: dict[str, str] | None = None):
    return run("procx", *sq(db, "-log-format", "json", *args), env=env)


def named(result, event: str) -> list[dict]:
    return [e for e in events(result.stderr) if e.get("event") == event]


# -- parsing (in process) -----------------------------------------------------------------------------

def test_parse_entries_ranges_spaces_and_case():
    codes = exitcodes.parse(" 0=clear, 3=Dead-Letter ,4=DROP,64-78=fail,200-201=drop")
    assert codes.action(0) == "clear" and codes.action(3) == "dead-letter" and codes.action(4) == "drop"
    assert [codes.action(s) for s in (63, 64, 70, 78, 79)] == ["fail", "fail", "fail", "fail", "fail"]
    assert codes.action(200) == codes.action(201) == "drop" and codes.action(202) == "fail"
    assert codes.uses("dead-letter") and not exitcodes.parse("4=drop").uses("dead-letter")


def test_unmapped_statuses_keep_the_original_rule():
    for codes in (exitcodes.parse(""), exitcodes.parse("  "), exitcodes.parse("3=drop")):
        assert codes.action(0) == "clear"
        assert codes.action(1) == codes.action(127) == codes.action(255) == "fail"
    assert exitcodes.parse("0=fail").action(0) == "fail"  # 0 may be mapped too


@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_value_error(text):
    try:
        codes = exitcodes.parse(text)
    except ValueError:
        return
    assert all(0 <= s <= 255 and a in exitcodes.ACTIONS for s, a in codes.mapping.items())


BAD = {
    "3": "invalid entry",
    "=drop": "invalid entry",
    "3=": "unknown action",
    "3=retry": "unknown action",
    "3=drop,": "invalid entry",
    "x=drop": "invalid exit status",
    "-1=drop": "invalid exit status",
    "0x3=drop": "invalid exit status",
    "256=drop": "out of range",
    "9-3=drop": "empty range",
    "3-=drop": "invalid exit status",
    "3=drop,1-5=fail": "mapped twice",
}


@pytest.mark.parametrize("text", list(BAD))
def test_bad_syntax_is_a_usage_error_naming_flag_and_variable(text):
    with pytest.raises(UsageError) as info:
        load(PROCX, ["-driver", "local", "-exit-codes", text], {})
    message = str(info.value)
    assert message.startswith("-exit-codes (PROCX_EXIT_CODES): ") and BAD[text] in message
    assert "[from -exit-codes]" in message
    with pytest.raises(UsageError) as info:
        load(PROCX, ["-driver", "local"], {"PROCX_EXIT_CODES": text})
    assert "[from PROCX_EXIT_CODES]" in str(info.value)


def test_option_is_a_procx_extension_with_help():
    [opt] = [o for o in general(PROCX) if o.name == "exit-codes"]
    assert opt.extension and opt.help and opt.variable(PROCX) == "PROCX_EXIT_CODES"
    assert opt.sides == {PROCX} and "exit-codes" not in {o.name for o in general(PUSHX)}
    _, config = load(PROCX, ["-driver", "local"], {})
    assert config["exit-codes"] == ""
    _, config = load(PROCX, ["-driver", "local"], {"PROCX_EXIT_CODES": "3=drop"})
    assert config["exit-codes"] == "3=drop"  # the text is the setting's value (profiles, forms, tables)


def test_profile_validation_checks_the_mapping(tmp_path):
    from core.profiles import Profile, validate

    base = {"PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(tmp_path / "q.db")}
    problems = validate(Profile("p", {**base, "PROCX_EXIT_CODES": "3=retry"}))
    assert any(p.variable == "PROCX_EXIT_CODES" and "unknown action" in p.message for p in problems)
    assert [p for p in validate(Profile("p", {**base, "PROCX_EXIT_CODES": "3=dead-letter,64-78=drop"}))
            if p.level == "error"] == []


def test_dead_letter_needs_a_driver_with_a_dead_letter_target(tmp_path):
    _, config = load(PROCX, ["-driver", "local", "-exit-codes", "3=dead-letter"], {})
    with pytest.raises(UsageError) as info:
        Procx(config, Logger("procx"))
    message = str(info.value)
    assert "-exit-codes (PROCX_EXIT_CODES)" in message and "driver local" in message and "dead-letter" in message
    _, config = load(PROCX, ["-driver", "local", "-exit-codes", "3=drop,4=fail"], {})
    Procx(config, Logger("procx"))  # drop and fail work with any driver
    _, config = load(PROCX, [*sq(tmp_path / "q.db"), "-exit-codes", "3=dead-letter"], {})
    Procx(config, Logger("procx"))


def test_work_variables_only_what_the_driver_gives():
    assert work_variables(Work(b"p")) == {}
    assert work_variables(Work(b"p", "k-1")) == {b"PROCX_WORK_ID": b"k-1"}
    assert work_variables(Work(b"p", attempt=3)) == {b"PROCX_ATTEMPT": b"3"}
    assert work_variables(Work(b"p", "7", attempt=2)) == {b"PROCX_WORK_ID": b"7", b"PROCX_ATTEMPT": b"2"}
    assert Work(b"p").attempt == 1 and not Work(b"p").counted


def test_run_events_count_dropped_and_dead_lettered(tmp_path):
    log = tmp_path / "run.log"
    lines = [f'{{"time": 1.0, "level": "warn", "app": "procx", "event": "{name}", "id": "1", "status": 3}}'
             for name in ("dropped", "dead-lettered", "dead-lettered")]
    log.write_text("\n".join(lines) + "\n")
    counts = runs.Events(log).read().counts
    assert (counts["dropped"], counts["dead-lettered"], counts["failed"]) == (1, 2, 0)


# -- the sqlite dead-letter queue (in process) --------------------------------------------------------

def open_source(db: Path, queue: str = "default") -> SqliteSource:
    _, config = load(PROCX, sq(db, "-sqlite-queue", queue), {})
    source = SqliteSource(config)
    source.open()
    return source


def test_sqlite_dead_letter_moves_the_item_to_queue_dot_dead(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"poison\0\xff", b"next", queue="jobs")
    source = open_source(db, "jobs")
    try:
        work = source.get(0)
        work.source = source
        work.dead_letter()
        assert queues(db) == {"jobs": [b"next"], "jobs.dead": [b"poison\0\xff"]}
        with pytest.raises(RuntimeError):
            work.fail()  # finished once: it cannot be failed back as well
    finally:
        source.close()
    dead = open_source(db, "jobs.dead")  # the dead letters are an ordinary queue: same id, attempts kept
    try:
        again = dead.get(0)
        assert (again.payload, again.id, again.attempt) == (b"poison\0\xff", work.id, 2)
    finally:
        dead.close()


def test_sqlite_dead_letter_after_a_lost_lease_moves_nothing(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"x")
    source = open_source(db)
    try:
        work = source.get(0)
        source.conn.execute("UPDATE procx_queue SET lease = 'another procx'")
        source.dead_letter(work)
        assert queues(db) == {"default": [b"x"]}
    finally:
        source.close()


# -- each action through the installed procx on sqlite -------------------------------------------------

def test_default_unchanged_zero_clears_anything_else_fails(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-0", b"exit-3")
    ok = procx_json(db, PY, child(tmp_path))
    assert ok.returncode == 0 and named(ok, "cleared")
    bad = procx_json(db, PY, child(tmp_path))
    assert bad.returncode == 3
    assert [e["status"] for e in named(bad, "failed")] == [3]
    assert [r[:3] for r in rows(db)] == [(b"exit-3", 1, None)]
    assert queues(db) == {"default": [b"exit-3"]}


def test_clear_mapped_for_a_non_zero_status(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-5")
    result = procx_json(db, "-exit-codes", "5=clear", PY, child(tmp_path))
    assert result.returncode == 0
    assert named(result, "cleared") and not named(result, "failed")
    assert rows(db) == []


def test_fail_mapped_for_zero_fails_back_and_exits_1(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-0")
    result = procx_json(db, "-exit-codes", "0=fail", PY, child(tmp_path))
    assert result.returncode == 1  # the work was not done: never 0
    assert [e["status"] for e in named(result, "failed")] == [0]
    assert [r[:3] for r in rows(db)] == [(b"exit-0", 1, None)]


def test_drop_removes_the_item_exit_0_and_a_dropped_event(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-4", b"other")
    result = procx_json(db, "-exit-codes", "0=clear,3=dead-letter,4=drop", PY, child(tmp_path))
    assert result.returncode == 0, result.stderr
    [dropped] = named(result, "dropped")
    assert (dropped["id"], dropped["status"], dropped["driver"]) == ("1", 4, "sqlite")
    assert not named(result, "cleared") and not named(result, "failed")
    assert queues(db) == {"default": [b"other"]}  # gone, and not in a dead-letter queue


def test_dead_letter_lands_in_queue_dot_dead_nothing_lost(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-3", b"other")
    result = procx_json(db, "-exit-codes", "0=clear,3=dead-letter,4=drop", PY, child(tmp_path))
    assert result.returncode == 0, result.stderr
    [dead] = named(result, "dead-lettered")
    assert (dead["id"], dead["status"]) == ("1", 3)
    assert queues(db) == {"default": [b"other"], "default.dead": [b"exit-3"]}
    taken = run("procx", *sq(db, "-sqlite-queue", "default.dead"))  # dead letters can be read back
    assert (taken.returncode, taken.stdout) == (0, b"exit-3")


def test_dead_letter_from_a_named_queue(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-9", queue="jobs")
    result = run("procx", *sq(db, "-sqlite-queue", "jobs"), PY, child(tmp_path),
                 env=clean_env(PROCX_EXIT_CODES="1-255=dead-letter"))
    assert result.returncode == 0, result.stderr
    assert queues(db) == {"jobs.dead": [b"exit-9"]}


@pytest.mark.parametrize(("status", "expected"), [(63, "failed"), (64, "dropped"), (70, "dropped"),
                                                  (78, "dropped"), (79, "failed")])
def test_ranges(tmp_path, status, expected):
    db = tmp_path / "q.db"
    enqueue(db, f"exit-{status}".encode())
    result = procx_json(db, "-exit-codes", "64-78=drop", PY, child(tmp_path))
    assert [e["status"] for e in named(result, expected)] == [status]
    if expected == "dropped":
        assert (result.returncode, rows(db)) == (0, [])
    else:
        assert result.returncode == status and len(rows(db)) == 1


def test_daemon_applies_each_action(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"exit-0", b"exit-3", b"exit-4", b"exit-5", b"exit-70")
    result = run("procx", *sq(db, "-daemon", "-until-empty", "-sqlite-fail-delay", "1h", "-log-format", "json",
                              "-exit-codes", "0=clear,3=dead-letter,4=drop,64-78=drop"), PY, child(tmp_path))
    assert result.returncode == 0, result.stderr
    found = {name: sorted(e["id"] for e in named(result, name))
             for name in ("cleared", "dead-lettered", "dropped", "failed")}
    assert found == {"cleared": ["1"], "dead-lettered": ["2"], "dropped": ["3", "5"], "failed": ["4"]}
    assert queues(db) == {"default": [b"exit-5"], "default.dead": [b"exit-3"]}


def test_dead_letter_on_a_driver_without_target_is_a_usage_error(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "job").write_bytes(b"x")
    text = one_line_error(run("procx", "-driver", "fs", "-fs-folder", str(folder), "-fs-key", "job",
                              "-exit-codes", "3=dead-letter", "true"))
    assert "-exit-codes (PROCX_EXIT_CODES)" in text and "driver fs" in text
    assert (folder / "job").read_bytes() == b"x"  # nothing was taken
    text = one_line_error(run("procx", "-driver", "local", "true",
                              env=clean_env(PROCX_PAYLOAD="p", PROCX_EXIT_CODES="3=dead-letter")))
    assert "driver local" in text


def test_bad_syntax_from_the_command_line(tmp_path):
    text = one_line_error(run("procx", *sq(tmp_path / "q.db", "-exit-codes", "3=dead_letter"), "true"))
    assert "-exit-codes (PROCX_EXIT_CODES)" in text and "dead_letter" in text
    assert not (tmp_path / "q.db").exists()  # validated before connecting


def test_a_command_that_could_not_start_is_failed_back_whatever_the_mapping(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    result = procx_json(db, "-exit-codes", "1-255=drop", str(tmp_path / "missing-command"))
    assert result.returncode == 127
    assert named(result, "failed") and not named(result, "dropped")
    assert [r[:3] for r in rows(db)] == [(b"job", 1, None)]


STOPPED_CHILD = """
import pathlib, sys, time
(pathlib.Path(sys.argv[1]) / "started").write_text("")
time.sleep(30)
"""


def test_a_child_stopped_by_procx_is_failed_back_whatever_the_mapping(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    err = tmp_path / "err.log"
    proc = popen(*sq(db, "-log-format", "json", "-exit-codes", "128-255=dead-letter"), PY,
                 script(tmp_path, "c.py", STOPPED_CHILD), str(tmp_path), stderr_file=err)
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGTERM)
    code, _ = finish(proc)
    assert code == 0
    [failed] = [e for e in events(err.read_text()) if e.get("event") == "failed"]
    assert failed["status"] == 128 + signal.SIGTERM
    assert queues(db) == {"default": [b"job"]}  # not dead-lettered: procx stopped it, it must be retried


def test_a_child_killed_by_a_signal_on_its_own_follows_the_mapping(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    result = procx_json(db, "-exit-codes", "137=dead-letter", "sh", "-c", "kill -9 $$")
    assert result.returncode == 0
    assert [e["status"] for e in named(result, "dead-lettered")] == [137]
    assert queues(db) == {"default.dead": [b"job"]}


# -- the work's variables in the child's environment ---------------------------------------------------

def seen(path: Path) -> list[dict]:
    """The environments the child recorded, without LC_CTYPE (which Python's locale coercion adds itself)."""
    import json

    return [{k: v for k, v in json.loads(line).items() if k != "LC_CTYPE"} for line in path.read_text().splitlines()]


def test_id_and_attempt_rise_across_retries_in_the_minimal_environment(tmp_path):
    db = tmp_path / "q.db"
    enqueue(db, b"first", b"exit-1")
    out = tmp_path / "env.jsonl"
    for expected in (0, 1, 1, 1):
        assert run("procx", *sq(db), PY, child(tmp_path), str(out)).returncode == expected
    envs = seen(out)
    assert envs[0] == {"PROCX_PAYLOAD": "first", "PROCX_WORK_ID": "1", "PROCX_ATTEMPT": "1"}
    assert [(e["PROCX_WORK_ID"], e["PROCX_ATTEMPT"]) for e in envs[1:]] == [("2", "1"), ("2", "2"), ("2", "3")]
    assert all(set(e) == {"PROCX_PAYLOAD", "PROCX_WORK_ID", "PROCX_ATTEMPT"} for e in envs)


@pytest.mark.parametrize("delivery", [["-pass-work-as-stdin"], ["-pass-work-as-arg"], ["-hostenv"]])
def test_id_and_attempt_with_every_delivery(tmp_path, delivery):
    db = tmp_path / "q.db"
    enqueue(db, b"job")
    out = tmp_path / "out.json"
    dump = script(tmp_path, "d.py", """
        import json, os, sys
        with open(sys.argv[1], "w") as f:
            json.dump(dict(os.environ), f)
        sys.exit(1)
    """)
    env = clean_env(PROCX_SECRET_PASSWORD="s3cr3t", PUSHX_X="for-pushx", PROCX_WORK_ID="from-host")
    for attempt in ("1", "2"):
        out.unlink(missing_ok=True)
        assert run("procx", *sq(db, *delivery), PY, dump, str(out), env=env).returncode == 1
        got = dumped(out)
        assert (got["PROCX_WORK_ID"], got["PROCX_ATTEMPT"]) == ("1", attempt)
        assert got["PUSHX_X"] == "for-pushx"
        assert ("PROCX_SECRET_PASSWORD" in got) == (delivery == ["-hostenv"])


def test_no_variables_where_the_driver_gives_none():
    result = run("procx", "-driver", "local", "env", "-0", env=clean_env(PROCX_PAYLOAD="p"))
    assert result.stdout.split(b"\0")[:-1] == [b"PROCX_PAYLOAD=p"]
