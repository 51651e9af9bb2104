"""The pushx flow: read the input, push it, and only then pass it on (-out)."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

from core import registry
from core.errors import EXIT_OK, InputError, UsageError
from core.log import Logger
from core.settings import Config
from core.work import Sink, call, connect

if TYPE_CHECKING:
    from typing import BinaryIO


def check(config: Config) -> None:
    """Usage errors that must stop pushx before it connects or reads anything."""
    if config.command:
        raise UsageError(f"pushx takes no arguments (got {config.command[0]!r}); give the payload with -in or "
                         "on standard input")
    in_file = config["in-file"]
    if not config["in"] and in_file != "-" and not os.path.isfile(in_file):
        raise UsageError(f"-in-file ({config.options['in-file'].variable('pushx')}): no such file: {in_file}")
    out = config["out"]
    if out and out != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"-out ({config.options['out'].variable('pushx')}): folder does not exist: {out}")


def read_input(config: Config, stdin: BinaryIO) -> bytes:
    if config["in"]:
        return os.fsencode(config["in"])
    try:
        if config["in-file"] == "-":
            return stdin.read()
        with open(config["in-file"], "rb") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"cannot read the input: {exc.strerror}") from exc


def tee(config: Config, data: bytes, stdout: BinaryIO) -> None:
    out = config["out"]
    if not out:
        return
    try:
        if out == "-":
            stdout.write(data)
            stdout.flush()
        else:
            with open(out, "wb") as f:
                f.write(data)
    except OSError as exc:
        raise InputError(f"pushed, but cannot pass the payload on to -out {out}: {exc.strerror}") from exc


def open_sink(config: Config) -> Sink:
    return connect(registry.load(config.spec, "pushx")(config))


def run(config: Config, log: Logger, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    check(config)
    sink = open_sink(config)
    try:
        data = read_input(config, stdin or sys.stdin.buffer)
        started = time.monotonic()
        ident = call(config, "push", sink.push, data)
        log.event("pushed", id=ident, bytes=len(data), duration_ms=round((time.monotonic() - started) * 1000, 3))
        tee(config, data, stdout or sys.stdout.buffer)
    finally:
        sink.close()
    return EXIT_OK
