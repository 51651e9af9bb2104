"""Pilot tests of the dashboard: every action, on its key, against real runs of the embedded sqlite driver."""

from __future__ import annotations

import contextlib
import os
import sys

from textual import events
from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from core import profiles, runs
from core.profiles import find
from procx_tui.app import Dashboard
from procx_tui.screens import Confirm, Help
from procx_tui.widgets import LogView, ProfilesTable, RunsTable
from tests.tui.helpers import NOW, event, fabricate_run, push, sqlite_profile, wait_until, worker_command

SIZE = (120, 40)


def dashboard(homes, **kwargs) -> Dashboard:
    kwargs.setdefault("poll", 0.1)
    kwargs.setdefault("stop_grace", 10)
    return Dashboard(homes.profiles, homes.state, **kwargs)


def cell(app: Dashboard, run_id: str, column: str) -> str:
    return app.query_one(RunsTable).cell(run_id, column)


def log_text(app: Dashboard) -> str:
    return "\n".join(strip.text for strip in app.query_one("#log").lines)


def screen_text(app: Dashboard) -> str:
    return app.export_screenshot()


async def highlight_profile(pilot, app: Dashboard, name: str) -> None:
    table = app.query_one(ProfilesTable)
    table.focus()
    assert table.select_key(name), f"no profile {name}: {table.order}"
    await pilot.pause()


def demo_worker(homes) -> tuple[str, str]:
    """The installed demo-worker example (node, or a Python child where node is missing); its queue file."""
    profile = find("demo-worker", homes.profiles)
    if worker_command():
        profile.variables["PROCX_TUI_COMMAND"] = worker_command()
        profiles.write(profile, homes.profiles)
    return profile.variables["PROCX_SQLITE_PATH"], profile.variables["PROCX_SQLITE_QUEUE"]


async def test_first_start_installs_the_examples_and_says_so(homes) -> None:
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        assert {"demo-feed", "demo-worker", "quickstart"} <= set(app.profiles)
        assert any("installed" in n.message and "example profiles" in n.message for n in app._notifications)
        assert app.query_one(ProfilesTable).row_count == len(app.profiles)


async def test_no_examples_when_profiles_exist(homes) -> None:
    sqlite_profile(homes.profiles, "mine", homes.root / "q.db", command="true")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        assert list(app.profiles) == ["mine"]
        assert not list(app._notifications)


async def test_launch_counters_rise_stop_and_restart(homes) -> None:
    profiles.install_examples(homes.profiles)
    db, queue = demo_worker(homes)
    push(db, *(f'{{"id": {i}, "name": "job {i}"}}' for i in range(3)), queue=queue)
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "demo-worker")
        await pilot.press("l")
        table = app.query_one(RunsTable)
        run_id = await wait_until(pilot, lambda: table.current_key, what="a run row")
        await wait_until(pilot, lambda: cell(app, run_id, "status") == "running")
        await wait_until(pilot, lambda: cell(app, run_id, "got/cleared/failed") == "3/3/0", timeout=20,
                         what=lambda: cell(app, run_id, "got/cleared/failed"))
        push(db, '{"id": 3, "name": "job 3"}', '{"id": 4, "name": "job 4"}', queue=queue)
        await wait_until(pilot, lambda: cell(app, run_id, "got/cleared/failed") == "5/5/0", timeout=20,
                         what=lambda: cell(app, run_id, "got/cleared/failed"))
        # the live log: events rendered readably, the child's output as it is
        await wait_until(pilot, lambda: '{"id":4,' in log_text(app), what=lambda: log_text(app))
        assert "info  procx cleared driver=sqlite id=5" in log_text(app)
        assert app.query_one(LogView).run_id == run_id

        await pilot.press("s")
        await wait_until(pilot, lambda: cell(app, run_id, "status") == "stopped", timeout=15,
                         what=lambda: cell(app, run_id, "status"))
        assert runs.find(run_id, homes.runs).status == runs.STOPPED

        await pilot.press("r")  # restart: a new run of the same profile, highlighted
        new_id = await wait_until(pilot, lambda: table.current_key != run_id and table.current_key,
                                  what="the restarted run")
        await wait_until(pilot, lambda: cell(app, new_id, "status") == "running")
        assert cell(app, new_id, "profile") == "demo-worker"
        await pilot.press("r")  # restarting a running run stops it first
        third = await wait_until(pilot, lambda: table.current_key not in (run_id, new_id) and table.current_key,
                                 timeout=15, what="the second restart")
        await wait_until(pilot, lambda: cell(app, new_id, "status") == "stopped", timeout=15)
        await wait_until(pilot, lambda: cell(app, third, "status") == "running")
        await pilot.press("s")
        await wait_until(pilot, lambda: cell(app, third, "status") == "stopped", timeout=15)
        await app.workers.wait_for_complete()


