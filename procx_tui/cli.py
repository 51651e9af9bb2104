"""procx-tui: guided setup, saved profiles, and launching and watching procx/pushx runs.

Without a subcommand it opens the dashboard. Every dashboard action also exists as a subcommand (most with
--json for scripts); errors are one line on stderr with exit 2, as in procx and pushx.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.cli import silence_stdout
from core.errors import ProcxError


def emit(args: argparse.Namespace, data: object, text: str) -> None:
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif text:
        print(text)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


# -- drivers -----------------------------------------------------------------------------------------
def cmd_drivers(args: argparse.Namespace) -> int:
    from core import catalog

    if args.readme:
        changed = catalog.update_readme(args.readme)
        print(f"{args.readme}: {'updated' if changed else 'already current'}")
    elif args.json:
        emit(args, catalog.catalog(), "")
    elif args.markdown:
        sys.stdout.write(catalog.markdown())
    else:
        rows = [[d["name"], ", ".join(s for s in ("procx", "pushx") if d[s] == "yes") or "planned", d["summary"]]
                for d in catalog.catalog()["drivers"]]
        print(table(rows, ["DRIVER", "SIDES", "WHAT"]))
    return 0


# -- profiles ----------------------------------------------------------------------------------------
def cmd_profiles(args: argparse.Namespace) -> int:
    from core import profiles

    if args.action == "list":
        found = profiles.all_profiles()
        rows = [[p.name, p.kind, " | ".join(p.driver(s) for s in p.sides()), p.description] for p in found]
        emit(args, [p.record() for p in found],
             table(rows, ["PROFILE", "KIND", "DRIVERS", "DESCRIPTION"]) if found
             else f"no profiles in {profiles.profiles_dir()} (procx-tui wizard creates one; "
                  "procx-tui profiles examples installs the examples)")
        return 0
    if args.action == "examples":
        copied = profiles.install_examples()
        emit(args, [str(p) for p in copied], "\n".join(f"installed {p}" for p in copied) or
             "nothing installed (the profiles folder is not empty, or no examples ship with this install)")
        return 0
    if not args.name:
        raise ProcxError(f"profiles {args.action} needs a profile name", 2)
    if args.action == "show":
        profile = profiles.find(args.name)
        record = profile.record()
        lines = [f"{k}={v}" for k, v in record["variables"].items()]
        emit(args, record, f"# {profile.path} ({profile.kind})\n" + "\n".join(lines))
        return 0
    if args.action == "validate":
        profile = profiles.find(args.name)
        problems = profiles.validate(profile)
        errors = [p for p in problems if p.level == "error"]
        emit(args, {"profile": profile.name, "valid": not errors, "problems": [p.record() for p in problems]},
             "\n".join(str(p) for p in problems) or f"{profile.name}: valid")
        return 2 if errors else 0
    if args.action == "rm":
        path = profiles.remove(args.name)
        emit(args, {"removed": str(path)}, f"removed {path}")
        return 0
    raise AssertionError(args.action)


# -- runs --------------------------------------------------------------------------------------------
def _counters(record: dict) -> str:
    c = record["counters"]
    return f"{c['got']}/{c['cleared']}/{c['failed']}" + (f" pushed {c['pushed']}" if c["pushed"] else "")


def cmd_runs(args: argparse.Namespace) -> int:
    from core import runs

    records = [r.record() for r in runs.all_runs()]
    rows = [[r["id"], r["status"], r["profile"], " | ".join(r["drivers"].values()),
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])), f"{r['duration']:.0f}s",
             _counters(r), f"{r['counters']['rate']:g}/s", "" if r["exit_code"] is None else str(r["exit_code"])]
            for r in records]
    emit(args, records, table(rows, ["RUN", "STATUS", "PROFILE", "DRIVERS", "STARTED", "TIME",
                                     "GOT/CLEARED/FAILED", "RATE", "EXIT"]) if rows else "no runs")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core import profiles, runs

    run = runs.start(profiles.find(args.profile))
    if args.detach:
        emit(args, run.record(), run.id)
        return 0
    print(f"run {run.id} started (Ctrl-C stops it)", file=sys.stderr)
    return follow(run, stop_on_interrupt=True)


def follow(run, stop_on_interrupt: bool = False, follow_output: bool = True) -> int:
    """Print the run's log as it grows until the run ends; its exit status."""
    from core import runs

    offset = 0
    stopping = False
    while True:
        try:
            ended = run.reload().status != runs.RUNNING
            offset = _print_from(run.log_path, offset)
            if ended or not follow_output:
                break
            time.sleep(0.1)
        except KeyboardInterrupt:
            if not stop_on_interrupt or stopping:
                break
            stopping = True
            print(f"stopping run {run.id} ...", file=sys.stderr)
            run.stop()
    code = run.reload().data.get("exit_code")
    return code if isinstance(code, int) and code >= 0 else 1


