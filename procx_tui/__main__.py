"""`python -m procx_tui` is `procx-tui` (the dashboard uses it to run `check` in a separate process)."""

from procx_tui.cli import run

if __name__ == "__main__":
    run()
