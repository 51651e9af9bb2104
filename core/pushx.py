"""The pushx flow: read the input, push it, and only then pass it on (-out)."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

from core import registry
from core.errors import EXIT_OK, InputError, UsageError
from core.log import Logger, metrics_serving
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
    if not config["bulk"]:
        for name in ("bulk-separator", "bulk-batch", "bulk-keep-empty"):
            if config.origins.get(name, "default") != "default":
                raise UsageError(f"{config.describe(name)}: only used with -bulk")


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


class Tee:
    """-out: passes pushed data on, to standard output (-) or a file (created at the first write)."""

    def __init__(self, config: Config, stdout: BinaryIO) -> None:
        self.out = config["out"]
        self.stdout = stdout
        self.file: BinaryIO | None = None

    def __call__(self, data: bytes) -> None:
        if not self.out:
            return
        try:
            if self.out == "-":
                self.stdout.write(data)
                self.stdout.flush()
                return
            if self.file is None:
                self.file = open(self.out, "wb")  # noqa: SIM115 - kept open across the batches of -bulk
            self.file.write(data)
            self.file.flush()
        except OSError as exc:
            raise InputError(f"pushed, but cannot pass the payload on to -out {self.out}: {exc.strerror}") from exc

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def open_sink(config: Config) -> Sink:
    return connect(registry.load(config.spec, "pushx")(config))


def run(config: Config, log: Logger, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    check(config)
    stdin = stdin or sys.stdin.buffer
    tee = Tee(config, stdout or sys.stdout.buffer)
    with metrics_serving(config, log):
        sink = open_sink(config)
        try:
            if config["bulk"]:
                from core import bulk

                bulk.push_all(config, log, sink, bulk.reader(config, stdin), tee)
                tee(b"")  # an -out file exists after success, also for an empty input
            else:
                data = read_input(config, stdin)
                started = time.monotonic()
                ident = call(config, "push", sink.push, data)
                log.event("pushed", id=ident, bytes=len(data),
                          duration_ms=round((time.monotonic() - started) * 1000, 3))
                tee(data)
        finally:
            sink.close()
            tee.close()
    return EXIT_OK
