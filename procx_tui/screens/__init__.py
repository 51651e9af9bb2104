"""The dashboard's screens besides the main one."""

from procx_tui.screens.confirm import Confirm
from procx_tui.screens.export import ExportK8s
from procx_tui.screens.help import Help
from procx_tui.screens.profile_form import ProfileForm

__all__ = ["Confirm", "ExportK8s", "Help", "ProfileForm"]
