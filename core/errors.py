"""The errors procx and pushx report, each with its exit status (see the README's exit-code table)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2  # bad flag, variable, value, unknown driver, missing option, missing client library
EXIT_PROVIDER = 69  # the provider could not be reached or refused an operation (sysexits EX_UNAVAILABLE)
EXIT_IO = 74  # procx/pushx could not read its input or write the payload/tee (sysexits EX_IOERR)
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


class ProcxError(Exception):
    """An error meant for the user: one line, no traceback, a fixed exit status."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ProcxError):
    exit_code = EXIT_USAGE


class ProviderError(ProcxError):
    """The provider failed: unreachable, refused, or an operation on the work failed."""

    exit_code = EXIT_PROVIDER


class InputError(ProcxError):
    exit_code = EXIT_IO


def one_line(what: BaseException | str, limit: int = 300) -> str:
    """An exception (or a text) for a one-line error message: whitespace folded, at most `limit` characters."""
    if isinstance(what, BaseException):
        what = getattr(what, "message", None) or str(what) or type(what).__name__
    text = " ".join(str(what).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
