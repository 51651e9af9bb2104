"""The profile form (new or edit), generated from the driver declarations by procx_tui.form.

Kind and drivers are choices; each option is checked as it is typed (Field.check); advanced options are folded
away; secrets are password inputs. "Check connection" writes the unsaved form to a temporary profile and runs
`procx-tui check` on it in a separate process. The screen returns the saved profile's name, or None.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Collapsible, Footer, Input, Select, Static, Switch

from core import registry
from core.options import PROCX
from core.profiles import COMMAND, DESCRIPTION, KIND, NAME, Profile, validate, write
from procx_tui.checker import check_profile
from procx_tui.form import Field, command_field, driver_field, driver_fields, kind_sides, profile_fields
from procx_tui.wizard import answers_to_variables

NAME_FIELD = Field("name", "name", required=True, help="the profile's file name: letters, digits, . _ -")
TRUE = ("1", "true", "yes", "on")


def control(field: Field, value: str | bool) -> Widget:
    """The input widget of a field, holding `value`."""
    wid = f"v-{field.variable}"
    if field.widget == "confirm":
        on_ = value if isinstance(value, bool) else str(value or field.default).lower() in TRUE
        return Switch(value=on_, id=wid, animate=False)
    if field.widget == "select":
        choices = list(field.choices)
        if value and value not in choices:
            choices.append(str(value))
        initial = str(value) if value else (field.default or Select.NULL)
        blank = not field.required or not field.default
        return Select([(c, c) for c in choices], value=initial, allow_blank=blank, id=wid, compact=True,
                      prompt=f"choose {field.label}" if field.required else "(default)")
    return Input(value=str(value or ""), password=field.secret, id=wid, compact=True,
                 placeholder=f"default: {field.default}" if field.default else ("required" if field.required else ""))


class FieldRow(Vertical):
    """A field's label and help, its input, and what is wrong with its value (hidden when nothing is)."""

    def __init__(self, field: Field, widget: Widget) -> None:
        super().__init__(classes="field", id=f"row-{field.variable}")
        self.field, self.widget = field, widget

    def compose(self) -> ComposeResult:
        label = Text(self.field.label.lstrip("-"), style="bold")
        if self.field.required:
            label.append(" *", style="bold red")
        with Horizontal(classes="field-line"):
            yield Static(label, classes="field-label")
            yield self.widget
        about = Text(self.field.help, style="dim")
        if self.field.secret:
            about.append(" (a secret: typed unseen, masked on screen; ${VAR} keeps it out of the file)", style="dim")
        if self.field.help or self.field.secret:
            yield Static(about, classes="field-help")
        yield Static("", classes="field-error", id=f"e-{self.field.variable}")


