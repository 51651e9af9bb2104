"""local: the payload comes from PROCX_PAYLOAD (procx); pushx writes the payload to standard output."""

from __future__ import annotations

import os
import sys

from core.options import Delivery, DriverSpec
from core.work import Sink, Source, Work


class LocalSource(Source):
    def get(self, wait: float) -> Work | None:
        payload = os.environb.get(b"PROCX_PAYLOAD") or os.fsencode(self.config.env_file.get("PROCX_PAYLOAD", ""))
        return Work(payload) if payload else None

    def clear(self, work: Work) -> None:
        pass

    def fail(self, work: Work) -> None:
        pass


class LocalSink(Sink):
    def push(self, payload: bytes) -> str | None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return None


SPEC = DriverSpec(
    "local",
    "the payload in the PROCX_PAYLOAD variable (procx); standard output (pushx)",
    [],
    source="drivers.local:LocalSource",
    sink="drivers.local:LocalSink",
    delivery=Delivery(
        "none needed",
        hold="the payload is procx's PROCX_PAYLOAD variable; a daemon takes the same payload again and again",
        fail="nothing to do",
        pushx="written to standard output",
        tested="real",
    ),
)