def _print_from(path, offset: int) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return offset
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    return offset + len(chunk)


def cmd_logs(args: argparse.Namespace) -> int:
    from core import runs

    run = runs.find(args.run)
    if args.follow:
        follow(run)
    else:
        _print_from(run.log_path, 0)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from core import runs

    run = runs.find(args.run)
    run.stop(grace=args.grace)
    emit(args, run.reload().record(), f"{run.id}: {run.status}")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    from core import runs

    new = runs.restart(runs.find(args.run))
    emit(args, new.record(), new.id)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from core import runs

    run = runs.find(args.run)
    run.remove()
    emit(args, {"removed": run.id}, f"removed {run.id}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from core import profiles
    from core.check import check

    profile = profiles.find(args.profile)
    report = check(profile)
    lines = []
    for side, r in report.items():
        state = "reachable" if r["reachable"] else "UNREACHABLE"
        depth = "" if r["depth"] is None else f", {r['depth']} waiting"
        lines.append(f"{side} ({r['driver']}): {state}{depth}" + (f": {r['error']}" if r["error"] else ""))
    emit(args, {"profile": profile.name, "sides": report}, "\n".join(lines))
    return 0 if not any(r["error"] for r in report.values()) else 69


def cmd_depth(args: argparse.Namespace) -> int:
    from core import profiles
    from core.check import check

    profile = profiles.find(args.profile)
    report = check(profile, args.scale_query)
    keda = _keda_scaler(profile)
    sides = {side: {**r, "keda": keda if side == "procx" else None} for side, r in report.items()}
    lines = []
    for side, r in sides.items():
        if r["error"]:
            state = "reachable, but" if r["reachable"] else "UNREACHABLE:"
            lines.append(f"{side} ({r['driver']}): {state} {r['error']}")
        elif r["depth"] is None and r["keda"] in COUNTED:
            lines.append(f"{side} ({r['driver']}): KEDA's {r['keda']} scaler counts with a query: give it with "
                         "--scale-query (or PROCX_TUI_SCALE_QUERY in the profile)")
        elif r["depth"] is None:
            lines.append(f"{side} ({r['driver']}): the provider exposes no queue depth")
        else:
            lines.append(f"{side} ({r['driver']}): {r['depth']} waiting"
                         + (f" (KEDA scaler: {r['keda']})" if r["keda"] else ""))
    emit(args, {"profile": profile.name, "sides": sides}, "\n".join(lines))
    return 0 if not any(r["error"] for r in report.values()) else 69


COUNTED = ("postgresql", "mysql", "mssql", "cassandra", "etcd")  # KEDA scalers that read a query's answer


def _keda_scaler(profile) -> str | None:
    """The KEDA trigger type of the profile's work source (None: no scaler or not a procx profile)."""
    from core import k8s

    if "procx" not in profile.sides():
        return None
    try:
        found = k8s.scaler(profile)
    except ProcxError:  # e.g. a SQL driver without --scale-query: the trigger type is still known
        return {"postgres": "postgresql", "cockroach": "postgresql", "mysql": "mysql", "etcd": "etcd",
                "mssql": "mssql", "cassandra": "cassandra", "scylla": "cassandra"}.get(profile.driver("procx"))
    return found.type if isinstance(found, k8s.Trigger) else None


def cmd_export(args: argparse.Namespace) -> int:
    from core import k8s, profiles

    profile = profiles.find(args.profile)
    opts = k8s.Options(**{setting.attr: getattr(args, setting.attr) for setting in k8s.SETTINGS})
    export = k8s.build(profile, opts)
    for warning in export.warnings:
        print(f"procx-tui: warning: {warning}", file=sys.stderr)
    if export.trigger is None:
        print(f"procx-tui: no KEDA scaler for {profile.driver('procx')}: {export.reason}; exported a plain "
              "Deployment", file=sys.stderr)
    text = k8s.to_yaml(export)
    if args.output and args.output != "-":
        k8s.save(text, args.output)
        print(f"wrote {args.output} ({len(export.manifests)} resources)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_wizard(args: argparse.Namespace) -> int:
    from procx_tui.wizard import run_cli

    return run_cli(args)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from procx_tui.app import Dashboard

    Dashboard().run()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="procx-tui", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="subcommand")  # not "command": the wizard has a --command option

    def add(name: str, func, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help)
        if json_flag:
            s.add_argument("--json", action="store_true", help="machine-readable output")
        s.set_defaults(func=func)
        return s

    d = add("drivers", cmd_drivers, "every driver with every option", json_flag=False)
    fmt = d.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="as JSON: flags, variables, types, defaults, ...")
    fmt.add_argument("--markdown", action="store_true", help="as the README's Markdown tables")
    fmt.add_argument("--readme", metavar="PATH", help="rewrite the generated driver section of this README")

    pr = add("profiles", cmd_profiles, "list, show, validate or remove saved profiles; install the examples")
    pr.add_argument("action", choices=["list", "show", "validate", "rm", "examples"], nargs="?", default="list")
    pr.add_argument("name", nargs="?")

    from procx_tui.wizard import add_arguments

    add_arguments(add("wizard", cmd_wizard, "create or edit a profile, step by step (or from flags)",
                      json_flag=False))

    r = add("run", cmd_run, "start a run of a profile (in the foreground unless --detach)")
    r.add_argument("profile")
    r.add_argument("--detach", action="store_true", help="start it in the background and print its id")
    add("runs", cmd_runs, "the recorded runs, with their counters")
    lg = add("logs", cmd_logs, "a run's log (JSON events and the child's output)", json_flag=False)
    lg.add_argument("run", help="run id, a unique prefix of it, or 'last'")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    st = add("stop", cmd_stop, "stop a run: SIGTERM, then SIGKILL after the grace period")
    st.add_argument("run")
    st.add_argument("--grace", type=float, default=30.0, help="seconds before SIGKILL (default 30)")
    rs = add("restart", cmd_restart, "stop a run and start its profile again")
    rs.add_argument("run")
    rm = add("rm", cmd_rm, "remove a run that has ended, with its log")
    rm.add_argument("run")
    ck = add("check", cmd_check, "connect to a profile's providers and report queue depth, touching no work")
    ck.add_argument("profile")
    dp = add("depth", cmd_depth, "the queue depth of a profile's providers: the number KEDA's scaler reads")
    dp.add_argument("profile")
    dp.add_argument("--scale-query", default="", help="SQL/CQL drivers: the count query KEDA will run; etcd: the "
                    "key holding the count (default: the profile's PROCX_TUI_SCALE_QUERY)")
    from core import k8s

    ex = add("export", cmd_export, "write Kubernetes manifests (Deployment or Job + KEDA scaler) for a profile",
             json_flag=False)
    ex.add_argument("format", choices=["k8s"], help="k8s: Secret, ConfigMap, Deployment/ScaledJob, KEDA objects")
    ex.add_argument("profile")
    for setting in k8s.SETTINGS:
        if setting.kind is bool:
            ex.add_argument(f"--{setting.flag}", dest=setting.attr, action="store_true", help=setting.help)
        else:
            ex.add_argument(f"--{setting.flag}", dest=setting.attr, type=setting.kind, default=setting.default,
                            metavar=setting.metavar or setting.flag.upper(), help=setting.help)
    ex.add_argument("-o", "--output", default="", metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.subcommand is None:
            return cmd_dashboard(args)
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
