"""The dashboard: profiles, runs, the selected run's live log and its details; every action on a key and in the
command palette (ctrl+p).

It drives core.profiles and the run supervisor (core.runs): runs are separate processes that outlive the
dashboard, so it reattaches to whatever is recorded in the state folder, including runs started by
`procx-tui run` in another terminal. It never imports a provider's client library and never runs a driver in its
own process: the connection check is `procx-tui check` in a subprocess. The runs are polled with set_interval
(a scan in a worker thread, one at a time); nothing loops forever.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input
from textual.worker import Worker, WorkerState

from core import profiles, runs
from core.errors import ProcxError
from core.profiles import Profile
from procx_tui.checker import check_path
from procx_tui.monitor import Monitor, RunRow, Scan
from procx_tui.screens import Confirm, ExportK8s, Help, ProfileForm
from procx_tui.theme import THEMES, default_theme
from procx_tui.widgets import Details, LogView, ProfilesTable, RunsTable
from procx_tui.widgets.details import profile_details, run_details

# (action, palette title, help): the actions the command palette offers, in this order
COMMANDS = (
    ("launch", "Launch run", "Start a run of the highlighted profile (l)"),
    ("stop", "Stop run", "Stop the highlighted run: procx drains, then SIGKILL after the grace period (s)"),
    ("restart", "Restart run", "Stop the highlighted run and start its profile again (r)"),
    ("remove_run", "Remove run", "Delete an ended run and its log (x)"),
    ("new_profile", "New profile", "Create a profile with a form generated from the driver options (n)"),
    ("edit_profile", "Edit profile", "Change the highlighted profile (e)"),
    ("duplicate_profile", "Duplicate profile", "Copy the highlighted profile under a new name (c)"),
    ("delete_profile", "Delete profile", "Delete the highlighted profile, after asking (delete)"),
    ("check", "Check connection", "Connect to the highlighted profile's providers in a separate process (k)"),
    ("export", "Export to Kubernetes", "Kubernetes + KEDA manifests of the highlighted profile, previewed (K)"),
    ("pager", "Open log in pager", "Show the highlighted run's whole log in $PAGER (o)"),
    ("toggle_follow", "Follow log", "Keep the log scrolled to its end, or stop following (f)"),
    ("search", "Search log", "Type a word: only the log lines holding it are shown (/)"),
    ("help", "Help", "Every key and what it does (?)"),
)


MAIN_ACTIONS = {action for action, _, _ in COMMANDS}


class Dashboard(App):
    TITLE = "procx-tui"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    BINDINGS = [
        Binding("l", "launch", "Launch"),
        Binding("s", "stop", "Stop"),
        Binding("r", "restart", "Restart"),
        Binding("x", "remove_run", "Remove run", show=False),
        Binding("n", "new_profile", "New"),
        Binding("e", "edit_profile", "Edit"),
        Binding("c", "duplicate_profile", "Copy"),
        Binding("delete,D", "delete_profile", "Delete"),
        Binding("k", "check", "Check", show=False),
        Binding("K", "export", "Export", show=False),
        Binding("o", "pager", "Pager"),
        Binding("f", "toggle_follow", "Follow", show=False),
        Binding("slash", "search", "Search", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, profiles_dir: Path | None = None, state_dir: Path | None = None,
                 clock: Callable[[], float] = time.time, poll: float = 0.5, theme: str | None = None,
                 stop_grace: float = 30.0, install_examples: bool = True) -> None:
        super().__init__()
        self.profiles_dir = Path(profiles_dir) if profiles_dir else profiles.profiles_dir()
        self.state_dir = Path(state_dir) if state_dir else runs.state_dir()
        self.runs_dir = self.state_dir / "runs"
        self.clock = clock
        self.poll_interval = poll
        self.stop_grace = stop_grace
        self.want_examples = install_examples
        self.monitor = Monitor(self.runs_dir, clock)
        self.rows: dict[str, RunRow] = {}
        self.profiles: dict[str, Profile] = {}
        self.stopping: set[str] = set()
        self.scans = 0  # scans applied (tests wait on it)
        self._scan_worker: Worker | None = None
        self._rescan = False
        self._profiles_seen: tuple = ()
        self._select_run: str | None = None
        self._details_for = "runs"
        self._details_shown: tuple | None = None
        self._main_screen: Screen | None = None
        for t in THEMES:
            self.register_theme(t)
        wanted = theme or default_theme()
        self.theme = wanted if wanted in self.available_themes else THEMES[0].name

    # -- layout ----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        with Vertical(id="profiles-pane", classes="pane") as pane:
            pane.border_title = "Profiles"
            yield ProfilesTable(id="profiles")
        with Vertical(id="runs-pane", classes="pane") as pane:
            pane.border_title = "Runs"
            yield RunsTable(self.clock, id="runs")
        with Horizontal(id="bottom"):
            yield LogView(id="log-pane", classes="pane")
            with Vertical(id="details-pane", classes="pane") as pane:
                pane.border_title = "Details"
                yield Details(id="details")
        yield Footer()

    def on_mount(self) -> None:
        # the panes, found once: other screens (forms, dialogs, the palette) may be on top when a scan ends
        self.profiles_table = self.query_one(ProfilesTable)
        self.runs_table = self.query_one(RunsTable)
        self.log_view = self.query_one(LogView)
        self.details = self.query_one(Details)
        self.details_pane = self.query_one("#details-pane")
        self._main_screen = self.screen
        if self.want_examples and not any(self.profiles_dir.glob("*.env")):
            self.first_start()
        self.load_profiles()
        self.runs_table.focus()
        self.scan()
        self.set_interval(self.poll_interval, self.poll)

    def first_start(self) -> None:
        try:
            copied = profiles.install_examples(self.profiles_dir)
        except (OSError, ProcxError) as exc:
            self.notify(f"could not install the example profiles: {exc}", severity="error")
            return
        if copied:
            names = ", ".join(p.name.removesuffix(".env") for p in copied)
            self.notify(f"First start: installed {len(copied)} example profiles ({names}) into "
                        f"{self.profiles_dir}. Highlight one and press l to launch it.",
                        title="Welcome", timeout=12)

    # -- profiles --------------------------------------------------------------------------------------
    def _profiles_signature(self) -> tuple:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.profiles_dir.glob("*.env")))
        except OSError:
            return ()

    def load_profiles(self, select: str | None = None) -> None:
        self._profiles_seen = self._profiles_signature()
        found = profiles.all_profiles(self.profiles_dir)
        self.profiles = {p.name: p for p in found}
        table = self.profiles_table
        table.show(found)
        if select:
            table.select_key(select)
        self._subtitle()
        if self._details_for == "profiles":
            self.show_details()

    @property
    def profile(self) -> Profile | None:
        name = self.profiles_table.current_key
        return self.profiles.get(name) if name else None

    def _need_profile(self) -> Profile | None:
        profile = self.profile
        if profile is None:
            self.notify("no profile highlighted (n creates one)", severity="warning")
        return profile

    # -- runs ------------------------------------------------------------------------------------------
    def poll(self) -> None:
        if self._profiles_signature() != self._profiles_seen:
            self.load_profiles()
        self.scan()

    def scan(self) -> None:
        """Start a scan of the runs unless one is under way (then one more follows it)."""
        if self._scan_worker is not None and self._scan_worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
            self._rescan = True
            return
        self._rescan = False
        self._scan_worker = self.run_worker(self.monitor.scan, thread=True, group="scan", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._scan_worker or self._exit:  # (a scan may end while the app closes)
            return
        if event.state == WorkerState.SUCCESS:
            self.apply(event.worker.result)
            if self._rescan or event.worker.result.behind:
                self.scan()
        elif event.state == WorkerState.ERROR:
            self.notify(f"reading the runs failed: {event.worker.error}", severity="error")

    def apply(self, scan: Scan) -> None:
        self.rows = {row.id: row for row in scan.rows}
        self.stopping &= {r.id for r in scan.rows if r.status == runs.RUNNING}
        table = self.runs_table
        table.show(scan.rows, self.stopping)
        if self._select_run and table.select_key(self._select_run):
            self._select_run = None
        self.scans += 1
        self._subtitle()
        log = self.log_view
        current = table.current_key
        reading = self.rows[current].loading if current in self.rows else None
        if current != log.run_id or (current and log.tail is None):
            log.show(current, self.monitor.tail(current) if current else None, reading)
        else:
            log.update(reading)
        if self._details_for == "runs" or not self.profiles:
            self.show_details(only_if_changed=True)

    @property
    def run_row(self) -> RunRow | None:
        run_id = self.runs_table.current_key
        return self.rows.get(run_id) if run_id else None

    def _need_run(self) -> RunRow | None:
        row = self.run_row
        if row is None:
            self.notify("no run highlighted (l launches one)", severity="warning")
        return row

    def _subtitle(self) -> None:
        running = sum(1 for r in self.rows.values() if r.status == runs.RUNNING)
        self.sub_title = f"{len(self.profiles)} profiles · {len(self.rows)} runs, {running} running"

    # -- selection, details ----------------------------------------------------------------------------
    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        # the details follow the table in use (a table's rows also move when its content changes)
        if event.data_table is self.focused or self.focused not in (self.profiles_table, self.runs_table):
            self._details_for = event.data_table.id or "runs"
        if event.data_table.id == "runs":
            log = self.log_view
            run_id = self.runs_table.current_key
            if run_id != log.run_id:
                row = self.rows.get(run_id or "")
                log.show(run_id, self.monitor.tail(run_id) if run_id else None, row.loading if row else None)
        self.show_details()

    def on_descendant_focus(self, event) -> None:
        widget = event.widget
        if isinstance(widget, ProfilesTable | RunsTable) and self._details_for != widget.id:
            self._details_for = widget.id or "runs"
            self.show_details()

    def show_details(self, only_if_changed: bool = False) -> None:
        details, pane = self.details, self.details_pane
        row = self.run_row if self._details_for == "runs" else None
        shown = (self._details_for, self.profile and self.profile.name, row and (
            row.id, row.status, tuple(row.counts.values()), int(row.duration or 0), row.id in self.stopping))
        if only_if_changed and shown == self._details_shown:
            return
        self._details_shown = shown
        if self._details_for == "profiles" and self.profile is not None:
            pane.border_title = "Details · profile"
            details.show(profile_details(self.profile))
            return
        row = self.run_row
        if row is None:
            if self.profile is not None:
                pane.border_title = "Details · profile"
                details.show(profile_details(self.profile))
            return
        pane.border_title = "Details · run"
        profile = self.profiles.get(row.profile)
        path = row.data.get("profile_path")
        if profile is None or (path and profile.path and str(profile.path) != path):
            try:
                profile = profiles.read(Path(path)) if path else None
            except (OSError, ProcxError):
                profile = None
        details.show(run_details(row, profile, row.id in self.stopping))

    # -- actions: runs ---------------------------------------------------------------------------------
    def action_launch(self) -> None:
        profile = self._need_profile()
        if profile is not None:
            self.notify(f"starting a run of {profile.name} ...", timeout=2)
            self._launch(profile)

    @work(thread=True, group="ops", exit_on_error=False)
    def _launch(self, profile: Profile) -> None:
        try:
            run = runs.start(profile, self.runs_dir)
        except (ProcxError, OSError) as exc:
            self.call_from_thread(self.notify, str(exc), title="not launched", severity="error", timeout=10)
            return
        self.call_from_thread(self._started, run.id, f"run {run.id} of {profile.name} started")

    def _started(self, run_id: str, message: str) -> None:
        self._select_run = run_id
        self.runs_table.focus()
        self.notify(message, timeout=3)
        self.scan()

    def action_stop(self) -> None:
        row = self._need_run()
        if row is None:
            return
        if row.status != runs.RUNNING:
            self.notify(f"run {row.id} is not running ({row.status})", severity="warning")
            return
        self.stopping.add(row.id)
        self.runs_table.show(list(self.rows.values()), self.stopping)
        self._stop(row.id)

    @work(thread=True, group="ops", exit_on_error=False)
    def _stop(self, run_id: str) -> None:
        try:
            runs.Run(self.runs_dir / run_id).stop(grace=self.stop_grace)
        except (ProcxError, OSError, ValueError) as exc:
            self.call_from_thread(self.notify, f"stopping {run_id}: {exc}", severity="error")
        self.call_from_thread(self.scan)

    def action_restart(self) -> None:
        row = self._need_run()
        if row is None:
            return
        if row.status == runs.RUNNING:
            self.stopping.add(row.id)
        self._restart(row.id)

    @work(thread=True, group="ops", exit_on_error=False)
    def _restart(self, run_id: str) -> None:
        try:
            old = runs.Run(self.runs_dir / run_id)
            old.stop(grace=self.stop_grace)
            new = runs.start(profiles.read(Path(old.data["profile_path"])), self.runs_dir)
        except (ProcxError, OSError, ValueError, KeyError) as exc:
            self.call_from_thread(self.notify, f"restarting {run_id}: {exc}", severity="error", timeout=10)
            self.call_from_thread(self.scan)
            return
        self.call_from_thread(self._started, new.id, f"run {run_id} restarted as {new.id}")

    def action_remove_run(self) -> None:
        row = self._need_run()
        if row is None:
            return
        if row.status == runs.RUNNING:
            self.notify(f"run {row.id} is running: stop it first (s)", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    runs.Run(self.runs_dir / row.id).remove()
                except (ProcxError, OSError, ValueError) as exc:
                    self.notify(str(exc), severity="error")
                else:
                    self.notify(f"removed run {row.id}")
                self.scan()

        self.push_screen(Confirm(f"Remove run {row.id} ({row.profile}) and its log?", yes="Remove"), done)

    def action_pager(self) -> None:
        row = self._need_run()
        if row is None:
            return
        path = self.runs_dir / row.id / "output.log"
        pager = shlex.split(os.environ.get("PAGER", "")) or [p for p in ("less", "more") if shutil.which(p)][:1]
        if not pager:
            self.notify(f"no pager: set $PAGER (the log is {path})", severity="warning")
            return
        if pager[0] == "less" and len(pager) == 1:
            pager.append("+G")  # start at the end, like the live view
        try:
            with self.suspend():
                subprocess.run([*pager, str(path)], check=False)
        except SuspendNotSupported:
            self.notify(f"cannot hand the terminal to a pager here; the log is {path}", severity="warning")
        except OSError as exc:
            self.notify(f"{pager[0]}: {exc}", severity="error")

    def action_toggle_follow(self) -> None:
        log = self.log_view
        log.follow = not log.follow

    def action_search(self) -> None:
        self.log_view.query_one("#log-search", Input).focus()

    def action_help(self) -> None:
        self.push_screen(Help())

    # -- actions: profiles -----------------------------------------------------------------------------
    def _form_done(self, name: str | None) -> None:
        if name:
            self.load_profiles(select=name)
            self.profiles_table.focus()
            self.notify(f"saved profile {name}")

    def action_new_profile(self) -> None:
        self.push_screen(ProfileForm(self.profiles_dir, taken=set(self.profiles)), self._form_done)

    def action_edit_profile(self) -> None:
        profile = self._need_profile()
        if profile is not None:
            self.push_screen(ProfileForm(self.profiles_dir, profile, taken=set(self.profiles)), self._form_done)

    def action_duplicate_profile(self) -> None:
        profile = self._need_profile()
        if profile is None:
            return
        base = f"{profile.name}-copy"
        name, n = base, 2
        while name in self.profiles or (self.profiles_dir / f"{name}.env").exists():
            name, n = f"{base}{n}", n + 1
        try:
            profiles.write(Profile(name, profile.variables), self.profiles_dir)
        except (ProcxError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.load_profiles(select=name)
        self.notify(f"copied {profile.name} to {name} (e edits it)")

    def action_delete_profile(self) -> None:
        profile = self._need_profile()
        if profile is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    profiles.remove(profile.name, self.profiles_dir)
                except (ProcxError, OSError) as exc:
                    self.notify(str(exc), severity="error")
                else:
                    self.notify(f"deleted profile {profile.name}")
                self.load_profiles()

        running = sum(1 for r in self.rows.values() if r.profile == profile.name and r.status == runs.RUNNING)
        about = (f"{running} of its runs {'is' if running == 1 else 'are'} still running and will go on until "
                 "stopped (s), but cannot be restarted." if running else "Its runs stay listed.")
        self.push_screen(Confirm(f"Delete profile {profile.name}? {about}", yes="Delete"), done)

    def action_check(self) -> None:
        profile = self._need_profile()
        if profile is not None and profile.path is not None:
            self.notify(f"checking {profile.name} ...", timeout=2)
            self._check(profile.name, profile.path)

    def action_export(self) -> None:
        profile = self._need_profile()
        if profile is None:
            return

        def done(path: str | None) -> None:
            if path:
                self.notify(f"wrote {path}: kubectl apply -f {shlex.quote(path)}", title="exported")

        self.push_screen(ExportK8s(profile, Path.cwd()), done)

    @work(group="check", exclusive=True)
    async def _check(self, name: str, path: Path) -> None:
        ok, text = await check_path(path)
        self.notify(text, title=f"{name}: {'reachable' if ok else 'check failed'}",
                    severity="information" if ok else "error", timeout=8)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The dashboard's actions work (and show in the footer) only on the dashboard, not under a form."""
        return not (action in MAIN_ACTIONS and self.screen is not self._main_screen)

    # -- command palette -------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if screen is self.screen and isinstance(screen, ProfileForm):
            yield SystemCommand("Save profile", "Save the form (ctrl+s)", screen.action_save)
            yield SystemCommand("Check connection", "Check the form's providers (ctrl+r)", screen.action_check)
        else:
            for action, title, help_text in COMMANDS:
                yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
        yield from super().get_system_commands(screen)
