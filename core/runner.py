"""The process behind one run (`python -m core.runner RUN_FOLDER`): starts procx/pushx with their output in the
run's log, forwards a stop to the head of the pipeline, and records how the run ended."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.runs import EXITED, FAILED, STOPPED, process_start_time, write_json


def update(meta: Path, **fields: object) -> None:
    data = json.loads(meta.read_text())
    data.update(fields)
    write_json(meta, data)


def main(folder: Path) -> int:
    meta = folder / "run.json"
    stopping: list[int] = []
    procs: list[subprocess.Popen] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)
        if procs:  # procx drains; pushx ends when its input closes
            with contextlib.suppress(ProcessLookupError):
                procs[0].send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # recorded only now: whoever stops this run by its pid finds the handlers in place
    update(meta, runner_pid=os.getpid(), runner_start=process_start_time(os.getpid()))
    argvs = json.loads(meta.read_text())["commands"]
    with open(folder / "output.log", "ab", buffering=0) as log:
        head = subprocess.Popen(argvs[0], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if len(argvs) > 1 else log, stderr=log)
        procs.append(head)
        if len(argvs) > 1:
            procs.append(subprocess.Popen(argvs[1], stdin=head.stdout, stdout=log, stderr=log))
            head.stdout.close()  # the tail owns the pipe now
        if stopping:  # a stop that came while starting
            on_signal(stopping[0], None)
        update(meta, pids=[p.pid for p in procs])
        codes = [p.wait() for p in procs]
    code = next((c for c in codes if c != 0), 0)
    update(meta, ended=time.time(), exit_code=code, exit_codes=codes,
           status=STOPPED if stopping else (EXITED if code == 0 else FAILED))
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main(Path(sys.argv[1])))
