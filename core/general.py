"""The options of procx and pushx themselves (not of a driver): the originals' general flags plus ours."""

from __future__ import annotations

from core import exitcodes
from core.options import PROCX, PUSHX, Option

LOG_FORMATS = ("text", "json")

_COMMON = [
    Option("driver", help="the driver to use (procx -h lists them)", required=True, group="general"),
    Option("env-file", help="load PROCX_*/PUSHX_* settings from this .env profile (below variables and flags)",
           extension=True, group="general", placeholder="PATH"),
    Option("log-format", default="text", choices=LOG_FORMATS, extension=True, group="general",
           help="text, or json: one JSON event per line on stderr (got, cleared, failed, pushed, error)"),
]

PROCX_GENERAL: tuple[Option, ...] = tuple(
    [o for o in _COMMON if PROCX in o.sides]
    + [
        Option("hostenv", "bool", sides=PROCX, group="general",
               help="give the child procx's whole environment, PROCX_* settings included"),
        Option("pass-work-as-arg", "bool", sides=PROCX, group="general",
               help="append the payload to the child's arguments"),
        Option("pass-work-as-stdin", "bool", sides=PROCX, group="general",
               help="write the payload to the child's standard input"),
        Option("payload-file", sides=PROCX, group="general", placeholder="PATH",
               help="write the payload to this file for the child (its path is in PROCX_PAYLOAD_FILE)"),
        Option("keep-payload-file", "bool", sides=PROCX, group="general",
               help="keep the payload file after the child exits (default: remove it)"),
        Option("daemon", "bool", sides=PROCX, group="general", help="keep taking work until stopped"),
        Option("wait-for-work", "duration", -1.0, sides=PROCX, extension=True, group="general",
               help="how long one-shot procx waits for work to arrive; 0 = not at all (default: the original's "
                    "behaviour: drivers that block for a message wait forever, the others do not wait)"),
        Option("until-empty", "bool", sides=PROCX, extension=True, group="general",
               help="with -daemon: exit 0 as soon as the source has no work (batch jobs, Kubernetes Jobs)"),
        Option("daemon-interval", "int", sides=PROCX, group="general",
               help="milliseconds to sleep after each daemon iteration"),
        Option("concurrency", "int", 1, sides=PROCX, extension=True, group="general",
               help="daemon workers running children side by side"),
        Option("grace-period", "duration", 25.0, sides=PROCX, extension=True, group="general",
               help="on SIGTERM/SIGINT, how long the running child may finish before it is killed and its "
                    "work failed back"),
        Option("exit-codes", sides=PROCX, extension=True, group="general", placeholder="MAP",
               check=exitcodes.check,
               help="what the child's exit status does to its work, e.g. 0=clear,3=dead-letter,4=drop,64-78=fail: "
                    "clear, fail (retried), drop (removed, not done) or dead-letter (drivers with a dead-letter "
                    "target); a status not named keeps the original's rule (0 clears, anything else fails)"),
    ]
)

PUSHX_GENERAL: tuple[Option, ...] = tuple(
    [o for o in _COMMON if PUSHX in o.sides]
    + [
        Option("in", sides=PUSHX, env={PUSHX: "PUSHX_INPUT_STR"}, group="general",
               help="the payload itself (wins over -in-file)"),
        Option("in-file", default="-", sides=PUSHX, env={PUSHX: "PUSHX_INPUT_FILE"}, group="general",
               placeholder="PATH", help="read the payload from this file; - is standard input"),
        Option("out", sides=PUSHX, env={PUSHX: "PUSHX_OUTPUT"}, group="general", placeholder="PATH",
               help="after a successful push, pass the payload on: - for standard output, or a file"),
    ]
)


def general(side: str) -> tuple[Option, ...]:
    return PROCX_GENERAL if side == PROCX else PUSHX_GENERAL
