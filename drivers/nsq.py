"""nsq: procx consumes one message from a topic/channel; pushx publishes one to a topic (nsqd TCP protocol).

The protocol client is built in (drivers/nsq_wire.py): no client library to install.

procx subscribes to the channel on every nsqd that holds the topic (found through nsqlookupd's /lookup, or the
one nsqd given) and asks for one message at a time (RDY 1, then RDY 0 as soon as one arrived). The message stays
in flight while the child runs: procx sends TOUCH every half of nsqd's msg_timeout and answers heartbeats, so
a long job keeps it. It is finished (FIN) only after the child succeeded and requeued (REQ, with
-nsq-requeue-delay) after a failure; if procx dies, nsqd requeues it when the connection drops (or when
msg_timeout passes). The work's attempt is nsqd's delivery count. The lease is lost when the connection drops
(nsqd requeued its messages) or nsqd refuses a TOUCH (E_TOUCH_FAILED: the message timed out and was requeued):
procx then stops the child (Work.lose) and sends no REQ (the message is back already, or with another consumer).

Fixes over the original (procx.md §4.26, §7.3 #27, §7.4 #30/#32, §7.6 #41; pushx.md §4.19, §6 #21):
- the original finished every message before the child ran (at-most-once) and did nothing on failure: here FIN
  after success, REQ after failure, TOUCH while the child runs (at-least-once);
- one subscription per procx for all daemon iterations (the original registered a handler again and panicked);
- pushx publishes to -nsq-nsqd-address; -nsq-nsqlookupd-address is used only when no nsqd address is given:
  as an nsqd TCP address (what the original needed), or, when it is an http(s):// URL or answers in HTTP (the
  README's lookupd port 4161), to look an nsqd up through nsqlookupd.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Sequence

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers import nsq_wire as wire
from drivers.common import Tls

NAME = "nsq"
NSQD_PORT, LOOKUPD_PORT = 4150, 4161
MIN_WAIT = 0.5  # a get that may not wait still gives nsqd one round trip to send a ready message
LOOKUP_INTERVAL = 60.0  # how often procx asks nsqlookupd again for nsqd nodes of the topic
MAX_REQUEUE_DELAY = 3600.0  # nsqd's default --max-req-timeout
MPUB_BYTES = 4 << 20  # one MPUB stays below nsqd's default --max-body-size (5 MiB)
TLS = Tls("nsq", insecure="tls-skip-verify",
          insecure_env={PROCX: "PROCX_NSQ_TLS_INSECURE", PUSHX: "PUSHX_NSQ_TLS_INSECURE"})


def _identify() -> dict[str, object]:
    host = socket.gethostname()
    return {"client_id": host.split(".")[0], "hostname": host, "user_agent": "procx-tui"}


def _connect(host: str, port: int, config, on_message=None, on_error=None) -> wire.Connection:
    """An nsqd connection after IDENTIFY, or a ProviderError naming host:port (wire.SpeaksHttp passes through)."""
    conn = wire.Connection(host, port, identify=_identify(), tls=TLS.context(config), on_message=on_message,
                           on_error=on_error)
    try:
        conn.connect()
    except wire.SpeaksHttp:
        raise
    except (OSError, wire.NsqError, ValueError) as exc:
        raise ProviderError(f"driver {NAME}: cannot connect to nsqd {conn.where}: {wire.describe(exc)}") from None
    return conn


def _lookup(config, topic: str, *, any_node: bool = False) -> list[tuple[str, int]]:
    """nsqd nodes of the topic from nsqlookupd (any_node: every known nsqd when none holds the topic yet)."""
    address = config["nsq-nsqlookupd-address"]
    tls = TLS.context(config) if address.startswith("https://") else None
    try:
        found = wire.lookup(address, topic, tls=tls)
        if not found and any_node:
            found = wire.lookup(address, topic, tls=tls, path="/nodes")
    except (OSError, wire.NsqError) as exc:
        host, port = wire.split_address(address, LOOKUPD_PORT)
        where = f"{host}:{port}"
        reason = getattr(exc, "reason", None) or exc
        raise ProviderError(f"driver {NAME}: cannot ask nsqlookupd {where}: {wire.describe(reason)}") from None
    return found


class _Held:
    """A message nsqd gave us on `conn`, and the Work it became (told when the lease is lost)."""

    __slots__ = ("conn", "msg", "work")

    def __init__(self, conn: wire.Connection, msg: wire.Message) -> None:
        self.conn = conn
        self.msg = msg
        self.work: Work | None = None


class NsqSource(Source):
    """SUB on each nsqd of the topic; one message in flight at a time, touched until FIN or REQ."""

    def open(self) -> None:
        self.topic = self.config["nsq-topic"]
        self.channel = self.config["nsq-channel"]
        self.inbox: queue.Queue[_Held] = queue.Queue()
        self.conns: dict[tuple[str, int], wire.Connection] = {}
        self.ready: set[wire.Connection] = set()
        self.flight: dict[bytes, _Held] = {}  # messages nsqd gave us and that we have not settled
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.looked_up = 0.0
        self.touch_every = 30.0
        self.keeper = threading.Thread(target=self._keep, name="nsq-touch", daemon=True)
        try:
            self._discover()
        except BaseException:
            self.close()
            raise
        self.keeper.start()

    # -- connections ----------------------------------------------------------------------------------------
    def _discover(self) -> None:
        """Subscribe on every nsqd of the topic that has no connection yet."""
        if self.config["nsq-nsqlookupd-address"]:
            addresses = _lookup(self.config, self.topic)
            self.looked_up = time.monotonic()
        else:
            addresses = [wire.split_address(self.config["nsq-nsqd-address"], NSQD_PORT)]
        for address in addresses:
            if address in self.conns:
                continue
            try:
                conn = _connect(*address, self.config, on_message=self._received, on_error=self._refused)
            except wire.SpeaksHttp:
                raise ProviderError(f"driver {NAME}: nsqd {address[0]}:{address[1]} answered in HTTP: give nsqd's "
                                    f"TCP address (port {NSQD_PORT} by default)") from None
            try:
                conn.call(b"SUB", self.topic.encode(), self.channel.encode())
            except (OSError, wire.NsqError) as exc:
                conn.close()
                raise ProviderError(f"driver {NAME}: nsqd {conn.where} refused SUB {self.topic} {self.channel}: "
                                    f"{wire.describe(exc)}") from None
            msg_timeout = conn.settings.get("msg_timeout")
            if isinstance(msg_timeout, int) and msg_timeout > 0:
                self.touch_every = min(self.touch_every, max(0.1, msg_timeout / 2000.0))
            self.conns[address] = conn

    def _received(self, conn: wire.Connection, msg: wire.Message) -> None:
        held = _Held(conn, msg)
        with self.lock:
            self.flight[msg.id] = held
        self.inbox.put(held)

    def _refused(self, conn: wire.Connection, frame: bytes) -> None:
        """nsqd refused a TOUCH (E_TOUCH_FAILED): the message is no longer in flight for us."""
        msg_id = wire.failed_id(frame, b"TOUCH")
        with self.lock:
            held = self.flight.get(msg_id) if msg_id else None
        if held is not None and held.conn is conn:
            self._lose(held, f"nsqd {conn.where} refused to touch message {msg_id.decode('ascii', 'replace')} "
                             f"({frame.decode(errors='replace')}): it was requeued")

    def _lose(self, held: _Held, reason: str) -> None:
        """The message is no longer ours (unless settled meanwhile): forget it, tell its Work (Work.lose)."""
        with self.lock:
            if self.flight.get(held.msg.id) is not held:
                return
            del self.flight[held.msg.id]
            work = held.work
        if work is not None:
            work.lose(reason)

    def _check(self) -> None:
        """A lost connection is an error (procx reconnects; nsqd has requeued what was in flight on it)."""
        for conn in self.conns.values():
            if not conn.alive:
                raise ProviderError(f"driver {NAME}: connection to nsqd {conn.where} lost: "
                                    f"{conn.error or 'closed'}")
        due = time.monotonic() - self.looked_up > LOOKUP_INTERVAL
        if self.config["nsq-nsqlookupd-address"] and (due or not self.conns):
            self._discover()

    def _keep(self) -> None:
        """TOUCH every message we hold, so that nsqd does not requeue it while the child runs. The messages of a
        connection that is gone are lost: nsqd requeued them when it dropped."""
        while not self.stop.wait(self.touch_every):
            with self.lock:
                held = list(self.flight.values())
            for item in held:
                try:
                    item.conn.send(b"TOUCH", item.msg.id)
                except OSError:
                    self._lose(item, f"the connection to nsqd {item.conn.where} was lost "
                                     f"({item.conn.error or 'closed'}): nsqd requeued the message")

    def _set_ready(self, count: int) -> None:
        for conn in list(self.conns.values()):
            if (conn in self.ready) != bool(count):
                conn.send(b"RDY", str(count).encode())
                if count:
                    self.ready.add(conn)
                else:
                    self.ready.discard(conn)

    # -- the contract ---------------------------------------------------------------------------------------
    def get(self, wait: float) -> Work | None:
        try:
            self._check()
            if not self.conns:  # no nsqd holds the topic yet
                time.sleep(wait)
                return None
            got = self._next(0.0)
            if got is None:
                self._set_ready(1)
                got = self._next(max(wait, MIN_WAIT))
                if got is None:
                    self._check()
                    return None
            self._set_ready(0)  # no second message after this one is finished
        except OSError as exc:
            raise ProviderError(f"driver {NAME}: connection to nsqd lost: {wire.describe(exc)}") from None
        msg, conn = got.msg, got.conn
        work = Work(msg.body, msg.id.decode("ascii", "replace"), attempt=msg.attempts, exact=True,  # nsqd's count
                    handle=got, meta={"nsqd": conn.where, "timestamp": msg.timestamp, "topic": self.topic})
        with self.lock:
            got.work = work
            gone = self.flight.get(msg.id) is not got
        if gone:  # the keeper found its connection dead meanwhile
            work.lose(f"the connection to nsqd {conn.where} was lost: nsqd requeued the message")
        return work

    def _next(self, wait: float) -> _Held | None:
        """The next received message whose connection is still alive (nsqd requeued the others)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                held = self.inbox.get(timeout=max(0.0, deadline - time.monotonic())) if wait else \
                    self.inbox.get_nowait()
            except queue.Empty:
                return None
            if held.conn.alive:
                return held

    def _settle(self, work: Work, name: bytes, *params: bytes) -> None:
        held: _Held = work.handle
        with self.lock:
            if self.flight.get(held.msg.id) is held:
                del self.flight[held.msg.id]
        if name == b"REQ" and work.lost:  # nsqd requeued it already (it may be another consumer's now)
            return
        what = "finish (FIN)" if name == b"FIN" else "requeue (REQ)"
        if not held.conn.alive:
            raise ProviderError(f"driver {NAME}: cannot {what} message {work.id}: the connection to nsqd "
                                f"{held.conn.where} was lost ({held.conn.error or 'closed'}); nsqd requeued it")
        try:
            held.conn.send(name, held.msg.id, *params)
        except OSError as exc:
            raise ProviderError(f"driver {NAME}: cannot {what} message {work.id} on nsqd {held.conn.where}: "
                                f"{wire.describe(exc)}") from None

    def clear(self, work: Work) -> None:
        self._settle(work, b"FIN")

    def fail(self, work: Work) -> None:
        delay = max(float(self.config["nsq-requeue-delay"]), work.retry_delay)  # -retry-backoff's hint
        delay_ms = int(round(delay * 1000))
        self._settle(work, b"REQ", str(delay_ms).encode())

    def close(self) -> None:
        self.stop.set()
        if self.keeper.is_alive():
            self.keeper.join(5)
        for conn in self.conns.values():
            conn.close()  # nsqd requeues whatever is still in flight on it
        self.conns.clear()


