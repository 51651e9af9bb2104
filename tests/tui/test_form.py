"""The profile form: generated from the driver declarations, checked as it is typed, saved as a profile."""

from __future__ import annotations

from textual.widgets import Collapsible, Input, Select, Static, Switch

from core.profiles import Profile, find, write
from procx_tui.app import Dashboard
from procx_tui.screens import ProfileForm
from procx_tui.widgets import ProfilesTable
from tests.tui.helpers import sqlite_profile, wait_until

SIZE = (120, 40)


def error(form: ProfileForm, variable: str) -> str:
    label = form.query_one(f"#e-{variable}", Static)
    return str(label.render()) if label.has_class("-shown") else ""


async def type_into(pilot, form: ProfileForm, variable: str, text: str) -> None:
    widget = form.query_one(f"#v-{variable}", Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


async def fill(pilot, form: ProfileForm, variable: str, text: str) -> None:
    """Set a field at once (as a paste would): quicker than typing it."""
    form.query_one(f"#v-{variable}", Input).value = text
    await pilot.pause()


async def test_create_a_profile_with_the_form(homes) -> None:
    sqlite_profile(homes.profiles, "old", homes.root / "q.db", command="true")
    app = Dashboard(homes.profiles, homes.state, poll=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        form = await wait_until(pilot, lambda: isinstance(app.screen, ProfileForm) and app.screen.ready and app.screen)
        assert app.focused is form.query_one("#v-name", Input)
        await pilot.press(*"old")
        assert error(form, "name") == "a profile named old already exists"  # live, as it is typed
        await type_into(pilot, form, "name", "a b")
        assert "letters, digits" in error(form, "name")
        await pilot.press("backspace", "backspace", "-", "b")
        assert error(form, "name") == ""

        # kind procx (the default); choosing the driver brings its options, required ones first
        assert form.query_one("#v-PROCX_TUI_KIND", Select).value == "procx"
        form.query_one("#v-PROCX_DRIVER", Select).value = "sqlite"
        await wait_until(pilot, lambda: form.ready and form.query("#v-PROCX_SQLITE_PATH"))
        assert form.query_one("#v-PROCX_DAEMON", Switch).value is False
        advanced = form.query_one("#advanced-procx", Collapsible)
        assert advanced.collapsed and not form.query("#v-PROCX_CONCURRENCY")  # folded away

        await pilot.press("ctrl+s")  # the required path is missing: shown, not saved
        assert error(form, "PROCX_SQLITE_PATH") == "-sqlite-path is required"
        assert "1 field to fix" in str(form.query_one("#form-status", Static).render())
        assert app.focused is form.query_one("#v-PROCX_SQLITE_PATH", Input)
        await pilot.press(*"q.db")
        assert error(form, "PROCX_SQLITE_PATH") == ""  # fixed as it is typed

        await pilot.click("#advanced-procx CollapsibleTitle")
        await wait_until(pilot, lambda: form.query("#v-PROCX_CONCURRENCY"))
        await type_into(pilot, form, "PROCX_CONCURRENCY", "x")
        assert error(form, "PROCX_CONCURRENCY") == "invalid integer 'x'"
        assert form.query_one("#v-PROCX_CONCURRENCY", Input).has_class("-invalid")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ProfileForm)
        await type_into(pilot, form, "PROCX_CONCURRENCY", "2")
        assert error(form, "PROCX_CONCURRENCY") == ""

        await fill(pilot, form, "PROCX_TUI_COMMAND", "cat")
        daemon = form.query_one("#v-PROCX_DAEMON", Switch)
        daemon.scroll_visible(animate=False, immediate=True)
        await pilot.pause()
        await pilot.click(daemon)  # the mouse works
        assert form.query_one("#v-PROCX_DAEMON", Switch).value is True
        await fill(pilot, form, "PROCX_TUI_DESCRIPTION", "made by the form")
        await pilot.click("#save")
        await wait_until(pilot, lambda: not isinstance(app.screen, ProfileForm))
        saved = find("a-b", homes.profiles)
        assert saved.variables == {"PROCX_TUI_KIND": "procx", "PROCX_TUI_DESCRIPTION": "made by the form",
                                   "PROCX_TUI_COMMAND": "cat", "PROCX_DRIVER": "sqlite", "PROCX_SQLITE_PATH": "q.db",
                                   "PROCX_DAEMON": "true", "PROCX_CONCURRENCY": "2"}
        assert app.query_one(ProfilesTable).current_key == "a-b"


async def test_pipeline_secrets_and_connection_check(homes) -> None:
    app = Dashboard(homes.profiles, homes.state, poll=0.2, install_examples=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        form = await wait_until(pilot, lambda: isinstance(app.screen, ProfileForm) and app.screen.ready and app.screen)
        await fill(pilot, form, "name", "pipe")
        form.query_one("#v-PROCX_TUI_KIND", Select).value = "pipeline"
        await wait_until(pilot, lambda: form.ready and form.query("#v-PUSHX_DRIVER"))
        form.query_one("#v-PROCX_DRIVER", Select).value = "redis-list"
        await wait_until(pilot, lambda: form.ready and form.query("#v-PROCX_REDIS_PASSWORD"))
        assert form.query_one("#v-PROCX_REDIS_PASSWORD", Input).password  # a secret is typed unseen
        form.query_one("#v-PUSHX_DRIVER", Select).value = "sqlite"
        await wait_until(pilot, lambda: form.ready and form.query("#v-PUSHX_SQLITE_PATH"))
        assert form.query("#v-PROCX_REDIS_PASSWORD")  # the other side's fields stay
        await fill(pilot, form, "PUSHX_SQLITE_PATH", "out.db")
        form.query_one("#v-PROCX_DRIVER", Select).value = "sqlite"  # another driver: its own fields
        await wait_until(pilot, lambda: form.ready and not form.query("#v-PROCX_REDIS_PASSWORD"))
        await fill(pilot, form, "PROCX_SQLITE_PATH", "in.db")
        await pilot.click("#check")  # in a separate process, on a temporary copy of the unsaved form
        status = form.query_one("#form-status", Static)
        await wait_until(pilot, lambda: "pushx (sqlite): reachable" in str(status.render()), timeout=20,
                         what=lambda: str(status.render()))
        assert "procx (sqlite): reachable, 0 waiting" in str(status.render())
        assert not list(homes.profiles.glob("*.env"))  # the check saved nothing
        await pilot.press("escape")
        assert not isinstance(app.screen, ProfileForm)
        assert not list(homes.profiles.glob("*.env"))


async def test_edit_keeps_what_the_form_does_not_show(homes) -> None:
    write(Profile("bridge", {"PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": "pushx", "PROCX_DRIVER": "sqlite",
                             "PROCX_SQLITE_PATH": "in.db", "PROCX_REDIS_PASSWORD_X": "kept",
                             "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": "out.db"}), homes.profiles)
    app = Dashboard(homes.profiles, homes.state, poll=0.2)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ProfilesTable).focus()
        await pilot.press("e")
        form = await wait_until(pilot, lambda: isinstance(app.screen, ProfileForm) and app.screen.ready and app.screen)
        await wait_until(pilot, lambda: form.ready and form.query("#v-PROCX_SQLITE_PATH"))
        assert form.query_one("#v-PROCX_SQLITE_PATH", Input).value == "in.db"
        await fill(pilot, form, "name", "bridge2")  # a rename moves the file
        await fill(pilot, form, "PROCX_TUI_DESCRIPTION", "edited")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ProfileForm))
    saved = find("bridge2", homes.profiles).variables
    assert not (homes.profiles / "bridge.env").exists()
    assert saved["PROCX_TUI_DESCRIPTION"] == "edited" and saved["PROCX_SQLITE_PATH"] == "in.db"
    # PUSHX_* configure the child `pushx` of a procx profile; unknown variables stay as they were
    assert saved["PUSHX_SQLITE_PATH"] == "out.db" and saved["PROCX_REDIS_PASSWORD_X"] == "kept"
