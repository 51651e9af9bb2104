"""Prometheus metrics of procx and pushx (-metrics-addr HOST:PORT): the text exposition format at /metrics.

The counters are fed from the events the Logger emits anyway (got, cleared, failed, dropped, dead-lettered,
pushed, error), through one hook, so the engine has no metrics code of its own. The server is the standard
library's http.server on a daemon thread, imported only when -metrics-addr is set. The queue depth (procx, where
the driver has depth()) is read at scrape time from a connection of its own, at most every DEPTH_EVERY seconds.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from core.errors import ProcxError, UsageError
from core.log import Logger
from core.options import PROCX

if TYPE_CHECKING:  # core.work imports the settings, which import this module (for the option's check)
    from core.work import Source

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DEPTH_EVERY = 5.0  # seconds: the queue depth is asked at most this often, and only when scraped
OUTCOMES = {"got": "got", "cleared": "cleared", "failed": "failed", "dropped": "dropped",
            "dead-lettered": "dead_lettered"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (every interface, as Go's net/http) -> (host, port); port 0 = any free."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid address {text!r} (HOST:PORT, e.g. 127.0.0.1:9090, or :9090 for every interface)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def check_address(text: str) -> str:
    """The option's check: the address must parse; the text is kept as given."""
    if text:
        parse_address(text)
    return text


class Histogram:
    __slots__ = ("buckets", "sum", "count")

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        at = bisect.bisect_left(BUCKETS, value)
        if at < len(BUCKETS):
            self.buckets[at] += 1
        self.sum += value
        self.count += 1

    def samples(self, name: str, labels: dict[str, str]) -> Iterator[str]:
        total = 0
        for bound, count in zip(BUCKETS, self.buckets, strict=True):
            total += count
            yield sample(f"{name}_bucket", {**labels, "le": _number(bound)}, total)
        yield sample(f"{name}_bucket", {**labels, "le": "+Inf"}, self.count)
        yield sample(f"{name}_sum", labels, self.sum)
        yield sample(f"{name}_count", labels, self.count)


def _number(value: float) -> str:
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}"


class Metrics:
    """The counters of one procx or pushx run, fed by `on_event`, rendered by `render`."""

    def __init__(self, side: str, driver: str, depth: Callable[[], int | None] | None = None) -> None:
        self.side = side
        self.labels = {"driver": driver}
        self.depth = depth
        self.lock = threading.Lock()
        self.items = dict.fromkeys(OUTCOMES.values(), 0)
        self.durations: dict[str, Histogram] = {}  # procx: by outcome
        self.pushed = 0
        self.bytes = 0
        self.push_durations = Histogram()
        self.errors = 0

    def on_event(self, event: str, fields: dict[str, object]) -> None:
        """The Logger hook: count what the event says happened."""
        with self.lock:
            if event == "error":
                self.errors += 1
            elif event == "pushed":
                self.pushed += int(fields.get("messages", 1))
                self.bytes += int(fields.get("bytes", 0) or 0)
                if "duration_ms" in fields:
                    self.push_durations.observe(float(fields["duration_ms"]) / 1000)
            elif event in OUTCOMES:
                outcome = OUTCOMES[event]
                self.items[outcome] += 1
                if "duration_ms" in fields:
                    histogram = self.durations.setdefault(outcome, Histogram())
                    histogram.observe(float(fields["duration_ms"]) / 1000)

    def render(self) -> str:
        depth = self.depth() if self.depth is not None else None  # outside the lock: it may take a while
        with self.lock:
            lines = self._procx(depth) if self.side == PROCX else self._pushx()
        return "\n".join(lines) + "\n"

    def _family(self, name: str, kind: str, help: str) -> list[str]:
        return [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]

    def _procx(self, depth: int | None) -> list[str]:
        lines = self._family("procx_items_total", "counter",
                             "Units of work by outcome: got (taken), cleared, failed (back to the source), dropped, "
                             "dead_lettered.")
        lines += [sample("procx_items_total", {**self.labels, "outcome": o}, n) for o, n in self.items.items()]
        lines += self._family("procx_child_duration_seconds", "histogram",
                              "Seconds from taking a unit of work to finishing it (the child's run, then the "
                              "clear or fail), by outcome.")
        for outcome, histogram in self.durations.items():
            lines += histogram.samples("procx_child_duration_seconds", {**self.labels, "outcome": outcome})
        lines += self._family("procx_errors_total", "counter", "Provider errors (each one logged as an error event).")
        lines.append(sample("procx_errors_total", self.labels, self.errors))
        if depth is not None:
            lines += self._family("procx_queue_depth", "gauge",
                                  f"Work waiting at the source, as the driver's depth() tells (read at most every "
                                  f"{DEPTH_EVERY:g}s).")
            lines.append(sample("procx_queue_depth", self.labels, depth))
        return lines

    def _pushx(self) -> list[str]:
        lines = self._family("pushx_pushed_total", "counter", "Messages pushed (acknowledged by the provider).")
        lines.append(sample("pushx_pushed_total", self.labels, self.pushed))
        lines += self._family("pushx_bytes_total", "counter", "Payload bytes pushed.")
        lines.append(sample("pushx_bytes_total", self.labels, self.bytes))
        lines += self._family("pushx_push_duration_seconds", "histogram",
                              "Seconds per push call (one message, or one batch with -bulk).")
        lines += self.push_durations.samples("pushx_push_duration_seconds", self.labels)
        lines += self._family("pushx_errors_total", "counter", "Errors (each one logged as an error event).")
        lines.append(sample("pushx_errors_total", self.labels, self.errors))
        return lines