class NsqSink(Sink):
    """PUB (one payload) or MPUB (several) to one nsqd; nsqd answers OK once it has the message."""

    conn: wire.Connection | None = None

    def open(self) -> None:
        self.topic = self.config["nsq-topic"].encode()
        nsqd, lookupd = self.config["nsq-nsqd-address"], self.config["nsq-nsqlookupd-address"]
        if nsqd or not lookupd.startswith(("http://", "https://")):
            # the original published to the lookupd value as if it were nsqd's TCP address: try it as such
            address = wire.split_address(nsqd or lookupd, NSQD_PORT)
            try:
                self.conn = _connect(*address, self.config)
                return
            except wire.SpeaksHttp:
                if nsqd:
                    raise ProviderError(f"driver {NAME}: -nsq-nsqd-address {nsqd} answered in HTTP: give nsqd's "
                                        f"TCP address (port {NSQD_PORT} by default)") from None
        nodes = _lookup(self.config, self.config["nsq-topic"], any_node=True)  # an nsqlookupd HTTP address
        if not nodes:
            raise ProviderError(f"driver {NAME}: nsqlookupd {lookupd} knows no nsqd to publish to")
        self.conn = _connect(*nodes[0], self.config)

    def _call(self, name: bytes, body: bytes) -> None:
        try:
            self.conn.call(name, self.topic, body=body)  # type: ignore[union-attr]
        except (OSError, wire.NsqError) as exc:
            raise ProviderError(f"driver {NAME}: nsqd {self.conn.where} refused {name.decode()} to topic "  # type: ignore[union-attr]
                                f"{self.topic.decode()}: {wire.describe(exc)}") from None

    def push(self, payload: bytes) -> str | None:
        self._call(b"PUB", payload)
        return None

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        batch: list[bytes] = []
        size = 0
        for payload in [*payloads, None]:
            if batch and (payload is None or size + len(payload) > MPUB_BYTES):
                self._call(b"MPUB", wire.mpub_body(batch))
                batch, size = [], 0
            if payload is not None:
                batch.append(payload)
                size += len(payload) + 4
        return [None] * len(payloads)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _validate(config) -> None:
    TLS.validate(config)
    topic = config["nsq-topic"]
    if not wire.valid_name(topic):
        raise ValueError(f"-nsq-topic: invalid topic name {topic!r} (1-64 characters of a-z A-Z 0-9 . _ -)")
    nsqd, lookupd = config["nsq-nsqd-address"], config["nsq-nsqlookupd-address"]
    if not nsqd and not lookupd:
        raise ValueError("-nsq-nsqlookupd-address or -nsq-nsqd-address is required")
    for name, port in (("nsq-nsqd-address", NSQD_PORT), ("nsq-nsqlookupd-address", LOOKUPD_PORT)):
        if config[name]:
            try:
                wire.split_address(config[name], port)
            except ValueError:
                raise ValueError(f"-{name}: not a host:port address: {config[name]!r}") from None
    if config.side == PROCX:
        channel = config["nsq-channel"]
        if not wire.valid_name(channel):
            raise ValueError(f"-nsq-channel: invalid channel name {channel!r} "
                             "(1-64 characters of a-z A-Z 0-9 . _ -, optional #ephemeral)")
        delay = float(config["nsq-requeue-delay"])
        if not 0 <= delay <= MAX_REQUEUE_DELAY:
            raise ValueError(f"-nsq-requeue-delay: must be between 0 and {MAX_REQUEUE_DELAY:g}s")


