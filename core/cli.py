"""Entry points of the procx and pushx commands."""

from __future__ import annotations

import os
import sys

from core import __version__, settings
from core.errors import ProcxError
from core.log import Logger
from core.options import PROCX, PUSHX


def main(side: str, argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log = Logger(side)
    try:
        parsed, config = settings.load(side, argv)
        if parsed.version:
            print(f"{side} version {__version__}")
            return 0
        if parsed.help:
            from core.help import render

            sys.stdout.write(render(side, config.spec if config is not None else None))
            return 0
        log.configure(fmt=config["log-format"], secrets=config.secrets(), driver=config.driver)
        for flag in config.foreign:
            log.warn(f"{flag} is not an option of driver {config.driver}; ignored")
        if side == PROCX:
            from core.procx import Procx

            return Procx(config, log).run()
        from core import pushx

        return pushx.run(config, log)
    except ProcxError as exc:
        message = log.redact(str(exc))
        log.event("error", level="error", error=message, exit=exc.exit_code)
        if not log.json:
            sys.stderr.write(f"{side}: {message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        silence_stdout()
        return 0


def silence_stdout() -> None:
    """After the reader of our output went away (e.g. `| head`), let the exit flush go nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def procx_main() -> None:
    sys.exit(main(PROCX))


def pushx_main() -> None:
    sys.exit(main(PUSHX))


