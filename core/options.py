"""The declarations: an Option is one setting of a driver (or of procx/pushx itself), a DriverSpec is a driver.

Everything else (flag parsing, variables, validation, help, the wizard, the TUI form, the docs table, the
Kubernetes export) is derived from these objects. This module holds data and value conversion only.
"""

from __future__ import annotations

import math

PROCX = "procx"
PUSHX = "pushx"
SIDES = (PROCX, PUSHX)
BOTH = frozenset(SIDES)

KINDS = ("string", "bool", "int", "float", "duration", "list", "json")

TRUE_WORDS = frozenset({"1", "t", "true", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "f", "false", "no", "n", "off"})

_ZERO = {"string": "", "bool": False, "int": 0, "float": 0.0, "duration": 0.0, "list": (), "json": None}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _side_set(sides: str | frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    if isinstance(sides, str):
        return frozenset({sides})
    return frozenset(sides)


class Option:
    """One setting: flag `-name`, variables `PROCX_NAME`/`PUSHX_NAME` (plus the original's irregular names).

    name      flag name without the dash, exactly as the Go original spells it
    kind      string | bool | int | float | duration (seconds; "25s", "1m30s", "500ms" or a number) |
              list (comma separated) | json (validated and decoded)
    default   typed default; None means the kind's zero value
    sides     which tool accepts it: "procx", "pushx" or both
    secret    masked wherever shown; never logged
    choices   allowed values of a string (case-insensitive, normalised to the declared spelling; "" = unset)
    required  the sides on which a value must be given (True = every side of the option)
    env       the original's irregular variable names, {"procx": "PROCX_GCP_SUBSCRIPTION"}; the derived
              name is always accepted as well
    aliases   extra flag names accepted for the same setting (e.g. a corrected spelling)
    group     connection | auth | tls | retrieve | clear | fail | push | general ... (inferred when empty)
    advanced  asked only behind "advanced options" in the wizard and the TUI form (tls is always advanced)
    extension not in the Go original (ours); listed as such in the docs
    check     callable(value) -> value, run after the kind's conversion for rules of one option's syntax
              (raises ValueError saying what is wrong)
    """

    __slots__ = ("name", "kind", "default", "help", "sides", "secret", "choices", "required", "env",
                 "aliases", "group", "advanced", "extension", "placeholder", "check")

    def __init__(
        self,
        name: str,
        kind: str = "string",
        default: object = None,
        help: str = "",
        *,
        sides: str | frozenset[str] | tuple[str, ...] = BOTH,
        secret: bool = False,
        choices: tuple[str, ...] = (),
        required: bool | str | tuple[str, ...] = False,
        env: dict[str, str] | None = None,
        aliases: tuple[str, ...] = (),
        group: str = "",
        advanced: bool | None = None,
        extension: bool = False,
        placeholder: str = "",
        check=None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"option {name}: unknown kind {kind!r}")
        self.name = name
        self.kind = kind
        self.default = _ZERO[kind] if default is None else default
        self.help = help
        self.sides = _side_set(sides)
        self.secret = secret
        self.choices = tuple(choices)
        if required is True:
            self.required = self.sides
        elif not required:
            self.required = frozenset()
        else:
            self.required = _side_set(required)
        self.env = dict(env or {})
        self.aliases = tuple(aliases)
        self.group = group or _infer_group(name)
        self.advanced = (self.group in ("tls",)) if advanced is None else advanced
        self.extension = extension
        self.placeholder = placeholder
        self.check = check

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.kind!r})"

    @property
    def flag(self) -> str:
        return "-" + self.name

    def flag_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def variables(self, side: str) -> tuple[str, ...]:
        """Variable names read on `side`: the original's irregular name first, then the derived ones."""
        prefix = side.upper() + "_"
        names = []
        if side in self.env:
            names.append(self.env[side])
        for flag in self.flag_names():
            derived = prefix + flag.upper().replace("-", "_")
            if derived not in names:
                names.append(derived)
        return tuple(names)

    def variable(self, side: str) -> str:
        """The canonical variable name for `side` (the one the original read)."""
        return self.variables(side)[0]

    def convert(self, text: str) -> object:
        """Text (from a flag, a variable or an env file) -> typed value; ValueError says what is wrong."""
        value = convert(self.kind, text, self.choices)
        return self.check(value) if self.check is not None else value

    def render(self, value: object) -> str:
        """A typed value back to the text a flag or variable would carry."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "list":
            return ",".join(value)  # type: ignore[arg-type]
        if self.kind == "json":
            import json

            return "" if value is None else json.dumps(value)
        if self.kind == "float":
            return f"{value:g}"
        if self.kind == "duration":
            return f"{value:g}s"
        return str(value)


def _infer_group(name: str) -> str:
    parts = name.split("-")
    if "tls" in parts or "ssl" in parts:
        return "tls"
    for group in ("retrieve", "clear", "fail"):
        if group in parts:
            return group
    if any(p in ("password", "pass", "user", "username", "token", "creds", "auth", "sasl") for p in parts):
        return "auth"
    return "connection"


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ValueError(f"invalid boolean {text!r} (use true/false, 1/0, yes/no, on/off)")


def parse_int(text: str) -> int:
    """Go integer literal syntax: 10, -3, 0x10, 0o10, 010 (octal), 0b10, 1_000."""
    s = text.strip()
    sign = s[:1] if s[:1] in ("+", "-") else ""
    body = s[len(sign):]
    try:
        if len(body) > 1 and body[0] == "0" and body[1] in "0123456789_":  # legacy octal: 010 == 0o10
            value = int("0o" + body[1:], 0)
            return -value if sign == "-" else value
        return int(s, 0)
    except ValueError:
        raise ValueError(f"invalid integer {text!r}") from None


def parse_duration(text: str) -> float:
    """Seconds from a Go duration ("1m30s", "500ms") or a plain number of seconds."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"invalid duration {text!r} (e.g. 30s, 1m30s, 500ms)")
        return value
    total, num, i, sign = 0.0, "", 0, 1.0
    if s[:1] in ("+", "-"):
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        num = s[i:j]
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        try:
            if not num or unit not in _DURATION_UNITS:
                raise ValueError
            total += float(num) * _DURATION_UNITS[unit]
        except ValueError:
            raise ValueError(f"invalid duration {text!r} (e.g. 30s, 1m30s, 500ms)") from None
        i = k
    if not math.isfinite(total):
        raise ValueError(f"invalid duration {text!r} (too large)")
    return sign * total


