"""gcp-pubsub: procx takes one message of a subscription; pushx publishes one to a topic.

Fixes over the original (procx.md §4.18, §7.3 #27, §7.4 #28; pushx.md §4.10):
- a message is acked only after the child succeeded, and nacked (ack deadline 0: redelivered at once) after a
  failure; the original never acked, so every message came back forever.
- one unary pull of at most one message per get() (no streaming receiver started and leaked per iteration, no
  client-side flow of messages procx does not run); the pull waits server-side up to `wait` (wait=0: up to 1 s,
  rather than the deprecated return_immediately, which may answer empty while messages wait).
- while the child runs, a keeper thread extends the message's ack deadline (by the subscription's deadline, or
  -gcp-pubsub-ack-deadline) so a long job is not delivered twice; a kill -9 of procx stops the extensions and the
  message comes back after one deadline. An extension refused for good (the ack id or the subscription is no
  longer valid), or none that succeeded before the deadline ran out, loses the lease: procx stops the child
  (Work.lose) and does not nack the message, which is already back (or with another consumer).
- a missing subscription or topic, or an unreachable endpoint, is a one-line error (the original blocked forever).
- the attempt number comes from the message's delivery_attempt (set when the subscription has a dead-letter
  policy; 1 otherwise).
- pushx can add attributes and an ordering key (extensions), waits for the server's message id, and publishes
  many payloads in batches.

The client libraries reach an emulator by themselves when PUBSUB_EMULATOR_HOST is set (plain-text gRPC,
anonymous credentials); nothing here is emulator-specific.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence

from core.errors import ProviderError, UsageError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.gcp.common import EXTRA, GCP_OPTIONS, google_error

NAME = "gcp-pubsub"
CONNECT_TIMEOUT = 5.0  # seconds the start-up check (subscription/topic lookup) may take, retries included
RPC_TIMEOUT = 30.0  # seconds for one ack/nack/extension/publish, retries included
MAX_DEADLINE = 600  # the service's largest ack deadline
ZERO_WAIT = 1.0  # seconds a pull may wait server-side when get() is asked not to wait (wait=0)
POLL_MIN, POLL_MAX = 0.05, 0.5  # pause between pulls that came back empty before `wait` ran out


def _endpoint() -> str:
    return os.environ.get("PUBSUB_EMULATOR_HOST") or "pubsub.googleapis.com:443"


def _project(config) -> str:
    project = config["gcp-project-id"] or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if project:
        return project
    if not os.environ.get("PUBSUB_EMULATOR_HOST"):
        try:
            import google.auth

            project = google.auth.default()[1]
        except Exception:  # noqa: BLE001 - no credentials: reported below as a missing project
            project = None
    if not project:
        raise UsageError(f"{config.describe('gcp-project-id')} is required: the project of the "
                         f"{'subscription' if config.side == PROCX else 'topic'} (not found in the environment)")
    return project


def _path(config, kind: str, name: str) -> str:
    """projects/P/subscriptions/S from a bare id and the project (a full path is taken as given)."""
    if name.startswith("projects/"):
        return name
    return f"projects/{_project(config)}/{kind}/{name}"



def _error(exc: BaseException, what: str) -> ProviderError:
    return google_error(NAME, _endpoint(), "PUBSUB_EMULATOR_HOST", exc, what)


def _retry(timeout: float):
    from google.api_core import exceptions as gx
    from google.api_core.retry import Retry, if_exception_type

    return Retry(predicate=if_exception_type(gx.ServiceUnavailable, gx.InternalServerError, gx.Aborted,
                                             gx.Unknown, gx.ResourceExhausted),
                 initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout)


class _Held:
    """The receipt of one pulled message, the thread that keeps its ack deadline from running out, until when the
    deadline surely holds (monotonic) and the Work it became (told when the lease is lost)."""

    __slots__ = ("ack_id", "stop", "thread", "until", "work")

    def __init__(self, ack_id: str, until: float) -> None:
        self.ack_id = ack_id
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.until = until
        self.work: Work | None = None

    def release(self) -> None:
        self.stop.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=RPC_TIMEOUT)


class PubsubSource(Source):
    client = None

    def open(self) -> None:
        from google.api_core import exceptions as gx
        from google.cloud import pubsub_v1

        name = self.config["gcp-pubsub-subscription"]
        self.path = _path(self.config, "subscriptions", name)
        self.held: set[_Held] = set()
        self.lock = threading.Lock()
        try:
            self.client = pubsub_v1.SubscriberClient()
        except Exception as exc:  # noqa: BLE001 - credentials and endpoint problems
            raise _error(exc, "create a subscriber") from None
        deadline = 0
        try:
            sub = self.client.get_subscription(request={"subscription": self.path}, retry=_retry(CONNECT_TIMEOUT),
                                               timeout=CONNECT_TIMEOUT)
            deadline = sub.ack_deadline_seconds
        except gx.NotFound:
            self.close()
            raise ProviderError(f"driver {NAME}: subscription {self.path} does not exist on {_endpoint()}") from None
        except gx.PermissionDenied:
            pass  # allowed to pull but not to read the subscription: use the documented default deadline
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise _error(exc, f"look up subscription {self.path}") from None
        configured = float(self.config["gcp-pubsub-ack-deadline"])
        self.deadline = min(MAX_DEADLINE, max(1, round(configured) if configured > 0 else deadline or 10))

    def _pull(self, timeout: float):
        return self.client.pull(request={"subscription": self.path, "max_messages": 1},
                                retry=_retry(timeout), timeout=timeout)

    def get(self, wait: float) -> Work | None:
        from google.api_core import exceptions as gx

        end = time.monotonic() + max(0.0, wait)
        pause = POLL_MIN
        while True:
            left = end - time.monotonic()
            try:
                # the server may hold a pull until a message arrives: the timeout bounds the wait (wait=0: a
                # short one, instead of the deprecated return_immediately that may answer empty despite messages)
                response = self._pull(max(left, ZERO_WAIT))
            except gx.DeadlineExceeded:
                return None  # waited server-side: no message
            except gx.NotFound:
                raise ProviderError(f"driver {NAME}: subscription {self.path} does not exist on "
                                    f"{_endpoint()}") from None
            except gx.RetryError as exc:
                if isinstance(exc.cause, gx.DeadlineExceeded):
                    return None
                raise _error(exc, f"pull from {self.path}") from None
            except Exception as exc:  # noqa: BLE001
                raise _error(exc, f"pull from {self.path}") from None
            if response.received_messages:
                return self._work(response.received_messages[0])
            left = end - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(pause, left))  # the server answered empty before the wait was over
            pause = min(pause * 2, POLL_MAX)

    def _work(self, received) -> Work:
        message = received.message
        held = _Held(received.ack_id, time.monotonic() + self.deadline)
        publish_time = message.publish_time
        held.work = Work(bytes(message.data), message.message_id or None, attempt=received.delivery_attempt or 1,
                         handle=held, meta={"attributes": dict(message.attributes),
                                            "ordering_key": message.ordering_key,
                                            "publish_time": publish_time.isoformat() if publish_time else ""})
        held.thread = threading.Thread(target=self._keep, args=(held,), name="pubsub-ack-keeper", daemon=True)
        with self.lock:
            self.held.add(held)
        held.thread.start()
        return held.work

    def _keep(self, held: _Held) -> None:
        """Extend the ack deadline every third of it until the message is acked or nacked. A refusal for good, or
        no success before the deadline ran out (the message may be redelivered), loses the lease (Work.lose)."""
        from google.api_core import exceptions as gx

        interval = max(0.5, self.deadline / 3)
        work: Work = held.work  # type: ignore[assignment]
        while not held.stop.wait(interval):
            sent = time.monotonic()
            if sent >= held.until:
                lost = f"the ack deadline of message {work.id} ran out before it could be extended"
            else:
                left = min(interval, held.until - sent)  # an answer after the deadline ran out is too late
                try:
                    self.client.modify_ack_deadline(
                        request={"subscription": self.path, "ack_ids": [held.ack_id],
                                 "ack_deadline_seconds": self.deadline},
                        retry=_retry(left), timeout=left)
                    held.until = sent + self.deadline
                    continue
                except (gx.NotFound, gx.InvalidArgument, gx.FailedPrecondition) as exc:
                    lost = f"Pub/Sub refused to extend the ack deadline of message {work.id}: {exc.message}"
                except Exception:  # noqa: BLE001 - a passing error: tried again until the deadline runs out
                    continue
            work.lose(lost)
            return

    def _release(self, work: Work) -> _Held:
        held: _Held = work.handle
        held.release()
        with self.lock:
            self.held.discard(held)
        return held

    def _settle(self, work: Work, what: str, request: dict, call) -> None:
        held = self._release(work)
        try:
            call(request={"subscription": self.path, "ack_ids": [held.ack_id], **request},
                 retry=_retry(RPC_TIMEOUT), timeout=RPC_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"{what} message {work.id} of {self.path}") from None

    def clear(self, work: Work) -> None:
        self._settle(work, "ack", {}, self.client.acknowledge)

    def fail(self, work: Work) -> None:
        if work.lost:  # the message is back already (or with another consumer): its ack id is spent
            self._release(work)
            return
        self._settle(work, "nack", {"ack_deadline_seconds": 0}, self.client.modify_ack_deadline)

    def close(self) -> None:
        held = list(getattr(self, "held", ()))
        for item in held:  # not settled (the app stopped): offer them again now rather than after the deadline
            item.release()
            with contextlib.suppress(Exception):  # closing must not raise
                self.client.modify_ack_deadline(request={"subscription": self.path, "ack_ids": [item.ack_id],
                                                         "ack_deadline_seconds": 0}, timeout=CONNECT_TIMEOUT)
        if self.client is not None:
            with contextlib.suppress(Exception):  # closing must not raise
                self.client.close()
            self.client = None


class PubsubSink(Sink):
    client = None

    def open(self) -> None:
        from google.api_core import exceptions as gx
        from google.cloud import pubsub_v1
        from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions

        self.topic = _path(self.config, "topics", self.config["gcp-pubsub-topic"])
        self.attributes = {str(k): str(v) for k, v in (self.config["gcp-pubsub-attributes"] or {}).items()}
        self.ordering_key = self.config["gcp-pubsub-ordering-key"]
        try:
            self.client = pubsub_v1.PublisherClient(
                batch_settings=BatchSettings(max_messages=100, max_bytes=9 * 1024 * 1024, max_latency=0.01),
                publisher_options=PublisherOptions(enable_message_ordering=bool(self.ordering_key),
                                                   retry=_retry(RPC_TIMEOUT), timeout=RPC_TIMEOUT))
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, "create a publisher") from None
        try:
            self.client.get_topic(request={"topic": self.topic}, retry=_retry(CONNECT_TIMEOUT),
                                  timeout=CONNECT_TIMEOUT)
        except gx.NotFound:
            raise ProviderError(f"driver {NAME}: topic {self.topic} does not exist on {_endpoint()}") from None
        except gx.PermissionDenied:
            pass  # a publisher may lack pubsub.topics.get; the publish itself tells
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"look up topic {self.topic}") from None

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        """Publish all (the client batches them), then wait for every message id, in order."""
        from google.api_core import exceptions as gx

        futures = [self.client.publish(self.topic, bytes(p), ordering_key=self.ordering_key, **self.attributes)
                   for p in payloads]
        ids: list[str | None] = []
        try:
            for future in futures:
                ids.append(future.result(timeout=RPC_TIMEOUT + 10))
        except gx.NotFound:
            raise ProviderError(f"driver {NAME}: topic {self.topic} does not exist on {_endpoint()}") from None
        except Exception as exc:  # noqa: BLE001
            if self.ordering_key:  # a failed ordered publish pauses the key until resumed
                self.client.resume_publish(self.topic, self.ordering_key)
            raise _error(exc, f"publish to {self.topic} ({len(ids)} of {len(futures)} published)") from None
        return ids

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # closing must not raise
                self.client.stop()
            self.client = None


def _validate(config) -> None:
    if config.side == PROCX:
        if not config["gcp-pubsub-subscription"]:
            raise ValueError(f"{config.describe('gcp-pubsub-subscription')} is required: the subscription id")
        if config["gcp-pubsub-ack-deadline"] < 0 or config["gcp-pubsub-ack-deadline"] > MAX_DEADLINE:
            raise ValueError(f"-gcp-pubsub-ack-deadline: must be between 0 and {MAX_DEADLINE}s")
        return
    if not config["gcp-pubsub-topic"]:
        raise ValueError(f"{config.describe('gcp-pubsub-topic')} is required: the topic id")
    attributes = config["gcp-pubsub-attributes"]
    if attributes is not None and (not isinstance(attributes, dict)
                                   or not all(isinstance(v, str | int | float | bool) for v in attributes.values())):
        raise ValueError('-gcp-pubsub-attributes: must be a JSON object of names to strings, e.g. {"kind":"job"}')


SPEC = DriverSpec(
    NAME,
    "Pub/Sub: each message is one unit of work",
    [
        *GCP_OPTIONS,
        Option("gcp-pubsub-subscription", sides=PROCX, env={PROCX: "PROCX_GCP_SUBSCRIPTION"},
               help="subscription id to receive from (in -gcp-project-id; a full projects/P/subscriptions/S "
                    "path also works)"),
        Option("gcp-pubsub-ack-deadline", "duration", sides=PROCX, extension=True, advanced=True,
               help="ack deadline kept while the child runs, renewed every third of it (0: the "
                    "subscription's own)"),
        Option("gcp-pubsub-topic", sides=PUSHX, env={PUSHX: "PUSHX_GCP_TOPIC"},
               help="topic id to publish to (in -gcp-project-id; must exist)"),
        Option("gcp-pubsub-attributes", "json", sides=PUSHX, extension=True, group="push",
               help='attributes of the published message, a JSON object: {"kind":"job"}'),
        Option("gcp-pubsub-ordering-key", sides=PUSHX, extension=True, group="push",
               help="ordering key of the published message (the subscription needs message ordering on)"),
    ],
    source="drivers.gcp.pubsub:PubsubSource",
    sink="drivers.gcp.pubsub:PubsubSink",
    extra=EXTRA,
    requires=("google.cloud.pubsub_v1",),
    blocking=True,
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="unacked message; its ack deadline is extended while the child runs (a dead procx stops extending: "
             "the message returns after one deadline); the child is stopped when an extension is refused for good "
             "or none succeeded before the deadline ran out",
        fail="nack (ack deadline 0): redelivered at once; none after a lost lease (the message is back already)",
        dead_letter="the subscription's dead-letter policy (delivery_attempt becomes the attempt number)",
        pushx="published: the server returned the message id",
        tested="emulator: cloudbox 0.2.3 Pub/Sub gRPC (PUBSUB_EMULATOR_HOST)",
    ),
    family="gcp",
)
