"""The profile wizard: questions from the driver declarations, scripted answers, real keystrokes, flags only."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from core import profiles
from procx_tui import wizard
from procx_tui.form import driver_fields


@pytest.fixture(autouse=True)
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROCX_TUI_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("PROCX_TUI_STATE", str(tmp_path / "state"))
    return tmp_path


def args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    wizard.add_arguments(p)
    return p.parse_args(argv)


def scripted(replies: dict[str, object], asked: list[str] | None = None):
    """A stand-in for questionary.unsafe_prompt that honours when/validate/filter."""
    def ask(questions: list[dict]) -> dict:
        answers: dict = {}
        for q in questions:
            if q.get("when") and not q["when"](answers):
                assert q["name"] not in replies, f"{q['name']} should have been skipped"
                continue
            if asked is not None:
                asked.append(q["name"])
            value = replies.get(q["name"], q.get("default"))
            if "validate" in q:
                assert q["validate"](value) is True, f"{q['name']}={value!r} rejected"
            answers[q["name"]] = q["filter"](value) if "filter" in q else value
        return answers
    return ask


def test_question_table_is_well_formed_for_every_driver() -> None:
    from core import registry

    for name in registry.names():
        for side in ("procx", "pushx"):
            for q in wizard.side_questions(name, side, {}):
                assert q["type"] and q["name"] and q["message"]
                if q["type"] == "select":
                    assert q["default"] in q["choices"]


def test_required_options_come_first() -> None:
    fields = driver_fields("sqlite", "procx")
    assert fields[0].variable == "PROCX_SQLITE_PATH" and fields[0].required
    assert all(not f.required for f in fields[1:])


def test_scripted_pipeline(homes: Path) -> None:
    asked: list[str] = []
    replies = {"name": "pipe", "PROCX_TUI_KIND": "pipeline", "PROCX_DRIVER": "sqlite", "PUSHX_DRIVER": "fs",
               "PROCX_TUI_COMMAND": "node example.js", "PROCX_SQLITE_PATH": str(homes / "q.db"),
               "PUSHX_FS_FOLDER": str(homes / "out"), "PUSHX_FS_KEY": "r", "PROCX_DAEMON": True}
    out = io.StringIO()
    saved = wizard.run_wizard(args(), ask=scripted(replies, asked), out=out)
    assert saved is not None and "saved" in out.getvalue() and "reachable" in out.getvalue()
    stored = profiles.find("pipe").variables
    assert stored["PROCX_TUI_KIND"] == "pipeline" and stored["PROCX_DAEMON"] == "true"
    assert stored["PROCX_TUI_COMMAND"] == "node example.js"
    assert "PROCX_SQLITE_QUEUE" not in stored  # defaults are not written
    assert "PROCX_SQLITE_VISIBILITY_TIMEOUT" not in asked  # advanced: behind the question


def test_advanced_options_when_asked_for(homes: Path) -> None:
    replies = {"name": "adv", "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": str(homes / "q.db"),
               "__advanced_procx": True, "PROCX_SQLITE_VISIBILITY_TIMEOUT": "5m", "PROCX_CONCURRENCY": "2"}
    wizard.run_wizard(args(), ask=scripted(replies), out=io.StringIO())
    stored = profiles.find("adv").variables
    assert stored["PROCX_SQLITE_VISIBILITY_TIMEOUT"] == "5m" and stored["PROCX_CONCURRENCY"] == "2"


def test_live_validation_rejects_bad_values() -> None:
    questions = {q["name"]: q for q in wizard.side_questions("sqlite", "procx", {})}
    check = questions["PROCX_SQLITE_VISIBILITY_TIMEOUT"]["validate"]
    assert "invalid duration" in check("soon")
    assert check("30s") is True
    assert "required" in questions["PROCX_SQLITE_PATH"]["validate"]("")


def test_editing_keeps_current_values_as_defaults(homes: Path) -> None:
    profiles.write(profiles.Profile("e", {"PROCX_DRIVER": "redis-list", "PROCX_REDIS_HOST": "old",
                                          "PROCX_REDIS_PASSWORD": "s3cret", "PROCX_REDIS_KEY": "k"}))
    questions = {q["name"]: q for q in wizard.side_questions("redis-list", "procx",
                                                              profiles.find("e").variables)}
    assert questions["PROCX_REDIS_HOST"]["default"] == "old"
    assert questions["PROCX_REDIS_PASSWORD"]["type"] == "password"
    assert "default" not in questions["PROCX_REDIS_PASSWORD"]  # never shown
    assert questions["PROCX_REDIS_PASSWORD"]["filter"]("") == "s3cret"  # empty keeps it


def test_flags_only(homes: Path) -> None:
    saved = wizard.run_wizard(args("--yes", "--name", "f", "--procx-driver", "sqlite", "--set",
                                   f"PROCX_SQLITE_PATH={homes / 'q.db'}", "--command", "cat"), out=io.StringIO())
    assert saved is not None and profiles.find("f").command == ["cat"]


def test_unanswered_secret_is_left_out_not_written_as_none(homes: Path) -> None:
    wizard.run_wizard(args("--yes", "--name", "pg", "--procx-driver", "postgres", "--command", "true", "--set",
                           "PROCX_PSQL_HOST=pg", "--set", "PROCX_PSQL_RETRIEVE_QUERY=SELECT 1", "--no-check"),
                      out=io.StringIO())
    variables = profiles.find("pg").variables
    assert "PROCX_PSQL_PASSWORD" not in variables and "None" not in variables.values()


def test_flags_only_missing_required_is_an_error(homes: Path) -> None:
    from core.errors import UsageError

    with pytest.raises(UsageError, match="PROCX_SQLITE_PATH"):
        wizard.run_wizard(args("--yes", "--name", "f", "--procx-driver", "sqlite"), out=io.StringIO())
    assert profiles.all_profiles() == []


def test_unreachable_provider_is_not_saved_unattended(homes: Path) -> None:
    from core.errors import ProcxError

    (homes / "file").write_text("x")
    with pytest.raises(ProcxError, match="unreachable"):
        wizard.run_wizard(args("--yes", "--name", "u", "--procx-driver", "sqlite", "--set",
                               f"PROCX_SQLITE_PATH={homes / 'file' / 'q.db'}"), out=io.StringIO())
    assert profiles.all_profiles() == []


def test_real_keystrokes_and_ctrl_c(homes: Path) -> None:
    import questionary
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    def ask_with(inp):
        return lambda qs: questionary.unsafe_prompt(qs, input=inp, output=DummyOutput())

    enter, clear = "\r", "\x15"
    with create_pipe_input() as inp:
        inp.send_text("keys" + enter                      # name
                      + enter                             # kind: procx (the first choice)
                      + _select("sqlite") + enter         # driver
                      + clear + "cat" + enter             # command
                      + str(homes / "k.db") + enter       # -sqlite-path (required first)
                      + enter                             # -sqlite-queue: default
                      + "n" + enter + "n"                 # stdin? no; payload file: none; daemon? no
                      + "n"                               # no advanced options
                      + enter)                            # description
        inp.close()
        saved = wizard.run_wizard(args("--no-check"), ask=ask_with(inp), out=io.StringIO())
    assert saved is not None
    assert profiles.find("keys").variables["PROCX_SQLITE_PATH"] == str(homes / "k.db")

    with create_pipe_input() as inp:
        inp.send_text("x\x03")
        inp.close()
        with pytest.raises(KeyboardInterrupt):
            wizard.run_wizard(args(), ask=ask_with(inp), out=io.StringIO())
    assert [p.name for p in profiles.all_profiles()] == ["keys"]


def _select(name: str) -> str:
    """Keys that move a select prompt of the procx drivers down to `name`."""
    from procx_tui.form import driver_field

    return "\x1b[B" * driver_field("procx").choices.index(name)
