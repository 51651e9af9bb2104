"""Profiles: .env files of PROCX_*/PUSHX_* variables plus what a run needs, kept in the user's config folder.

A profile works as it is with `procx -env-file`, `pushx -env-file`, `docker --env-file` and a Kubernetes
`envFrom` secret. Three variables of ours describe the run and are ignored by procx and pushx:
PROCX_TUI_KIND (procx, pushx or pipeline = `procx CMD | pushx`), PROCX_TUI_COMMAND (the child command, shell
words) and PROCX_TUI_DESCRIPTION. `${VAR}` references are expanded from the environment when a profile is used,
so secrets can stay out of the file; profiles are written with mode 0600.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections import ChainMap
from pathlib import Path

from core import registry
from core.errors import UsageError
from core.general import general
from core.options import PROCX, PUSHX, SIDES, Option
from core.settings import REFERENCE, expand_references

KIND, COMMAND, DESCRIPTION = "PROCX_TUI_KIND", "PROCX_TUI_COMMAND", "PROCX_TUI_DESCRIPTION"
SCALE_QUERY = "PROCX_TUI_SCALE_QUERY"  # what KEDA counts for drivers without a queue (SQL count query, etcd key)
OURS = (KIND, COMMAND, DESCRIPTION, SCALE_QUERY)
KINDS = ("procx", "pushx", "pipeline")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")


def config_dir() -> Path:
    """PROCX_TUI_HOME, else $XDG_CONFIG_HOME/procx-tui, else ~/.config/procx-tui."""
    if os.environ.get("PROCX_TUI_HOME"):
        return Path(os.environ["PROCX_TUI_HOME"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "procx-tui"


def profiles_dir() -> Path:
    return config_dir() / "profiles"


def examples_dir() -> Path | None:
    """The repository's example profiles (present in a source checkout)."""
    path = Path(__file__).resolve().parent.parent / "profiles"
    return path if path.is_dir() else None


class Problem:
    """One finding of profile validation: an error stops a run, a warning does not."""

    __slots__ = ("level", "variable", "message")

    def __init__(self, level: str, variable: str, message: str) -> None:
        self.level, self.variable, self.message = level, variable, message

    def __str__(self) -> str:
        return f"{self.level}: {self.variable + ': ' if self.variable else ''}{self.message}"

    def record(self) -> dict[str, str]:
        return {"level": self.level, "variable": self.variable, "message": self.message}


class Profile:
    """A named set of variables. `variables` are as written (references unexpanded)."""

    def __init__(self, name: str, variables: dict[str, str] | None = None, path: Path | None = None) -> None:
        self.name = name
        self.variables = dict(variables or {})
        self.path = path

    @property
    def kind(self) -> str:
        kind = self.variables.get(KIND, "")
        if kind:
            return kind
        has = {side: any(k.startswith(side.upper() + "_") and k not in OURS for k in self.variables)
               for side in SIDES}
        return "pipeline" if has[PROCX] and has[PUSHX] else (PUSHX if has[PUSHX] else PROCX)

    @property
    def command(self) -> list[str]:
        text = self.variables.get(COMMAND, "")
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise UsageError(f"profile {self.name}: {COMMAND}: {exc}") from None

    @property
    def description(self) -> str:
        return self.variables.get(DESCRIPTION, "")

    def sides(self) -> tuple[str, ...]:
        """The tools this profile configures; a procx profile whose command is pushx (`procx pushx`) both."""
        if self.kind == PROCX and self.command[:1] and os.path.basename(self.command[0]) == PUSHX:
            return (PROCX, PUSHX)
        return {"procx": (PROCX,), "pushx": (PUSHX,), "pipeline": (PROCX, PUSHX)}.get(self.kind, ())

    def driver(self, side: str) -> str:
        return self.variables.get(f"{side.upper()}_DRIVER", "")

    def expanded(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """The variables with ${VAR} references filled in, as `procx -env-file` reads them."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for key, raw in self.variables.items():  # earlier values of the file first, as -env-file reads it
            values[key] = expand_references(raw, ChainMap(values, env))
        return values

    def option(self, variable: str) -> tuple[str, Option] | None:
        """(side, option) that `variable` sets for this profile's drivers, or None."""
        side = PROCX if variable.startswith("PROCX_") else PUSHX if variable.startswith("PUSHX_") else ""
        if not side:
            return None
        options = list(general(side))
        name = self.driver(side)
        if name in registry.names():
            options += registry.get(name).options_for(side)
        for opt in options:
            if variable in opt.variables(side):
                return side, opt
        return None

    def is_secret(self, variable: str) -> bool:
        found = self.option(variable)
        return bool(found and found[1].secret)

    def masked(self) -> dict[str, str]:
        """Variables for display: secrets hidden unless they are ${VAR} references."""
        return {k: ("********" if self.is_secret(k) and v and not REFERENCE.fullmatch(v) else v)
                for k, v in self.variables.items()}

    def render(self) -> str:
        lines = [f"# procx-tui profile {self.name}"]
        if self.description:
            lines.append(f"# {self.description}")
        for key in sorted(self.variables, key=_order):
            lines.append(f"{key}={quote(self.variables[key])}")
        return "\n".join(lines) + "\n"

    def record(self, masked: bool = True) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path) if self.path else None, "kind": self.kind,
                "drivers": {side: self.driver(side) for side in self.sides()}, "command": self.command,
                "description": self.description, "variables": self.masked() if masked else self.variables}


