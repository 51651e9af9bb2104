"""The profiles and runs tables (fixed column widths: the layout does not jump as values change)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import DataTable

from core.profiles import Profile
from procx_tui.monitor import RunRow, counters_text, duration_text, started_text, status_text


class KeyedTable(DataTable):
    """A DataTable whose rows are named by keys, with a way to find the highlighted one, and two column layouts:
    WIDE, and NARROW for tables under 100 columns (the rows are shown again from `redraw` when it changes)."""

    WIDE: tuple[tuple[str, int | None], ...] = ()
    NARROW: tuple[tuple[str, int | None], ...] = ()

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.order: list[str] = []
        self.layout_name = ""

    @property
    def columns_now(self) -> tuple[tuple[str, int | None], ...]:
        return self.WIDE if self.layout_name == "wide" else self.NARROW

    def on_resize(self) -> None:
        self.arrange_columns()

    def on_mount(self) -> None:
        self.arrange_columns()

    def arrange_columns(self) -> None:
        name = "wide" if self.size.width >= 100 or not self.size.width else "narrow"
        if name == self.layout_name:
            return
        self.layout_name = name
        keep = self.current_key
        self.clear(columns=True)
        self.order = []
        for label, width in self.columns_now:
            self.add_column(label, width=width, key=label)
        self.redraw()
        if keep:
            self.select_key(keep)

    def redraw(self) -> None:
        """Show the last rows again, in new columns."""
        raise NotImplementedError

    @property
    def current_key(self) -> str | None:
        if not self.order or self.cursor_row < 0 or self.cursor_row >= len(self.order):
            return None
        return self.order[self.cursor_row]

    def select_key(self, key: str) -> bool:
        if key in self.order:
            self.move_cursor(row=self.order.index(key))
            return True
        return False

    def replace_rows(self, rows: list[tuple[str, list]]) -> None:
        """Show these rows, keeping the cursor on the same key where it still exists."""
        keep = self.current_key
        self.clear()
        self.order = [key for key, _ in rows]
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep in self.order:
            self.move_cursor(row=self.order.index(keep), animate=False)


class ProfilesTable(KeyedTable):
    WIDE = (("profile", 20), ("kind", 8), ("drivers", 24), ("description", None))
    NARROW = (("profile", 16), ("kind", 8), ("drivers", 16), ("description", None))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.last: list[Profile] = []

    def redraw(self) -> None:
        self.show(self.last)

    def show(self, profiles: list[Profile]) -> None:
        self.last = profiles
        self.replace_rows([(p.name, [Text(p.name, style="bold"), Text(p.kind), Text(" | ".join(
            p.driver(s) for s in p.sides())), Text(p.description, style="italic")]) for p in profiles])


class RunsTable(KeyedTable):
    """Newest first. Narrow terminals (80 columns) get narrower columns, so the counters stay in sight."""

    WIDE = (("status", 9), ("profile", 20), ("drivers", 22), ("started", 11), ("time", 8),
            ("got/cleared/failed", 18), ("rate", 8))
    NARROW = (("status", 8), ("profile", 12), ("drivers", 10), ("started", 8), ("time", 6), ("g/c/f", 11),
              ("rate", 6))

    def __init__(self, clock: Callable[[], float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.shown: dict[str, list[str]] = {}
        self.last: tuple[list[RunRow], set[str]] = ([], set())

    def redraw(self) -> None:
        self.shown = {}
        self.show(*self.last)

    def cell(self, run_id: str, column: str) -> str:
        """The text in a column (named as in the wide layout) of a run's row."""
        names = [name for name, _ in self.WIDE]
        return self.get_cell(run_id, self.columns_now[names.index(column)][0]).plain

    def cells(self, row: RunRow, stopping: bool) -> list[Text]:
        status = "stopping" if stopping and row.status == "running" else row.status
        counters = counters_text(row.counts)
        if row.loading is not None:
            counters = f"{counters} ({row.loading:.0%})"
        started = started_text(row.started, self.clock())
        if self.layout_name == "narrow" and len(started) > 8:
            started = started[:5]  # the day only
        return [status_text(status), Text(row.profile), Text(row.drivers), Text(started),
                Text(duration_text(row.duration)), Text(counters),
                Text(f"{row.rate:.1f}/s" if row.status == "running" else "-")]

    def show(self, rows: list[RunRow], stopping: set[str]) -> None:
        self.last = (rows, set(stopping))
        cells = {row.id: self.cells(row, row.id in stopping) for row in rows}
        order = [row.id for row in rows]
        if order != self.order:
            self.replace_rows([(run_id, cells[run_id]) for run_id in order])
            self.shown = {k: [c.plain for c in v] for k, v in cells.items()}
            return
        for run_id, new in cells.items():
            old = self.shown.get(run_id)
            for (name, _), cell, before in zip(self.columns_now, new, old or [None] * len(new), strict=True):
                if cell.plain != before:
                    self.update_cell(run_id, name, cell)
            self.shown[run_id] = [c.plain for c in new]
