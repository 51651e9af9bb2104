"""The selected run's live log: JSON events rendered readably, child output as it is; follow, search, filters."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Checkbox, Input, RichLog, Select

from procx_tui.monitor import EVENTS, LEVELS, Tail, matches, render_line

SHOWN = 400  # lines drawn when a run is selected or a filter changes (the Tail keeps more; o pages them all)
BURST = 200  # lines drawn at most per update of a growing log


class FollowLog(RichLog):
    """A RichLog that tells its LogView when the reader scrolls: up pauses following, down to the end resumes."""

    @property
    def view(self) -> LogView | None:
        return next((a for a in self.ancestors if isinstance(a, LogView)), None)

    def _moved(self) -> None:
        """After a scroll by the reader: follow exactly when it is headed for the end."""
        view = self.view
        if view is not None and self.max_scroll_y > 0:
            view.follow = self.scroll_target_y >= self.max_scroll_y

    # these run before Widget's own handlers have scrolled: look once they have
    def on_mouse_scroll_up(self) -> None:
        self.call_next(self._moved)

    def on_mouse_scroll_down(self) -> None:
        self.call_next(self._moved)

    def action_scroll_up(self) -> None:
        super().action_scroll_up()
        self._moved()

    def action_scroll_down(self) -> None:
        super().action_scroll_down()
        self._moved()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._moved()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._moved()

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        self._moved()

    def action_scroll_end(self) -> None:
        super().action_scroll_end()  # scrolls after the next refresh: headed for the end in any case
        view = self.view
        if view is not None:
            view.follow = True


class LogView(Vertical):
    follow: reactive[bool] = reactive(True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run_id: str | None = None
        self.tail: Tail | None = None
        self.seen = 0  # lines of the tail already considered
        self.reading: float | None = None  # how much of a big log is read, while it is being read
        self.search = ""
        self.level: str | None = None
        self.kind: str | None = None
        self._debounce: Timer | None = None

    def on_mount(self) -> None:
        self._title()

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-bar"):
            yield Input(placeholder="search the log  (/)", id="log-search", compact=True)
            yield Select([(level + "+", level) for level in LEVELS], prompt="any level", id="log-level",
                         compact=True)
            yield Select([(kind, kind) for kind in EVENTS], prompt="any event", id="log-event", compact=True)
            yield Checkbox("follow", True, id="log-follow")
        yield FollowLog(id="log", max_lines=5000, wrap=True, markup=False, highlight=False, auto_scroll=True,
                      min_width=20)

    @property
    def log(self) -> RichLog:
        return self.query_one("#log", RichLog)

    def _title(self) -> None:
        if self.run_id is None:
            self.border_title = "Log"
            return
        filters = [f for f in (self.level and self.level + "+", self.kind, self.search and f"'{self.search}'") if f]
        self.border_title = f"Log · {self.run_id}" + (f" · {' '.join(filters)}" if filters else "")
        self.border_subtitle = "following" if self.follow else "paused (f: follow)"

    def show(self, run_id: str | None, tail: Tail | None, reading: float | None = None) -> None:
        """Show another run's log (or none), from its kept lines; while a big log is still being read, only how
        far the reading got (its lines are drawn once, at the end)."""
        self.run_id, self.tail = run_id, tail
        self.reading = reading
        if reading is None:
            self.rerender()
            return
        self.log.clear()
        self._title()
        self.log.write(f"(reading the log: {reading:.0%} ...)")

    def rerender(self) -> None:
        log = self.log
        log.clear()
        self.seen = 0
        self._title()
        if self.tail is None:
            log.write("(no run selected: launch one with l)" if self.run_id is None else "(no log yet)")
            return
        self.seen, lines = self.tail.lines.since(0)
        self._write(lines, limit=SHOWN)
        if self.follow:
            log.scroll_end(animate=False, immediate=True)

    def update(self, reading: float | None = None) -> None:
        """Append what the tail read since the last update (at most BURST lines: a log that grows faster than
        anyone reads is shown in steps, saying how many lines were passed over)."""
        if self.tail is None:
            return
        if reading is not None or self.reading is not None:
            self.show(self.run_id, self.tail, reading)
            return
        seen = self.seen
        self.seen, lines = self.tail.lines.since(seen)
        if lines:
            self._write(lines, limit=BURST, passed=self.seen - seen)

    def _write(self, lines, limit: int, passed: int | None = None) -> None:
        """Write the lines that pass the filters (the last `limit` of them), in one go; search looks at the text
        as shown."""
        shown = [(line, event) for line, event in lines if matches(line, event, self.level, self.kind)]
        if self.search:
            needle = self.search.lower()
            texts = [t for t in (render_line(line, event) for line, event in shown) if needle in t.plain.lower()]
        else:
            texts = [render_line(line, event) for line, event in shown[-limit:]]
        if not texts:
            return
        if len(texts) > limit or (passed is not None and passed > len(lines)):
            skipped = max(len(texts) - limit, (passed or 0) - len(lines))
            texts = [Text(f"... {skipped:,} more lines (o opens the whole log)", style="dim italic"),
                     *texts[-limit:]]
        if self.search:
            for text in texts:
                text.highlight_words([self.search], style="reverse", case_sensitive=False)
        self.log.write(Text("\n").join(texts), scroll_end=self.follow)

    def watch_follow(self, follow: bool) -> None:
        if not self.is_mounted:
            return
        self.log.auto_scroll = follow
        box = self.query_one("#log-follow", Checkbox)
        if box.value != follow:
            box.value = follow
        if follow:
            self.log.scroll_end(animate=False)
        self._title()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.follow = event.value

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        value = None if event.value is Select.NULL else str(event.value)
        if event.select.id == "log-level":
            if value == self.level:
                return
            self.level = value
        else:
            if value == self.kind:
                return
            self.kind = value
        self.rerender()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.2, lambda: self._search(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._search(event.value)
        self.log.focus()

    def _search(self, text: str) -> None:
        if text != self.search:
            self.search = text
            self.rerender()

    def set_filters(self, *, search: str | None = None, level: str | None = "", kind: str | None = "") -> None:
        """For the command palette and tests: set filters directly ("" leaves one as it is)."""
        if search is not None:
            self.query_one("#log-search", Input).value = search
            self.search = search
        if level != "":
            self.level = level
            self.query_one("#log-level", Select).value = level if level else Select.NULL
        if kind != "":
            self.kind = kind
            self.query_one("#log-event", Select).value = kind if kind else Select.NULL
        self.rerender()
