"""gcp-gcs: procx takes an object of a bucket (then mv/rm); pushx writes one object. Mirrors aws-s3.

Fixes over the original (procx.md §3.5, §4.17, §7.3 #21-22, §7.7 #54; pushx.md §4.10):
- key, prefix and regex selection look at every page of the listing, sub-"folders" included (the original's regex
  mode listed only top-level objects); the first match in name order wins; nothing found is "no work".
- per-item state only: the selected key never replaces the configured selector and the mv default key is the
  item's own key, so a daemon takes one object after another.
- the object is read at one generation, and rm/mv act on that generation only: an object replaced while the child
  ran is new work and is left in place; an object already gone (another procx took it) is not an error.
- mv into the same bucket under a template prefix (done/{{key}}) is never picked up again as work.
- a missing bucket is a clear error; an unreachable endpoint is a one-line error naming it.
- pushx: a key holding {{path}} templates takes them from the JSON payload (extension); payloads over 8 MiB go
  up as a resumable upload in 8 MiB chunks.

The storage library reaches an emulator by itself when STORAGE_EMULATOR_HOST is set (and then uses anonymous
credentials); nothing here is emulator-specific. -gcp-project-id is not used, as in the original.
"""

from __future__ import annotations

import contextlib
import os
import re

from core.errors import ProviderError
from core.options import BOTH, PROCX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work
from drivers.common import check_selection, move_ops, selector_options
from drivers.gcp.common import EXTRA, google_error

NAME = "gcp-gcs"
CONNECT_TIMEOUT = 5.0  # seconds the start-up bucket check may take, retries included
RPC_TIMEOUT = 60.0  # seconds one object operation may take, retries included
CHUNK = 8 * 1024 * 1024  # resumable upload chunk (payloads larger than this are uploaded resumably)


def _endpoint() -> str:
    return os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"



def _error(exc: BaseException, what: str) -> ProviderError:
    return google_error(NAME, _endpoint(), "STORAGE_EMULATOR_HOST", exc, what)


def _retry(timeout: float):
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(timeout).with_delay(initial=0.1, maximum=2.0)


def _client():
    from google.cloud import storage

    try:
        return storage.Client()
    except OSError as exc:  # no project in the credentials: objects need none
        if "project" not in str(exc).lower():
            raise
        return storage.Client(project="<none>")


def _bucket(client, name: str, what: str):
    """The bucket, checked to exist (a credential that may not read bucket metadata is trusted as is)."""
    from google.api_core import exceptions as gx

    try:
        return client.get_bucket(name, retry=_retry(CONNECT_TIMEOUT), timeout=CONNECT_TIMEOUT)
    except gx.NotFound:
        raise ProviderError(f"driver {NAME}: {what} bucket {name!r} does not exist on {_endpoint()}") from None
    except gx.Forbidden:
        return client.bucket(name)
    except Exception as exc:  # noqa: BLE001
        raise _error(exc, f"open {what} bucket {name!r}") from None


def _template_prefix(template: str) -> str:
    return template.split("{{key}}", 1)[0] if "{{key}}" in template else ""


