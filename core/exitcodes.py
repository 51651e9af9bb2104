"""The exit-code contract (an extension): what procx does with the work for each exit status of the child.

`-exit-codes '0=clear,3=dead-letter,4=drop,64-78=fail'`: comma-separated `STATUS=ACTION` or `FIRST-LAST=ACTION`
entries, statuses 0-255. A status no entry names keeps the original's rule: 0 clears, anything else fails.

clear        the work was done: it is cleared
fail         the work was not done: it is failed back so that it is retried (the default for non-zero)
drop         the work is removed without being done (cleared, counted as "dropped")
dead-letter  the work is handed to the driver's dead-letter target (only drivers whose Source has one)
"""

from __future__ import annotations

CLEAR, FAIL, DROP, DEAD_LETTER = "clear", "fail", "drop", "dead-letter"
ACTIONS = (CLEAR, FAIL, DROP, DEAD_LETTER)
MAX_STATUS = 255
EXAMPLE = "e.g. 0=clear,3=dead-letter,4=drop,64-78=fail"


class ExitCodes:
    """A parsed mapping: status -> action, with the original's default for statuses it does not name."""

    __slots__ = ("mapping",)

    def __init__(self, mapping: dict[int, str] | None = None) -> None:
        self.mapping = dict(mapping or {})

    def __repr__(self) -> str:
        return f"ExitCodes({self.mapping!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExitCodes) and self.mapping == other.mapping

    def action(self, status: int) -> str:
        return self.mapping.get(status, CLEAR if status == 0 else FAIL)

    def uses(self, action: str) -> bool:
        return action in self.mapping.values()


def _status(text: str, whole: str) -> int:
    if not text.isdigit():  # digits only: no signs, no spaces inside, no 0x
        raise ValueError(f"invalid exit status {text!r} in {whole!r} (0-{MAX_STATUS}; {EXAMPLE})")
    value = int(text)
    if value > MAX_STATUS:
        raise ValueError(f"exit status {value} out of range in {whole!r} (0-{MAX_STATUS})")
    return value


def parse(text: str) -> ExitCodes:
    """Text -> ExitCodes; ValueError saying what is wrong (the settings add the flag and variable)."""
    mapping: dict[int, str] = {}
    if not text.strip():
        return ExitCodes()
    for raw in text.split(","):
        entry = raw.strip()
        codes, eq, action = entry.partition("=")
        codes, action = codes.strip(), action.strip().lower()
        if not entry or not eq or not codes:
            raise ValueError(f"invalid entry {entry!r} in {text!r}: use STATUS=ACTION or FIRST-LAST=ACTION "
                             f"({EXAMPLE})")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} in {text!r} (one of: {', '.join(ACTIONS)})")
        first, dash, last = codes.partition("-")
        low = _status(first.strip(), text)
        high = _status(last.strip(), text) if dash else low
        if high < low:
            raise ValueError(f"empty range {codes!r} in {text!r} (the first status must not be above the last)")
        for status in range(low, high + 1):
            if status in mapping:
                raise ValueError(f"exit status {status} is mapped twice in {text!r}")
            mapping[status] = action
    return ExitCodes(mapping)


def check(text: str) -> str:
    """The option's check: validate at startup, keep the text as the setting's value."""
    parse(text)
    return text
