"""The dashboard's run monitor without a screen: scans, incremental and bounded log reading, line rendering."""

from __future__ import annotations

from core.profiles import Profile, write
from procx_tui.monitor import Monitor, Tail, command_text, duration_text, matches, render_line, started_text
from tests.tui.helpers import NOW, event, fabricate_run


def profile(homes) -> Profile:
    p = Profile("orders", {"PROCX_TUI_KIND": "procx", "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": "q.db"})
    write(p, homes.profiles)
    return p


def test_a_big_log_is_read_in_steps_and_counted_once(homes) -> None:
    lines = [event(NOW - 100 + i / 100, "cleared", id=str(i)) for i in range(3000)]
    fabricate_run(homes.runs, "20260528-100000-aaaa", profile(homes), started=NOW - 101, ended=NOW - 60,
                  lines=lines)
    monitor = Monitor(homes.runs, clock=lambda: NOW, budget=50_000)
    first = monitor.scan()
    assert first.behind and first.rows[0].loading is not None and 0 < first.rows[0].loading < 1
    scans = 1
    while monitor.scan().behind:
        scans += 1
        assert scans < 100
    row = monitor.scan().rows[0]
    assert row.counts["cleared"] == 3000 and row.loading is None
    assert scans > 3
    tail = monitor.tail(row.id)
    assert tail.lines.total == 3000 and len(tail.lines) == 2000  # the newest lines are kept
    assert row.id in monitor.done  # ended and read to its end: not read again


def test_rows_status_duration_and_rate(homes) -> None:
    p = profile(homes)
    fabricate_run(homes.runs, "20260528-100000-aaaa", p, started=NOW - 30, status="running", exit_code=None,
                  alive=True, lines=[event(NOW - 5 + i / 10, "cleared", id=str(i)) for i in range(20)])
    fabricate_run(homes.runs, "20260528-090000-bbbb", p, started=NOW - 3000, status="running", exit_code=None)
    rows = {r.id: r for r in Monitor(homes.runs, clock=lambda: NOW).scan().rows}
    running, died = rows["20260528-100000-aaaa"], rows["20260528-090000-bbbb"]
    assert (running.status, running.duration, running.rate) == ("running", 30.0, 2.0)
    assert (died.status, died.duration, died.rate) == ("died", None, 0.0)


def test_runs_that_go_away_are_forgotten(homes) -> None:
    folder = fabricate_run(homes.runs, "20260528-100000-aaaa", profile(homes), started=NOW - 30, ended=NOW)
    monitor = Monitor(homes.runs)
    assert [r.id for r in monitor.scan().rows] == ["20260528-100000-aaaa"]
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    assert monitor.scan().rows == [] and not monitor.tails


def test_partial_lines_wait_for_their_end(tmp_path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(b"one\ntw")
    tail = Tail(log).read()
    assert [line for line, _ in tail.lines] == ["one"]
    with open(log, "ab") as f:
        f.write(b"o\n")
    total, new = tail.read().lines.since(1)
    assert total == 2 and new == [("two", None)]


def test_render_line() -> None:
    line = event(NOW, "failed", id="7", level="warn", exit_code=1)
    import json

    text = render_line(line, json.loads(line))
    assert text.plain == "20:26:40.000 warn  procx failed driver=sqlite id=7 exit_code=1"
    assert render_line("[bold]not markup[/]", None).plain == "[bold]not markup[/]"
    assert matches(line, json.loads(line), "warn", "failed") and not matches(line, json.loads(line), "error", None)
    assert matches("output", None, None, "output") and not matches("output", None, "info", None)


def test_formatting() -> None:
    assert [duration_text(s) for s in (None, 5, 65, 3700, 90000)] == ["-", "5s", "1m05s", "1h01m", "1d01h"]
    assert started_text(NOW - 60, NOW) == "20:25:40" and started_text(NOW - 86400, NOW) == "05-27 20:26"
    import sys

    assert command_text([sys.executable, "-m", "core", "procx", "-env-file", "/x/y.env", "cat"], "/x/y.env") == (
        "procx -env-file y.env cat")


def test_counting_without_parsing_agrees_with_events(tmp_path) -> None:
    """Lines older than what is kept are only counted: the counts and rates match core.runs.Events exactly."""
    from core.runs import Events

    lines = []
    for i in range(500):
        lines += [event(NOW + i, "got", id=str(i)), f'{{"id": {i}, "app": "not procx"}}', "plain output",
                  event(NOW + i + 0.5, "failed" if i % 7 == 0 else "cleared", id=str(i)),
                  '{"time": 1, "level": "info", "app": "pushx", "msg": "a message"}',
                  "partial output" + event(NOW + i, "pushed", app="pushx"),
                  event(NOW + i, "pushed", app="pushx", messages=i % 5 + 1, bytes=10)]  # a pushx -bulk batch
    log = tmp_path / "output.log"
    log.write_text("\n".join(lines) + "\n")
    tail, events = Tail(log, keep=100).read(), Events(log, keep=100).read()
    assert tail.counts == events.counts and list(tail.recent) == list(events.recent)
    assert events.counts["pushed"] == 500 + sum(i % 5 + 1 for i in range(500))
    assert list(tail.lines) == list(events.lines)
    total, new = tail.lines.since(tail.lines.total - 100)
    assert new == list(events.lines)
