"""The procx-tui command. Each subcommand is headless; errors are one line with exit 2, as in the core."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli import silence_stdout
from core.errors import ProcxError


def cmd_drivers(args: argparse.Namespace) -> int:
    from core import catalog

    if args.readme:
        changed = catalog.update_readme(args.readme)
        print(f"{args.readme}: {'updated' if changed else 'already current'}")
    elif args.json:
        json.dump(catalog.catalog(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.markdown:
        sys.stdout.write(catalog.markdown())
    else:
        for record in catalog.catalog()["drivers"]:
            sides = ", ".join(s for s in ("procx", "pushx") if record[s] == "yes") or "planned"
            print(f"{record['name']:<14} {sides:<13} {record['summary']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="procx-tui", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("drivers", help="every driver with every option")
    fmt = d.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="as JSON: flags, variables, types, defaults, ...")
    fmt.add_argument("--markdown", action="store_true", help="as the README's Markdown tables")
    fmt.add_argument("--readme", metavar="PATH", help="rewrite the generated driver section of this README")
    d.set_defaults(func=cmd_drivers)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ProcxError as exc:
        print(f"procx-tui: {exc}", file=sys.stderr)
        return exc.exit_code


def run() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:
        silence_stdout()
        sys.exit(0)