class ProfileForm(Screen[str | None]):
    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True),
                Binding("ctrl+r", "check", "Check connection", priority=True),
                Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path, profile: Profile | None = None, taken: set[str] | None = None,
                 name: str = "") -> None:
        super().__init__()
        self.folder = folder
        self.original = profile
        self.taken = set(taken or ()) - ({profile.name} if profile else set())
        self.values: dict[str, str | bool] = dict(profile.variables) if profile else {}
        self.values["name"] = profile.name if profile else name
        self.values[KIND] = profile.kind if profile else "procx"
        self.fields: dict[str, Field] = {"name": NAME_FIELD, **{f.variable: f for f in profile_fields()}}
        self.touched: set[str] = set()
        self.submitted = False
        self.ready = False  # the drivers' fields are on screen
        self.folded: dict[str, list[Field]] = {}  # advanced fields not mounted yet, by side

    # -- layout ----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        title = f"Edit profile {self.original.name}" if self.original else "New profile"
        yield Static(Text(title, style="bold"), id="form-title")
        with VerticalScroll(id="form-body"):
            yield FieldRow(NAME_FIELD, control(NAME_FIELD, self.values["name"]))
            kind, description = profile_fields()
            yield FieldRow(kind, control(kind, self.values[KIND]))
            yield Vertical(id="form-sides")
            yield FieldRow(description, control(description, self.values.get(DESCRIPTION, "")))
        yield Static("", id="form-status")
        with Horizontal(id="form-buttons"):
            yield Button("Save", variant="primary", id="save")
            yield Button("Check connection", id="check")
            yield Button("Cancel", id="cancel")
        yield Footer()

    async def on_mount(self) -> None:
        await self.build_sides()
        self.query_one("#v-name", Input).focus()

    async def build_sides(self) -> None:
        """(Re)build the drivers' fields for the current kind and drivers; typed values are kept."""
        self.ready = False
        self.folded = {}
        sides = self.query_one("#form-sides", Vertical)
        await sides.remove_children()
        keep = {"name", KIND, DESCRIPTION}
        self.fields = {k: f for k, f in self.fields.items() if k in keep}
        rows: list[Widget] = []
        for side in kind_sides(str(self.values[KIND])):
            rows.append(Static(Text(f"{side} side", style="bold underline"), classes="side-title"))
            dfield = driver_field(side)
            rows.append(self._row(dfield))
            if side == PROCX:
                rows.append(self._row(command_field()))
            driver = str(self.values.get(dfield.variable, ""))
            if driver not in registry.names():
                continue
            fields = driver_fields(driver, side)
            rows += [self._row(f) for f in fields if not f.advanced]
            advanced = [f for f in fields if f.advanced]
            if advanced:  # mounted when first unfolded: a driver can have dozens
                for f in advanced:
                    self.fields[f.variable] = f
                self.folded[side] = advanced
                rows.append(Collapsible(Static(""), title=f"advanced {side} options of {driver} ({len(advanced)})",
                                        collapsed=True, id=f"advanced-{side}"))
        await sides.mount_all(rows)
        for var in self.fields:
            if var in self.touched or self.submitted:
                self.show_problem(var)
        self.ready = True

    async def unfold(self, side: str) -> None:
        """Mount a side's advanced fields (once) and show them."""
        box = self.query_one(f"#advanced-{side}", Collapsible)
        fields = self.folded.pop(side, None)
        if fields is not None:
            contents = box.query_one(Collapsible.Contents)
            await contents.remove_children()
            await contents.mount_all([self._row(f) for f in fields])
            for f in fields:
                if f.variable in self.touched or self.submitted:
                    self.show_problem(f.variable)
        box.collapsed = False

    @on(Collapsible.Expanded)
    async def _expanded(self, event: Collapsible.Expanded) -> None:
        side = (event.collapsible.id or "").removeprefix("advanced-")
        if side in self.folded:
            await self.unfold(side)

    def _row(self, field: Field) -> FieldRow:
        self.fields[field.variable] = field
        return FieldRow(field, control(field, self.values.get(field.variable, "")))

    # -- values and validation -----------------------------------------------------------------------
    def problem(self, var: str) -> str | None:
        value = self.values.get(var, "")
        if var == "name":
            name = str(value)
            if not name:
                return "a profile needs a name"
            if not NAME.match(name):
                return "letters, digits, . _ - (at most 64, not starting with . _ -)"
            if name in self.taken:
                return f"a profile named {name} already exists"
            return None
        field = self.fields.get(var)
        if field is None or isinstance(value, bool):
            return None
        if field.widget == "select" and field.required and not value:
            return f"choose {field.label}"
        return field.check(str(value))

    def show_problem(self, var: str, force: bool = False) -> str | None:
        message = self.problem(var)
        if message and not force and var not in self.touched and not self.submitted:
            message = None  # an empty required field is pointed out once the user tries to save
        try:
            label = self.query_one(f"#e-{var}", Static)
            widget = self.query_one(f"#v-{var}")
        except Exception:  # noqa: BLE001 - the field is not on screen (another driver's)
            return message
        label.update(Text(message or "", style="bold red"))
        label.set_class(bool(message), "-shown")
        widget.set_class(bool(message), "-invalid")
        return message

    def _store(self, var: str, value: str | bool) -> bool:
        """Keep a value; whether it changed (widgets also report their initial values)."""
        if self.values.get(var, "" if not isinstance(value, bool) else None) == value:
            return False
        self.values[var] = value
        self.touched.add(var)
        return True

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        var = (event.input.id or "").removeprefix("v-")
        if self._store(var, event.value):
            self.show_problem(var)

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        self._store((event.switch.id or "").removeprefix("v-"), event.value)

    @on(Select.Changed)
    async def _select_changed(self, event: Select.Changed) -> None:
        var = (event.select.id or "").removeprefix("v-")
        value = "" if event.value is Select.NULL else str(event.value)
        if not self._store(var, value):
            return
        if var == KIND or var.endswith("_DRIVER"):
            await self.build_sides()
        self.show_problem(var)

    def profile(self) -> Profile:
        """The profile the form describes (not saved)."""
        v = self.values
        kind = str(v[KIND])
        sides = kind_sides(kind)
        variables: dict[str, str] = {KIND: kind}
        if v.get(DESCRIPTION):
            variables[DESCRIPTION] = str(v[DESCRIPTION])
        for side in sides:
            dvar = f"{side.upper()}_DRIVER"
            driver = str(v.get(dvar, ""))
            variables[dvar] = driver
            if side == PROCX and v.get(COMMAND):
                variables[COMMAND] = str(v[COMMAND])
            if driver in registry.names():
                fields = driver_fields(driver, side)
                answers = {f.variable: v[f.variable] for f in fields if f.variable in v}
                variables.update(answers_to_variables(driver, side, answers))
        if self.original is not None:  # keep what the form does not govern (e.g. PUSHX_* for `procx pushx`)
            old = self.original
            for key, value in old.variables.items():
                side = "procx" if key.startswith("PROCX_") else "pushx" if key.startswith("PUSHX_") else ""
                if key in variables or key in (KIND, COMMAND, DESCRIPTION) or not side:
                    continue
                if side not in sides or (old.driver(side) == variables.get(f"{side.upper()}_DRIVER")
                                         and key not in self.fields):
                    variables[key] = value
        return Profile(str(v["name"]), variables)

    async def _invalid(self) -> list[str]:
        """Show every field's problem; the variables that have one."""
        self.submitted = True
        bad = [var for var in self.fields if self.show_problem(var, force=True)]
        if bad:
            for side, fields in list(self.folded.items()):
                if any(f.variable in bad for f in fields):
                    await self.unfold(side)
            for parent in self.query_one(f"#row-{bad[0]}").ancestors:
                if isinstance(parent, Collapsible):
                    parent.collapsed = False
            self.query_one(f"#v-{bad[0]}").focus()
            self.status(f"{len(bad)} field{'s' if len(bad) > 1 else ''} to fix: "
                        + ", ".join(self.fields[v].label for v in bad), "error")
        return bad

    def status(self, message: str, level: str = "") -> None:
        style = {"error": "bold red", "ok": "bold green", "warning": "yellow"}.get(level, "")
        self.query_one("#form-status", Static).update(Text(message, style=style))

    # -- actions ---------------------------------------------------------------------------------------
    async def action_save(self) -> None:
        if await self._invalid():
            return
        profile = self.profile()
        problems = validate(profile)
        errors = [p for p in problems if p.level == "error"]
        if errors:
            self.status("not saved: " + "; ".join(str(p) for p in errors), "error")
            return
        write(profile, self.folder)
        if self.original is not None and self.original.name != profile.name and self.original.path:
            self.original.path.unlink(missing_ok=True)
        for p in problems:
            self.app.notify(str(p), severity="warning")
        self.dismiss(profile.name)

    def action_cancel(self) -> None:
        self.dismiss(None)

    async def action_check(self) -> None:
        if await self._invalid():
            return
        self.status("checking the connection (procx-tui check, in a separate process) ...")
        self.run_check(self.profile())

    @work(exclusive=True, group="check")
    async def run_check(self, profile: Profile) -> None:
        ok, text = await check_profile(profile)
        self.status(text, "ok" if ok else "error")

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.action_cancel()
        elif event.button.id == "check":
            await self.action_check()
        else:
            await self.action_save()
