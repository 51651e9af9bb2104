"""The help screen (?): what each key does."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

ABOUT = ("Profiles (top) are saved .env files; runs (middle) are procx/pushx processes started from them, which "
         "keep running when the dashboard quits. The log (bottom left) follows the highlighted run (scrolling up "
         "pauses it, scrolling back to the end resumes); the details "
         "(bottom right) describe the highlighted run or profile, with secrets masked.")
KEYS = (
    ("l", "launch a run of the highlighted profile"),
    ("s", "stop the highlighted run (procx drains: the running job finishes or is failed back)"),
    ("r", "restart the highlighted run (stop it, then start its profile again)"),
    ("x", "remove an ended run and its log"),
    ("n / e", "new profile / edit the highlighted profile (a form; ctrl+s saves)"),
    ("c", "duplicate the highlighted profile"),
    ("delete", "delete the highlighted profile (asks first)"),
    ("k", "check the highlighted profile's connection (in a separate process)"),
    ("K", "export the highlighted profile as Kubernetes + KEDA manifests (previewed; ctrl+s writes the file)"),
    ("o", "open the run's whole log in $PAGER"),
    ("f", "follow the log, or stop following"),
    ("/", "search the log (enter goes back to the log)"),
    ("tab", "next pane; the mouse works too"),
    ("ctrl+p", "every action by name (command palette), and the theme"),
    ("q", "quit (runs keep going)"),
)
COMMANDS = ("Every action is also a command: procx-tui run, runs, logs -f, stop, restart, rm, profiles, wizard, "
            "check, depth, export k8s.")


def help_text() -> Group:
    keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    keys.add_column(style="bold", no_wrap=True)
    keys.add_column()
    for key, what in KEYS:
        keys.add_row(key, what)
    return Group(Text("procx-tui", style="bold underline"), Text(""), Text(ABOUT), Text(""), keys, Text(""),
                 Text(COMMANDS, style="italic"), Text(""), Text("escape closes this", style="dim"))


class Help(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text())
        yield Footer()
