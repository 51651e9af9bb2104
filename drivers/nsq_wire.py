"""A small client of the NSQ TCP protocol (V2) and of nsqlookupd's HTTP /lookup, for the nsq driver.

Only what procx and pushx need: the "  V2" magic, IDENTIFY (JSON, feature negotiation, TLS upgrade), SUB, RDY,
FIN, REQ, TOUCH, PUB, MPUB, NOP answers to heartbeats, and CLS. Frames are `size:int32 type:int32 data`
(big-endian; size counts the type and the data); type 0 is a response, 1 an error, 2 a message, whose data is
`timestamp:int64 attempts:uint16 id:16 bytes body`. A reader thread per connection answers heartbeats, hands
messages and the errors of FIN/REQ/TOUCH to callbacks and responses to the command that waits for them.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

MAGIC = b"  V2"
FRAME_RESPONSE, FRAME_ERROR, FRAME_MESSAGE = 0, 1, 2
HEARTBEAT = b"_heartbeat_"
OK = b"OK"
MAX_FRAME = 64 << 20  # refuse absurd frame sizes instead of allocating them
# errors nsqd sends for FIN/REQ/TOUCH without closing the connection (the commands have no success answer)
ASYNC_ERRORS = (b"E_FIN_FAILED", b"E_REQ_FAILED", b"E_TOUCH_FAILED")
NAME = re.compile(r"^[.a-zA-Z0-9_-]+(#ephemeral)?$")


def valid_name(name: str) -> bool:
    """A valid topic or channel name (nsqd: 1 to 64 characters of [.a-zA-Z0-9_-], optional #ephemeral)."""
    return 0 < len(name) <= 64 and NAME.match(name) is not None


class NsqError(Exception):
    """An error frame from nsqd (E_BAD_TOPIC, E_PUB_FAILED, ...) or a broken protocol exchange."""


class SpeaksHttp(NsqError):
    """The address answered in HTTP: an nsqlookupd (or nsqd HTTP) port, not nsqd's TCP port."""


class Message:
    """One message frame: nsqd's id (16 ASCII bytes), its delivery count and body."""

    __slots__ = ("id", "attempts", "timestamp", "body")

    def __init__(self, data: bytes) -> None:
        if len(data) < 26:
            raise NsqError(f"short message frame ({len(data)} bytes)")
        self.timestamp, self.attempts = struct.unpack(">qH", data[:10])
        self.id = data[10:26]
        self.body = data[26:]


def failed_id(error: bytes, name: bytes) -> bytes | None:
    """The message id of an E_<name>_FAILED error frame (nsqd: `E_TOUCH_FAILED TOUCH <id> failed <reason>`)."""
    parts = error.split(b" ", 3)
    if len(parts) >= 3 and parts[0] == b"E_" + name + b"_FAILED" and parts[1] == name:
        return parts[2]
    return None


def command(name: bytes, *params: bytes, body: bytes | None = None) -> bytes:
    """One command line, with its size-prefixed body when it has one."""
    out = b" ".join((name, *params)) + b"\n"
    if body is not None:
        out += struct.pack(">I", len(body)) + body
    return out


def mpub_body(bodies: Sequence[bytes]) -> bytes:
    return struct.pack(">I", len(bodies)) + b"".join(struct.pack(">I", len(b)) + b for b in bodies)


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """host:port (IPv6 in brackets) -> (host, port); ValueError when the port is not a number."""
    text = address.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"no host in {address!r}")
    return host, int(port) if port else default_port


