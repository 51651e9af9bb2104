"""The options of procx and pushx themselves (not of a driver): the originals' general flags plus ours."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from core import exitcodes
from core.options import PROCX, PUSHX, Option


def _hook(module: str, name: str) -> Callable[[object], object]:
    """A check of core.<module>, imported when a value is checked: the extensions' modules stay out of a start
    that does not use them (pushx's cold start is most of its cost)."""
    def check(value: object) -> object:
        return getattr(importlib.import_module(f"core.{module}"), name)(value)

    return check


LOG_FORMATS = ("text", "json")

_COMMON = [
    Option("driver", help="the driver to use (procx -h lists them)", required=True, group="general"),
    Option("env-file", help="load PROCX_*/PUSHX_* settings from this .env profile (below variables and flags)",
           extension=True, group="general", placeholder="PATH"),
    Option("log-format", default="text", choices=LOG_FORMATS, extension=True, group="general",
           help="text, or json: one JSON event per line on stderr (got, cleared, failed, pushed, error)"),
    Option("metrics-addr", extension=True, group="general", placeholder="HOST:PORT",
           check=_hook("metrics", "check_address"),
           help="serve Prometheus metrics (text format) at http://HOST:PORT/metrics while running; :PORT listens "
                "on every interface, 127.0.0.1:PORT on this machine only"),
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
        Option("max-attempts", "int", 0, sides=PROCX, extension=True, group="general",
               check=_hook("retry", "check_count"),
               help="work whose attempt number N fails is dead-lettered instead of failed back (the attempt is the "
                    "provider's delivery count, else procx's own count); 0 = retried forever, as the original"),
        Option("dead-letter", sides=PROCX, extension=True, group="general", placeholder="PUSHX-ARGS",
               check=_hook("retry", "check_target"),
               help="push dead-lettered work (byte for byte) to this pushx target instead of the driver's own, "
                    "given as pushx flags: '-driver sqlite -sqlite-path dlq.db', or '-env-file dlq.env' (PUSHX_* "
                    "lines)"),
        Option("retry-backoff", "duration", 0.0, sides=PROCX, extension=True, group="general",
               check=_hook("retry", "check_delay"),
               help="delay failed work this long before it is offered again, doubling with each attempt (drivers "
                    "that can delay; the others ignore it); 0 = no delay"),
        Option("retry-backoff-max", "duration", 300.0, sides=PROCX, extension=True, group="general",
               check=_hook("retry", "check_delay"),
               help="the longest -retry-backoff delay"),
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
        Option("bulk", "bool", sides=PUSHX, extension=True, group="general",
               help="one message per input line (or per -bulk-separator), read as it arrives and pushed in batches "
                    "with the driver's batch API; -out passes each batch on once it is pushed; empty lines are "
                    "skipped"),
        Option("bulk-separator", default="\\n", sides=PUSHX, extension=True, group="general", placeholder="SEP",
               check=_hook("bulk", "check_separator"),
               help="with -bulk: what ends a message (escapes \\n \\r \\t \\0 \\\\ \\xHH; e.g. \\r\\n, \\0)"),
        Option("bulk-batch", "int", 500, sides=PUSHX, extension=True, group="general",
               check=_hook("bulk", "check_batch"),
               help="with -bulk: at most this many messages per push (the driver may split further: aws-sqs sends "
                    "10 per request)"),
        Option("bulk-keep-empty", "bool", sides=PUSHX, extension=True, group="general",
               help="with -bulk: push empty lines as empty messages instead of skipping them"),
    ]
)


def general(side: str) -> tuple[Option, ...]:
    return PROCX_GENERAL if side == PROCX else PUSHX_GENERAL
