"""The profile wizard (questionary): questions generated from the driver declarations.

Every question can be answered by a flag instead (--name, --kind, --procx-driver, --pushx-driver, --command,
--description, --set VARIABLE=VALUE), so the wizard also runs unattended with --yes. The questions of each step
are plain data (questionary's prompt format) built by pure functions, and the prompting function is injectable,
so the whole flow is testable without a terminal.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable

from core.errors import ProcxError, UsageError
from core.profiles import COMMAND, DESCRIPTION, KIND, KINDS, NAME, OURS, Profile, find, validate, write
from procx_tui.form import Field, command_field, driver_field, driver_fields, kind_sides

Ask = Callable[[list[dict]], dict]
CANCELLED = "no changes were made"


def question(field: Field, current: str = "") -> dict:
    """One questionary question for a field; `current` is the profile's value when editing."""
    q: dict = {"name": field.variable, "message": f"{field.label} - {field.help}" if field.help else field.label}
    value = current or field.default
    if field.widget == "confirm":
        q.update(type="confirm", default=value.lower() in ("1", "true", "yes", "on") if value else False)
    elif field.widget == "select":
        choices = list(field.choices) if field.required else ["", *field.choices]
        q.update(type="select", choices=choices, default=value if value in choices else choices[0])
    elif field.widget == "secret":
        q.update(type="password", message=q["message"] + (" (empty: keep the current one)" if current else ""))
        q["validate"] = lambda text, f=field, keep=bool(current): (
            True if (keep and not text) else (f.check(text) or True))
        if current:
            q["filter"] = lambda text, keep=current: text or keep
    else:
        q.update(type="text", default=value)
        q["validate"] = lambda text, f=field: f.check(text) or True
    return q


def side_questions(driver: str, side: str, current: dict[str, str]) -> list[dict]:
    """A side's questions: required and everyday options, then advanced ones behind a yes/no question."""
    fields = driver_fields(driver, side)
    everyday = [question(f, current.get(f.variable, "")) for f in fields if not f.advanced]
    gate = f"__advanced_{side}"
    advanced = []
    for f in fields:
        if f.advanced:
            q = question(f, current.get(f.variable, ""))
            q["when"] = lambda answers, gate=gate: bool(answers.get(gate))
            advanced.append(q)
    if advanced:
        everyday.append({"type": "confirm", "name": gate, "default": False,
                         "message": f"Set advanced {side} options of {driver} ({len(advanced)} more)?"})
    return everyday + advanced


def answers_to_variables(driver: str, side: str, answers: dict) -> dict[str, str]:
    """Answers -> profile variables; values equal to the default are left out to keep profiles small."""
    out = {}
    for field in driver_fields(driver, side):
        if field.variable not in answers:
            continue
        value = answers[field.variable]
        if value is None:  # a question without a default, not answered (e.g. a password with --yes)
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text and text != (field.default or ("false" if field.kind == "bool" else "")):
            out[field.variable] = text
    return out


def collect(preset: dict[str, str], ask: Ask, current: dict[str, str], interactive: bool) -> dict[str, str]:
    """Walk the steps: kind, drivers, each side's options, command, description. Returns profile variables."""
    variables = dict(current)
    variables.update({k: v for k, v in preset.items() if v})

    def step(questions: list[dict]) -> dict:
        todo = [q for q in questions if q["name"] not in preset or q["name"].startswith("__")]
        if not interactive:
            answers = {q["name"]: preset.get(q["name"], variables.get(q["name"], q.get("default")))
                       for q in questions}
            for q in questions:
                check = q.get("validate")
                value = answers[q["name"]]
                if check and isinstance(value, str) and check(value) is not True and not q.get("when"):
                    raise UsageError(f"{q['name']}: {check(value)}")
            return answers
        return {**{q["name"]: preset[q["name"]] for q in questions if q["name"] in preset}, **(ask(todo) if todo
                                                                                                else {})}

    kind_field = Field(KIND, "kind", choices=KINDS, required=True, default="procx",
                       help="procx takes work and runs a command; pushx pushes data; pipeline is procx CMD | pushx")
    variables[KIND] = step([question(kind_field, variables.get(KIND, ""))])[KIND]
    for side in kind_sides(variables[KIND]):
        var = f"{side.upper()}_DRIVER"
        driver = step([question(driver_field(side), variables.get(var, ""))])[var]
        if not driver:
            raise UsageError(f"{var}: choose a driver")
        variables[var] = driver
        if side == "procx":
            variables[COMMAND] = step([question(command_field(), variables.get(COMMAND, ""))])[COMMAND] or ""
        for key in [k for k in variables if k.startswith(side.upper() + "_") and k not in (var, *OURS)]:
            if key not in preset:
                del variables[key]  # re-asked below (the driver may have changed)
        answers = step(side_questions(driver, side, current))
        variables.update(answers_to_variables(driver, side, answers))
        variables.update({k: v for k, v in preset.items() if k.startswith(side.upper() + "_") and v})
    description = Field(DESCRIPTION, "description", help="one line shown in the profile list")
    variables[DESCRIPTION] = step([question(description, variables.get(DESCRIPTION, ""))])[DESCRIPTION] or ""
    return {k: v for k, v in variables.items() if v != "" or k in preset}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="profile name (letters, digits, . _ -)")
    p.add_argument("--edit", metavar="PROFILE", help="edit this saved profile (its values are the defaults)")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--procx-driver", metavar="DRIVER")
    p.add_argument("--pushx-driver", metavar="DRIVER")
    p.add_argument("--command", metavar="CMD", help="procx's child command (shell words)")
    p.add_argument("--description")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                   help="any PROCX_*/PUSHX_* variable (repeatable)")
    p.add_argument("--yes", action="store_true", help="ask nothing: take the flags and defaults as they are")
    p.add_argument("--no-check", action="store_true", help="save without checking the connection first")


