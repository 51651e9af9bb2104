"""`python -m core procx ...` / `python -m core pushx ...`: the commands without their console scripts."""

import sys

from core.cli import main

if len(sys.argv) < 2 or sys.argv[1] not in ("procx", "pushx"):
    sys.exit("usage: python -m core procx|pushx [options]")
sys.exit(main(sys.argv[1], sys.argv[2:]))