SPEC = DriverSpec(
    NAME,
    "an NSQ topic: each message is one unit of work",
    [
        Option("nsq-nsqlookupd-address",
               help="procx: nsqlookupd HTTP address (preferred when set); pushx: used when no nsqd address is "
                    "given, as an nsqd TCP address, or to look an nsqd up when it is nsqlookupd's (HTTP) address"),
        Option("nsq-nsqd-address", help="nsqd TCP address host:port (procx: used when no lookupd address)"),
        Option("nsq-topic", required=True, help="topic to consume from (procx) or publish to (pushx)"),
        Option("nsq-channel", sides=PROCX, required=PROCX, group="retrieve", help="channel to consume on"),
        Option("nsq-requeue-delay", "duration", 0.0, sides=PROCX, group="fail", extension=True,
               help="after a failure, nsqd offers the message again after this delay (REQ timeout)"),
        *TLS.options(),
    ],
    source="drivers.nsq:NsqSource",
    sink="drivers.nsq:NsqSink",
    extra="",
    requires=(),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="in flight on procx's connection (RDY 1), TOUCHed every half msg_timeout while the child runs; nsqd "
             "requeues it if the connection drops or a touch is missed for msg_timeout, and procx then stops the "
             "child (a dropped connection, or E_TOUCH_FAILED)",
        fail="REQ (requeued at once, or after -nsq-requeue-delay), none after a lost lease (nsqd requeued it "
             "already); the attempt is nsqd's delivery count",
        dead_letter="none (nsqd has none; use the attempt in PROCX_ATTEMPT)",
        pushx="PUB/MPUB answered OK by nsqd (in nsqd's memory or disk queue)",
        tested="fake: a project-written nsqd/nsqlookupd speaking the TCP protocol (tests/drivers/nsq_fake.py); "
               "not verified against a real nsqd",
    ),
)