class GcsSource(Source):
    client = None

    def open(self) -> None:
        c = self.config
        self.bucket_name = c["gcp-gcs-bucket"]
        self.regex = re.compile(c["gcp-gcs-key-regex"]) if c["gcp-gcs-key-regex"] else None
        try:
            self.client = _client()
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, "create a storage client") from None
        self.bucket = _bucket(self.client, self.bucket_name, "the work")
        self.targets = {}
        for phase in ("clear", "fail"):
            dest = c[f"gcp-gcs-{phase}-bucket"]
            if c[f"gcp-gcs-{phase}-op"] == "mv":
                self.targets[phase] = self.bucket if dest == self.bucket_name else _bucket(self.client, dest, phase)
        # objects moved into this bucket under a template prefix (done/{{key}}) are not work again
        self.skip = tuple(p for p in (_template_prefix(c[f"gcp-gcs-{phase}-key-template"])
                                      for phase in ("clear", "fail")
                                      if c[f"gcp-gcs-{phase}-op"] == "mv"
                                      and c[f"gcp-gcs-{phase}-bucket"] == self.bucket_name) if p)

    def _matches(self, name: str) -> bool:
        if name.startswith(self.skip):
            return False
        prefix = self.config["gcp-gcs-key-prefix"]
        if prefix:
            return name.startswith(prefix)
        return bool(self.regex and self.regex.search(name))

    def _candidates(self):
        """Blobs matching the selector, in name order, over every page of the listing."""
        key = self.config["gcp-gcs-key"]
        if key:
            blob = self.bucket.get_blob(key, retry=_retry(RPC_TIMEOUT), timeout=RPC_TIMEOUT)
            if blob is not None:
                yield blob
            return
        prefix = self.config["gcp-gcs-key-prefix"] or None
        for blob in self.client.list_blobs(self.bucket, prefix=prefix, retry=_retry(RPC_TIMEOUT),
                                           timeout=RPC_TIMEOUT):
            if not blob.name.endswith("/") and self._matches(blob.name):
                yield blob

    def depth(self) -> int:
        """Objects waiting (matching the selector)."""
        try:
            return sum(1 for _ in self._candidates())
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"list bucket {self.bucket_name!r}") from None

    def get(self, wait: float) -> Work | None:
        from google.api_core import exceptions as gx

        try:
            for blob in self._candidates():
                try:
                    payload = blob.download_as_bytes(if_generation_match=blob.generation, retry=_retry(RPC_TIMEOUT),
                                                     timeout=RPC_TIMEOUT)
                except (gx.NotFound, gx.PreconditionFailed):
                    continue  # taken or replaced in between: the next one
                return Work(payload, blob.name, handle=(blob.name, blob.generation),
                            meta={"bucket": self.bucket_name, "generation": blob.generation,
                                  "content_type": blob.content_type or ""})
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"read bucket {self.bucket_name!r}") from None
        return None

    def clear(self, work: Work) -> None:
        self._apply("clear", work)

    def fail(self, work: Work) -> None:
        self._apply("fail", work)

    def _apply(self, phase: str, work: Work) -> None:
        from google.api_core import exceptions as gx

        c = self.config
        op = c[f"gcp-gcs-{phase}-op"]
        if not op:
            return
        key, generation = work.handle
        blob = self.bucket.blob(key, generation=generation)
        dest_key = ""
        try:
            if op == "mv":
                template = c[f"gcp-gcs-{phase}-key-template"]
                dest_key = template.replace("{{key}}", key) if template else (c[f"gcp-gcs-{phase}-key"] or key)
                self.bucket.copy_blob(blob, self.targets[phase], dest_key, source_generation=generation,
                                      retry=_retry(RPC_TIMEOUT), timeout=RPC_TIMEOUT)
            self.bucket.delete_blob(key, if_generation_match=generation, retry=_retry(RPC_TIMEOUT),
                                    timeout=RPC_TIMEOUT)
        except (gx.NotFound, gx.PreconditionFailed):
            pass  # gone (another procx cleared it) or replaced by a newer object, which is new work: leave it
        except Exception as exc:  # noqa: BLE001
            what = f"move {key!r} to {c[f'gcp-gcs-{phase}-bucket']}/{dest_key}" if op == "mv" else f"delete {key!r}"
            raise _error(exc, what) from None


class GcsSink(Sink):
    client = None

    def open(self) -> None:
        try:
            self.client = _client()
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, "create a storage client") from None
        self.bucket = _bucket(self.client, self.config["gcp-gcs-bucket"], "the target")

    def push(self, payload: bytes) -> str | None:
        key = self.config["gcp-gcs-key"]
        if "{{" in key:
            from core.template import fill

            key = fill(key, payload)
            if not key:
                raise ProviderError(f"driver {NAME}: the key template {self.config['gcp-gcs-key']!r} gives an "
                                    "empty key for this payload")
        blob = self.bucket.blob(key, chunk_size=CHUNK if len(payload) > CHUNK else None)
        try:
            blob.upload_from_string(payload, content_type="application/octet-stream", timeout=RPC_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, f"write {key!r} to bucket {self.bucket.name!r}") from None
        return key

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # closing must not raise
                self.client.close()
            self.client = None


def _validate(config) -> None:
    if not config["gcp-gcs-bucket"]:
        raise ValueError(f"{config.describe('gcp-gcs-bucket')} is required")
    if config.side != PROCX:
        if not config["gcp-gcs-key"]:
            raise ValueError(f"{config.describe('gcp-gcs-key')} is required: the object name to write")
        return
    check_selection(config, "gcp-gcs", "key", "bucket")


SPEC = DriverSpec(
    NAME,
    "a Cloud Storage bucket: each object is one unit of work",
    [
        Option("gcp-gcs-bucket", help="the bucket holding (procx) or receiving (pushx) the objects", required=True),
        *selector_options("gcp-gcs", key_sides=BOTH),
        *move_ops("gcp-gcs", "bucket"),
    ],
    source="drivers.gcp.gcs:GcsSource",
    sink="drivers.gcp.gcs:GcsSink",
    extra=EXTRA,
    requires=("google.cloud.storage",),
    validate=_validate,
    delivery=Delivery(
        "at-least-once",
        hold="none: the object stays in place until cleared; two procx on one bucket may take the same object",
        fail="-gcp-gcs-fail-op: mv, rm, or left in place (offered again)",
        pushx="written: the upload (resumable over 8 MiB) completed",
        tested="emulator: gcp-storage-emulator 2026.7.19 (STORAGE_EMULATOR_HOST)",
    ),
    family="gcp",
)
