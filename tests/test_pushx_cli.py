"""The installed `pushx` command: input from -in, -in-file or stdin; -out after a successful push; errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from tests.support import clean_env, command, run, unusable


def sq(db, *more: str) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(db), *more]


def take(db) -> bytes:
    """The next payload of the queue, read back with procx (no command: printed and cleared)."""
    result = run("procx", *sq(db))
    assert result.returncode == 0, result.stderr
    return result.stdout


def queued(db) -> list[bytes]:
    """Every payload in the queue, oldest first (read directly: faster than a procx per item)."""
    conn = sqlite3.connect(db)
    try:
        return [bytes(p) for (p,) in conn.execute("SELECT payload FROM procx_queue ORDER BY id")]
    finally:
        conn.close()


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, result
    assert result.stdout == b""
    text = result.stderr.decode()
    assert text.count("\n") == 1 and text.startswith("pushx: "), text
    return text


def test_in_flag(tmp_path):
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db), "-in", "from-flag")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert queued(db) == [b"from-flag"]


def test_in_file(tmp_path):
    db = tmp_path / "q.db"
    data = tmp_path / "data.bin"
    data.write_bytes(b"from\nfile\n")
    assert run("pushx", *sq(db), "-in-file", str(data)).returncode == 0
    assert queued(db) == [b"from\nfile\n"]


def test_stdin_is_the_default_and_keeps_the_newline(tmp_path):
    db = tmp_path / "q.db"
    assert run("pushx", *sq(db), input=b"hi\n").returncode == 0
    assert run("pushx", *sq(db, "-in-file", "-"), input=b"dash").returncode == 0
    assert queued(db) == [b"hi\n", b"dash"]


def test_in_wins_over_in_file(tmp_path):
    db = tmp_path / "q.db"
    assert run("pushx", *sq(db, "-in", "literal", "-in-file", str(tmp_path / "missing")), input=b"stdin"
               ).returncode == 0
    assert queued(db) == [b"literal"]


def test_binary_stdin_round_trips(tmp_path):
    db = tmp_path / "q.db"
    payload = bytes(range(256)) * 300 + b"\0\0\xff\xfe\r\n"
    assert run("pushx", *sq(db), input=payload).returncode == 0
    assert take(db) == payload


def test_empty_input_is_pushed(tmp_path):
    db = tmp_path / "q.db"
    assert run("pushx", *sq(db), input=b"").returncode == 0
    assert queued(db) == [b""]


@pytest.mark.parametrize("var", ["PUSHX_INPUT_STR", "PUSHX_IN"])
def test_input_variable(tmp_path, var):
    db = tmp_path / "q.db"
    assert run("pushx", *sq(db), env=clean_env(**{var: "from-variable"})).returncode == 0
    assert queued(db) == [b"from-variable"]


def test_input_file_and_output_variables(tmp_path):
    db = tmp_path / "q.db"
    data = tmp_path / "data.txt"
    data.write_bytes(b"file-data")
    out = tmp_path / "copy.txt"
    result = run("pushx", *sq(db), env=clean_env(PUSHX_INPUT_FILE=str(data), PUSHX_OUTPUT=str(out)))
    assert result.returncode == 0
    assert out.read_bytes() == b"file-data"
    assert queued(db) == [b"file-data"]


def test_env_file_profile(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text(f"PUSHX_DRIVER=fs\nPUSHX_FS_FOLDER={tmp_path / 'box'}\nPUSHX_FS_KEY=a/b.txt\n")
    assert run("pushx", "-env-file", str(profile), "-in", "x").returncode == 0
    assert (tmp_path / "box/a/b.txt").read_bytes() == b"x"


def test_out_dash_passes_the_data_on(tmp_path):
    db = tmp_path / "q.db"
    result = run("pushx", *sq(db, "-out=-"), input=b"tee me")
    assert (result.returncode, result.stdout) == (0, b"tee me")
    assert queued(db) == [b"tee me"]


def test_out_file(tmp_path):
    db = tmp_path / "q.db"
    out = tmp_path / "copy.bin"
    out.write_bytes(b"old content that is longer")
    result = run("pushx", *sq(db, "-out", str(out)), input=b"new")
    assert (result.returncode, result.stdout) == (0, b"")
    assert out.read_bytes() == b"new"


def test_failed_push_passes_nothing_on(tmp_path):
    db = unusable(tmp_path)
    result = run("pushx", *sq(db, "-out=-"), input=b"must not leak")
    assert result.returncode == 69
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "sqlite" in lines[0] and "blocker" in lines[0]


def test_failed_push_writes_no_out_file(tmp_path):
    out = tmp_path / "copy.bin"
    result = run("pushx", *sq(unusable(tmp_path), "-out", str(out)), input=b"x")
    assert result.returncode == 69
    assert not out.exists()


def test_missing_in_file_fails_before_connecting(tmp_path):
    db = tmp_path / "q.db"
    missing = tmp_path / "missing.txt"
    text = one_line_error(run("pushx", *sq(db, "-in-file", str(missing))))
    assert "-in-file" in text and "PUSHX_INPUT_FILE" in text and str(missing) in text
    assert not db.exists()  # never connected
    text = one_line_error(run("pushx", *sq(db), env=clean_env(PUSHX_INPUT_FILE=str(missing))))
    assert "PUSHX_INPUT_FILE" in text


def test_out_into_a_missing_folder_fails_before_pushing(tmp_path):
    db = tmp_path / "q.db"
    text = one_line_error(run("pushx", *sq(db, "-in", "x", "-out", str(tmp_path / "nope" / "f"))))
    assert "-out" in text and "PUSHX_OUTPUT" in text
    assert not db.exists()


@pytest.mark.parametrize("args", [["payload"], ["-in", "x", "extra"], ["--", "x"], ["-"]])
def test_positional_argument_is_an_error(tmp_path, args):
    db = tmp_path / "q.db"
    text = one_line_error(run("pushx", *sq(db), *args, input=b"stdin"))
    assert "-in" in text
    assert not db.exists()


@pytest.mark.parametrize("flag", ["-daemon", "-fs-clear-op", "-payload-file"])
def test_procx_only_flag_is_an_error(tmp_path, flag):
    text = one_line_error(run("pushx", "-driver", "fs", "-fs-folder", str(tmp_path), "-fs-key", "k", flag, "x"))
    assert f"flag provided but not defined: {flag}" in text


def test_usage_errors():
    assert "PUSHX_DRIVER" in one_line_error(run("pushx", "-in", "x"))
    assert "did you mean 'sqlite'?" in one_line_error(run("pushx", "-driver", "sqlit", "-in", "x"))
    assert "did you mean -in-file?" in one_line_error(run("pushx", "-driver", "local", "-in-fil", "x"))


def test_help_and_version():
    result = run("pushx", "-h")
    assert result.returncode == 0 and result.stdout.startswith(b"Usage: pushx")
    assert b"PUSHX_INPUT_STR" in result.stdout and b"PUSHX_OUTPUT" in result.stdout
    result = run("pushx", "-driver", "fs", "-h")
    assert result.returncode == 0 and b"-fs-key" in result.stdout and b"-fs-clear-op" not in result.stdout
    result = run("pushx", "-v")
    assert result.returncode == 0 and result.stdout.startswith(b"pushx version ")


def test_local_driver_writes_to_stdout():
    result = run("pushx", "-driver", "local", "-in", "abc")
    assert (result.returncode, result.stdout) == (0, b"abc")


def test_json_pushed_event(tmp_path):
    result = run("pushx", *sq(tmp_path / "q.db", "-log-format", "json", "-in", "abc"))
    assert result.returncode == 0
    [pushed] = [e for e in map(json.loads, result.stderr.decode().splitlines()) if e.get("event") == "pushed"]
    assert (pushed["driver"], pushed["id"], pushed["bytes"]) == ("sqlite", "1", 3)


def test_tee_chain_with_exported_driver_variable(tmp_path):
    """`pushx -driver sqlite ... -out=- | pushx -driver fs ...` delivers to both even with PUSHX_DRIVER exported."""
    db = tmp_path / "q.db"
    box = tmp_path / "box"
    env = clean_env(PUSHX_DRIVER="local")
    payload = b"chained \x00 payload\n"
    first = subprocess.Popen([command("pushx"), *sq(db, "-out=-")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    second = subprocess.Popen([command("pushx"), "-driver", "fs", "-fs-folder", str(box), "-fs-key", "k.bin",
                               "-out=-"], stdin=first.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first.stdout.close()
    _, first_err = first.communicate(payload, timeout=30)
    second_out, second_err = second.communicate(timeout=30)
    assert (first.returncode, second.returncode) == (0, 0), (first_err, second_err)
    assert second_out == payload  # passed on once, not also printed by a `local` driver
    assert (box / "k.bin").read_bytes() == payload
    assert queued(db) == [payload]


def test_fs_sink_writes_atomically_into_nested_folders(tmp_path):
    box = tmp_path / "box"
    result = run("pushx", "-driver", "fs", "-fs-folder", str(box), "-fs-key", "a/b/c.txt", input=b"deep")
    assert result.returncode == 0
    assert (box / "a/b/c.txt").read_bytes() == b"deep"
    assert [p.name for p in (box / "a/b").iterdir()] == ["c.txt"]
