"""Starting the child for one unit of work: payload delivery, environment, exit status."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import threading

from core.errors import EXIT_CANNOT_EXECUTE, EXIT_IO, EXIT_NOT_FOUND
from core.log import Logger
from core.settings import Config


class Child:
    """Runs `command` once per unit of work. Payload as variable (default), argument, stdin and/or file.

    Without -hostenv the child never sees procx's PROCX_* settings: with the payload in PROCX_PAYLOAD it
    gets only that variable (as the original); otherwise procx's environment minus PROCX_*, plus
    PROCX_PAYLOAD_FILE when a payload file is used. In every mode it also gets the work's own variables
    (PROCX_WORK_ID, PROCX_ATTEMPT) where the driver gives them.
    """

    def __init__(self, config: Config, log: Logger, slot: int = 0) -> None:
        self.command = list(config.command)
        self.as_arg = bool(config["pass-work-as-arg"])
        self.as_stdin = bool(config["pass-work-as-stdin"])
        path = str(config["payload-file"])
        if path and config["concurrency"] > 1:
            path = f"{path}.{slot}"
        self.payload_file = os.path.abspath(path) if path else ""
        self.keep_file = bool(config["keep-payload-file"])
        self.as_env = not (self.as_arg or self.as_stdin or self.payload_file)
        if config["hostenv"]:
            self.base_env = dict(os.environb)
        elif self.as_env:
            self.base_env = {}
        else:
            self.base_env = {k: v for k, v in os.environb.items() if not k.startswith(b"PROCX_")}
        if self.payload_file:
            self.base_env[b"PROCX_PAYLOAD_FILE"] = os.fsencode(self.payload_file)
        self.inherit = not self.as_env and self.base_env == dict(os.environb)
        self.log = log
        self._resolved: str | None = None
        self.process: subprocess.Popen | None = None
        self.ran = False  # the last run() started the command (its status is the child's own verdict)
        self.stopping = 0  # the signal procx was asked to stop with: no new child starts, a starting one gets it
        self.lock = threading.RLock()  # re-entrant: the signal handler may run while this thread holds it

    def environment(self, payload: bytes, variables: dict[bytes, bytes] | None = None) -> dict[bytes, bytes] | None:
        """The child's environment; None (inherit procx's, which is cheaper to start) when they are equal."""
        if self.as_env:
            return {**self.base_env, **(variables or {}), b"PROCX_PAYLOAD": payload}
        if variables:
            return {**self.base_env, **variables}
        return None if self.inherit else self.base_env

    def executable(self) -> str | None:
        """The command's program: a path is used as given (so a file that is not executable is 126, not 127);
        a bare name is looked up in procx's PATH once and remembered."""
        name = self.command[0]
        if os.sep in name:
            return name if os.path.exists(name) else None
        if self._resolved is None:
            self._resolved = shutil.which(name)
        return self._resolved

    def run(self, payload: bytes, variables: dict[bytes, bytes] | None = None) -> int:
        """Run the command for one payload (plus the work's `variables` in its environment); its exit status
        (128+N when killed by signal N). `ran` says afterwards whether the command was started at all."""
        self.ran = False
        executable = self.executable()
        if executable is None:
            self.log.error(f"command not found: {self.command[0]}")
            return EXIT_NOT_FOUND
        argv: list[str | bytes] = [*self.command]
        if self.as_arg:
            argv.append(payload)
        try:
            if self.payload_file:
                try:
                    with open(self.payload_file, "wb") as f:
                        f.write(payload)
                except OSError as exc:
                    self.log.error(f"cannot write the payload file {self.payload_file}: {exc.strerror}")
                    return EXIT_IO
            return self._spawn(executable, argv, payload, variables)
        finally:
            if self.payload_file and not self.keep_file:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.payload_file)

    def _spawn(self, executable: str, argv: list[str | bytes], payload: bytes,
               variables: dict[bytes, bytes] | None) -> int:
        try:
            with self.lock:
                if self.stopping:
                    return 128 + self.stopping
                self.process = subprocess.Popen(
                    argv, executable=executable, env=self.environment(payload, variables),
                    process_group=0, stdin=subprocess.PIPE if self.as_stdin else subprocess.DEVNULL)
                self.ran = True
                if self.stopping:  # the signal came while the child was being started
                    os.killpg(self.process.pid, self.stopping)
        except ValueError as exc:  # an embedded NUL byte in an argument or variable
            return self._cannot(f"cannot pass this payload as {'argument' if self.as_arg else 'variable'} ({exc})")
        except OSError as exc:
            if exc.errno == errno.E2BIG:
                return self._cannot("the payload is too large for an argument or variable")
            verb = "execute" if isinstance(exc, PermissionError) else "start"
            self.log.error(f"cannot {verb} {self.command[0]}: {exc.strerror}")
            return EXIT_CANNOT_EXECUTE
        if self.as_stdin:
            with contextlib.suppress(BrokenPipeError):  # a child that does not read its input
                self.process.communicate(payload)
        status = self.process.wait()
        with self.lock:
            self.process = None
        return 128 - status if status < 0 else status

    def _cannot(self, why: str) -> int:
        self.log.error(f"{why}; use -pass-work-as-stdin or -payload-file")
        return EXIT_CANNOT_EXECUTE

    def signal(self, signum: int, stop: bool = False) -> None:
        """Send a signal to the running child's process group; with `stop`, no new child starts after this."""
        with self.lock:
            if stop and not self.stopping:
                self.stopping = signum
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signum)