class Depth:
    """The queue depth from a Source of its own (never the workers'), cached for DEPTH_EVERY seconds."""

    def __init__(self, source: Source, log: Logger, every: float = DEPTH_EVERY) -> None:
        self.source = source
        self.log = log
        self.every = every
        self.opened = False
        self.value: int | None = None
        self.read_at = -math.inf
        self.lock = threading.Lock()

    def __call__(self) -> int | None:
        from core.work import call, connect

        with self.lock:
            if time.monotonic() - self.read_at < self.every:
                return self.value
            self.read_at = time.monotonic()
            try:
                if not self.opened:
                    connect(self.source)
                    self.opened = True
                self.value = int(call(self.source.config, "read the queue depth", self.source.depth))
            except ProcxError as exc:
                self.log.debug(f"metrics: cannot read the queue depth: {exc}")
                self.value = None
                self.close()
            return self.value

    def close(self) -> None:
        if self.opened:
            self.opened = False
            with contextlib.suppress(Exception):
                self.source.close()


class Server:
    """GET /metrics on a daemon thread (http.server from the standard library)."""

    def __init__(self, metrics: Metrics, host: str, port: int, flag: str) -> None:
        import socket
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?", 1)[0] != "/metrics":
                    self._reply(404, b"not found: the metrics are at /metrics\n", "text/plain; charset=utf-8")
                    return
                self._reply(200, metrics.render().encode(), CONTENT_TYPE)

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not logged
                pass

        class HttpServer(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        try:
            self.httpd = HttpServer((host, port), Handler)
        except OSError as exc:
            raise UsageError(f"{flag}: cannot listen on {host or '*'}:{port}: {exc.strerror or exc}") from None
        bound_host, bound_port = self.httpd.server_address[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"{metrics.side}-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def serving(config, log: Logger, make_source: Callable[[], Source] | None = None) -> Iterator[Metrics]:
    """Serve the run's metrics at -metrics-addr while the block runs (core.log.metrics_serving calls this only
    when it is set)."""
    address = config["metrics-addr"]
    depth = None
    if make_source is not None:
        source = make_source()
        if callable(getattr(source, "depth", None)):
            depth = Depth(source, log)
    metrics = Metrics(config.side, config.driver, depth)
    server = Server(metrics, *parse_address(address), flag=config.describe("metrics-addr"))
    log.hooks.append(metrics.on_event)
    try:
        log.event("metrics", address=server.url)
        yield metrics
    finally:
        log.hooks.remove(metrics.on_event)
        server.close()
        if depth is not None:
            depth.close()
