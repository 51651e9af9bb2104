"""The procx loop: get work, run the child, clear or fail; once, or as a daemon with N workers."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from core import exitcodes, registry, retry
from core.child import Child
from core.errors import EXIT_OK, InputError, ProcxError, ProviderError, UsageError
from core.log import Logger, metrics_serving
from core.settings import Config
from core.work import Sink, Source, Work, call, connect, has_dead_letter

IDLE_MIN, IDLE_MAX = 0.05, 1.0  # back-off while a source that cannot wait server-side is empty
ERROR_MIN, ERROR_MAX = 0.5, 30.0  # back-off between reconnects after provider errors
BLOCK_WAIT = 1.0  # how long one get() may wait server-side, so that a stop is noticed


def source_factory(config: Config) -> Callable[[], Source]:
    cls = registry.load(config.spec, "procx")
    check_dead_letter(config, exitcodes.parse(config["exit-codes"]), cls)
    return lambda: cls(config)


def check_dead_letter(config: Config, codes: exitcodes.ExitCodes, source: type | Source) -> None:
    """-exit-codes ...=dead-letter and -max-attempts need a dead-letter target (the source's own, or -dead-letter):
    a usage error at startup otherwise."""
    if has_dead_letter(source) or config["dead-letter"]:
        return
    if codes.uses(exitcodes.DEAD_LETTER):
        raise UsageError(f"{config.describe('exit-codes')}: dead-letter: driver {config.driver} has no dead-letter "
                         f"target (use drop or fail, or give one with -dead-letter)")
    if config["max-attempts"]:
        raise UsageError(f"{config.describe('max-attempts')}: driver {config.driver} has no dead-letter target for "
                         f"the work that failed its last attempt: give one with -dead-letter (pushx flags), or use "
                         f"the provider's own (e.g. a redrive or dead-letter policy)")


def work_variables(work: Work) -> dict[bytes, bytes]:
    """What the child learns about its work: PROCX_WORK_ID and PROCX_ATTEMPT, where the driver gives them."""
    found: dict[bytes, bytes] = {}
    text = "" if work.id is None else str(work.id)
    if work.id is not None and "\0" not in text:  # a NUL cannot be in a variable
        found[b"PROCX_WORK_ID"] = os.fsencode(text)
    if work.counted:
        found[b"PROCX_ATTEMPT"] = str(work.attempt).encode()
    return found


class Procx:
    def __init__(self, config: Config, log: Logger, make_source: Callable[[], Source] | None = None) -> None:
        self.config = config
        self.log = log
        self.exit_codes = exitcodes.parse(config["exit-codes"])
        self.make_source = make_source or source_factory(config)
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.children: list[Child] = []
        self.stop_signal = 0
        self.stdout_lock = threading.Lock()
        self.status = EXIT_OK
        self.policy = retry.Policy(config)
        self.target = retry.target_config(config["dead-letter"]) if config["dead-letter"] else None
        self.local = threading.local()  # each worker's own connection to the -dead-letter target
        self.store: retry.AttemptStore | None = None  # procx's own attempt counts (opened when first needed)
        self.store_lock = threading.Lock()

    # -- signals ------------------------------------------------------------------------------------
    def install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            self.log.warn("second signal: stopping now", signal=signum)
            self.stop_signal = signum
            self.abort.set()
            for child in self.children:
                child.signal(signal.SIGKILL)
            return
        self.stop_signal = signum
        self.stop.set()
        self.log.event("stopping", signal=signum)
        for child in self.children:
            child.signal(signum, stop=True)
        grace = float(self.config["grace-period"])
        timer = threading.Timer(grace, self._grace_expired)
        timer.daemon = True
        timer.start()

    def _grace_expired(self) -> None:
        for child in self.children:
            child.signal(signal.SIGKILL)

    # -- running ------------------------------------------------------------------------------------
    def run(self) -> int:
        with metrics_serving(self.config, self.log, self.make_source):
            return self._run()

    def _run(self) -> int:
        self.install_signals()
        self.log.event("started", daemon=bool(self.config["daemon"]), concurrency=self.config["concurrency"])
        status = self.once() if not self.config["daemon"] else self.daemon()
        if self.abort.is_set():
            return 128 + (self.stop_signal or signal.SIGTERM)
        self.log.event("stopped", status=status)
        return status

    def once(self) -> int:
        source = self._open()
        try:
            work = self._get(source)
            if work is None:
                self.log.event("no-work")
                return EXIT_OK
            child = self._child(0)
            return self.handle(source, work, child)
        finally:
            source.close()
            self._close_target()
            if self.store is not None:
                self.store.close()

    def daemon(self) -> int:
        first = self._open()  # an unreachable provider at start is an error, not a retry loop
        workers = [threading.Thread(target=self._worker, args=(slot, first if slot == 0 else None),
                                    name=f"procx-worker-{slot}", daemon=True)
                   for slot in range(max(1, int(self.config["concurrency"])))]
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers) and not self.abort.is_set():
            for w in workers:
                w.join(0.2)
        if self.store is not None and not self.abort.is_set():
            self.store.close()
        return EXIT_OK

    def _worker(self, slot: int, source: Source | None) -> None:
        child = self._child(slot)
        idle, backoff = IDLE_MIN, ERROR_MIN
        interval = int(self.config["daemon-interval"]) / 1000.0
        while not self.stop.is_set():
            try:
                if source is None:
                    source = self._open()
                work = source.get(BLOCK_WAIT if self.config.spec.blocking else 0.0)
                backoff = ERROR_MIN
            except ProcxError as exc:
                self.log.event("error", level="error", error=str(exc), retry_in=backoff)
                source = self._drop(source)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, ERROR_MAX)
                continue
            if work is None:
                if self.config["until-empty"]:
                    self.stop.set()
                    break
                if not self.config.spec.blocking:
                    self.stop.wait(interval or idle)
                    idle = min(idle * 2, IDLE_MAX)
                continue
            idle = IDLE_MIN
            try:
                self.handle(source, work, child)
            except ProcxError as exc:
                self.log.event("error", level="error", error=str(exc), id=work.id)
                source = self._drop(source)
            if interval:
                self.stop.wait(interval)
        self._drop(source)
        self._close_target()

    def _drop(self, source: Source | None) -> None:
        if source is not None:
            try:
                source.close()
            except Exception as exc:  # noqa: BLE001 - closing must never stop the loop
                self.log.debug(f"close failed: {exc}")
        return None

    def _open(self) -> Source:
        source = self.make_source()
        check_dead_letter(self.config, self.exit_codes, source)
        return connect(source)

    def _get(self, source: Source) -> Work | None:
        """One-shot: the first unit of work, waiting as -wait-for-work says (negative: forever for drivers that
        block for a message, not at all for the others)."""
        limit = float(self.config["wait-for-work"])
        if limit < 0:
            limit = float("inf") if self.config.spec.blocking else 0.0
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            work = call(self.config, "get work", source.get, max(0.0, min(BLOCK_WAIT, left)))
            if work is not None or left <= 0 or self.stop.is_set():
                return work
            if not self.config.spec.blocking:
                self.stop.wait(min(IDLE_MAX, max(0.0, deadline - time.monotonic())))

    def _child(self, slot: int) -> Child | None:
        if not self.config.command:
            return None
        child = Child(self.config, self.log, slot)
        self.children.append(child)
        return child

    def handle(self, source: Source, work: Work, child: Child | None) -> int:
        """Run one unit of work to its end: cleared after success, failed back otherwise (dead-lettered after its
        last allowed attempt)."""
        work.source = source
        started = time.monotonic()
        self._count(work)
        self.log.event("got", id=work.id, bytes=len(work.payload), attempt=work.attempt)
        if child is None:
            try:
                with self.stdout_lock:
                    sys.stdout.buffer.write(work.payload)
                    sys.stdout.buffer.flush()
            except OSError as exc:
                self._fail(work, started, status=None)
                raise InputError(f"cannot write the payload to standard output: {exc.strerror}") from exc
            self._clear(work, started)
            return EXIT_OK
        work.watch(lambda lost: self._lease_lost(lost, child))
        if work.lost:  # lost before the child started: it is not started
            self._fail(work, started, None)
            return EXIT_OK if self.stop.is_set() else 1
        status = child.run(work.payload, work_variables(work))
        action = self.action(status, child, work)
        if action == exitcodes.CLEAR:
            self._clear(work, started)
            return EXIT_OK
        if action in (exitcodes.DROP, exitcodes.DEAD_LETTER):
            if self._discard(work, started, status, action):
                return EXIT_OK
            return status or 1
        self._fail(work, started, status)
        return EXIT_OK if self.stop.is_set() else status or 1

    def action(self, status: int, child: Child, work: Work | None = None) -> str:
        """What -exit-codes says for this status. The mapping is the child's verdict, so it is not asked when
        the command could not be started (the work is failed back as always), when procx is stopping and the
        child ended by (or after) a signal (procx stopped it, and its work must be retried). When the source lost
        the work's lease (another consumer may have it), the work is failed back unless the child succeeded. A
        failure on the work's last allowed attempt (-max-attempts) dead-letters it."""
        if not child.ran or (self.stop.is_set() and status > 128):
            return exitcodes.FAIL
        action = self.exit_codes.action(status)
        if work is not None and work.lost:
            return exitcodes.CLEAR if action == exitcodes.CLEAR else exitcodes.FAIL
        if action == exitcodes.FAIL and work is not None and self.policy.exhausted(work):
            return exitcodes.DEAD_LETTER
        return action

    # -- attempts, lease loss, dead letters ---------------------------------------------------------------
    def _tracked(self, work: Work) -> bool:
        """procx counts this work's attempts itself: -max-attempts is set and the provider keeps no exact count."""
        return self.policy.max_attempts > 0 and not work.exact

    def _attempts(self) -> retry.AttemptStore:
        with self.store_lock:
            if self.store is None:
                self.store = retry.open_store(self.config)
            return self.store

    def _count(self, work: Work) -> None:
        """Raise the work's attempt to procx's own count where the provider keeps none (or only a lower bound)."""
        if not self._tracked(work):
            return
        try:
            work.attempt = max(work.attempt, self._attempts().failures(retry.work_key(work)) + 1)
            work.counted = True
        except OSError as exc:
            self.log.event("error", level="error", error=f"cannot read the attempt count of the work: {exc}",
                           id=work.id)

    def _counted(self, work: Work, failed: bool) -> None:
        if not self._tracked(work):
            return
        try:
            store = self._attempts()
            (store.failed if failed else store.forget)(retry.work_key(work))
        except OSError as exc:  # a count that cannot be kept must not stop the work's handling
            self.log.event("error", level="error", error=f"cannot keep the attempt count of the work: {exc}",
                           id=work.id)

    def _lease_lost(self, work: Work, child: Child) -> None:
        """The source lost the work's lease (called from its keep-alive thread): stop the child (SIGTERM, then
        SIGKILL after -grace-period); the work is failed back when the child has ended."""
        self.log.event("lease-lost", level="warn", id=work.id, reason=work.lost)
        with child.lock:
            process = child.process
            child.signal(signal.SIGTERM)
        if process is None:
            return

        def kill() -> None:
            with child.lock:
                if child.process is process:  # still the same child, not the next work's
                    child.signal(signal.SIGKILL)

        timer = threading.Timer(float(self.config["grace-period"]), kill)
        timer.daemon = True
        timer.start()

    def _target(self) -> Sink:
        sink = getattr(self.local, "sink", None)
        if sink is None:
            sink = connect(registry.load(self.target.spec, "pushx")(self.target))  # type: ignore[union-attr]
            self.local.sink = sink
        return sink

    def _close_target(self) -> None:
        sink = getattr(self.local, "sink", None)
        self.local.sink = None
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - closing must never stop the loop
                self.log.debug(f"close failed: {exc}")

    def _push_dead(self, work: Work) -> None:
        """Push the payload, byte for byte, to the -dead-letter target (a ProcxError when it cannot)."""
        try:
            sink = self._target()
            call(self.target, "push the work to the -dead-letter target", sink.push,  # type: ignore[arg-type]
                 work.payload)
        except ProcxError as exc:
            self._close_target()
            raise ProviderError(f"-dead-letter: {exc}") from exc

    def _clear(self, work: Work, started: float) -> None:
        call(self.config, f"clear work {work.id or ''}".strip(), work.clear)
        self._counted(work, failed=False)
        self.log.event("cleared", id=work.id, duration_ms=round((time.monotonic() - started) * 1000, 3))

    def _discard(self, work: Work, started: float, status: int, action: str) -> bool:
        """-exit-codes drop or dead-letter, or the last allowed attempt failed: the work is finished without being
        done (an error of the source propagates like a failed clear: the work stays leased and comes back). With
        -dead-letter the payload is pushed there first, and the work cleared only after that push succeeded; if
        the push fails, the work is failed back (False), never lost."""
        what = f"work {work.id or ''}".strip()
        if action == exitcodes.DROP:
            call(self.config, f"drop {what}", work.drop)
            event = "dropped"
        elif self.target is None:
            call(self.config, f"dead-letter {what}", work.dead_letter)
            event = "dead-lettered"
        else:
            try:
                self._push_dead(work)
            except ProcxError as exc:
                self.log.event("error", level="error", error=str(exc), id=work.id)
                self._fail(work, started, status)
                return False
            call(self.config, f"clear dead-lettered {what}", work.dead_letter, True)
            event = "dead-lettered"
        self._counted(work, failed=False)
        self.log.event(event, level="warn", id=work.id, status=status, attempt=work.attempt,
                       duration_ms=round((time.monotonic() - started) * 1000, 3))
        return True

    def _fail(self, work: Work, started: float, status: int | None) -> None:
        """Fail the work back, after the -retry-backoff delay unless procx stopped it or its lease was lost."""
        delay = 0.0 if work.lost or self.stop.is_set() else self.policy.delay(work.attempt)
        self._counted(work, failed=True)
        try:
            call(self.config, f"fail work {work.id or ''}".strip(), work.fail, delay)
        except ProcxError as exc:
            self.log.event("error", level="error", error=str(exc), id=work.id)
        fields = {"retry_in": delay} if delay else {}
        self.log.event("failed", level="warn", id=work.id, status=status, attempt=work.attempt, **fields,
                       duration_ms=round((time.monotonic() - started) * 1000, 3))

