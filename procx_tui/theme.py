"""Two themes with strong contrast. Textual paints its own background, so the dashboard reads the same on light
and dark terminals; it starts light when the terminal says its background is light (COLORFGBG, set by many
terminals), dark otherwise. PROCX_TUI_THEME picks any theme by name (ctrl+p, "Theme", lists them)."""

from __future__ import annotations

import os

from textual.theme import Theme

DARK = Theme(
    name="procx-dark", dark=True,
    primary="#5fafff", secondary="#87d7af", accent="#ffaf5f", warning="#ffd75f", error="#ff6b6b",
    success="#87d75f", foreground="#e4e4e4", background="#1c1c1c", surface="#262626", panel="#303030",
)
LIGHT = Theme(
    name="procx-light", dark=False,
    primary="#005fd7", secondary="#00875f", accent="#af5f00", warning="#875f00", error="#c00000",
    success="#2e7d32", foreground="#1c1c1c", background="#fafafa", surface="#f0f0f0", panel="#e4e4e4",
)
THEMES = (DARK, LIGHT)


def default_theme(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("PROCX_TUI_THEME"):
        return env["PROCX_TUI_THEME"]
    background = env.get("COLORFGBG", "").rpartition(";")[2]
    return LIGHT.name if background in ("7", "15") else DARK.name
