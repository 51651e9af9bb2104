"""The dashboard's Kubernetes export (K): the preview follows the fields, never shows a secret, and ctrl+s writes
the same YAML as `procx-tui export k8s` to a file only its owner can read."""

from __future__ import annotations

import stat

import yaml
from textual.widgets import Input, Static, Switch

from core import k8s
from core.profiles import Profile, write
from procx_tui.app import Dashboard
from procx_tui.screens import ExportK8s
from tests.tui.helpers import wait_until

PASSWORD = "s3cr3t-Export-Pw"
SIZE = (120, 40)


def redis_profile(homes) -> Profile:
    profile = Profile("Orders_Worker", {
        "PROCX_TUI_KIND": "procx", "PROCX_TUI_COMMAND": "node worker.js", "PROCX_DRIVER": "redis-list",
        "PROCX_REDIS_HOST": "redis.prod.svc", "PROCX_REDIS_PASSWORD": PASSWORD, "PROCX_REDIS_KEY": "jobs"})
    write(profile, homes.profiles)
    return profile


def shown(app: Dashboard) -> str:
    """The preview's YAML, the status line and the whole screen as drawn."""
    screen = app.screen
    return f"{screen.shown}\n{screen.query_one('#form-status', Static).render()}\n{app.export_screenshot()}"


async def open_export(pilot, app: Dashboard, name: str) -> ExportK8s:
    await wait_until(pilot, lambda: app.scans >= 1)
    table = app.query_one("#profiles")
    table.focus()
    assert table.select_key(name)
    await pilot.pause()
    await pilot.press("K")
    return await wait_until(pilot, lambda: app.screen if isinstance(app.screen, ExportK8s) else None)


async def test_preview_follows_the_fields_and_masks_the_secret(homes) -> None:
    redis_profile(homes)
    app = Dashboard(homes.profiles, homes.state, poll=0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_export(pilot, app, "Orders_Worker")
        text = shown(app)
        assert "ScaledObject" in text and "listLength: '5'" in text
        assert k8s.MASK in text and PASSWORD not in text
        screen.query_one("#x-target", Input).value = "7"
        screen.query_one("#x-job", Switch).value = True
        await wait_until(pilot, lambda: "ScaledJob" in shown(app) and "listLength: '7'" in shown(app))
        assert PASSWORD not in shown(app)
        screen.query_one("#x-max_replicas", Input).value = "0"
        await wait_until(pilot, lambda: "--max 0" in shown(app))


async def test_save_writes_the_cli_yaml_mode_0600(homes) -> None:
    profile = redis_profile(homes)
    app = Dashboard(homes.profiles, homes.state, poll=0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_export(pilot, app, "Orders_Worker")
        screen.query_one("#x-namespace", Input).value = "work"
        target = homes.root / "out.yaml"
        screen.query_one("#x-output", Input).value = str(target)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExportK8s))
        assert any("kubectl apply -f" in n.message for n in app._notifications)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    expected = k8s.to_yaml(k8s.build(profile, k8s.Options(namespace="work")))
    assert target.read_text() == expected
    secret = next(d for d in yaml.safe_load_all(target.read_text()) if d and d["kind"] == "Secret")
    assert secret["stringData"] == {"PROCX_REDIS_PASSWORD": PASSWORD}


async def test_a_bad_value_is_not_saved(homes) -> None:
    redis_profile(homes)
    app = Dashboard(homes.profiles, homes.state, poll=0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_export(pilot, app, "Orders_Worker")
        screen.query_one("#x-min_replicas", Input).value = "5"
        screen.query_one("#x-max_replicas", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: [n for n in app._notifications if n.title == "not saved"])
        assert isinstance(app.screen, ExportK8s)
        assert not list(homes.root.glob("*-k8s.yaml"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExportK8s))
