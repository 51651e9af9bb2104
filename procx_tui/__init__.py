"""procx-tui: guided setup, saved profiles, and launching and watching procx/pushx runs."""
