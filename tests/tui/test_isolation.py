"""The dashboard never imports a provider's client library, nor runs a driver in its own process.

A fresh interpreter (so that other tests' imports don't count) drives the app through a launch, a connection
check from the list and one from the form, then reports its sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support import clean_env

CLIENTS = {"boto3", "botocore", "google", "redis", "psycopg", "psycopg2", "pymysql", "pymssql", "pika", "nats",
           "confluent_kafka", "kafka", "pulsar", "pymongo", "elasticsearch", "cassandra", "couchbase", "etcd3gw",
           "stomp", "paho", "smbprotocol", "nfs", "cryptography"}

ENGINES = {"core.procx", "core.pushx", "core.child", "core.check", "core.api"}

SCENARIO = textwrap.dedent("""
    import asyncio, json, sys, time
    from pathlib import Path
    from core.profiles import Profile, write
    from procx_tui.app import Dashboard
    from procx_tui.screens import ProfileForm

    root = Path(sys.argv[1])
    write(Profile("remote", {"PROCX_TUI_KIND": "procx", "PROCX_DRIVER": "redis-list", "PROCX_REDIS_HOST": "127.0.0.1",
                             "PROCX_REDIS_PORT": "1", "PROCX_REDIS_KEY": "jobs"}), root / "profiles")
    write(Profile("feed", {"PROCX_TUI_KIND": "pushx", "PUSHX_DRIVER": "sqlite", "PUSHX_SQLITE_PATH": str(root / "q.db"),
                           "PUSHX_INPUT_STR": "hello"}), root / "profiles")

    async def until(pilot, condition, what):
        deadline = time.monotonic() + 30
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for " + what)
            await pilot.pause(0.05)

    async def main():
        app = Dashboard(root / "profiles", root / "state", poll=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.scans, "a scan")
            app.profiles_table.focus()
            app.profiles_table.select_key("feed")
            await pilot.press("l")
            await until(pilot, lambda: any(r.status == "exited" and r.counts["pushed"] == 1 for r in app.rows.values()),
                        "the run")
            app.profiles_table.select_key("remote")
            await pilot.press("k")
            await until(pilot, lambda: any("check failed" in n.title for n in app._notifications), "the check")
            app.profiles_table.select_key("feed")
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, ProfileForm) and app.screen.ready, "the form")
            await pilot.click("#check")
            status = app.screen.query_one("#form-status")
            await until(pilot, lambda: "reachable" in str(status.render()), "the form's check")
    asyncio.run(main())
    print(json.dumps(sorted(sys.modules)))

""")


def test_no_client_library_in_the_dashboard_process(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO, str(tmp_path)], capture_output=True, text=True,
                          env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    modules = {m.split(".")[0] for m in loaded}
    assert "textual" in modules and "procx_tui" in modules
    assert not modules & CLIENTS, sorted(modules & CLIENTS)
    # the driver declarations are read (for the form); the engines that run drivers are not
    assert not loaded & ENGINES, sorted(loaded & ENGINES)
