"""The dashboard's panes."""

from procx_tui.widgets.details import Details
from procx_tui.widgets.logview import LogView
from procx_tui.widgets.tables import ProfilesTable, RunsTable

__all__ = ["Details", "LogView", "ProfilesTable", "RunsTable"]
