"""A small RESP2 client for redis-list (both sides) and the pushx sides of redis-stream and redis-pubsub: one
connection, commands, pipelines and Lua scripts, AUTH, TLS through our own ssl context.

pushx pushes and exits, so its start-up is most of its cost, and redis-py takes ~100 ms to import (it loads
asyncio, ssl and its observability layer whatever is used); this module takes ~1 ms, and its replies are parsed
with less work per command, which a procx daemon on redis-list feels on every item. The redis-stream and
redis-pubsub sources keep redis-py (consumer groups, pub/sub subscriptions).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence

Arg = bytes | str | int | float


class WireError(Exception):
    """The connection failed: refused, closed, timed out, or the TLS handshake failed."""


class ReplyError(Exception):
    """The server answered a command with an error (`-ERR ...`, `-WRONGPASS ...`)."""


def encode(args: Sequence[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings (binary-safe)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        out += [b"$%d\r\n" % len(data), data, b"\r\n"]
    return b"".join(out)


class Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) when the server does not know it yet."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = ""  # computed on first use: declaring a script costs nothing

    def __call__(self, conn: Connection, keys: Sequence[Arg], args: Sequence[Arg]) -> object:
        if not self.sha:
            import hashlib

            self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        try:
            return conn.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return conn.call("EVAL", self.text, len(keys), *keys, *args)


class Connection:
    def __init__(self, host: str, port: int, *, password: str | None = None, context=None,
                 connect_timeout: float = 10.0, timeout: float = 30.0) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise WireError(_reason(exc)) from None
        try:
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
        except OSError as exc:
            sock.close()
            raise WireError(_reason(exc)) from None
        self.sock = sock
        self.reader = sock.makefile("rb")
        try:
            self.call("AUTH", password) if password else self.call("PING")
        except BaseException:
            self.close()
            raise

    def call(self, *args: Arg) -> object:
        return self.pipeline([args])[0]

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        """Send every command, then read every reply; the first error reply is raised after all were read."""
        try:
            self.sock.sendall(b"".join(encode(c) for c in commands))
            replies = [self._reply() for _ in commands]
        except OSError as exc:
            raise WireError(_reason(exc)) from None
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies

    def _line(self) -> bytes:
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise WireError("Connection closed by server.")
        return line[:-2]

    def _reply(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            if len(data) != size + 2:
                raise WireError("Connection closed by server.")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise WireError(f"protocol error: unexpected reply {line[:40]!r}")

    def close(self) -> None:
        for part in (self.reader, self.sock):
            with contextlib.suppress(OSError):
                part.close()


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return f"Timeout: {exc}" if str(exc) else "Timeout"
    if exc.strerror and not str(exc).startswith("[SSL"):  # TLS errors say more in their text
        return exc.strerror
    return str(exc) or type(exc).__name__
