"""The generated documentation: `procx-tui drivers` and the README's driver tables."""

from __future__ import annotations

import json
from pathlib import Path

from core import catalog, registry
from tests.support import command, run

README = Path(__file__).parent.parent / "README.md"


def test_readme_driver_tables_are_current() -> None:
    text = README.read_text()
    section = text.split(catalog.BEGIN, 1)[1].split(catalog.END, 1)[0]
    assert section == "\n" + catalog.markdown(), "stale: run procx-tui drivers --readme README.md"


def test_drivers_json_lists_every_option_with_its_variables() -> None:
    import subprocess

    out = subprocess.run([command("procx-tui"), "drivers", "--json"], capture_output=True, check=True).stdout
    data = json.loads(out)
    drivers = {d["name"]: d for d in data["drivers"]}
    assert len(drivers) == len(registry.names()) >= 34  # the 33 originals, sqlite, ...
    sub = next(o for o in drivers["gcp-pubsub"]["options"] if o["flag"] == "-gcp-pubsub-subscription")
    assert sub["variables"]["procx"][0] == "PROCX_GCP_SUBSCRIPTION"
    password = next(o for o in drivers["redis-list"]["options"] if o["flag"] == "-redis-password")
    assert password["secret"] is True
    assert drivers["sqlite"]["procx"] == drivers["sqlite"]["pushx"] == "yes"
    assert all(d["procx"] == d["pushx"] == "yes" for name, d in drivers.items() if name != "local"), drivers


def test_drivers_plain_listing() -> None:
    done = run("procx-tui", "drivers")
    assert done.returncode == 0
    assert b"sqlite" in done.stdout and b"redis-list" in done.stdout
