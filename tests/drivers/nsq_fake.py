"""A FAKE nsqd and nsqlookupd (not NSQ): the TCP protocol and the /lookup endpoint the nsq driver uses.

No nsqd can be installed here (no Debian, PyPI or npm package), so this in-memory stand-in, written from NSQ's
protocol documentation, serves the driver's tests on 127.0.0.1 and free ports. It is only as faithful as that
documentation and has its own frame encoding (it shares no code with drivers/nsq_wire.py).

Implemented: the "  V2" magic; IDENTIFY (JSON body; feature negotiation answers JSON with msg_timeout, tls_v1;
TLS upgrade with an OK frame over TLS); SUB (topic and channel created on first use; messages published before
a topic had a channel go to its first channel); RDY; FIN, REQ (with a delay in ms), TOUCH (errors
E_FIN_FAILED/E_REQ_FAILED/E_TOUCH_FAILED as nsqd words them, `<code> <cmd> <id> failed <reason>`, not fatal);
PUB and MPUB (empty or over-sized bodies: E_BAD_MESSAGE, fatal); NOP; CLS (CLOSE_WAIT); heartbeats every
`heartbeat` seconds, and the connection is closed when the client has sent nothing for two intervals; in-flight
messages requeued after `msg_timeout` without FIN/TOUCH (or at once by expire()) and when their connection drops
(or is dropped by kick()); attempts counted per delivery. nsqlookupd: GET /lookup?topic= (404
TOPIC_NOT_FOUND for an unknown topic) and GET /nodes.
Not implemented: AUTH, snappy/deflate, DPUB, sampling, ephemeral channel deletion, disk queues, /stats and the
rest of nsqd's HTTP API, topic/channel pausing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import ssl
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = re.compile(r"^[.a-zA-Z0-9_-]+(#ephemeral)?$")
TICK = 0.02


class Fatal(Exception):
    """An error frame after which nsqd closes the connection."""


class Msg:
    def __init__(self, ident: bytes, body: bytes) -> None:
        self.id, self.body = ident, body
        self.timestamp = time.time_ns()
        self.attempts = 0


class Channel:
    def __init__(self) -> None:
        self.queue: deque[Msg] = deque()
        self.flight: dict[bytes, tuple[Msg, Client, float]] = {}
        self.deferred: list[tuple[float, Msg]] = []
        self.clients: list[Client] = []


class Topic:
    def __init__(self) -> None:
        self.backlog: deque[Msg] = deque()  # published while the topic had no channel
        self.channels: dict[str, Channel] = {}

    def put(self, msg: Msg) -> None:
        if not self.channels:
            self.backlog.append(msg)
        for i, channel in enumerate(self.channels.values()):
            channel.queue.append(msg if i == 0 else Msg(msg.id, msg.body))


class Client:
    def __init__(self, server: FakeNsqd, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.write_lock = threading.Lock()
        self.rdy = 0
        self.channel: Channel | None = None
        self.last_read = time.monotonic()
        self.last_beat = time.monotonic()
        self.closed = False
        self.identified = False

    def frame(self, ftype: int, data: bytes) -> None:
        with self.write_lock:
            self.sock.sendall(struct.pack(">ii", len(data) + 4, ftype) + data)

    def send_message(self, msg: Msg) -> None:
        self.frame(2, struct.pack(">qH", msg.timestamp, msg.attempts) + msg.id + msg.body)

    def read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        self.last_read = time.monotonic()
        return data

    def line(self) -> bytes:
        data = b""
        while not data.endswith(b"\n"):
            data += self.read(1)
        return data[:-1].rstrip(b"\r")

    def body(self, limit: int) -> bytes:
        (size,) = struct.unpack(">i", self.read(4))
        if size <= 0 or size > limit:
            raise Fatal(f"E_BAD_BODY invalid body size {size}")
        return self.read(size)


class FakeNsqd:
    """The fake nsqd (TCP) and, on a second port, its nsqlookupd (HTTP)."""

    def __init__(self, *, msg_timeout: float = 60.0, heartbeat: float = 30.0, max_msg_size: int = 1 << 20,
                 tls: ssl.SSLContext | None = None) -> None:
        self.msg_timeout = msg_timeout
        self.heartbeat = heartbeat
        self.max_msg_size = max_msg_size
        self.tls = tls
        self.lock = threading.RLock()
        self.topics: dict[str, Topic] = {}
        self.clients: list[Client] = []
        self.identifies: list[dict] = []
        self.commands: list[bytes] = []  # every command line received, for the tests
        self.ids = itertools.count(1)
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lookupd = ThreadingHTTPServer(("127.0.0.1", 0), _lookup_handler(self))
        self.lookupd.daemon_threads = True
        self.lookupd_port = self.lookupd.server_address[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._tick, daemon=True),
                        threading.Thread(target=self.lookupd.serve_forever, daemon=True)]
        for t in self.threads:
            t.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def lookupd_address(self) -> str:
        return f"127.0.0.1:{self.lookupd_port}"

    def stop(self) -> None:
        self.stopping.set()
        self.lookupd.shutdown()
        self.lookupd.server_close()
        with contextlib.suppress(OSError):
            self.listener.close()
        for client in list(self.clients):
            self._drop(client)

    # -- inspection (tests) ---------------------------------------------------------------------------------
    def pending(self, topic: str, channel: str) -> int:
        """Messages the channel still holds: queued, deferred or in flight (the topic's backlog without it)."""
        with self.lock:
            t = self.topics.get(topic)
            if t is None:
                return 0
            c = t.channels.get(channel)
            if c is None:
                return len(t.backlog)
            return len(c.queue) + len(c.flight) + len(c.deferred)

    def in_flight(self, topic: str, channel: str) -> int:
        with self.lock:
            c = self.topics.get(topic, Topic()).channels.get(channel)
            return len(c.flight) if c else 0

    def subscribers(self, topic: str, channel: str) -> int:
        with self.lock:
            c = self.topics.get(topic, Topic()).channels.get(channel)
            return len(c.clients) if c else 0

    def kick(self) -> None:
        """Drop every client connection (their in-flight messages are requeued)."""
        with self.lock:
            clients = list(self.clients)
        for client in clients:
            self._drop(client)

    def expire(self, topic: str, channel: str) -> None:
        """Requeue the channel's in-flight messages now, as nsqd does when their msg_timeout passes."""
        with self.lock:
            c = self.topics.get(topic, Topic()).channels.get(channel)
            if c is not None:
                c.queue.extend(msg for msg, _, _ in c.flight.values())
                c.flight.clear()

    def queued(self, topic: str) -> list[bytes]:
        """Bodies published to a topic (its backlog or its first channel's queue)."""
        with self.lock:
            t = self.topics.get(topic)
            if t is None:
                return []
            if not t.channels:
                return [m.body for m in t.backlog]
            return [m.body for m in next(iter(t.channels.values())).queue]

    # -- the server -----------------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            client = Client(self, sock)
            with self.lock:
                self.clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: Client) -> None:
        try:
            if client.read(4) != b"  V2":
                raise Fatal("E_BAD_PROTOCOL")
            while True:
                self._command(client, client.line())
        except Fatal as exc:
            with contextlib.suppress(OSError):
                client.frame(1, str(exc).encode())
        except (OSError, ssl.SSLError, struct.error):
            pass
        finally:
            self._drop(client)

    def _command(self, client: Client, line: bytes) -> None:
        parts = line.split(b" ")
        name, args = parts[0], [p.decode(errors="replace") for p in parts[1:]]
        with self.lock:
            self.commands.append(line)
        if name == b"IDENTIFY":
            self._identify(client, json.loads(client.body(1 << 20)))
        elif name == b"SUB":
            self._sub(client, args)
        elif name == b"RDY":
            if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 2500:
                raise Fatal("E_INVALID RDY count out of range")
            with self.lock:
                client.rdy = int(args[0])
        elif name in (b"FIN", b"REQ", b"TOUCH"):
            self._settle(client, name.decode(), args)
        elif name in (b"PUB", b"MPUB"):
            self._publish(client, name, args)
        elif name == b"NOP":
            pass
        elif name == b"CLS":
            with self.lock:
                client.rdy = 0
            client.frame(0, b"CLOSE_WAIT")
        else:
            raise Fatal(f"E_INVALID invalid command {name.decode(errors='replace')}")

    def _identify(self, client: Client, body: dict) -> None:
        if client.identified:
            raise Fatal("E_INVALID cannot IDENTIFY in current state")
        client.identified = True
        self.identifies.append(body)
        tls = bool(body.get("tls_v1")) and self.tls is not None
        if body.get("feature_negotiation"):
            client.frame(0, json.dumps({
                "max_rdy_count": 2500, "version": "fake", "max_msg_timeout": 900000,
                "msg_timeout": int(self.msg_timeout * 1000), "tls_v1": tls, "deflate": False, "snappy": False,
                "auth_required": False, "sample_rate": 0, "output_buffer_size": 16384,
                "output_buffer_timeout": 250}).encode())
        else:
            client.frame(0, b"OK")
        if tls:
            client.sock = self.tls.wrap_socket(client.sock, server_side=True)  # type: ignore[union-attr]
            client.frame(0, b"OK")

    def _sub(self, client: Client, args: list[str]) -> None:
        if client.channel is not None:
            raise Fatal("E_INVALID cannot SUB in current state")
        if len(args) != 2 or not all(NAME.match(a) and len(a) <= 64 for a in args):
            raise Fatal("E_BAD_TOPIC SUB topic/channel name is not valid")
        with self.lock:
            topic = self.topics.setdefault(args[0], Topic())
            channel = topic.channels.get(args[1])
            if channel is None:
                channel = topic.channels[args[1]] = Channel()
                if len(topic.channels) == 1:
                    channel.queue.extend(topic.backlog)
                    topic.backlog.clear()
            channel.clients.append(client)
            client.channel = channel
        client.frame(0, b"OK")

    def _settle(self, client: Client, what: str, args: list[str]) -> None:
        ident = args[0].encode() if args else b""
        with self.lock:
            channel = client.channel
            held = channel.flight.get(ident) if channel else None
            if held is None or held[1] is not client:
                reason = "ID not in flight" if held is None else "client does not own message"
                client.frame(1, f"E_{what}_FAILED {what} {ident.decode(errors='replace')} failed {reason}".encode())
                return
            msg = held[0]
            if what == "TOUCH":
                channel.flight[ident] = (msg, client, time.monotonic() + self.msg_timeout)
                return
            del channel.flight[ident]
            if what == "REQ":
                delay = int(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 0
                if delay > 0:
                    channel.deferred.append((time.monotonic() + delay, msg))
                else:
                    channel.queue.append(msg)

    def _publish(self, client: Client, name: bytes, args: list[str]) -> None:
        if len(args) != 1 or not NAME.match(args[0]):
            raise Fatal(f"E_BAD_TOPIC {name.decode()} topic name is not valid")
        if name == b"PUB":
            (size,) = struct.unpack(">i", client.read(4))
            if size <= 0 or size > self.max_msg_size:
                raise Fatal(f"E_BAD_MESSAGE PUB invalid message body size {size}")
            bodies = [client.read(size)]
        else:
            data = client.body(5 << 20)
            (count,) = struct.unpack(">i", data[:4])
            bodies, pos = [], 4
            for _ in range(count):
                (size,) = struct.unpack(">i", data[pos:pos + 4])
                if size <= 0 or size > self.max_msg_size:
                    raise Fatal(f"E_BAD_MESSAGE MPUB invalid message body size {size}")
                bodies.append(data[pos + 4:pos + 4 + size])
                pos += 4 + size
            if count <= 0 or pos != len(data):
                raise Fatal("E_BAD_BODY MPUB invalid body")
        with self.lock:
            topic = self.topics.setdefault(args[0], Topic())
            for body in bodies:
                topic.put(Msg(f"{next(self.ids):016x}".encode(), body))
        client.frame(0, b"OK")

    def _drop(self, client: Client) -> None:
        """A closed connection: its in-flight messages go back to the queue, as nsqd does."""
        with self.lock:
            if client.closed:
                return
            client.closed = True
            if client in self.clients:
                self.clients.remove(client)
            channel = client.channel
            if channel is not None:
                if client in channel.clients:
                    channel.clients.remove(client)
                for ident, (msg, owner, _) in list(channel.flight.items()):
                    if owner is client:
                        del channel.flight[ident]
                        channel.queue.append(msg)
        with contextlib.suppress(OSError):
            client.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            client.sock.close()

    def _tick(self) -> None:
        """Timeouts, deferred messages, heartbeats and delivery to ready clients."""
        while not self.stopping.wait(TICK):
            now = time.monotonic()
            dead: list[Client] = []
            with self.lock:
                for topic in self.topics.values():
                    for channel in topic.channels.values():
                        for ident, (msg, _, deadline) in list(channel.flight.items()):
                            if deadline <= now:
                                del channel.flight[ident]
                                channel.queue.append(msg)
                        due = [d for d in channel.deferred if d[0] <= now]
                        for item in due:
                            channel.deferred.remove(item)
                            channel.queue.append(item[1])
                        self._dispatch(channel, dead)
                for client in self.clients:
                    if now - client.last_read > 2 * self.heartbeat:
                        dead.append(client)
                    elif now - client.last_beat >= self.heartbeat:
                        client.last_beat = now
                        try:
                            client.frame(0, b"_heartbeat_")
                        except OSError:
                            dead.append(client)
            for client in dead:
                self._drop(client)

    def _dispatch(self, channel: Channel, dead: list[Client]) -> None:
        for client in channel.clients:
            while channel.queue and client.rdy > sum(1 for _, c, _ in channel.flight.values() if c is client):
                msg = channel.queue.popleft()
                msg.attempts += 1
                channel.flight[msg.id] = (msg, client, time.monotonic() + self.msg_timeout)
                try:
                    client.send_message(msg)
                except OSError:
                    dead.append(client)
                    break


def _lookup_handler(nsqd: FakeNsqd) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            producer = {"remote_address": f"127.0.0.1:{nsqd.port}", "hostname": "fake-nsqd",
                        "broadcast_address": "127.0.0.1", "tcp_port": nsqd.port, "http_port": 0,
                        "version": "fake"}
            if url.path == "/nodes":
                return self._reply(200, {"producers": [producer]})
            if url.path != "/lookup":
                return self._reply(404, {"message": "NOT_FOUND"})
            topic = parse_qs(url.query).get("topic", [""])[0]
            if not topic:
                return self._reply(400, {"message": "MISSING_ARG_TOPIC"})
            with nsqd.lock:
                known = nsqd.topics.get(topic)
                channels = list(known.channels) if known else []
            if known is None:
                return self._reply(404, {"message": "TOPIC_NOT_FOUND"})
            return self._reply(200, {"channels": channels, "producers": [producer]})

    return Handler
