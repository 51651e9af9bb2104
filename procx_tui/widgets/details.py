"""The details pane: a run's commands, its profile's configuration (secrets masked) and how it ended; or, for a
profile, its configuration, the commands a run would start and what validation finds."""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from core import runs
from core.errors import ProcxError
from core.profiles import Profile, validate
from procx_tui.monitor import RunRow, command_text, counters_text, duration_text, status_text


def _pairs(rows: list[tuple[str, Text | str]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else Text(value))
    return table


def _variables(profile: Profile) -> Table:
    table = Table.grid(padding=(0, 0))
    table.add_column(overflow="fold")
    for key, value in profile.masked().items():
        line = Text()
        line.append(key, style="cyan")
        line.append("=")
        line.append(value, style="bold" if value == "********" else "")
        table.add_row(line)
    return table


def _heading(text: str) -> Text:
    return Text(f"\n{text}", style="bold underline")


def run_details(row: RunRow, profile: Profile | None, stopping: bool = False) -> Group:
    data = row.data
    code = data.get("exit_code")
    codes = data.get("exit_codes")
    if row.status == runs.RUNNING:
        ended = Text("still running" if not stopping else "stopping", style="green")
    elif row.status == runs.DIED:
        ended = Text("died: its runner is gone and recorded no end", style="magenta")
    else:
        ended = Text(f"exit status {code}" + (f" (each command: {', '.join(map(str, codes))})"
                                              if codes and len(codes) > 1 else ""),
                     style="red" if code else "")
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.started)) if row.started else "-"
    counts = row.counts
    parts: list = [
        _pairs([("run", Text(row.id, style="bold")), ("status", status_text("stopping" if stopping else row.status)),
                ("profile", f"{row.profile} ({data.get('kind', '?')})"), ("drivers", row.drivers or "-"),
                ("started", started), ("duration", duration_text(row.duration)), ("ended", ended),
                ("counters", f"got/cleared/failed {counters_text(counts)}, pushed {counts.get('pushed', 0)}, "
                             f"errors {counts.get('error', 0)}")]),
        _heading("Commands"),
    ]
    for i, argv in enumerate(data.get("commands") or []):
        parts.append(Text(("| " if i else "$ ") + command_text(argv, data.get("profile_path")), style="bold"))
    parts.append(_heading("Configuration (secrets masked)"))
    parts.append(_variables(profile) if profile is not None else Text("the profile no longer exists", style="dim"))
    return Group(*parts)


def profile_details(profile: Profile) -> Group:
    parts: list = [_pairs([("profile", Text(profile.name, style="bold")), ("kind", profile.kind),
                           ("drivers", " | ".join(profile.driver(s) for s in profile.sides()) or "-"),
                           ("about", profile.description or "-")])]
    problems = validate(profile)
    if problems:
        parts.append(_heading("Problems"))
        for p in problems:
            parts.append(Text(str(p), style="red" if p.level == "error" else "yellow"))
    try:
        lines = [command_text(argv, str(profile.path)) for argv in runs.commands(profile)]
    except (ProcxError, KeyError):
        lines = []
    if lines:
        parts.append(_heading("A run starts"))
        for i, line in enumerate(lines):
            parts.append(Text(("| " if i else "$ ") + line, style="bold"))
    parts.append(_heading("Configuration (secrets masked)"))
    parts.append(_variables(profile))
    return Group(*parts)


class Details(VerticalScroll):
    """Scrollable details of the highlighted run or profile."""

    def compose(self):
        self.body = Static(Text("Nothing selected.", style="dim"), id="details-body")
        yield self.body

    def show(self, renderable) -> None:
        self.body.update(renderable)