def _order(key: str) -> tuple[int, str]:
    rank = {KIND: 0, DESCRIPTION: 1, COMMAND: 2, "PROCX_DRIVER": 3, "PUSHX_DRIVER": 5}
    return rank.get(key, 4 if key.startswith("PROCX_") else 6), key


def quote(value: str) -> str:
    """A value as python-dotenv reads it back unchanged (${VAR} references stay references)."""
    if _PLAIN.match(value) or REFERENCE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read(path: Path) -> Profile:
    from dotenv import dotenv_values

    if not path.is_file():
        raise UsageError(f"no such profile: {path}")
    values = dotenv_values(path, interpolate=False)
    return Profile(path.name.removesuffix(".env"), {k: v or "" for k, v in values.items()}, path)


def write(profile: Profile, folder: Path | None = None) -> Path:
    """Save as <folder>/<name>.env, mode 0600 (written to a temporary file, then renamed)."""
    if not NAME.match(profile.name):
        raise UsageError(f"invalid profile name {profile.name!r}: letters, digits, . _ - (at most 64)")
    folder = folder or profiles_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile.name}.env"
    tmp = folder / f".{profile.name}.env.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(profile.render())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    profile.path = path
    return path


def find(name: str, folder: Path | None = None) -> Profile:
    """A profile by name (or by the path of a .env file)."""
    if os.sep in name or name.endswith(".env"):
        return read(Path(name))
    folder = folder or profiles_dir()
    path = folder / f"{name}.env"
    if not path.is_file():
        known = [p.name.removesuffix(".env") for p in folder.glob("*.env")] if folder.is_dir() else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"no profile named '{name}' in {folder}{hint}")
    return read(path)


def all_profiles(folder: Path | None = None) -> list[Profile]:
    folder = folder or profiles_dir()
    if not folder.is_dir():
        return []
    return [read(p) for p in sorted(folder.glob("*.env"))]


def remove(name: str, folder: Path | None = None) -> Path:
    profile = find(name, folder)
    assert profile.path is not None
    profile.path.unlink()
    return profile.path


def install_examples(folder: Path | None = None) -> list[Path]:
    """Copy the example profiles into an empty profiles folder (first start); returns what was copied."""
    folder = folder or profiles_dir()
    source = examples_dir()
    if source is None or (folder.is_dir() and any(folder.glob("*.env"))):
        return []
    from core.runs import state_dir

    # the examples name paths relative to the repository; installed, they point at it and at a demo folder
    moves = {"profiles/": f"{source}/", ".procx-demo/": f"{state_dir() / 'demo'}/"}
    copied = []
    for example in sorted(source.glob("*.env")):
        profile = read(example)
        for key, value in profile.variables.items():
            for old, new in moves.items():
                value = re.sub(rf"(^|(?<=\s)){re.escape(old)}", lambda _m, new=new: new, value)
            profile.variables[key] = value
        copied.append(write(profile, folder))
    return copied


def validate(profile: Profile) -> list[Problem]:
    """Everything wrong with a profile, from the driver declarations: unknown variables (with a suggestion),
    values of the wrong type or not among the choices, missing required options, an unknown driver."""
    problems: list[Problem] = []
    kind = profile.kind
    if kind not in KINDS:
        problems.append(Problem("error", KIND, f"must be one of {', '.join(KINDS)}"))
        return problems
    expanded = profile.expanded()
    known: dict[str, list[str]] = {}
    for side in profile.sides():
        name = profile.driver(side)
        var = f"{side.upper()}_DRIVER"
        if not name:
            problems.append(Problem("error", var, "no driver: every run needs one"))
            continue
        if name not in registry.names():
            problems.append(Problem("error", var, f"unknown driver '{name}'{registry.suggest(name)}"))
            continue
        spec = registry.get(name)
        if spec.implementation(side) is None:
            problems.append(Problem("error", var, f"the {side} side of {name} is not implemented yet"))
        options = [*general(side), *spec.options_for(side)]
        known[side] = [v for o in options for v in o.variables(side)]
        for opt in options:
            set_as = [v for v in opt.variables(side) if v in profile.variables]
            text = expanded.get(set_as[0], "") if set_as else ""
            if not text:
                if side in opt.required and opt.name != "driver":
                    problems.append(Problem("error", opt.variable(side), f"required by {name} ({opt.help})"))
                continue
            try:
                opt.convert(text)
            except ValueError as exc:
                detail = "invalid value (secret, not shown)" if opt.secret else str(exc)
                problems.append(Problem("error", set_as[0], detail))
    for var in profile.variables:
        if var in OURS or not var.startswith(("PROCX_", "PUSHX_")):
            continue
        side = PROCX if var.startswith("PROCX_") else PUSHX
        if var == "PROCX_PAYLOAD":
            continue
        if side not in profile.sides():
            problems.append(Problem("warning", var, f"a {kind} profile does not use {side.upper()}_* variables"))
        elif side in known and var not in known[side]:
            close = difflib.get_close_matches(var, known[side], n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            other = _other_driver(var, side)
            problems.append(Problem("error" if close else "warning", var,
                                    f"not an option of {profile.driver(side)}{hint}{other}"))
    if kind == "pipeline" and not profile.command:
        problems.append(Problem("warning", COMMAND, "no command: procx prints each payload into pushx as it is"))
    return problems


def _other_driver(variable: str, side: str) -> str:
    for spec in registry.all_specs():
        for opt in spec.options_for(side):
            if variable in opt.variables(side):
                return f" (it belongs to driver {spec.name})"
    return ""
