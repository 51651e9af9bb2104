"""Logging on stderr: logrus-like text lines, or one JSON object per line (-log-format json).

Events (got, cleared, failed, pushed, error, ...) are what the run supervisor and the TUI read: in json format
every event is written; in text format they are debug lines. Secrets known to the run are masked in every
line, as are credentials inside URLs.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable

LEVELS = {"panic": 0, "fatal": 1, "error": 2, "warn": 3, "warning": 3, "info": 4, "debug": 5, "trace": 6}
_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]*:)[^@\s/]+@")
MASK = "********"


class Logger:
    def __init__(self, app: str) -> None:
        self.app = app
        self.threshold = LEVELS.get(os.environ.get("LOG_LEVEL", "").lower(), LEVELS["info"])
        self.json = False
        self.fields: dict[str, object] = {}
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self.stream = sys.stderr
        self.hooks: list[Callable[[str, dict[str, object]], None]] = []  # see every event (the metrics)

    def configure(self, *, fmt: str = "text", secrets: list[str] = (), **fields: object) -> None:
        self.json = fmt == "json"
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self.fields.update(fields)

    def enabled(self, level: str) -> bool:
        return LEVELS[level] <= self.threshold

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(r"\1" + MASK + "@", text)

    def log(self, level: str, msg: str, **fields: object) -> None:
        if self.enabled(level):
            self._write(level, msg, None, fields)

    def error(self, msg: str, **fields: object) -> None:
        self.log("error", msg, **fields)

    def warn(self, msg: str, **fields: object) -> None:
        self.log("warn", msg, **fields)

    def debug(self, msg: str, **fields: object) -> None:
        self.log("debug", msg, **fields)

    def event(self, event: str, level: str = "info", **fields: object) -> None:
        """A structured event: always in json format (unless below the level), debug text otherwise; every
        hook sees it either way."""
        for hook in self.hooks:
            hook(event, fields)
        if self.json and self.enabled(level):
            self._write(level, event, event, fields)
        elif not self.json and self.enabled("debug"):
            self._write("debug", event, event, fields)

    def _write(self, level: str, msg: str, event: str | None, fields: dict[str, object]) -> None:
        now = time.time()
        if self.json:
            import json

            record = {"time": round(now, 6), "level": level, "app": self.app}
            if event:
                record["event"] = event
            else:
                record["msg"] = msg
            record.update(self.fields)
            record.update(fields)
            line = json.dumps(record, ensure_ascii=False, default=str)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
            parts = [f"time={stamp}", f"level={level}", f"msg={_quote(msg)}", f"app={self.app}"]
            parts += [f"{k}={_quote(str(v))}" for k, v in {**self.fields, **fields}.items()]
            line = " ".join(parts)
        line = self.redact(line) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def metrics_serving(config, log: Logger, make_source: Callable[[], object] | None = None
                    ) -> contextlib.AbstractContextManager:
    """-metrics-addr: serve the run's metrics (core.metrics, fed by this logger's hooks) while the block runs;
    core.metrics is imported only when the option is set."""
    if not config.get("metrics-addr"):
        return contextlib.nullcontext()
    from core import metrics

    return metrics.serving(config, log, make_source)
