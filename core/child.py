"""Starting the child for one unit of work: payload delivery, environment, exit status."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading

from core.errors import EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND
from core.log import Logger
from core.settings import Config


class Child:
    """Runs `command` once per unit of work. Payload as variable (default), argument, stdin and/or file.

    Without -hostenv the child never sees procx's PROCX_* settings: with the payload in PROCX_PAYLOAD it
    gets only that variable (as the original); otherwise procx's environment minus PROCX_*, plus
    PROCX_PAYLOAD_FILE when a payload file is used.
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
        self.hostenv = bool(config["hostenv"])
        self.log = log
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def environment(self, payload: bytes) -> dict[bytes, bytes]:
        if self.hostenv:
            env = dict(os.environb)
        elif self.as_env:
            env = {}
        else:
            env = {k: v for k, v in os.environb.items() if not k.startswith(b"PROCX_")}
        if self.as_env:
            env[b"PROCX_PAYLOAD"] = payload
        if self.payload_file:
            env[b"PROCX_PAYLOAD_FILE"] = os.fsencode(self.payload_file)
        return env

    def run(self, payload: bytes) -> int:
        """Run the command for one payload; its exit status (128+N when killed by signal N)."""
        executable = shutil.which(self.command[0])
        if executable is None:
            self.log.error(f"command not found: {self.command[0]}")
            return EXIT_NOT_FOUND
        argv: list[str | bytes] = [*self.command]
        if self.as_arg:
            argv.append(payload)
        try:
            if self.payload_file:
                with open(self.payload_file, "wb") as f:
                    f.write(payload)
            return self._spawn(executable, argv, payload)
        finally:
            if self.payload_file and not self.keep_file:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.payload_file)

    def _spawn(self, executable: str, argv: list[str | bytes], payload: bytes) -> int:
        try:
            with self.lock:
                self.process = subprocess.Popen(
                    argv, executable=executable, env=self.environment(payload), process_group=0,
                    stdin=subprocess.PIPE if self.as_stdin else subprocess.DEVNULL)
        except ValueError as exc:  # an embedded NUL byte in an argument or variable
            self.log.error(f"cannot pass this payload as {'argument' if self.as_arg else 'variable'} ({exc}); "
                           "use -pass-work-as-stdin or -payload-file")
            return EXIT_CANNOT_EXECUTE
        except PermissionError as exc:
            self.log.error(f"cannot execute {self.command[0]}: {exc.strerror}")
            return EXIT_CANNOT_EXECUTE
        except OSError as exc:
            self.log.error(f"cannot start {self.command[0]}: {exc.strerror}")
            return EXIT_CANNOT_EXECUTE
        feeder = None
        if self.as_stdin:
            feeder = threading.Thread(target=_feed, args=(self.process.stdin, payload), daemon=True)
            feeder.start()
        status = self.process.wait()
        if feeder:
            feeder.join()
        with self.lock:
            self.process = None
        return 128 - status if status < 0 else status

    def signal(self, signum: int) -> None:
        """Send a signal to the running child's process group (nothing when no child runs)."""
        with self.lock:
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signum)


def _feed(pipe, payload: bytes) -> None:
    try:
        pipe.write(payload)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()
