"""local: the payload comes from PROCX_PAYLOAD (procx); pushx writes the payload to standard output."""

from __future__ import annotations

import os
import sys

from core.options import PROCX, PUSHX, DriverSpec
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
    delivery={
        PROCX: "none needed: the payload is the variable; a daemon processes the same payload again and again",
        PUSHX: "written to standard output",
    },
)