def convert(kind: str, text: str, choices: tuple[str, ...] = ()) -> object:
    if kind == "string":
        if choices and text:
            for choice in choices:
                if choice.lower() == text.lower():
                    return choice
            raise ValueError(f"invalid value {text!r} (one of: {', '.join(choices)})")
        return text
    if kind == "bool":
        return parse_bool(text)
    if kind == "int":
        return parse_int(text)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"invalid number {text!r}") from None
    if kind == "duration":
        return parse_duration(text)
    if kind == "list":
        return tuple(text.split(",")) if text else ()
    if kind == "json":
        import json

        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON ({exc.msg} at position {exc.pos})") from None
        except RecursionError:
            raise ValueError("invalid JSON (nested too deeply)") from None
    raise AssertionError(kind)


class Delivery:
    """What a driver guarantees, for the guarantee matrix in the docs (say only what the tests show).

    procx        at-least-once | at-most-once | ... (what happens to work if procx or the child dies)
    hold         how work stays safe while the child runs (lease, visibility timeout, unacked delivery, ...)
    fail         what failing work back does
    dead_letter  the provider's native dead-letter mechanism, if any
    pushx        what a successful push means
    tested       what the tests run against ("real server: Redis 7", "emulator: moto", "not verified ...")
    """

    __slots__ = ("procx", "hold", "fail", "dead_letter", "pushx", "tested")

    def __init__(self, procx: str = "", *, hold: str = "", fail: str = "", dead_letter: str = "", pushx: str = "",
                 tested: str = "") -> None:
        self.procx = procx
        self.hold = hold
        self.fail = fail
        self.dead_letter = dead_letter
        self.pushx = pushx
        self.tested = tested

    def record(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__slots__}


class DriverSpec:
    """A driver: its name, what it is for, its options, and where its Source and Sink live.

    source / sink   "module:Class" of the implementation, imported on first use; None = that side is
                    not built yet (the driver then fails with a clear "not implemented yet" error)
    extra           the pip extra that installs its client library ("redis" -> procx-tui[redis])
    requires        importable module names of that client library (checked before connecting)
    blocking        the source can wait server-side for work (so one-shot procx waits like the original)
    delivery        a Delivery: the guarantees, for the docs' guarantee matrix (None: not built yet)
    validate        callable(config) raising ValueError("-flag: what is wrong") for rules across options
    """

    __slots__ = ("name", "summary", "options", "source", "sink", "extra", "requires", "blocking", "delivery",
                 "validate", "notes", "family")

    def __init__(
        self,
        name: str,
        summary: str,
        options: list[Option] | tuple[Option, ...],
        *,
        source: str | None = None,
        sink: str | None = None,
        extra: str = "",
        requires: tuple[str, ...] = (),
        blocking: bool = False,
        delivery: Delivery | None = None,
        validate=None,
        notes: str = "",
        family: str = "",
    ) -> None:
        self.name = name
        self.summary = summary
        self.options = tuple(options)
        self.source = source
        self.sink = sink
        self.extra = extra
        self.requires = tuple(requires)
        self.blocking = blocking
        self.delivery = delivery
        self.validate = validate
        self.notes = notes
        self.family = family or name.split("-")[0]
        seen: set[str] = set()
        for opt in self.options:
            for flag in opt.flag_names():
                if flag in seen:
                    raise ValueError(f"driver {name}: option {flag} declared twice")
                seen.add(flag)

    def __repr__(self) -> str:
        return f"DriverSpec({self.name!r})"

    def options_for(self, side: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if side in o.sides)

    def implementation(self, side: str) -> str | None:
        return self.source if side == PROCX else self.sink