def preset_from(args: argparse.Namespace) -> dict[str, str]:
    preset = {KIND: args.kind or "", "PROCX_DRIVER": args.procx_driver or "", "PUSHX_DRIVER": args.pushx_driver or "",
              COMMAND: args.command or "", DESCRIPTION: args.description or ""}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith(("PROCX_", "PUSHX_")):
            raise UsageError(f"--set {item!r}: expected PROCX_NAME=value or PUSHX_NAME=value")
        preset[key] = value
    return {k: v for k, v in preset.items() if v or item_variable(k)}


def item_variable(key: str) -> bool:
    """A --set variable of a driver (kept even when empty: it clears the value when editing)."""
    return key.startswith(("PROCX_", "PUSHX_")) and key not in (*OURS, "PROCX_DRIVER", "PUSHX_DRIVER")


def run_wizard(args: argparse.Namespace, ask: Ask | None = None, confirm: Callable[[str], bool] | None = None,
               out=None) -> Profile | None:
    """The whole flow; None when the user declined to save. Raises KeyboardInterrupt when cancelled."""
    out = out or sys.stdout
    interactive = not args.yes
    if ask is None:
        import questionary

        def ask(questions: list[dict]) -> dict:
            return questionary.unsafe_prompt(questions)

    if confirm is None:
        def confirm(message: str) -> bool:
            return bool(ask([{"type": "confirm", "name": "ok", "message": message, "default": False}])["ok"])

    current: dict[str, str] = {}
    name = args.name
    if args.edit:
        existing = find(args.edit)
        current, name = dict(existing.variables), name or existing.name
    if not name:
        if not interactive:
            raise UsageError("--name is required with --yes")
        name = ask([{"type": "text", "name": "name", "message": "profile name",
                     "validate": lambda t: True if NAME.match(t) else "letters, digits, . _ - (at most 64)"}])["name"]
    profile = Profile(name, collect(preset_from(args), ask, current, interactive))
    problems = validate(profile)
    for problem in problems:
        print(problem, file=out)
    if any(p.level == "error" for p in problems) and (not interactive or not confirm("Save it anyway?")):
        if not interactive:
            raise UsageError(f"profile {name} not saved: {next(p for p in problems if p.level == 'error')}")
        return None
    if not args.no_check and not _checked(profile, out) and (not interactive or not confirm("Save it anyway?")):
        if not interactive:
            raise ProcxError(f"profile {name} not saved: a provider is unreachable (--no-check saves anyway)",
                             69)
        return None
    path = write(profile)
    print(f"saved {path}", file=out)
    print(f"run it: procx-tui run {shlex.quote(name)}", file=out)
    return profile


def _checked(profile: Profile, out) -> bool:
    """Check the connection of an unsaved profile (written to a temporary file for the check)."""
    import tempfile
    from pathlib import Path

    from core.check import check

    with tempfile.TemporaryDirectory() as tmp:
        probe = Profile(profile.name, profile.variables)
        write(probe, Path(tmp))
        report = check(probe)
    for side, r in report.items():
        state = "reachable" if r["reachable"] else f"unreachable: {r['error']}"
        print(f"check {side} ({r['driver']}): {state}", file=out)
    return all(r["reachable"] for r in report.values())


def run_cli(args: argparse.Namespace) -> int:
    try:
        saved = run_wizard(args)
    except (KeyboardInterrupt, EOFError):
        print(CANCELLED, file=sys.stderr)
        return 130
    if saved is None:
        print(CANCELLED, file=sys.stderr)
        return 1
    return 0
