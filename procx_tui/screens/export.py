"""Export a profile to Kubernetes and KEDA: the options of `procx-tui export k8s` (core.k8s.SETTINGS), the YAML
previewed as they are typed with the Secret's values masked, and ctrl+s writing the file (mode 0600, since it holds
those values). The screen returns the path written, or None."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, Switch

from core import k8s
from core.errors import ProcxError
from core.profiles import SCALE_QUERY, Profile


class ExportK8s(Screen[str | None]):
    BINDINGS = [Binding("ctrl+s", "save", "Save YAML", priority=True), Binding("escape", "cancel", "Close")]

    def __init__(self, profile: Profile, folder: Path) -> None:
        super().__init__()
        self.profile = profile
        self.default_path = folder / f"{k8s.dns_name(profile.name)}-k8s.yaml"
        self.export: k8s.Export | None = None
        self.problem = ""
        self.shown = ""  # the YAML on screen (masked)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Export {self.profile.name} to Kubernetes + KEDA", style="bold"), id="form-title")
        with Horizontal(id="export-body"):
            with VerticalScroll(id="export-options"):
                for setting in k8s.SETTINGS:
                    with Vertical(classes="field"):
                        with Horizontal(classes="field-line"):
                            yield Static(Text(setting.flag, style="bold"), classes="export-label")
                            yield self._control(setting)
                        yield Static(Text(setting.help, style="dim"), classes="export-help")
                with Vertical(classes="field"), Horizontal(classes="field-line"):
                    yield Static(Text("file", style="bold"), classes="export-label")
                    yield Input(str(self.default_path), id="x-output", compact=True)
            with VerticalScroll(id="export-preview"):
                yield Static("", id="export-yaml")
        yield Static("", id="form-status")
        yield Footer()

    def _control(self, setting: k8s.Setting) -> Input | Switch:
        wid = f"x-{setting.attr}"
        if setting.kind is bool:
            return Switch(value=bool(setting.default), id=wid, animate=False)
        default = "" if setting.default is None else str(setting.default)
        if setting.attr == "scale_query":
            default = self.profile.variables.get(SCALE_QUERY, "")
        return Input(default, id=wid, compact=True, type="integer" if setting.kind is int else "text",
                     placeholder="(none)")

    def on_mount(self) -> None:
        self.preview()
        self.query_one("#x-image", Input).focus()

    @on(Input.Changed)
    @on(Switch.Changed)
    def preview(self) -> None:
        """Build the manifests from the fields; show them masked, or what is wrong."""
        self.export, self.problem = None, ""
        try:
            self.export = k8s.build(self.profile, self.options())
        except (ProcxError, ValueError) as exc:
            self.problem = str(exc)
        if self.export is not None:
            self.shown = k8s.to_yaml(k8s.masked(self.export))
            self.query_one("#export-yaml", Static).update(Syntax(self.shown, "yaml", theme="ansi_dark",
                                                                 word_wrap=True))
        status = Text()
        if self.problem:
            status.append(self.problem, style="bold red")
        elif self.export is not None:
            scaler = (f"KEDA {self.export.trigger.type} scaler" if self.export.trigger
                      else f"no KEDA scaler ({self.export.reason}): a plain Deployment")
            status.append(f"{len(self.export.manifests)} resources, {scaler}. ", style="bold")
            status.append("Secret values are masked here and written to the file (mode 0600).", style="dim")
            for warning in self.export.warnings:
                status.append(f"\nwarning: {warning}", style="yellow")
        self.query_one("#form-status", Static).update(status)

    def options(self) -> k8s.Options:
        values: dict[str, object] = {}
        for setting in k8s.SETTINGS:
            if setting.kind is bool:
                values[setting.attr] = self.query_one(f"#x-{setting.attr}", Switch).value
                continue
            text = self.query_one(f"#x-{setting.attr}", Input).value.strip()
            if setting.kind is int:
                if not text and setting.default is None:
                    values[setting.attr] = None
                    continue
                try:
                    values[setting.attr] = int(text)
                except ValueError:
                    raise ValueError(f"{setting.flag}: a whole number is needed, not {text!r}") from None
            else:
                values[setting.attr] = text
        return k8s.Options(**values)  # type: ignore[arg-type]

    def action_save(self) -> None:
        self.preview()
        if self.export is None:
            self.notify(self.problem, title="not saved", severity="error")
            return
        path = self.query_one("#x-output", Input).value.strip() or str(self.default_path)
        try:
            k8s.save(k8s.to_yaml(self.export), path)
        except OSError as exc:
            self.notify(f"{path}: {exc.strerror or exc}", title="not saved", severity="error")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
