"""Go-style flags + variables + an env file -> one validated Config for one driver and one tool.

Precedence: flag > variable > env file > default. An empty variable counts as unset (as in the originals).
"""

from __future__ import annotations

import os
import re
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping

from core import registry
from core.errors import UsageError
from core.general import general
from core.options import DriverSpec, Option

HELP_FLAGS = frozenset({"h", "help"})
VERSION_FLAGS = frozenset({"v", "version"})


class Parsed:
    """What the command line said: flag values as typed, the rest (the child command), help/version asked."""

    __slots__ = ("flags", "rest", "help", "version")

    def __init__(self) -> None:
        self.flags: dict[str, tuple[Option, str, str]] = {}  # option name -> (option, flag as typed, text)
        self.rest: list[str] = []
        self.help = False
        self.version = False


def parse_flags(argv: list[str], lookup: Callable[[str], Option | None]) -> Parsed:
    """Go `flag` syntax: -name value, -name=value, --name, bare booleans; stops at the first positional or --."""
    parsed = Parsed()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            parsed.rest = argv[i + 1:]
            return parsed
        if not token.startswith("-") or token == "-":
            parsed.rest = argv[i:]
            return parsed
        body = token[2:] if token.startswith("--") else token[1:]
        name, has_value, text = body.partition("=")
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {token}")
        i += 1
        if name in HELP_FLAGS:
            parsed.help = True
            continue
        if name in VERSION_FLAGS:
            parsed.version = True
            continue
        opt = lookup(name)
        if opt is None:
            raise UsageError(f"flag provided but not defined: -{name}{_suggest_flag(name, lookup)}")
        if opt.kind == "bool":
            text = text if has_value else "true"
        elif not has_value:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            text = argv[i]
            i += 1
        parsed.flags[opt.name] = (opt, "-" + name, text)
    return parsed


def _suggest_flag(name: str, lookup: Callable[[str], Option | None]) -> str:
    known = getattr(lookup, "known", None)
    if not known:
        return ""
    import difflib

    close = difflib.get_close_matches(name, known(), n=1, cutoff=0.75)
    return f"; did you mean -{close[0]}?" if close else ""


def guess_driver(argv: list[str]) -> str:
    """The last -driver value on the command line, found without knowing other flags' types (a hint only)."""
    found = ""
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token in ("-driver", "--driver") and i + 1 < len(argv):
            found = argv[i + 1]
        elif token.startswith(("-driver=", "--driver=")):
            found = token.split("=", 1)[1]
    return found


class Lookup:
    """Finds the option behind a flag: general, then the (guessed) driver's, then any driver's (slow path)."""

    def __init__(self, side: str, spec: DriverSpec | None) -> None:
        self.side = side
        self.table: dict[str, Option] = {}
        for opt in (*general(side), *(spec.options_for(side) if spec else ())):
            for flag in opt.flag_names():
                self.table[flag] = opt
        self._index: dict[str, Option] | None = None

    def index(self) -> dict[str, Option]:
        if self._index is None:
            self._index = registry.flag_index(self.side)
        return self._index

    def __call__(self, name: str) -> Option | None:
        return self.table.get(name) or self.index().get(name)

    def known(self) -> list[str]:
        return [*self.table, *self.index()]


class Config(Mapping):
    """The resolved settings of one run: typed values by option name, and where each came from."""

    def __init__(self, side: str, spec: DriverSpec, values: dict[str, object], origins: dict[str, str],
                 options: dict[str, Option], command: list[str], env_file: dict[str, str],
                 foreign: list[str] | None = None) -> None:
        self.side = side
        self.spec = spec
        self.values = values
        self.origins = origins
        self.options = options
        self.command = command
        self.env_file = env_file
        self.foreign = foreign or []  # flags of other drivers given on the command line (ignored)

    @property
    def driver(self) -> str:
        return self.spec.name

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def describe(self, name: str) -> str:
        """`-flag (VARIABLE)` for messages."""
        opt = self.options[name]
        return f"{opt.flag} ({opt.variable(self.side)})"

    def secrets(self) -> list[str]:
        return [str(v) for n, v in self.values.items() if self.options[n].secret and v]

    def masked(self) -> dict[str, str]:
        """Values as text with secrets hidden, for display."""
        return {n: ("********" if self.options[n].secret and v else self.options[n].render(v))
                for n, v in self.values.items()}


REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}")


def expand_references(text: str, environ: Mapping[str, str]) -> str:
    """Fill `${VAR}` and `${VAR:-default}` from `environ` (as python-dotenv does, but from the given mapping)."""

    def one(match: re.Match[str]) -> str:
        name, _, default = match.group(0)[2:-1].partition(":-")
        return environ.get(name) or default

    return REFERENCE.sub(one, text)


def read_env_file(path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """A .env profile (python-dotenv syntax, ${VAR} expanded from `environ`); never put in os.environ."""
    if not os.path.isfile(path):
        raise UsageError(f"-env-file: no such file: {path}")
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    for key, raw in dotenv_values(path, interpolate=False).items():
        if raw is not None:  # a reference sees the file's earlier values first, then the environment
            values[key] = expand_references(raw, ChainMap(values, environ))
    return values


def load(side: str, argv: list[str], environ: Mapping[str, str] | None = None) -> tuple[Parsed, Config | None]:
    """Parse and resolve everything for `side`. Config is None when only help/version was asked for
    and no driver is known."""
    environ = os.environ if environ is None else environ
    hint = guess_driver(argv) or environ.get(f"{side.upper()}_DRIVER", "")
    spec = registry.get(hint) if hint in registry.BUILTIN or hint in registry.names() else None
    lookup = Lookup(side, spec)
    parsed = parse_flags(argv, lookup)

    gen = {o.name: o for o in general(side)}
    env_path = _pick(gen["env-file"], side, parsed, environ, {})[0]
    env_file = read_env_file(env_path, environ) if env_path else {}
    name, origin = _pick(gen["driver"], side, parsed, environ, env_file)
    if not name:
        if parsed.help or parsed.version:
            return parsed, None
        raise UsageError(f"no driver: set -driver or {side.upper()}_DRIVER (drivers: {side} -h)")
    try:
        spec = registry.get(name)
    except UsageError as exc:
        raise UsageError(f"{origin}: {exc}") from None
    if parsed.help or parsed.version:
        return parsed, Config(side, spec, {}, {}, {}, parsed.rest, env_file)

    if spec.implementation(side) is None:
        registry.load(spec, side)  # raises the "not implemented yet" error before any other complaint
    options = {o.name: o for o in (*general(side), *spec.options_for(side))}
    values: dict[str, object] = {}
    origins: dict[str, str] = {}
    for opt in options.values():
        text, where = _pick(opt, side, parsed, environ, env_file)
        if where:
            try:
                values[opt.name] = opt.convert(text)
            except ValueError as exc:
                detail = "invalid value (hidden: secret)" if opt.secret else str(exc)
                raise UsageError(f"{opt.flag} ({opt.variable(side)}): {detail} [from {where}]") from None
        else:
            values[opt.name] = opt.default
        origins[opt.name] = where or "default"
        if side in opt.required and values[opt.name] in ("", (), None):
            raise UsageError(f"{opt.flag} ({opt.variable(side)}) is required for driver {spec.name}")
    foreign = sorted(flag for n, (_, flag, _) in parsed.flags.items() if n not in options)
    config = Config(side, spec, values, origins, options, parsed.rest, env_file, foreign)
    if spec.validate:
        try:
            spec.validate(config)
        except ValueError as exc:
            raise UsageError(f"driver {spec.name}: {exc}") from None
    return parsed, config


def _pick(opt: Option, side: str, parsed: Parsed, environ: Mapping[str, str],
          env_file: Mapping[str, str]) -> tuple[str, str]:
    """(text, where it came from) for one option; ("", "") when nothing set it."""
    if opt.name in parsed.flags:
        _, flag, text = parsed.flags[opt.name]
        return text, flag
    for source, label in ((environ, ""), (env_file, " in the env file")):
        for var in opt.variables(side):
            text = source.get(var, "")
            if text:
                return text, var + label
    return "", ""
