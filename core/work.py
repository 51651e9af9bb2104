"""The driver contracts: Work (one unit of work), Source (procx side) and Sink (pushx side)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from core.errors import ProcxError, ProviderError
from core.settings import Config

T = TypeVar("T")


class Work:
    """One unit of work: the payload bytes plus what the source needs to clear or fail it.

    `handle` is the source's own receipt (a lease token, a receipt handle, a delivery tag); per-item state
    lives here, never on the source, so nothing leaks from one item to the next. `attempt` is the delivery
    count where the source keeps one (`counted` says whether it gave one; otherwise the attempt reads 1);
    `exact` says that count is the provider's own delivery counter (not a lower bound such as a redelivered
    flag), so -max-attempts can rely on it. `retry_delay` is the engine's hint for fail (-retry-backoff);
    `lost` is the reason when the source lost its lease while the child ran (see lose()).
    """

    __slots__ = ("payload", "id", "attempt", "counted", "exact", "meta", "handle", "source", "done", "retry_delay",
                 "lost", "on_lost")

    def __init__(self, payload: bytes, id: str | None = None, *, attempt: int | None = None, handle: object = None,
                 meta: dict[str, object] | None = None, source: Source | None = None, exact: bool = False) -> None:
        self.payload = payload
        self.id = id
        self.attempt = 1 if attempt is None else attempt
        self.counted = attempt is not None
        self.exact = exact and attempt is not None
        self.handle = handle
        self.meta = meta or {}
        self.source = source
        self.done = ""
        self.retry_delay = 0.0
        self.lost = ""
        self.on_lost: Callable[[Work], object] | None = None

    def __repr__(self) -> str:
        return f"Work(id={self.id!r}, {len(self.payload)} bytes)"

    def clear(self) -> None:
        """Acknowledge: the work was done; the source removes/moves/updates it."""
        self._finish("cleared")
        self.source.clear(self)  # type: ignore[union-attr]

    def fail(self, delay: float = 0.0) -> None:
        """The work was not done: the source makes it available again (or where its fail options say), after
        `delay` seconds where it can delay (a hint: see Source.fail)."""
        self._finish("failed")
        self.retry_delay = delay
        self.source.fail(self)  # type: ignore[union-attr]

    def drop(self) -> None:
        """The work is removed without having been done (-exit-codes ...=drop): the source clears it."""
        self._finish("dropped")
        self.source.clear(self)  # type: ignore[union-attr]

    def dead_letter(self, pushed: bool = False) -> None:
        """The work goes to the source's dead-letter target (-exit-codes ...=dead-letter, -max-attempts). With
        `pushed`, procx already pushed the payload to its own target (-dead-letter): the source just clears it."""
        self._finish("dead-lettered")
        (self.source.clear if pushed else self.source.dead_letter)(self)  # type: ignore[union-attr]

    def lose(self, reason: str) -> None:
        """Called by the source (from its keep-alive thread) when it lost the lease on this work: another
        consumer may have it now. procx stops the child and fails the work back; the first reason is kept."""
        if self.lost or self.done:
            return
        self.lost = reason or "lease lost"
        if self.on_lost is not None:
            self.on_lost(self)

    def watch(self, on_lost: Callable[[Work], object]) -> None:
        """procx is about to run the child: the source keeps the lease alive from now on (its optional `keep`),
        and `on_lost(work)` is called when the lease is lost (at once if it already is)."""
        self.on_lost = on_lost
        keep = getattr(self.source, "keep", None)
        if keep is not None:
            keep(self)
        if self.lost:
            on_lost(self)

    def _finish(self, how: str) -> None:
        if self.done:
            raise RuntimeError(f"work {self.id} was already {self.done}")
        self.done = how


class Source:
    """The procx side of a driver. One instance per worker; its methods are called from one thread."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def open(self) -> None:
        """Connect (raise ProviderError naming host/port when the provider is unreachable)."""

    def get(self, wait: float) -> Work | None:
        """The next unit of work, or None when there is none. A source that can wait server-side may
        block up to `wait` seconds for work to arrive; others return at once."""
        raise NotImplementedError

    def clear(self, work: Work) -> None:
        raise NotImplementedError

    def fail(self, work: Work) -> None:
        """Make the work available again. `work.retry_delay` (seconds, -retry-backoff) asks for a delay before
        it is offered again: a source whose provider can delay honours it, the others ignore it."""
        raise NotImplementedError

    # Lease loss: a source that keeps a lease alive while the child runs calls `work.lose(reason)` when the
    # keep-alive finds the lease gone (expired and taken by another consumer); procx then stops the child.
    # Optional: `keep(self, work)` starts renewing the work's lease; procx calls it just before the child starts
    # (library users of core.api that hold work without a child get no renewal from it).

    # Optional: a source with a dead-letter target defines `dead_letter(self, work)`, which moves the work
    # there (so that it is neither retried nor lost). procx accepts `-exit-codes ...=dead-letter` only then.

    def close(self) -> None:
        """Release connections; must not raise."""


def has_dead_letter(source: type | Source) -> bool:
    """Whether a Source (class or instance) can dead-letter work."""
    return callable(getattr(source, "dead_letter", None))


class Sink:
    """The pushx side of a driver."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def open(self) -> None:
        """Connect (raise ProviderError naming host/port when the provider is unreachable)."""

    def push(self, payload: bytes) -> str | None:
        """Store one payload, byte for byte; return its id where the provider gives one."""
        raise NotImplementedError

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        """Store several payloads; drivers with a batch API override this."""
        return [self.push(p) for p in payloads]

    def close(self) -> None:
        """Release connections; must not raise."""


def call(config: Config, what: str, fn: Callable[..., T], *args: object) -> T:
    """Call a driver method; an unexpected exception becomes a ProviderError naming the driver and the step."""
    try:
        return fn(*args)
    except ProcxError:
        raise
    except Exception as exc:
        raise ProviderError(f"driver {config.driver}: cannot {what}: {exc}") from exc


def connect(endpoint: Source | Sink) -> Source | Sink:
    """Open a driver's Source or Sink (a ProviderError when it cannot connect)."""
    call(endpoint.config, "connect", endpoint.open)
    return endpoint