async def test_reattach_to_runs_started_elsewhere_and_report_died(homes) -> None:
    profile = sqlite_profile(homes.profiles, "feed", homes.root / "q.db", kind="pushx",
                             PUSHX_INPUT_STR='{"id": 1}')
    fabricate_run(homes.runs, "20260528-090000-dead", profile, started=NOW - 600, status="running", exit_code=None,
                  lines=[event(NOW - 590, "started", app="pushx")])
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        assert cell(app, "20260528-090000-dead", "status") == "died"
        other = runs.start(profile, homes.runs)  # as `procx-tui run` in another terminal would
        await wait_until(pilot, lambda: other.id in app.rows, what="the run started elsewhere")
        await wait_until(pilot, lambda: cell(app, other.id, "status") == "exited", timeout=15)
        await wait_until(pilot, lambda: cell(app, other.id, "got/cleared/failed") == "0/0/0 +1")
        assert app.query_one(RunsTable).order[0] == other.id  # newest first


async def test_remove_an_ended_run(homes) -> None:
    profile = sqlite_profile(homes.profiles, "feed", homes.root / "q.db", kind="pushx")
    fabricate_run(homes.runs, "20260528-090000-aaaa", profile, started=NOW - 60, ended=NOW - 59)
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        app.query_one(RunsTable).focus()
        await pilot.press("x")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.rows)
        assert not (homes.runs / "20260528-090000-aaaa").exists()


async def test_delete_a_profile_asks_first(homes) -> None:
    sqlite_profile(homes.profiles, "keep", homes.root / "q.db", command="true")
    sqlite_profile(homes.profiles, "gone", homes.root / "q.db", command="true")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "gone")
        await pilot.press("delete")
        assert isinstance(app.screen, Confirm)
        assert app.screen.question == "Delete profile gone? Its runs stay listed."
        await pilot.press("n")  # no: nothing happens
        assert (homes.profiles / "gone.env").exists() and not isinstance(app.screen, Confirm)
        fabricate_run(homes.runs, "20260528-090000-aaaa", profiles.read(homes.profiles / "gone.env"),
                      started=NOW - 60, status="running", alive=True, exit_code=None)
        await wait_until(pilot, lambda: "20260528-090000-aaaa" in app.rows)
        await pilot.press("delete")
        assert "1 of its runs is still running and will go on until stopped (s)" in app.screen.question
        await pilot.press("n")
        await pilot.press("delete")
        await pilot.click("#yes")
        await wait_until(pilot, lambda: "gone" not in app.profiles)
        assert not (homes.profiles / "gone.env").exists()
        assert app.query_one(ProfilesTable).order == ["keep"]


async def test_duplicate_a_profile(homes) -> None:
    original = sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true",
                              PROCX_SQLITE_QUEUE="orders")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "orders")
        await pilot.press("c")
        await wait_until(pilot, lambda: "orders-copy" in app.profiles)
        assert find("orders-copy", homes.profiles).variables == original.variables
        assert app.query_one(ProfilesTable).current_key == "orders-copy"
        await pilot.press("c")
        await wait_until(pilot, lambda: "orders-copy-copy" in app.profiles)
        await highlight_profile(pilot, app, "orders")
        await pilot.press("c")
        await wait_until(pilot, lambda: "orders-copy2" in app.profiles)


async def test_command_palette_runs_actions(homes) -> None:
    sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "orders")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"duplicate prof")

        def highlighted() -> str:
            options = app.screen.query_one(CommandList)
            if options.highlighted is None:
                return ""
            return str(options.get_option_at_index(options.highlighted).prompt)

        await wait_until(pilot, lambda: "Duplicate profile" in highlighted(), what=highlighted)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "orders-copy" in app.profiles)

        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"help")
        await wait_until(pilot, lambda: highlighted().startswith("Help"), what=highlighted)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, Help))


async def test_help_screen(homes) -> None:
    sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, Help)
        await pilot.press("escape")
        assert not isinstance(app.screen, Help)


