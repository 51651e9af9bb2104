"""SVG snapshots of the main screens at 120x40, with a fixed clock and fabricated runs (fixed ids and times).

Update the baselines with `pytest tests/tui/test_snapshots.py --snapshot-update` and look at them (rsvg-convert
makes a PNG). Unset NO_COLOR and TEXTUAL_THEME when running them (the fixtures do that in-process too).
"""

from __future__ import annotations

from textual.widgets import Input, Select

from core.profiles import Profile, write
from procx_tui.app import Dashboard
from procx_tui.screens import ProfileForm
from procx_tui.widgets import LogView, ProfilesTable
from tests.tui.helpers import NOW, event, fabricate_run, wait_until

SIZE = (120, 40)


def scene(homes) -> None:
    """Three profiles (one holding a secret) and five runs: running, exited, failed, stopped and died."""
    orders = Profile("orders", {"PROCX_TUI_KIND": "procx", "PROCX_TUI_DESCRIPTION": "resize images from the queue",
                                "PROCX_TUI_COMMAND": "node worker.js", "PROCX_DRIVER": "sqlite",
                                "PROCX_DAEMON": "true", "PROCX_SQLITE_PATH": "queue.db",
                                "PROCX_SQLITE_QUEUE": "orders"})
    feed = Profile("feed", {"PROCX_TUI_KIND": "pushx", "PROCX_TUI_DESCRIPTION": "push one order",
                            "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": "queue.db", "PUSHX_SQLITE_QUEUE": "orders"})
    cache = Profile("cache-to-queue", {"PROCX_TUI_KIND": "pipeline", "PROCX_TUI_DESCRIPTION": "redis list -> sqlite",
                                       "PROCX_TUI_COMMAND": "cat", "PROCX_DRIVER": "redis-list",
                                       "PROCX_REDIS_HOST": "cache.internal", "PROCX_REDIS_PASSWORD": "hunter2",
                                       "PROCX_REDIS_KEY": "jobs", "PROCX_DAEMON": "true", "PUSHX_DRIVER": "sqlite",
                                       "PUSHX_SQLITE_PATH": "queue.db"})
    for profile in (orders, feed, cache):
        write(profile, homes.profiles)
    lines = [event(NOW - 60, "started", daemon=True, concurrency=1)]
    for i in range(1, 13):
        t = NOW - 58 + i * 4
        lines += [event(t, "got", id=str(i), bytes=31, attempt=1), f'{{"id":{i},"resized":true}}',
                  event(t + 0.25, "failed" if i == 7 else "cleared", id=str(i), duration_ms=250.0,
                        level="warn" if i == 7 else "info", **({"exit_code": 1} if i == 7 else {}))]
        if i == 7:
            lines.insert(-1, "worker.js: image 7 is corrupt")
    fabricate_run(homes.runs, "20260528-202540-a1b2", orders, started=NOW - 60, status="running", exit_code=None,
                  alive=True, lines=lines)
    fabricate_run(homes.runs, "20260528-201500-c3d4", feed, started=NOW - 700, ended=NOW - 699.6,
                  lines=[event(NOW - 699.7, "pushed", app="pushx", id="13", bytes=31)])
    fabricate_run(homes.runs, "20260528-190000-e5f6", orders, started=NOW - 5200, ended=NOW - 5100, status="failed",
                  exit_code=2, lines=["procx: -sqlite-path: no such folder"])
    fabricate_run(homes.runs, "20260528-120000-a7b8", cache, started=NOW - 30000, ended=NOW - 26400,
                  status="stopped", exit_code=0, lines=[event(NOW - 29999, "started")])
    fabricate_run(homes.runs, "20260527-093000-c9d0", orders, started=NOW - 125000, status="running",
                  exit_code=None, lines=[event(NOW - 124999, "started")])


def app_for(homes, **kwargs) -> Dashboard:
    return Dashboard(homes.profiles, homes.state, clock=lambda: NOW, poll=3600, theme=kwargs.pop("theme",
                                                                                               "procx-dark"))


def footer(app: Dashboard) -> list[str]:
    return [key.description for key in app.screen.query("FooterKey")]


async def settled(pilot, shows: str = "Launch") -> None:
    """Wait for the first scan and for the footer to show the bindings of the screen on top."""
    app = pilot.app
    await wait_until(pilot, lambda: app.scans >= 1 and shows in footer(app), what=lambda: footer(app))
    await pilot.pause()


def test_dashboard(snap_compare, homes) -> None:
    scene(homes)
    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=settled)


def test_dashboard_80x24(snap_compare, homes) -> None:
    scene(homes)
    assert snap_compare(app_for(homes), terminal_size=(80, 24), run_before=settled)


def test_dashboard_light(snap_compare, homes) -> None:
    scene(homes)
    assert snap_compare(app_for(homes, theme="procx-light"), terminal_size=SIZE, run_before=settled)


def test_profile_details_mask_secrets(snap_compare, homes) -> None:
    scene(homes)

    async def run_before(pilot) -> None:
        await settled(pilot)
        table = pilot.app.query_one(ProfilesTable)
        table.focus()
        table.select_key("cache-to-queue")
        await pilot.pause()
        pilot.app.query_one("#details").scroll_end(animate=False, immediate=True)  # down to the secret
        await pilot.pause()

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)


def test_log_filtered_and_searched(snap_compare, homes) -> None:
    scene(homes)

    async def run_before(pilot) -> None:
        await settled(pilot)
        pilot.app.query_one(LogView).set_filters(level="warn")
        await pilot.pause()
        await pilot.press("slash", *"exit_code", "enter")
        await pilot.pause()

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)


def test_new_profile_form_with_errors(snap_compare, homes) -> None:
    scene(homes)

    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("n")
        app = pilot.app
        form = await wait_until(pilot, lambda: isinstance(app.screen, ProfileForm) and app.screen.ready and app.screen)
        await pilot.press(*"orders")  # taken
        form.query_one("#v-PROCX_DRIVER", Select).value = "sqlite"
        await wait_until(pilot, lambda: form.ready and form.query("#v-PROCX_SQLITE_PATH"))
        await pilot.press("ctrl+s")
        await settled(pilot, shows="Save")
        for field in form.query(Input):
            field.cursor_blink = False  # the cursor would blink in and out of the picture
        await pilot.pause()

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)


def test_delete_confirmation(snap_compare, homes) -> None:
    scene(homes)

    async def run_before(pilot) -> None:
        await settled(pilot)
        pilot.app.query_one(ProfilesTable).focus()
        await pilot.press("delete")
        await settled(pilot, shows="Yes")

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, homes) -> None:
    scene(homes)
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await settled(pilot, shows="Close")

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)


def test_kubernetes_export(snap_compare, homes) -> None:
    scene(homes)

    async def run_before(pilot) -> None:
        await settled(pilot)
        table = pilot.app.query_one(ProfilesTable)
        table.focus()
        table.select_key("cache-to-queue")  # holds a password: the preview masks it
        await pilot.pause()
        await pilot.press("K")
        await settled(pilot, shows="Save YAML")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app_for(homes), terminal_size=SIZE, run_before=run_before)
