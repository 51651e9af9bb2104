"""The fields of a profile, from the driver declarations: what the wizard asks and the TUI form shows.

Pure functions of a DriverSpec (no terminal, no Textual): the order of the fields (required first, everyday
options, then advanced ones), how each is entered (text, secret, yes/no, a choice), and its validation.
"""

from __future__ import annotations

from core import registry
from core.errors import ProcxError
from core.general import general
from core.options import PROCX, PUSHX, Option
from core.profiles import COMMAND, DESCRIPTION, KIND, KINDS

# General options the wizard asks about for every procx profile (the rest are advanced).
EVERYDAY_GENERAL = {PROCX: ("daemon", "pass-work-as-stdin", "payload-file"), PUSHX: ()}
HIDDEN_GENERAL = ("driver", "env-file", "log-format")  # set by the profile itself or by the supervisor


class Field:
    """One entry of the form: an option of one side, or one of the profile's own settings."""

    __slots__ = ("variable", "label", "kind", "choices", "required", "secret", "advanced", "help", "default",
                 "option")

    def __init__(self, variable: str, label: str, kind: str = "string", *, choices: tuple[str, ...] = (),
                 required: bool = False, secret: bool = False, advanced: bool = False, help: str = "",
                 default: str = "", option: Option | None = None) -> None:
        self.variable, self.label, self.kind, self.choices = variable, label, kind, choices
        self.required, self.secret, self.advanced, self.help = required, secret, advanced, help
        self.default, self.option = default, option

    @property
    def widget(self) -> str:
        """text | secret | confirm | select"""
        if self.kind == "bool":
            return "confirm"
        if self.choices:
            return "select"
        return "secret" if self.secret else "text"

    def check(self, text: str) -> str | None:
        """None when `text` is acceptable, else what is wrong (one line)."""
        if not text:
            return f"{self.label} is required" if self.required else None
        if text.startswith("${") and text.endswith("}"):
            return None  # a reference to the environment, filled in when the profile is used
        if self.option is not None:
            try:
                self.option.convert(text)
            except ValueError as exc:
                return str(exc) if not self.secret else "invalid value"
        return None


def from_option(opt: Option, side: str, advanced: bool | None = None) -> Field:
    default = "" if opt.default in ("", (), None) else opt.render(opt.default)
    return Field(opt.variable(side), opt.flag, opt.kind, choices=opt.choices, required=side in opt.required,
                 secret=opt.secret, advanced=opt.advanced if advanced is None else advanced, help=opt.help,
                 default=default, option=opt)


def profile_fields() -> list[Field]:
    return [
        Field(KIND, "kind", choices=KINDS, required=True, default="procx",
              help="procx: take work and run a command; pushx: push data; pipeline: procx CMD | pushx"),
        Field(DESCRIPTION, "description", help="one line shown in the profile list"),
    ]


def command_field() -> Field:
    return Field(COMMAND, "command", help="the command procx runs for each unit of work (shell words; empty: "
                                          "print the payload)")


def driver_field(side: str) -> Field:
    ready = [n for n in registry.names() if _implemented(n, side)]
    return Field(f"{side.upper()}_DRIVER", f"{side} driver", choices=tuple(ready), required=True,
                 help=f"where {side} {'takes work from' if side == PROCX else 'pushes to'}")


def _implemented(name: str, side: str) -> bool:
    try:
        return registry.get(name).implementation(side) is not None
    except (ImportError, ProcxError):  # a broken third-party driver must not break the form
        return False


def driver_fields(driver: str, side: str) -> list[Field]:
    """The fields of one side: required first, then everyday options, then advanced ones."""
    spec = registry.get(driver)
    fields = [from_option(o, side) for o in spec.options_for(side)]
    fields += [from_option(o, side, advanced=o.name not in EVERYDAY_GENERAL[side])
               for o in general(side) if o.name not in HIDDEN_GENERAL]
    return sorted(fields, key=lambda f: (not f.required, f.advanced))


def kind_sides(kind: str) -> tuple[str, ...]:
    return {"procx": (PROCX,), "pushx": (PUSHX,), "pipeline": (PROCX, PUSHX)}[kind]