async def test_log_follow_search_and_filters(homes) -> None:
    profile = sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true")
    lines = [event(NOW - 30, "started")]
    for i in range(40):
        lines += [event(NOW - 29 + i * 0.5, "got", id=str(i)), f"child output {i}",
                  event(NOW - 29 + i * 0.5 + 0.1, "failed" if i % 10 == 3 else "cleared", id=str(i),
                        level="warn" if i % 10 == 3 else "info")]
    folder = fabricate_run(homes.runs, "20260528-090000-aaaa", profile, started=NOW - 31, status="running",
                           alive=True, exit_code=None, lines=lines)
    app = dashboard(homes, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: "child output 39" in log_text(app))
        assert cell(app, "20260528-090000-aaaa", "got/cleared/failed") == "40/36/4"
        # following: new lines arrive and the view stays at the end
        with open(folder / "output.log", "a") as f:
            f.write("a partial line without its end")
        await pilot.pause(0.3)
        assert "a partial line" not in log_text(app)  # held back until complete
        with open(folder / "output.log", "a") as f:
            f.write(", now ended\n")
        await wait_until(pilot, lambda: "a partial line without its end, now ended" in log_text(app))
        log = app.query_one("#log")
        await wait_until(pilot, lambda: log.scroll_offset.y == log.max_scroll_y)
        await pilot.press("f")
        assert view.follow is False and log.auto_scroll is False
        assert view.border_subtitle.startswith("paused")
        await pilot.press("f")
        assert view.follow is True
        # scrolling up pauses following, scrolling back down to the end resumes it
        log.focus()
        await pilot.press("pageup")
        assert view.follow is False and view.border_subtitle.startswith("paused")
        await pilot.press("down")
        assert view.follow is False  # not at the end yet
        await pilot.press("end")
        assert view.follow is True and view.border_subtitle == "following"
        log.post_message(events.MouseScrollUp(log, 2, 2, 0, -1, 0, False, False, False))  # the mouse wheel
        await wait_until(pilot, lambda: view.follow is False)
        await pilot.press("f")

        view.set_filters(kind="failed")
        text = log_text(app)
        assert text.count("procx failed") == 4 and "child output" not in text and "cleared" not in text
        view.set_filters(kind=None, level="warn")
        assert log_text(app).count("warn  procx failed") == 4 and "info" not in log_text(app)
        view.set_filters(level=None, kind="output")
        assert "procx" not in log_text(app) and "child output 7" in log_text(app)
        view.set_filters(kind=None)

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"output 3", "enter")
        await wait_until(pilot, lambda: view.search == "output 3")
        assert log_text(app).split("\n") == ["child output 3"] + [f"child output 3{i}" for i in range(10)]
        assert app.focused is log


async def test_open_the_log_in_a_pager(homes, monkeypatch) -> None:
    profile = sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true")
    fabricate_run(homes.runs, "20260528-090000-aaaa", profile, started=NOW - 60, ended=NOW - 50,
                  lines=["hello from the log"])
    seen = homes.root / "paged"
    monkeypatch.setenv("PAGED", str(seen))
    copy = "import os,shutil,sys; shutil.copy(sys.argv[1], os.environ[\"PAGED\"])"
    monkeypatch.setenv("PAGER", f"{sys.executable} -c '{copy}'")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await pilot.press("o")  # the headless test driver cannot hand the terminal over: it says so
        assert any("cannot hand the terminal" in n.message for n in app._notifications)
        monkeypatch.setattr(Dashboard, "suspend", lambda self: contextlib.nullcontext())
        await pilot.press("o")
        assert seen.read_text() == "hello from the log\n"


async def test_check_connection_runs_in_a_subprocess(homes) -> None:
    sqlite_profile(homes.profiles, "orders", homes.root / "q.db", command="true")
    profiles.write(profiles.Profile("broken", {  # nothing listens on port 1 (or redis is not installed)
        "PROCX_TUI_KIND": "procx", "PROCX_DRIVER": "redis-list", "PROCX_REDIS_HOST": "127.0.0.1",
        "PROCX_REDIS_PORT": "1", "PROCX_REDIS_KEY": "jobs"}), homes.profiles)
    push(homes.root / "q.db", "a", "b")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "orders")
        await pilot.press("k")
        await wait_until(pilot, lambda: [n for n in app._notifications if "reachable" in n.title], timeout=20,
                         what=lambda: [(n.title, n.message) for n in app._notifications])
        note = next(n for n in app._notifications if "reachable" in n.title)
        assert note.message == "procx (sqlite): reachable, 2 waiting"
        await highlight_profile(pilot, app, "broken")
        await pilot.press("k")
        await wait_until(pilot, lambda: [n for n in app._notifications if "check failed" in n.title], timeout=20)
        note = next(n for n in app._notifications if "check failed" in n.title)
        assert "UNREACHABLE" in note.message, note.message


async def test_launch_error_is_shown(homes) -> None:
    sqlite_profile(homes.profiles, "bad", homes.root / "q.db", command="true", PROCX_DAEMON="maybe")
    app = dashboard(homes)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.scans >= 1)
        await highlight_profile(pilot, app, "bad")
        await pilot.press("l")
        await wait_until(pilot, lambda: [n for n in app._notifications if n.title == "not launched"])
        assert not os.path.exists(homes.runs) or not list(homes.runs.iterdir())


def test_theme_follows_the_terminal_background(homes, monkeypatch) -> None:
    from procx_tui.theme import default_theme

    assert default_theme({"COLORFGBG": "0;15"}) == "procx-light"  # dark text on a light background
    assert default_theme({"COLORFGBG": "15;0"}) == default_theme({}) == "procx-dark"
    assert default_theme({"PROCX_TUI_THEME": "nord", "COLORFGBG": "0;15"}) == "nord"
    monkeypatch.setenv("COLORFGBG", "0;15")
    assert dashboard(homes).theme == "procx-light"
    monkeypatch.setenv("PROCX_TUI_THEME", "no-such-theme")
    assert dashboard(homes).theme == "procx-dark"
