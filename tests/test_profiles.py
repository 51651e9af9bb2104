"""Profiles: reading and writing .env files, validation from the driver declarations, masking, examples."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from core import profiles
from core.errors import UsageError
from core.profiles import Profile


@pytest.fixture(autouse=True)
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROCX_TUI_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("PROCX_TUI_STATE", str(tmp_path / "state"))
    return tmp_path


def sqlite_profile(name: str = "p", **extra: str) -> Profile:
    return Profile(name, {"PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": "/tmp/q.db", **extra})


@pytest.mark.parametrize("value", ["plain", "with space", "quote ' and \" and \\ back", "#hash", "a=b", "", "ünï",
                                   "${HOME}", "$notaref"])
def test_values_round_trip_through_python_dotenv(value: str) -> None:
    profile = sqlite_profile(PROCX_TUI_DESCRIPTION=value)
    path = profiles.write(profile)
    assert dotenv_values(path, interpolate=False)["PROCX_TUI_DESCRIPTION"] == value
    assert profiles.read(path).variables["PROCX_TUI_DESCRIPTION"] == value


def test_written_with_mode_0600() -> None:
    path = profiles.write(sqlite_profile(PROCX_SQLITE_PATH="x.db"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_same_file_works_with_procx_env_file(tmp_path: Path) -> None:
    from core import api

    db = tmp_path / "q.db"
    path = profiles.write(Profile("w", {"PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(db),
                                        "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": str(db)}))
    api.pushx(b"job", ["-env-file", str(path)])
    assert api.procx(["-env-file", str(path)]) == b"job"


def test_kind_is_inferred_or_declared() -> None:
    assert sqlite_profile().kind == "procx"
    assert Profile("x", {"PUSHX_DRIVER": "fs"}).kind == "pushx"
    assert Profile("x", {"PROCX_DRIVER": "fs", "PUSHX_DRIVER": "fs"}).kind == "pipeline"
    assert sqlite_profile(PROCX_TUI_KIND="pipeline").kind == "pipeline"


def test_command_is_shell_words() -> None:
    assert sqlite_profile(PROCX_TUI_COMMAND="node 'my script.js' --x").command == ["node", "my script.js", "--x"]


def test_validation_flags_typos_with_a_suggestion() -> None:
    problems = profiles.validate(sqlite_profile(PROCX_SQLITE_PAHT="x"))
    assert any(p.variable == "PROCX_SQLITE_PAHT" and "did you mean PROCX_SQLITE_PATH" in p.message
               for p in problems)


def test_validation_names_another_drivers_variable() -> None:
    problems = profiles.validate(sqlite_profile(PROCX_REDIS_HOST="localhost"))
    assert any("belongs to driver redis" in p.message for p in problems)


def test_validation_checks_types_choices_and_required() -> None:
    problems = profiles.validate(Profile("p", {"PROCX_DRIVER": "sqlite", "PROCX_DAEMON": "maybe",
                                               "PROCX_LOG_FORMAT": "xml"}))
    messages = {p.variable: p.message for p in problems if p.level == "error"}
    assert "invalid boolean" in messages["PROCX_DAEMON"]
    assert "one of: text, json" in messages["PROCX_LOG_FORMAT"]
    assert "required" in messages["PROCX_SQLITE_PATH"]


def test_validation_of_drivers() -> None:
    problems = profiles.validate(Profile("p", {"PROCX_DRIVER": "sqlit"}))
    assert "did you mean 'sqlite'" in problems[0].message
    missing = profiles.validate(Profile("p", {"PROCX_TUI_KIND": "pipeline", "PROCX_DRIVER": "local"}))
    assert any(p.variable == "PUSHX_DRIVER" for p in missing)


def test_a_clean_profile_is_valid() -> None:
    assert [p for p in profiles.validate(sqlite_profile()) if p.level == "error"] == []


def test_secrets_are_masked_unless_references() -> None:
    profile = Profile("p", {"PROCX_DRIVER": "redis-list", "PROCX_REDIS_PASSWORD": "hunter2",
                            "PROCX_REDIS_HOST": "h"})
    assert profile.masked()["PROCX_REDIS_PASSWORD"] == "********"
    assert profile.masked()["PROCX_REDIS_HOST"] == "h"
    ref = Profile("p", {"PROCX_DRIVER": "redis-list", "PROCX_REDIS_PASSWORD": "${REDIS_PASSWORD}"})
    assert ref.masked()["PROCX_REDIS_PASSWORD"] == "${REDIS_PASSWORD}"


def test_references_expand_from_the_environment() -> None:
    profile = sqlite_profile(PROCX_SQLITE_QUEUE="${QUEUE:-fallback}", PROCX_TUI_DESCRIPTION="${WHO}")
    assert profile.expanded({"WHO": "me"})["PROCX_TUI_DESCRIPTION"] == "me"
    assert profile.expanded({})["PROCX_SQLITE_QUEUE"] == "fallback"


def test_find_suggests_and_rejects_bad_names() -> None:
    profiles.write(sqlite_profile("worker"))
    with pytest.raises(UsageError, match="did you mean 'worker'"):
        profiles.find("worke")
    with pytest.raises(UsageError, match="invalid profile name"):
        profiles.write(sqlite_profile("../evil"))


def test_examples_are_installed_once_with_paths_made_absolute(homes: Path) -> None:
    copied = profiles.install_examples()
    names = {p.name for p in copied}
    assert {"quickstart.env", "demo-worker.env", "demo-feed.env", "s3-to-sqs.env"} <= names
    quick = profiles.find("quickstart")
    assert quick.variables["PROCX_SQLITE_PATH"] == str(homes / "state" / "demo" / "queue.db")
    assert quick.command[1].endswith("/profiles/example.js") and Path(quick.command[1]).is_file()
    assert profiles.install_examples() == []  # not twice


def test_runnable_examples_validate() -> None:
    profiles.install_examples()
    for name in ("quickstart", "demo-worker", "demo-feed"):
        errors = [p for p in profiles.validate(profiles.find(name)) if p.level == "error"]
        assert errors == [], name
