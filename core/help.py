"""Help text from the declarations: `procx -h` (general options and drivers), `procx -driver NAME -h`."""

from __future__ import annotations

from core import registry
from core.general import general
from core.options import PROCX, DriverSpec, Option

USAGE = {
    PROCX: "Usage: procx [options] [command [args...]]\n"
           "Takes one unit of work from the driver's provider, runs the command with it, and clears it when the\n"
           "command exits 0 or fails it back (so it is retried) otherwise (-exit-codes changes that). Without a\n"
           "command the payload is printed and cleared. The command gets the payload in PROCX_PAYLOAD (unless\n"
           "delivered otherwise), and the work's id and attempt number in PROCX_WORK_ID and PROCX_ATTEMPT\n"
           "where the driver gives them.",
    "pushx": "Usage: pushx [options]\n"
             "Pushes the input (standard input, -in or -in-file) to the driver's provider; -out=- passes it on.",
}


def describe(opt: Option, side: str) -> list[str]:
    kind = "" if opt.kind == "bool" else f" {opt.placeholder or opt.kind}"
    head = f"  {opt.flag}{kind}"
    notes = []
    if opt.required & {side}:
        notes.append("required")
    if opt.default not in ("", False, 0, 0.0, (), None):
        notes.append(f"default {opt.render(opt.default)}")
    if opt.choices:
        notes.append("one of " + "|".join(opt.choices))
    if opt.secret:
        notes.append("secret")
    variables = " or ".join(opt.variables(side))
    detail = opt.help + (f" ({'; '.join(notes)})" if notes else "")
    return [head, f"        {detail}", f"        variable: {variables}"]


def render(side: str, spec: DriverSpec | None) -> str:
    lines = [USAGE[side], "", "General options:"]
    for opt in general(side):
        lines += describe(opt, side)
    if spec is None:
        lines += ["", "Drivers:"]
        width = max(len(n) for n in registry.BUILTIN)
        for name in registry.names():
            try:
                summary = registry.get(name).summary
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break help
                summary = f"(cannot load: {exc})"
            lines.append(f"  {name:<{width}}  {summary}")
        lines += ["", f"{side} -driver NAME -h lists a driver's options. LOG_LEVEL sets the log level."]
    else:
        lines += ["", f"Options of driver {spec.name}: {spec.summary}"]
        options = spec.options_for(side)
        if not options:
            lines.append("  (none)")
        for opt in options:
            lines += describe(opt, side)
        if spec.implementation(side) is None:
            lines += ["", f"Note: the {side} side of {spec.name} is not implemented yet in this release."]
    return "\n".join(lines) + "\n"
