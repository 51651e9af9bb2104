"""nats: core NATS (as the original) or JetStream (ours); procx takes one message, pushx publishes one.

Core NATS is fire-and-forget: a message reaches only the subscribers present when it is published, and it is
gone once delivered (at-most-once). procx subscribes for each get (in the queue group, if set) with a
server-side limit of one message, so nothing is received that is not handed to the child; if the child fails,
the message is not redelivered (only the fail response is sent to its reply subject). pushx publishes and
flushes (the server has it; delivery to subscribers is not confirmed).

With -nats-jetstream the subject is read through a durable pull consumer (-nats-durable, created with
-nats-ack-wait if missing): the message is acked only after the child succeeded and nak'ed (redelivered at once)
after a failure; while the child runs procx sends "in progress" (as a request the server answers) so a long job
keeps its message; if procx dies the message is redelivered after the consumer's ack wait (at-least-once). The
lease is lost when the consumer is gone (no responders) or when no in-progress was confirmed for a whole ack wait
(the server may have redelivered the message): procx then stops the child (Work.lose) and does not nak the
message, which another procx may hold now (the server would take a stale nak as a nak of the new delivery).
pushx publishes with a JetStream acknowledgement: success means the stream stored it.

Fixes over the original (procx.md §4.24, §7.3 #26, pushx.md §4.17): the reply subject belongs to the message
(never reused for a later message without one); pushx flushes (or waits for the JetStream ack); buffered
messages are never dropped on unsubscribe. Extensions: JetStream, and -nats-nkey-file alone (nkey auth
without a JWT). nats-py is asyncio-only: each Source/Sink runs one event loop in a background thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from core.errors import ProviderError, UsageError
from core.options import PROCX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import Tls

NAME = "nats"
TLS = Tls("nats")
CONNECT_TIMEOUT = 5
OP_TIMEOUT = 30.0  # seconds an operation may take beyond the wait it was asked for
DEFAULT_CLEAR, DEFAULT_FAIL = "0", "1"


def _servers(config) -> list[str]:
    out = []
    for raw in config["nats-url"].split(","):
        url = raw.strip()
        if url:
            out.append(url if "://" in url else f"nats://{url}")
    return out


def _where(config) -> str:
    """host:port of each server, without credentials."""
    hosts = []
    for url in _servers(config):
        try:
            parts = urlsplit(url)
            hosts.append(f"{parts.hostname}:{parts.port or 4222}")
        except ValueError:
            hosts.append("(invalid URL)")
    return ", ".join(hosts)


class _Loop:
    """One asyncio event loop in a daemon thread; `run` executes a coroutine there and waits for its result."""

    def __init__(self) -> None:
        import asyncio

        self.asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float):
        future = self.asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in self.asyncio.all_tasks() if t is not self.asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await self.asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):  # closing must not raise
            self.run(cancel_all(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ")


class _Client:
    """The connection shared by the Source and the Sink: options per the original, errors as ProviderError."""

    nc = None
    loop = None
    last_error: BaseException | None = None

    def connect(self, config) -> None:
        self.config = config
        self.where = _where(config)
        self.loop = _Loop()
        try:
            self.nc = self.run(self._connect(), "connect", CONNECT_TIMEOUT * 2 + OP_TIMEOUT)
        except BaseException:
            self.loop.close()
            raise

    async def _connect(self):
        import nats

        config = self.config
        opts: dict[str, object] = {}
        tls = TLS.context(config)
        if tls is not None:
            opts["tls"] = tls
        if config["nats-creds-file"]:
            opts["user_credentials"] = config["nats-creds-file"]
        if config["nats-username"]:
            opts["user"] = config["nats-username"]
            opts["password"] = config["nats-password"]
        if config["nats-token"]:
            opts["token"] = config["nats-token"]
        if config["nats-jwt-file"] and config["nats-nkey-file"]:
            opts["user_credentials"] = (config["nats-jwt-file"], config["nats-nkey-file"])
        elif config["nats-nkey-file"]:
            opts["nkeys_seed"] = config["nats-nkey-file"]

        async def quiet(*args) -> None:  # nats-py would print every connection error itself
            return None

        async def remember(exc: BaseException) -> None:
            self.last_error = exc

        # no reconnects: a lost connection is an error the procx loop handles by reconnecting (the held
        # message is redelivered); two quick attempts per server at start
        nc = self.nc = nats.NATS()
        await nc.connect(_servers(config), connect_timeout=CONNECT_TIMEOUT, allow_reconnect=False,
                         max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=remember, disconnected_cb=quiet,
                         closed_cb=quiet, name=f"{config.side} {config['nats-subject']}", **opts)
        return nc

    def run(self, coro, what: str, timeout: float = OP_TIMEOUT):
        """Run `coro` on the loop; nats and OS errors become one-line ProviderErrors naming the servers."""
        import nats.errors as ne

        try:
            return self.loop.run(coro, timeout)
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderError(f"driver {NAME}: cannot {what} on {self.where}: timed out") from None
        except ne.NoServersError:
            cause = self.last_error
            if isinstance(cause, OSError) and (cause.errno or cause.strerror):
                detail = os.strerror(cause.errno) if cause.errno and cause.errno > 0 else cause.strerror
            elif cause is not None and not isinstance(cause, ne.NoServersError):
                detail = _describe(cause)
            else:
                detail = "no server answered"
            raise ProviderError(f"driver {NAME}: cannot connect to {self.where}: {detail}") from None
        except ne.AuthorizationError:
            raise ProviderError(f"driver {NAME}: {self.where}: authorization refused (wrong credentials?)") from None
        except (ne.Error, OSError, ValueError) as exc:
            if "authorization" in str(exc).lower():
                raise ProviderError(f"driver {NAME}: {self.where}: authorization refused "
                                    "(wrong credentials?)") from None
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else _describe(exc)
            raise ProviderError(f"driver {NAME}: cannot {what} on {self.where}: {detail}") from None
        except ImportError as exc:
            raise UsageError(f"driver {NAME}: {exc} (pip install 'procx-tui[nats]')") from None

    def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):  # closing must not raise
                self.loop.run(self.nc.close(), 10)
        if self.loop is not None:
            self.loop.close()


class _Held:
    """Receipt of one message: core NATS -> its reply subject; JetStream -> the message, its keep-alive task and
    the Work it became (told when the lease is lost)."""

    __slots__ = ("reply", "msg", "keepalive", "work")

    def __init__(self, reply: str = "", msg=None) -> None:
        self.reply = reply
        self.msg = msg
        self.keepalive = None
        self.work: Work | None = None


class NatsSource(Source):
    client: _Client | None = None

    def open(self) -> None:
        self.subject = self.config["nats-subject"]
        self.jetstream = bool(self.config["nats-jetstream"])
        self.client = _Client()
        self.client.connect(self.config)
        if self.jetstream:
            try:
                self.psub, self.ack_wait = self.client.run(self._pull_subscribe(), "create the JetStream consumer")
            except BaseException:
                self.client.close()
                raise

    # -- JetStream ---------------------------------------------------------------------------------------
    async def _pull_subscribe(self):
        import nats.js.errors as je
        from nats.js.api import AckPolicy, ConsumerConfig

        js = self.client.nc.jetstream()
        stream = self.config["nats-stream"] or None
        durable = self.config["nats-durable"]
        try:
            if stream is None:
                stream = await js.find_stream_name_by_subject(self.subject)
            else:
                await js.stream_info(stream)
        except je.NotFoundError:
            what = f"stream {stream!r}" if stream else f"no JetStream stream stores subject {self.subject!r}"
            raise ProviderError(f"driver {NAME}: {what} on {self.client.where}"
                                + (" does not exist" if stream else "")) from None
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                ack_wait=float(self.config["nats-ack-wait"]), max_ack_pending=-1)
        psub = await js.pull_subscribe(self.subject, durable=durable, stream=stream, config=config)
        info = await psub.consumer_info()
        return psub, float(info.config.ack_wait or self.config["nats-ack-wait"])

    async def _js_get(self, wait: float):
        import asyncio

        import nats.errors as ne

        try:
            msgs = await self.psub.fetch(1, timeout=max(wait, 0.2))
        except (TimeoutError, ne.TimeoutError):
            return None
        held = _Held(msg=msgs[0])
        held.keepalive = asyncio.get_running_loop().create_task(self._keep(held, time.monotonic()))
        return held

    async def _keep(self, held: _Held, confirmed: float) -> None:
        """Send in-progress (+WPI) every third of the ack wait, as a request the server answers, until the message
        is acked or nak'ed. `confirmed`: when the server last restarted the ack wait (at the latest). No responders
        (the consumer is gone), or no answer for a whole ack wait, loses the lease (Work.lose)."""
        import asyncio

        import nats.errors as ne

        interval = max(0.1, self.ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            sent = time.monotonic()
            if sent - confirmed >= self.ack_wait:
                lost = (f"no in-progress was confirmed within the ack wait ({self.ack_wait:g}s): the server may "
                        "have redelivered the message to another consumer")
            else:
                left = min(interval, confirmed + self.ack_wait - sent)  # a later answer is too late
                try:
                    await self.client.nc.request(held.msg.reply, b"+WPI", timeout=left)
                    confirmed = sent  # the server restarted the ack wait after `sent`
                    continue
                except ne.NoRespondersError:
                    lost = f"consumer {self.config['nats-durable']!r} no longer exists"
                except Exception:  # noqa: BLE001 - a timeout or a dead connection: tried again until the ack wait
                    continue
            if held.work is not None:
                held.work.lose(lost)
            return

    async def _settle(self, held: _Held, how: str, delay: float, lost: bool) -> None:
        held.keepalive.cancel()
        if how == "ack":
            await held.msg.ack_sync(timeout=10)  # the server confirms the ack
        elif not lost:  # a lost message is left alone: a nak now would redeliver another consumer's delivery
            await held.msg.nak(delay=delay or None)  # redelivered at once, or after procx's -retry-backoff
            await self.client.nc.flush()

    # -- core NATS ---------------------------------------------------------------------------------------
    async def _core_get(self, wait: float):
        import asyncio

        import nats.errors as ne

        sub = await self.client.nc.subscribe(self.subject, queue=self.config["nats-queue-group"], max_msgs=1)
        if wait > 0:
            try:
                return await sub.next_msg(timeout=wait)
            except (TimeoutError, ne.TimeoutError):
                pass
        # stop the subscription, but keep a message the server sent before it saw the unsubscribe
        drain = asyncio.ensure_future(sub.drain())
        take = asyncio.ensure_future(sub.next_msg(timeout=None))
        await asyncio.wait({drain, take}, timeout=OP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if take.done() and not take.cancelled() and take.exception() is None:
            await drain
            return take.result()
        take.cancel()
        await asyncio.gather(drain, take, return_exceptions=True)
        return None

    async def _reply(self, reply: str, body: bytes) -> None:
        await self.client.nc.publish(reply, body)
        await self.client.nc.flush()

    # -- the contract --------------------------------------------------------------------------------------
    def get(self, wait: float) -> Work | None:
        if self.jetstream:
            held = self.client.run(self._js_get(wait), f"fetch from subject {self.subject!r}", wait + OP_TIMEOUT)
            if held is None:
                return None
            msg = held.msg
            meta = msg.metadata
            held.work = Work(bytes(msg.data), str(meta.sequence.stream), attempt=meta.num_delivered, exact=True,
                             handle=held, meta={"subject": msg.subject, "stream": meta.stream})
            return held.work
        msg = self.client.run(self._core_get(wait), f"receive from subject {self.subject!r}", wait + OP_TIMEOUT)
        if msg is None:
            return None
        ident = (msg.headers or {}).get("Nats-Msg-Id")
        return Work(bytes(msg.data), ident, handle=_Held(reply=msg.reply or ""), meta={"subject": msg.subject})

    def clear(self, work: Work) -> None:
        self._finish(work, "ack", "nats-clear-response", DEFAULT_CLEAR)

    def fail(self, work: Work) -> None:
        self._finish(work, "nak", "nats-fail-response", DEFAULT_FAIL)

    def _finish(self, work: Work, how: str, response: str, default: str) -> None:
        held: _Held = work.handle
        if held.msg is not None:
            self.client.run(self._settle(held, how, work.retry_delay, bool(work.lost)), f"{how} message {work.id}")
        elif held.reply:  # only this message's own reply subject, never an earlier one
            body = (self.config[response] or default).encode()
            self.client.run(self._reply(held.reply, body), f"reply to {held.reply}")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class NatsSink(Sink):
    client: _Client | None = None
    js = None  # the JetStream context, made once (each one subscribes for its acknowledgements)

    def open(self) -> None:
        self.subject = self.config["nats-subject"]
        self.client = _Client()
        self.client.connect(self.config)

    async def _publish(self, payloads: Sequence[bytes]) -> list[str | None]:
        nc = self.client.nc
        if not self.config["nats-jetstream"]:
            for payload in payloads:
                await nc.publish(self.subject, payload)
            await nc.flush()  # the server has received them
            return [None] * len(payloads)
        import asyncio

        import nats.js.errors as je

        if self.js is None:
            self.js = nc.jetstream()
        stream = self.config["nats-stream"] or None
        try:
            if len(payloads) == 1:
                acks = [await self.js.publish(self.subject, payloads[0], stream=stream)]
            else:  # a batch: sent in order, then every acknowledgement awaited together
                pending = [await self.js.publish_async(self.subject, p, stream=stream) for p in payloads]
                acks = await asyncio.gather(*pending)
        except je.NoStreamResponseError:
            raise ProviderError(f"driver {NAME}: no JetStream stream stores subject {self.subject!r} on "
                                f"{self.client.where}") from None
        except je.APIError as exc:
            raise ProviderError(f"driver {NAME}: JetStream refused the message on {self.client.where}: "
                                f"{exc.description or exc}") from None
        return [str(ack.seq) for ack in acks]

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        return self.client.run(self._publish(payloads), f"publish to subject {self.subject!r}")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _validate(config) -> None:
    if not _servers(config):
        raise ValueError("-nats-url: url is empty")
    for url in _servers(config):
        parts = urlsplit(url)
        if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname:
            raise ValueError(f"-nats-url: not a NATS server URL: {parts.scheme}://{parts.hostname or ''} "
                             "(nats://host:4222, tls://host:4222)")
    if not config["nats-subject"]:
        raise ValueError("-nats-subject is required")
    if config["nats-username"] and not config["nats-password"]:
        raise ValueError("-nats-password is required with -nats-username")
    for name in ("nats-creds-file", "nats-jwt-file", "nats-nkey-file"):
        if config[name] and not os.path.isfile(config[name]):
            raise ValueError(f"-{name}: no such file: {config[name]}")
    if config["nats-jwt-file"] and not config["nats-nkey-file"]:
        raise ValueError("-nats-jwt-file needs -nats-nkey-file (the seed that signs for the JWT)")
    if config.side == PROCX and config["nats-jetstream"]:
        if config["nats-queue-group"]:
            raise ValueError("-nats-queue-group: not used with -nats-jetstream (workers share the durable "
                             "consumer -nats-durable)")
        if not config["nats-durable"]:
            raise ValueError("-nats-durable is required with -nats-jetstream")
        if config["nats-ack-wait"] <= 0:
            raise ValueError("-nats-ack-wait: must be positive")


SPEC = DriverSpec(
    NAME,
    "a NATS subject (core NATS, or JetStream with -nats-jetstream): each message is one unit of work",
    [
        Option("nats-url", help="NATS server URL(s), comma separated", required=True, placeholder="URL"),
        Option("nats-subject", help="subject to subscribe to (procx) or publish on (pushx)"),
        Option("nats-queue-group", sides=PROCX, group="retrieve",
               help="queue group to subscribe in (empty: plain subscription)"),
        Option("nats-creds-file", help="user credentials file (JWT and NKey seed)", placeholder="PATH"),
        Option("nats-jwt-file", help="user JWT file (used together with -nats-nkey-file)", group="auth",
               placeholder="PATH"),
        Option("nats-nkey-file", group="auth", placeholder="PATH",
               help="NKey seed file (with -nats-jwt-file: signs for the JWT; alone: NKey authentication)"),
        Option("nats-username", help="user name for user/password authentication"),
        Option("nats-password", help="password for user/password authentication", secret=True),
        Option("nats-token", help="authentication token", secret=True),
        *TLS.options(),
        Option("nats-clear-response", sides=PROCX,
               help="reply sent to the message's reply subject after success (empty: 0)"),
        Option("nats-fail-response", sides=PROCX,
               help="reply sent to the message's reply subject after failure (empty: 1)"),
        Option("nats-jetstream", "bool", extension=True, group="jetstream",
               help="use JetStream: procx reads through a durable pull consumer (at-least-once), pushx waits "
                    "for the stream's acknowledgement"),
        Option("nats-stream", extension=True, group="jetstream",
               help="JetStream stream (empty: the stream that stores -nats-subject)"),
        Option("nats-durable", default="procx", sides=PROCX, extension=True, group="jetstream",
               help="JetStream durable consumer name, shared by all procx of one job (created if missing)"),
        Option("nats-ack-wait", "duration", 30.0, sides=PROCX, extension=True, group="jetstream",
               help="JetStream ack wait of a consumer procx creates: a message taken by a procx that died is "
                    "redelivered after this long"),
    ],
    source="drivers.nats:NatsSource",
    sink="drivers.nats:NatsSink",
    extra="nats",
    requires=("nats",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once with -nats-jetstream; core NATS: at-most-once",
        hold="JetStream: unacked message, kept in progress while the child runs, redelivered after the ack wait "
             "if procx dies; the child is stopped when the lease is lost (consumer gone, or no in-progress "
             "confirmed for an ack wait); core NATS: none (a message is gone once received)",
        fail="JetStream: nak (redelivered at once, or after -retry-backoff; num_delivered is the attempt), none "
             "after a lost lease (the message is redelivered or held elsewhere already); core "
             "NATS: the fail response to the message's reply subject "
             "(the message itself is not redelivered)",
        dead_letter="none (JetStream max deliveries and advisories are not used)",
        pushx="JetStream: stored and acknowledged by the stream; core NATS: flushed to the server, delivered "
              "only to subscribers present at that moment",
        tested="real server: nats-server 2.9 with JetStream",
    ),
)
