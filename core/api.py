"""The in-app Python API: procx and pushx without a subprocess, configured by the same argument lists.

    from core import api
    payload = api.procx(["-driver", "sqlite", "-sqlite-path", "q.db"])   # take one item, clear it
    api.pushx(b"data", ["-driver", "sqlite", "-sqlite-path", "q.db"])     # push one payload

    with api.work(args) as work:          # cleared when the block ends, failed back if it raises
        if work is not None:
            handle(work.payload)

    for work in api.consume(args):        # a stream of work; the app clears or fails each item
        ...; work.clear()

Variables (PROCX_*/PUSHX_*) apply as on the command line, below the arguments given here.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from core import bulk, registry, settings
from core import pushx as _pushx
from core.errors import ProcxError
from core.log import Logger
from core.options import PROCX, PUSHX
from core.work import Sink, Source, Work, call, connect

__all__ = ["Producer", "consume", "procx", "pushx", "work", "ProcxError"]


def _source(args: Sequence[str], environ: Mapping[str, str] | None) -> Source:
    _, config = settings.load(PROCX, list(args), environ)
    return connect(registry.load(config.spec, PROCX)(config))


def _take(source: Source, wait: float) -> Work | None:
    work = call(source.config, "get work", source.get, wait)
    if work is not None:
        work.source = source
    return work


def procx(args: Sequence[str], *, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The original wrapper's call: take one unit of work, clear it, and return its payload (None: no work).

    The work is gone once this returns (at-most-once for the app): prefer `work()` or `consume()`.
    """
    with work(args, environ=environ) as item:
        return None if item is None else item.payload


@contextmanager
def work(args: Sequence[str], *, environ: Mapping[str, str] | None = None,
         wait: float = 0.0) -> Iterator[Work | None]:
    """Take one unit of work (None when there is none, after waiting up to `wait` seconds); it is cleared
    when the block ends normally and failed back when the block raises."""
    source = _source(args, environ)
    try:
        deadline = time.monotonic() + wait
        item = _take(source, wait)
        while item is None and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            item = _take(source, max(0.0, deadline - time.monotonic()))
        try:
            yield item
        except BaseException:
            if item is not None and not item.done:
                item.fail()
            raise
        if item is not None and not item.done:
            item.clear()
    finally:
        source.close()


def consume(args: Sequence[str], *, environ: Mapping[str, str] | None = None, follow: bool = False,
            poll: float = 0.2) -> Iterator[Work]:
    """Work items one after another until the source is empty (or forever with follow=True).

    The app calls `work.clear()` after it has done the work, or `work.fail()`; an item left unfinished when
    the next one is asked for, or when the loop ends, is failed back so that it is not lost.
    """
    source = _source(args, environ)
    item: Work | None = None
    try:
        while True:
            item = _take(source, poll if follow else 0.0)
            if item is None:
                if not follow:
                    return
                time.sleep(poll)
                continue
            yield item
            if not item.done:
                item.fail()
    finally:
        if item is not None and not item.done:
            item.fail()
        source.close()


def pushx(data: bytes | str, args: Sequence[str], *, environ: Mapping[str, str] | None = None) -> str | None:
    """Push one payload (str is sent as UTF-8); returns the provider's id where it gives one."""
    with Producer(args, environ=environ) as producer:
        return producer.push(data)


class Producer:
    """A connection kept open for many pushes: `with Producer(args) as p: p.push(b"..")`."""

    def __init__(self, args: Sequence[str], *, environ: Mapping[str, str] | None = None) -> None:
        _, self.config = settings.load(PUSHX, list(args), environ)
        self.sink: Sink | None = None
        self.log = Logger(PUSHX)
        self.log.configure(fmt=self.config["log-format"], secrets=self.config.secrets(), driver=self.config.driver)

    def __enter__(self) -> Producer:
        self.sink = _pushx.open_sink(self.config)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    def push(self, data: bytes | str) -> str | None:
        payload = data.encode() if isinstance(data, str) else bytes(data)
        ident = call(self.config, "push", self.sink.push, payload)  # type: ignore[union-attr]
        self.log.event("pushed", id=ident, bytes=len(payload))
        return ident

    def push_many(self, items: Sequence[bytes | str]) -> list[str | None]:
        payloads = [d.encode() if isinstance(d, str) else bytes(d) for d in items]
        return call(self.config, "push", self.sink.push_many, payloads)  # type: ignore[union-attr]

    def push_bulk(self, data: bytes | str | BinaryIO, *, separator: bytes | str | None = None,
                  batch: int | None = None, keep_empty: bool | None = None) -> int:
        """pushx -bulk in the app: one message per line of `data` (bytes, str, or a binary stream, read as it
        arrives), pushed in batches with the driver's batch API; returns how many messages were pushed.

        `separator`, `batch` and `keep_empty` default to -bulk-separator, -bulk-batch and -bulk-keep-empty. A
        failed batch raises a ProcxError that says how many messages were pushed before it.
        """
        if isinstance(data, str):
            data = data.encode()
        stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        reader = bulk.Reader(getattr(stream, "read1", stream.read))
        sep = separator.encode() if isinstance(separator, str) else separator
        if sep == b"":
            raise ValueError("separator must not be empty")
        if batch is not None:
            bulk.check_batch(batch)
        done = bulk.push_all(self.config, self.log, self.sink, reader, lambda raw: None,  # type: ignore[arg-type]
                             sep=sep, limit=batch, keep_empty=keep_empty)
        return done.messages
