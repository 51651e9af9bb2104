"""Bounded retries (extensions): -max-attempts, the -dead-letter target, -retry-backoff, and the attempt count
procx keeps itself for drivers whose provider keeps none.

- The attempt of a unit of work is the provider's own delivery counter where it has one (Work.exact). Otherwise
  procx counts failures itself in a small SQLite file in the state directory (`attempts.db`), keyed by the driver,
  its connection settings and the work's id (the payload's SHA-256 when the driver gives no id), so the count
  survives a procx restart on the same machine (not across machines or containers without that directory). A
  provider's lower bound (a "redelivered" flag) is raised to procx's own count.
- -dead-letter holds pushx arguments (`-driver sqlite -sqlite-path dlq.db`, or `-env-file dlq.env` with PUSHX_* lines):
  the target is declared exactly like a pushx run, with pushx's own options and checks.
"""

from __future__ import annotations

import json
import os
import shlex
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from core.settings import Config
    from core.work import Work

ATTEMPTS_FILE = "attempts.db"
FORGET_AFTER = 14 * 24 * 3600.0  # counts of work not seen for this long are dropped (another procx finished it)
IGNORED_PUSHX = ("in", "in-file", "out")  # pushx options that mean nothing for a dead-letter target


class Policy:
    """-max-attempts and -retry-backoff of one procx configuration."""

    __slots__ = ("max_attempts", "base", "cap")

    def __init__(self, config: Config) -> None:
        self.max_attempts = int(config["max-attempts"])
        self.base = float(config["retry-backoff"])
        self.cap = float(config["retry-backoff-max"])

    def exhausted(self, work: Work) -> bool:
        """The work failed its last allowed attempt: it is dead-lettered instead of failed back."""
        return self.max_attempts > 0 and work.attempt >= self.max_attempts

    def delay(self, attempt: int) -> float:
        """Seconds before a work that failed its `attempt`-th attempt is offered again: base, doubling, capped."""
        if self.base <= 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 60))


def check_count(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be 0 (unlimited) or more, not {value}")
    return value


def check_delay(value: float) -> float:
    if value < 0:
        raise ValueError("must not be negative")
    return value


# -- the dead-letter target ---------------------------------------------------------------------------------

def _environment() -> dict[str, str]:
    """procx's environment without PUSHX_* variables: only -dead-letter's flags and its env file configure the
    target (a ${VAR} in that file still reads procx's environment)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PUSHX_")}


def target_config(text: str) -> Config:
    """-dead-letter's pushx arguments -> the target's pushx Config; ValueError saying what is wrong."""
    from core.errors import UsageError
    from core.options import PUSHX
    from core.settings import load

    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split the pushx arguments ({exc})") from None
    try:
        parsed, config = load(PUSHX, argv, _environment())
    except UsageError as exc:
        raise ValueError(f"pushx arguments: {exc}") from None
    if parsed.help or parsed.version or config is None:
        raise ValueError("pushx arguments: -h/-version are not a dead-letter target")
    if config.command:
        raise ValueError(f"pushx arguments: unexpected {config.command[0]!r} (flags only, e.g. -driver sqlite "
                         "-sqlite-path dlq.db)")
    for name in IGNORED_PUSHX:
        if config.origins[name] != "default":
            raise ValueError(f"pushx arguments: {config.options[name].flag} does not apply (the payload is the "
                             "dead-lettered work's)")
    for name, where in config.origins.items():
        if config.options[name].secret and where.startswith("-"):
            raise ValueError(f"pushx arguments: {where} is a secret: put it in an env file (-env-file) instead, "
                             "since this setting is shown in forms and logs")
    return config


def check_target(text: str) -> str:
    """The option's check: the target must be a valid pushx configuration (the text stays the value)."""
    if text.strip():
        target_config(text)
    return text


# -- the attempts procx counts itself -----------------------------------------------------------------------

def scope(config: Config) -> str:
    """Which source the counts belong to: the driver and its non-secret connection settings."""
    settings = {o.name: o.render(config[o.name]) for o in config.spec.options_for(config.side)
                if o.group == "connection" and not o.secret}
    import hashlib

    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return f"{config.driver}:{digest}"


def work_key(work: Work) -> str:
    if work.id is not None:
        return "id:" + str(work.id)
    import hashlib

    return "sha256:" + hashlib.sha256(work.payload).hexdigest()


class AttemptStore:
    """Failure counts of work whose provider keeps none: (scope, key) -> failures, in one SQLite file."""

    def __init__(self, path: str, scope: str) -> None:
        self.path = path
        self.scope = scope
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None

    def _run(self, sql: str, args: tuple) -> sqlite3.Cursor:
        """One statement; an SQLite error becomes an OSError (the file is procx's own: a disk-level problem)."""
        import sqlite3  # only when procx counts attempts itself: not on every start

        with self.lock:
            try:
                return self._db().execute(sql, args)
            except sqlite3.Error as exc:
                raise OSError(f"{self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        import sqlite3

        if self.conn is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS attempts (scope TEXT NOT NULL, key TEXT NOT NULL, "
                         "failures INTEGER NOT NULL, seen REAL NOT NULL, PRIMARY KEY (scope, key))")
            conn.execute("DELETE FROM attempts WHERE seen < ?", (time.time() - FORGET_AFTER,))
            self.conn = conn
        return self.conn

    def failures(self, key: str) -> int:
        row = self._run("SELECT failures FROM attempts WHERE scope = ? AND key = ?", (self.scope, key)).fetchone()
        return row[0] if row else 0

    def failed(self, key: str) -> None:
        self._run("INSERT INTO attempts (scope, key, failures, seen) VALUES (?, ?, 1, ?) ON CONFLICT (scope, key) "
                  "DO UPDATE SET failures = failures + 1, seen = excluded.seen", (self.scope, key, time.time()))

    def forget(self, key: str) -> None:
        self._run("DELETE FROM attempts WHERE scope = ? AND key = ?", (self.scope, key))

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


def open_store(config: Config) -> AttemptStore:
    from core.runs import state_dir

    return AttemptStore(str(state_dir() / ATTEMPTS_FILE), scope(config))