class Connection:
    """One nsqd TCP connection. `on_message(conn, message)` and `on_error(conn, frame)` (E_FIN_FAILED,
    E_REQ_FAILED, E_TOUCH_FAILED) are called from the reader thread."""

    def __init__(self, host: str, port: int, *, identify: dict[str, object], tls: ssl.SSLContext | None = None,
                 timeout: float = 10.0, on_message: Callable[[Connection, Message], None] | None = None,
                 on_error: Callable[[Connection, bytes], None] | None = None) -> None:
        self.host, self.port = host, port
        self.where = f"{host}:{port}"
        self.identify_body = dict(identify)
        self.tls = tls
        self.timeout = timeout
        self.on_message = on_message
        self.on_error = on_error
        self.sock: socket.socket | None = None
        self.responses: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.write_lock = threading.Lock()
        self.call_lock = threading.Lock()
        self.closed = threading.Event()
        self.error: str = ""  # why the connection ended (empty while it is alive or after close())
        self.settings: dict[str, object] = {}
        self.reader: threading.Thread | None = None

    # -- set-up -----------------------------------------------------------------------------------------
    def connect(self) -> dict[str, object]:
        """Connect, send the magic and IDENTIFY (upgrading to TLS when asked); returns nsqd's settings."""
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            self.sock.sendall(MAGIC)
            body = {**self.identify_body, "feature_negotiation": True, "tls_v1": self.tls is not None}
            self.sock.sendall(command(b"IDENTIFY", body=json.dumps(body).encode()))
            data = self._expect_response("IDENTIFY")
            self.settings = json.loads(data) if data.startswith(b"{") else {}
            if self.tls is not None:
                if not self.settings.get("tls_v1"):
                    raise NsqError("nsqd does not offer TLS (start it with --tls-cert and --tls-key)")
                self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)
                self._expect_response("the TLS upgrade")
            if self.settings.get("auth_required"):
                raise NsqError("nsqd requires AUTH, which this driver does not support")
            for feature in ("snappy", "deflate"):
                if self.settings.get(feature):
                    raise NsqError(f"nsqd negotiated {feature} compression, which was not asked for")
        except BaseException:
            self._shut()
            raise
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read_loop, name=f"nsq-reader-{self.where}", daemon=True)
        self.reader.start()
        return self.settings

    def _expect_response(self, what: str) -> bytes:
        """Read frames synchronously (before the reader thread runs) until a response; an error raises."""
        while True:
            ftype, data = self._read_frame()
            if ftype == FRAME_RESPONSE and data == HEARTBEAT:
                self.sock.sendall(command(b"NOP"))  # type: ignore[union-attr]
                continue
            if ftype == FRAME_RESPONSE:
                return data
            if ftype == FRAME_ERROR:
                raise NsqError(data.decode(errors="replace"))
            raise NsqError(f"unexpected frame type {ftype} during {what}")

    def _recv_exact(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 1 << 20))  # type: ignore[union-attr]
            if not chunk:
                raise ConnectionError("connection closed by nsqd")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self) -> tuple[int, bytes]:
        head = self._recv_exact(8)
        if head.startswith((b"HTTP/", b"<")):  # a status line, or an HTML error page without one
            raise SpeaksHttp("the address answered in HTTP, not the NSQ TCP protocol")
        size, ftype = struct.unpack(">ii", head)
        if size < 4 or size > MAX_FRAME:
            raise NsqError(f"invalid frame size {size}")
        return ftype, self._recv_exact(size - 4)

    # -- the reader thread ----------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while True:
                ftype, data = self._read_frame()
                if ftype == FRAME_RESPONSE and data == HEARTBEAT:
                    self.send(b"NOP")
                elif ftype == FRAME_MESSAGE:
                    if self.on_message is not None:
                        self.on_message(self, Message(data))
                elif ftype == FRAME_ERROR and data.split(b" ", 1)[0] in ASYNC_ERRORS:
                    if self.on_error is not None:
                        self.on_error(self, data)
                else:
                    self.responses.put((ftype, data))
        except (OSError, NsqError, struct.error, ValueError) as exc:
            if not self.closed.is_set():
                self.error = _reason(exc)
        finally:
            self.closed.set()
            self.responses.put((-1, self.error.encode()))  # wake a waiting call()

    # -- commands ---------------------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    def send(self, name: bytes, *params: bytes, body: bytes | None = None) -> None:
        """A command without an answer (RDY, FIN, REQ, TOUCH, NOP)."""
        if self.closed.is_set():
            raise ConnectionError(self.error or "connection closed")
        with self.write_lock:
            self.sock.sendall(command(name, *params, body=body))  # type: ignore[union-attr]

    def call(self, name: bytes, *params: bytes, body: bytes | None = None) -> bytes:
        """A command nsqd answers (SUB, PUB, MPUB, CLS): its response, or NsqError for an error frame."""
        with self.call_lock:
            self.send(name, *params, body=body)
            try:
                ftype, data = self.responses.get(timeout=self.timeout)
            except queue.Empty:
                raise NsqError(f"no answer to {name.decode()} within {self.timeout:g}s") from None
            if ftype == FRAME_ERROR:
                raise NsqError(data.decode(errors="replace"))
            if ftype != FRAME_RESPONSE:
                raise ConnectionError(data.decode(errors="replace") or "connection closed")
            return data

    def close(self) -> None:
        """Close the socket; nsqd requeues the messages still in flight on this connection."""
        self.closed.set()
        self._shut()
        if self.reader is not None and self.reader is not threading.current_thread():
            self.reader.join(5)

    def _shut(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self.sock.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for a connection error (socket errors by their description)."""
    return _reason(exc)


def lookup(address: str, topic: str, *, tls: ssl.SSLContext | None = None, timeout: float = 10.0,
           path: str = "/lookup") -> list[tuple[str, int]]:
    """nsqd TCP addresses that hold `topic`, from nsqlookupd's HTTP /lookup (an unknown topic: none); with
    path="/nodes", every nsqd nsqlookupd knows."""
    import urllib.error
    import urllib.parse
    import urllib.request

    base = address.strip().rstrip("/")
    if "://" not in base:
        base = ("https://" if tls is not None else "http://") + base
    url = f"{base}{path}?{urllib.parse.urlencode({'topic': topic})}"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.nsq; version=1.0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=tls) as resp:  # noqa: S310 - http(s) only
            doc = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # TOPIC_NOT_FOUND: nobody has published to it yet
            return []
        raise NsqError(f"nsqlookupd answered HTTP {exc.code} to {path}") from None
    except ValueError as exc:
        raise NsqError(f"nsqlookupd sent an invalid answer to {path}: {exc}") from None
    data = doc.get("data", doc) if isinstance(doc, dict) else {}  # the pre-1.0 answer wraps it in "data"
    found = []
    for producer in data.get("producers") or []:
        host = producer.get("broadcast_address") or producer.get("address") or producer.get("hostname")
        port = producer.get("tcp_port")
        if host and isinstance(port, int) and (host, port) not in found:
            found.append((host, port))
    return found
