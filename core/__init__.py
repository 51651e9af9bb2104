"""The headless core of procx-tui: options, settings, registry, the procx and pushx engines, the CLIs."""

__version__ = "0.1.0"
