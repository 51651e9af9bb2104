"""pushx -bulk: one message per input line (or per -bulk-separator), pushed in batches with the driver's batch API.

The input is read as it arrives (chunks of CHUNK bytes, never the whole stream): a batch is pushed when it holds
-bulk-batch messages (or MAX_BATCH_BYTES of payload), or when the input has had nothing new for LINGER seconds,
so a slow producer's lines go out promptly and a fast one's fill the batches. A batch's exact input bytes (its
messages with their separators, and the empty lines that were skipped) are passed on to -out only after the
batch was pushed, so -out never shows a line that was not pushed. When a push fails, pushx stops: the error
says how many messages (and input lines) were pushed before the failing batch.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from core.errors import InputError, ProcxError

if TYPE_CHECKING:
    from typing import BinaryIO

    from core.log import Logger
    from core.settings import Config
    from core.work import Sink

CHUNK = 1 << 16  # bytes read at a time
LINGER = 0.05  # seconds the input may be silent before an incomplete batch is pushed anyway
MAX_BATCH_BYTES = 4 << 20  # a batch is pushed once its payloads reach this size, whatever -bulk-batch says
MAX_BATCH = 100_000
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\"}


def separator(text: str) -> bytes:
    r"""The separator's bytes from its text: \n, \r, \t, \0, \\ and \xHH escapes; anything else is UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode()
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _ESCAPES and code:
            out += _ESCAPES[code]
            i += 2
        elif code == "x" and len(text) >= i + 4 and all(c in "0123456789abcdefABCDEF" for c in text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            raise ValueError(f"unknown escape \\{code} (use \\n, \\r, \\t, \\0, \\\\ or \\xHH)")
    if not out:
        raise ValueError("must not be empty")
    return bytes(out)


def check_separator(text: str) -> str:
    separator(text)
    return text


def check_batch(value: int) -> int:
    if not 1 <= value <= MAX_BATCH:
        raise ValueError(f"must be between 1 and {MAX_BATCH}")
    return value


class Reader:
    """Chunks of the input as they arrive. With a file descriptor, `ready(timeout)` says whether more input (or
    its end) can be read within `timeout` seconds; without one (a Python stream), it always says yes."""

    def __init__(self, read: Callable[[int], bytes], fd: int | None = None, stream: object = None) -> None:
        self.read = read
        self.fd = fd
        self.stream = stream  # kept open as long as the reader lives

    @classmethod
    def of(cls, stream: BinaryIO) -> Reader:
        """A reader of a binary stream: straight from its file descriptor when it has one (nothing read yet)."""
        try:
            fd = stream.fileno()
        except (OSError, AttributeError, ValueError):
            return cls(getattr(stream, "read1", stream.read), stream=stream)
        return cls(lambda n: os.read(fd, n), fd, stream)

    def ready(self, timeout: float) -> bool:
        if self.fd is None:
            return True
        import select

        return bool(select.select([self.fd], [], [], max(0.0, timeout))[0])


class Splitter:
    """Cuts a byte stream into records at a separator (the separator itself is in no record)."""

    def __init__(self, sep: bytes) -> None:
        self.sep = sep
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """The records completed by `chunk` (a separator may straddle two chunks)."""
        start = max(0, len(self.buffer) - len(self.sep) + 1)  # the buffer holds no whole separator
        self.buffer += chunk
        end = self.buffer.rfind(self.sep, start)
        if end < 0:
            return []
        cut = end + len(self.sep)
        body = bytes(self.buffer[:cut])
        del self.buffer[:cut]
        return body.split(self.sep)[:-1]

    def rest(self) -> bytes:
        """What follows the last separator (at the end of the input: the last record, if not empty)."""
        rest = bytes(self.buffer)
        self.buffer.clear()
        return rest


class Batch:
    """Consecutive records of the input: the messages among them, and the exact input bytes they cover."""

    __slots__ = ("records", "payloads", "size", "terminated")

    def __init__(self) -> None:
        self.records: list[bytes] = []  # every record, the skipped empty ones too
        self.payloads: list[bytes] = []
        self.size = 0  # payload bytes
        self.terminated = True  # False when the last record had no separator (the input's end)

    def add(self, record: bytes, keep_empty: bool) -> None:
        self.records.append(record)
        if record or keep_empty:
            self.payloads.append(record)
            self.size += len(record)

    def full(self, limit: int) -> bool:
        return len(self.payloads) >= limit or self.size >= MAX_BATCH_BYTES

    def raw(self, sep: bytes) -> bytes:
        data = sep.join(self.records)
        return data + sep if self.terminated else data


def batches(reader: Reader, sep: bytes, limit: int, keep_empty: bool = False,
            linger: float = LINGER) -> Iterator[Batch]:
    """The input as batches of at most `limit` messages, each as soon as it is full or the input pauses."""
    splitter = Splitter(sep)
    batch, since = Batch(), 0.0
    while True:
        if batch.records and not reader.ready(since + linger - time.monotonic()):
            yield batch
            batch = Batch()
        try:
            chunk = reader.read(CHUNK)
        except OSError as exc:
            raise InputError(f"cannot read the input: {exc.strerror or exc}") from exc
        if not chunk:
            break
        for record in splitter.feed(chunk):
            if not batch.records:
                since = time.monotonic()
            batch.add(record, keep_empty)
            if batch.full(limit):
                yield batch
                batch = Batch()
    last = splitter.rest()
    if last:
        batch.add(last, keep_empty)
        batch.terminated = False
    if batch.records:
        yield batch


class Progress:
    """What a bulk push has done so far: for the summary when it stops early."""

    def __init__(self) -> None:
        self.messages = 0
        self.lines = 0
        self.bytes = 0

    def stopped(self, exc: ProcxError) -> ProcxError:
        """The error, of the same kind and exit status, saying how far the input was pushed."""
        done = (f"{self.messages} messages from the first {self.lines} input lines were pushed" if self.lines
                else "no message was pushed")
        return type(exc)(f"{exc} [bulk: {done}; the failing batch and the rest of the input were not passed on]",
                         exc.exit_code)


def push_all(config: Config, log: Logger, sink: Sink, reader: Reader, tee: Callable[[bytes], None],
             *, sep: bytes | None = None, limit: int | None = None, keep_empty: bool | None = None) -> Progress:
    """Push the whole input batch by batch; the settings come from the config unless given."""
    from core.work import call

    sep = separator(config["bulk-separator"]) if sep is None else sep
    limit = int(config["bulk-batch"]) if limit is None else limit
    keep_empty = bool(config["bulk-keep-empty"]) if keep_empty is None else keep_empty
    progress = Progress()
    try:
        for batch in batches(reader, sep, limit, keep_empty):
            if batch.payloads:
                started = time.monotonic()
                call(config, "push", sink.push_many, batch.payloads)
                log.event("pushed", messages=len(batch.payloads), bytes=batch.size,
                          duration_ms=round((time.monotonic() - started) * 1000, 3))
            progress.messages += len(batch.payloads)
            progress.lines += len(batch.records)
            progress.bytes += batch.size
            tee(batch.raw(sep))
    except ProcxError as exc:
        raise progress.stopped(exc) from exc
    return progress


def reader(config: Config, stdin: BinaryIO) -> Reader:
    """-bulk: the input as a stream, read as it arrives."""
    if config["in"]:
        return Reader.of(io.BytesIO(os.fsencode(config["in"])))
    if config["in-file"] == "-":
        return Reader.of(stdin)
    try:
        return Reader.of(open(config["in-file"], "rb", buffering=0))  # noqa: SIM115 - read until pushx exits
    except OSError as exc:
        raise InputError(f"cannot read the input: {exc.strerror}") from exc
