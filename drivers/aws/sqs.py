"""aws-sqs: procx receives one message of a queue (deleted on clear); pushx sends one (or batches of 10).

Fixes over the original (procx.md §4.5, §7.4 #31; pushx.md §4.2):
- long polling: a receive waits server-side up to -aws-sqs-wait-time seconds (at most 20, and never longer than
  procx is willing to wait); the original short-polled and could report "no work" while messages existed.
- fail makes the message visible again at once (ChangeMessageVisibility 0); the original did nothing, so a failed
  message came back only after the queue's visibility timeout.
- a heartbeat: while the child runs, a background thread keeps extending the visibility of the messages procx
  holds, so a job longer than the visibility timeout is not delivered to a second consumer. A kill -9 of procx
  stops the heartbeat and the message comes back after one visibility timeout.
- the payload is sent byte for byte (the original trimmed whitespace). SQS bodies are text: UTF-8 made of the
  characters XML allows (no NUL and most control characters, at least one character). Such payloads round-trip
  exactly; anything else is refused with a clear error before anything is sent (no silent base64).
- pushx extensions: message attributes, FIFO message group and deduplication ids, and batches of 10
  (SendMessageBatch) for several payloads, with partial failures reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Sequence

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import fill, go_json
from core.work import Sink, Source, Work
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES, api, error_code
from drivers.aws.common import fail as aws_fail

NAME = "aws-sqs"
MAX_WAIT = 20  # SQS long polling limit (seconds)
BATCH = 10  # SendMessageBatch limit
MAX_VISIBILITY = 43200  # seconds (12 hours)
LOST = ("ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue")  # the receipt is no longer ours
# characters SQS accepts in a message body (the XML 1.0 character set)
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_attributes(text: str) -> dict[str, dict[str, str]]:
    """-aws-sqs-message-attributes: a JSON object ({"k": "v"} or {"k": {"DataType": "Number", "StringValue":
    "1"}}) or a k=v,k2=v2 list (values may contain '='). Raises ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON ({exc.msg} at position {exc.pos})") from None
    else:
        raw = {}
        for item in text.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"{item!r} is not k=v")
            raw[key.strip()] = value
    out: dict[str, dict[str, str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            kind = str(value.get("DataType", "String"))
            if "StringValue" not in value or not kind.startswith(("String", "Number")):
                raise ValueError(f"attribute {key!r}: give DataType String or Number and a StringValue")
            out[key] = {"DataType": kind, "StringValue": str(value["StringValue"])}
        elif isinstance(value, bool) or value is None:
            out[key] = {"DataType": "String", "StringValue": json.dumps(value)}
        elif isinstance(value, (int, float)):
            out[key] = {"DataType": "Number", "StringValue": str(value)}
        else:
            out[key] = {"DataType": "String", "StringValue": str(value)}
    if len(out) > 10:
        raise ValueError("SQS allows at most 10 message attributes")
    return out


def _validate(config) -> None:
    if not config["aws-sqs-queue-url"]:
        raise ValueError("-aws-sqs-queue-url is required")
    if config.side == PROCX:
        if not 0 <= config["aws-sqs-wait-time"] <= MAX_WAIT:
            raise ValueError(f"-aws-sqs-wait-time: must be 0 to {MAX_WAIT} seconds")
        if not 0 <= config["aws-sqs-visibility-timeout"] <= MAX_VISIBILITY:
            raise ValueError("-aws-sqs-visibility-timeout: must be 0 to 43200 seconds (12 hours)")
    else:
        try:
            parse_attributes(config["aws-sqs-message-attributes"])
        except ValueError as exc:
            raise ValueError(f"-aws-sqs-message-attributes: {exc}") from None


SPEC = DriverSpec(
    "aws-sqs",
    "an SQS queue: each message is one unit of work",
    [
        *AWS_OPTIONS,
        Option("aws-sqs-queue-url", help="URL of the queue", placeholder="URL"),
        Option("aws-sqs-include-id", "bool", sides=PROCX, group="retrieve",
               help='pass {"id":"<MessageId>","body":"<Body>"} instead of the bare body'),
        Option("aws-sqs-wait-time", "int", MAX_WAIT, sides=PROCX, group="retrieve", extension=True, advanced=True,
               help="long polling: seconds one receive waits server-side for a message (0-20; 0 = short polling)"),
        Option("aws-sqs-visibility-timeout", "int", 0, sides=PROCX, group="retrieve", extension=True,
               advanced=True, help="seconds a received message stays hidden, renewed by the heartbeat while the "
                                   "child runs (0: the queue's VisibilityTimeout)"),
        Option("aws-sqs-heartbeat", "bool", True, sides=PROCX, group="retrieve", extension=True, advanced=True,
               help="keep extending the visibility of the message while the child runs"),
        Option("aws-sqs-message-attributes", sides=PUSHX, group="push", extension=True,
               help='message attributes: a JSON object ({"k":"v"} or {"k":{"DataType":"Number","StringValue":'
                    '"1"}}) or k=v,k2=v2'),
        Option("aws-sqs-message-group-id", sides=PUSHX, group="push", extension=True,
               help="FIFO queues: the message group id; {{path}} takes a field of the JSON payload"),
        Option("aws-sqs-message-deduplication-id", sides=PUSHX, group="push", extension=True,
               help="FIFO queues: the deduplication id; {{path}} takes a field of the JSON payload "
                    "(empty: content-based deduplication must be on)"),
    ],
    source="drivers.aws.sqs:SqsSource",
    sink="drivers.aws.sqs:SqsSink",
    extra=EXTRA,
    requires=REQUIRES,
    blocking=True,
    validate=_validate,
    family="aws",
    delivery=Delivery(
        "at-least-once",
        hold="visibility timeout, extended by a heartbeat while the child runs (a dead procx's message comes back "
             "after one visibility timeout)",
        fail="visible again at once (ChangeMessageVisibility 0), or after -retry-backoff; attempt = "
             "ApproximateReceiveCount (-max-attempts)",
        dead_letter="the queue's redrive policy (maxReceiveCount) moves repeatedly failed messages",
        pushx="SendMessage acknowledged by SQS (batches of 10 with SendMessageBatch; failures reported)",
        tested="emulator: moto 5.2.5 server (standard and FIFO queues)",
    ),
)


def body_text(payload: bytes) -> str:
    """The payload as an SQS message body, unchanged; a clear error when SQS cannot carry it."""
    if not payload:
        raise ProviderError(f"driver {NAME}: an empty payload cannot be sent (SQS message bodies hold at least "
                            "one character)")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProviderError(f"driver {NAME}: the payload is not UTF-8 text (byte 0x{payload[exc.start]:02x} at "
                            f"offset {exc.start}); SQS message bodies are text: encode binary data yourself, "
                            "e.g. with base64") from None
    bad = _INVALID.search(text)
    if bad:
        offset = len(text[: bad.start()].encode())
        raise ProviderError(f"driver {NAME}: the payload holds the character U+{ord(bad[0]):04X} at byte offset "
                            f"{offset}, which SQS does not allow in a message body (allowed: tab, newline, "
                            "carriage return and the characters from U+0020 on, except surrogates and U+FFFE/FFFF)")
    return text


def _check_md5(body: str, digest: str | None, what: str) -> None:
    """SQS returns the MD5 of each body it stored or sent: a mismatch means the text was changed on the way."""
    if digest and hashlib.md5(body.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest() != digest:
        raise ProviderError(f"driver {NAME}: the body of {what} was altered in transit (MD5 mismatch)")


class _Held:
    """The receipt of one received message (per-item state) and until when it is surely hidden (monotonic)."""

    __slots__ = ("receipt", "message_id", "work", "until")

    def __init__(self, receipt: str, message_id: str, until: float) -> None:
        self.receipt = receipt
        self.message_id = message_id
        self.work: Work | None = None
        self.until = until


class SqsSource(Source):
    sqs = None
    renewer: threading.Thread | None = None

    def open(self) -> None:
        c = self.config
        self.url = c["aws-sqs-queue-url"]
        self.sqs = api(c, "sqs", "AmazonSQS", read_timeout=MAX_WAIT + 40)
        self.errors, self.endpoint = self.sqs.errors, self.sqs.endpoint_url
        try:
            attrs = self.sqs.call("GetQueueAttributes", {"QueueUrl": self.url, "AttributeNames": ["VisibilityTimeout"]})
        except self.errors as exc:
            if "NonExistentQueue" in error_code(exc) or "QueueDoesNotExist" in error_code(exc):
                raise ProviderError(f"driver {NAME}: queue {self.url} does not exist (at {self.endpoint})") from None
            raise aws_fail(c, f"cannot open queue {self.url}", exc, self.endpoint) from None
        queue_timeout = int(attrs.get("Attributes", {}).get("VisibilityTimeout", "30"))
        self.visibility = int(c["aws-sqs-visibility-timeout"]) or queue_timeout
        self.held: dict[str, _Held] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        if c["aws-sqs-heartbeat"] and self.visibility > 0:
            self.renewer = threading.Thread(target=self._renew, name="aws-sqs-heartbeat", daemon=True)
            self.renewer.start()

    # -- heartbeat --------------------------------------------------------------------------------------
    def _renew(self) -> None:
        """Extend the visibility of every held message well before it runs out (a third of the timeout). A receipt
        SQS no longer accepts, or no success for a whole visibility timeout, means the lease is lost: the work is
        told (Work.lose) and procx stops its child."""
        interval = max(0.2, self.visibility / 3)
        while not self.stop.wait(interval):
            with self.lock:
                held = list(self.held.values())
            for item in held:
                # under the lock, so that clear/fail (which first drop the item under it) never race a renewal
                # that would hide a failed message again; a passing network error: the next round tries again
                lost = ""
                with self.lock:
                    if item.receipt not in self.held or self.stop.is_set():
                        continue
                    try:
                        self.sqs.call("ChangeMessageVisibility", {"QueueUrl": self.url, "ReceiptHandle": item.receipt,
                                                                  "VisibilityTimeout": self.visibility})
                        item.until = time.monotonic() + self.visibility
                    except Exception as exc:  # noqa: BLE001 - any failure to renew: lost, or tried again
                        if any(code in error_code(exc) for code in LOST):
                            lost = (f"SQS refused to extend the visibility of message {item.message_id} "
                                    f"({error_code(exc)})")
                        elif time.monotonic() > item.until:
                            lost = f"the visibility of message {item.message_id} could not be extended in time"
                    if lost:
                        self.held.pop(item.receipt, None)
                if lost and item.work is not None:
                    item.work.lose(lost)

    def _release(self, work: Work) -> _Held:
        held: _Held = work.handle
        with self.lock:
            self.held.pop(held.receipt, None)
        return held

    # -- the contract ------------------------------------------------------------------------------------
    def get(self, wait: float) -> Work | None:
        c = self.config
        seconds = min(int(c["aws-sqs-wait-time"]), math.ceil(wait)) if wait > 0 else 0
        args = {"QueueUrl": self.url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": seconds,
                "AttributeNames": ["All"], "MessageAttributeNames": ["All"]}
        if c["aws-sqs-visibility-timeout"]:
            args["VisibilityTimeout"] = self.visibility
        try:
            messages = self.sqs.call("ReceiveMessage", args).get("Messages", [])
        except self.errors as exc:
            raise aws_fail(c, f"cannot receive from {self.url}", exc, self.endpoint) from None
        if not messages:
            return None
        m = messages[0]
        held = _Held(m["ReceiptHandle"], m["MessageId"], time.monotonic() + self.visibility)
        with self.lock:
            self.held[held.receipt] = held
        body = m.get("Body", "")
        _check_md5(body, m.get("MD5OfBody"), f"message {m['MessageId']} of {self.url}")
        if c["aws-sqs-include-id"]:  # the original's struct order: {"id":…,"body":…}
            payload = ('{"id":' + go_json(m["MessageId"]) + ',"body":' + go_json(body) + "}").encode()
        else:
            payload = body.encode("utf-8", "surrogatepass")
        attrs = m.get("Attributes", {})
        meta = {"attributes": attrs,
                "message_attributes": {k: v.get("StringValue", v.get("BinaryValue"))
                                       for k, v in m.get("MessageAttributes", {}).items()}}
        work = Work(payload, m["MessageId"], attempt=int(attrs.get("ApproximateReceiveCount", "1")), handle=held,
                    meta=meta, exact=True)
        held.work = work
        return work

    def clear(self, work: Work) -> None:
        held = self._release(work)
        try:
            self.sqs.call("DeleteMessage", {"QueueUrl": self.url, "ReceiptHandle": held.receipt})
        except self.errors as exc:
            raise aws_fail(self.config, f"cannot delete message {held.message_id}", exc, self.endpoint) from None

    def fail(self, work: Work) -> None:
        held = self._release(work)
        try:
            # visible again at once, or after procx's -retry-backoff delay (SQS allows at most 12 hours)
            delay = min(MAX_VISIBILITY, math.ceil(work.retry_delay))
            self.sqs.call("ChangeMessageVisibility", {"QueueUrl": self.url, "ReceiptHandle": held.receipt,
                                                      "VisibilityTimeout": delay})
        except self.errors as exc:
            raise aws_fail(self.config, f"cannot make message {held.message_id} visible again", exc,
                       self.endpoint) from None

    def depth(self) -> int:
        attrs = self.sqs.call("GetQueueAttributes", {"QueueUrl": self.url,
                                                     "AttributeNames": ["ApproximateNumberOfMessages"]})
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def close(self) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()
        if self.renewer is not None:
            self.renewer.join(timeout=5)
        if self.sqs is not None:
            self.sqs.close()


class SqsSink(Sink):
    sqs = None

    def open(self) -> None:
        c = self.config
        self.url = c["aws-sqs-queue-url"]
        self.attributes = parse_attributes(c["aws-sqs-message-attributes"])
        self.sqs = api(c, "sqs", "AmazonSQS")
        self.errors, self.endpoint = self.sqs.errors, self.sqs.endpoint_url

    def _entry(self, payload: bytes) -> dict:
        c = self.config
        entry: dict = {"MessageBody": body_text(payload)}
        if self.attributes:
            entry["MessageAttributes"] = self.attributes
        for option, field in (("aws-sqs-message-group-id", "MessageGroupId"),
                              ("aws-sqs-message-deduplication-id", "MessageDeduplicationId")):
            if c[option]:
                entry[field] = fill(c[option], payload) if "{{" in c[option] else c[option]
        return entry

    def _failed(self, what: str, exc: BaseException) -> ProviderError:
        code = error_code(exc)
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            return ProviderError(f"driver {NAME}: queue {self.url} does not exist (at {self.endpoint})")
        return aws_fail(self.config, what, exc, self.endpoint)

    def push(self, payload: bytes) -> str | None:
        entry = self._entry(payload)
        try:
            result = self.sqs.call("SendMessage", {"QueueUrl": self.url, **entry})
        except self.errors as exc:
            raise self._failed(f"cannot send to {self.url}", exc) from None
        _check_md5(entry["MessageBody"], result.get("MD5OfMessageBody"), f"message {result['MessageId']}")
        return result["MessageId"]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        """SendMessageBatch in groups of 10; every entry that SQS refused is reported (after all batches)."""
        entries = [self._entry(p) for p in payloads]  # refuse bad payloads before anything is sent
        ids: list[str | None] = [None] * len(entries)
        failed: list[str] = []
        for start in range(0, len(entries), BATCH):
            batch = [{"Id": str(n), **entries[n]} for n in range(start, min(start + BATCH, len(entries)))]
            try:
                result = self.sqs.call("SendMessageBatch", {"QueueUrl": self.url, "Entries": batch})
            except self.errors as exc:
                raise self._failed(f"cannot send to {self.url} (after {start} of {len(entries)} messages)",
                                   exc) from None
            for ok in result.get("Successful", []):
                n = int(ok["Id"])
                _check_md5(entries[n]["MessageBody"], ok.get("MD5OfMessageBody"), f"message {ok['MessageId']}")
                ids[n] = ok["MessageId"]
            for bad in result.get("Failed", []):
                failed.append(f"#{bad['Id']}: {bad.get('Code', '')} {bad.get('Message', '')}".strip())
        if failed:
            raise ProviderError(f"driver {NAME}: {len(failed)} of {len(entries)} messages were not sent: "
                                + "; ".join(failed[:5]) + (" …" if len(failed) > 5 else ""))
        return ids

    def close(self) -> None:
        if self.sqs is not None:
            self.sqs.close()
