"""-metrics-addr: the Prometheus text endpoint of a running procx daemon (sqlite) and of pushx -bulk."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core import api
from core.metrics import Metrics, parse_address
from core.options import PROCX, PUSHX
from tests.support import clean_env, command, run, wait_for

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """The samples of a text exposition, checking its syntax: every line is a comment or `name{labels} value`,
    and every sample belongs to a family declared by a TYPE line before it."""
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no TYPE line before it"
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(resp.read().decode())


def metrics_url(stderr: Path) -> str:
    """The address procx/pushx logged in its `metrics` event (-log-format json; port 0 = a free one)."""
    def found() -> str | None:
        for line in stderr.read_text().splitlines():
            if '"event": "metrics"' in line and line.endswith("}"):  # a whole line
                return json.loads(line)["address"]
        return None
    return wait_for(found)  # type: ignore[return-value]


def test_procx_daemon_on_sqlite_counts_what_happened(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    sq = ["-driver", "sqlite", "-sqlite-path", str(db)]
    with api.Producer(sq) as producer:
        producer.push_many([b"ok", b"flaky", b"bad", b"ok"])
    child = ('case "$PROCX_PAYLOAD" in bad) exit 4;; flaky) [ -e marker ] || { touch marker; exit 1; };; esac; '
             "exit 0")
    err = tmp_path / "procx.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([command("procx"), *sq, "-daemon", "-exit-codes", "4=drop", "-log-format", "json",
                                 "sh", "-c", child], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
                                env=clean_env(PROCX_METRICS_ADDR="127.0.0.1:0"))
    try:
        url = metrics_url(err)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

        def finished() -> dict | None:
            samples = scrape(url)
            done = sum(value(samples, "procx_items_total", driver="sqlite", outcome=o) for o in ("cleared", "dropped"))
            return samples if done == 4 else None

        samples = wait_for(finished)
        counts = {o: value(samples, "procx_items_total", driver="sqlite", outcome=o)
                  for o in ("got", "cleared", "failed", "dropped", "dead_lettered")}
        assert counts == {"got": 5, "cleared": 3, "failed": 1, "dropped": 1, "dead_lettered": 0}
        for outcome, n in (("cleared", 3), ("failed", 1), ("dropped", 1)):
            labels = {"driver": "sqlite", "outcome": outcome}
            assert value(samples, "procx_child_duration_seconds_count", **labels) == n
            assert value(samples, "procx_child_duration_seconds_bucket", le="+Inf", **labels) == n
            assert value(samples, "procx_child_duration_seconds_sum", **labels) > 0
        assert 0 <= value(samples, "procx_queue_depth", driver="sqlite") <= 4  # read at most every 5 s
        assert value(samples, "procx_errors_total", driver="sqlite") == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(urllib.error.URLError):  # the endpoint ends with the daemon
        urllib.request.urlopen(url, timeout=2)


def test_queue_depth_is_read_from_the_source(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    sq = ["-driver", "sqlite", "-sqlite-path", str(db)]
    with api.Producer(sq) as producer:
        producer.push_many([b"a", b"b", b"c"])
    err = tmp_path / "procx.err"
    with open(err, "wb") as stderr:  # one-shot procx, its child waits until the test has scraped
        proc = subprocess.Popen([command("procx"), *sq, "-metrics-addr", "127.0.0.1:0", "-log-format", "json",
                                 "sh", "-c", "while [ ! -e go ]; do sleep 0.02; done"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=stderr, env=clean_env())
    try:
        samples = scrape(metrics_url(err))
        (tmp_path / "go").touch()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert value(samples, "procx_queue_depth", driver="sqlite") == 2  # one of three is being worked on
    assert value(samples, "procx_items_total", driver="sqlite", outcome="got") == 1


def test_pushx_bulk_counts_messages_bytes_and_batches(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    err = tmp_path / "pushx.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([command("pushx"), "-driver", "sqlite", "-sqlite-path", str(db), "-bulk",
                                 "-bulk-batch", "100", "-log-format", "json"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                env=clean_env(PUSHX_METRICS_ADDR="127.0.0.1:0"))
    try:
        url = metrics_url(err)
        lines = b"".join(b"message %d\n" % i for i in range(250))
        proc.stdin.write(lines)
        proc.stdin.flush()
        samples = wait_for(lambda: (s := scrape(url)) and value(s, "pushx_pushed_total", driver="sqlite") == 250
                           and s)
        assert value(samples, "pushx_bytes_total", driver="sqlite") == len(lines) - 250
        assert value(samples, "pushx_push_duration_seconds_count", driver="sqlite") == 3  # 100 + 100 + 50
        assert value(samples, "pushx_push_duration_seconds_bucket", driver="sqlite", le="+Inf") == 3
        assert value(samples, "pushx_errors_total", driver="sqlite") == 0
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_other_paths_are_not_found(tmp_path: Path) -> None:
    metrics = Metrics(PUSHX, "fs")
    from core.metrics import Server

    server = Server(metrics, "127.0.0.1", 0, "-metrics-addr")
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=5)
        assert caught.value.code == 404
        assert value(scrape(server.url), "pushx_pushed_total", driver="fs") == 0
    finally:
        server.close()


def test_events_feed_the_counters_and_the_text_parses() -> None:
    metrics = Metrics(PROCX, 'odd"driver\\')
    metrics.on_event("got", {"id": "1"})
    metrics.on_event("cleared", {"duration_ms": 7.0})
    metrics.on_event("got", {"id": "2"})
    metrics.on_event("dead-lettered", {"duration_ms": 70000.0, "status": 3})
    metrics.on_event("error", {"error": "x"})
    metrics.on_event("started", {})
    samples = parse(metrics.render())
    driver = 'odd\\"driver\\\\'
    assert value(samples, "procx_items_total", driver=driver, outcome="got") == 2
    assert value(samples, "procx_items_total", driver=driver, outcome="dead_lettered") == 1
    assert value(samples, "procx_child_duration_seconds_bucket", driver=driver, outcome="cleared", le="0.01") == 1
    assert value(samples, "procx_child_duration_seconds_bucket", driver=driver, outcome="cleared", le="0.005") == 0
    assert value(samples, "procx_child_duration_seconds_bucket", driver=driver, outcome="dead_lettered",
                 le="60") == 0
    assert value(samples, "procx_child_duration_seconds_bucket", driver=driver, outcome="dead_lettered",
                 le="300") == 1
    assert value(samples, "procx_errors_total", driver=driver) == 1
    assert not any(name == "procx_queue_depth" for name, _ in samples)  # no depth() given


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:9090", ("127.0.0.1", 9090)), (":9090", ("", 9090)), ("[::1]:0", ("::1", 0)),
    ("localhost:1", ("localhost", 1)),
])
def test_addresses(text: str, parsed: tuple[str, int]) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("addr", ["9090", "host:", "host:http", "127.0.0.1:70000"])
def test_bad_address_is_a_usage_error(tmp_path: Path, addr: str) -> None:
    result = run("pushx", "-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db"), "-metrics-addr", addr,
                 "-in", "x")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("pushx: -metrics-addr (PUSHX_METRICS_ADDR): invalid address")


def test_address_in_use_is_a_usage_error_before_anything_is_done(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("procx", "-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db"),
                     "-metrics-addr", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.decode()
