"""What the mongodb and elasticsearch tests share: a conformance backend on a fresh collection or index of the
session's emulator, taking work with or without a lease, and the part of the suite that a lease changes."""

from __future__ import annotations

import uuid

from tests.conformance import Backend, Conformance
from tests.drivers.doc_servers import EsServer, MongoServer


class DocBackend(Backend):
    """Work in a fresh collection or index (`name`) of one emulator; with `lease` (a TTL) procx takes it under a
    lease, so that work a killed procx held comes back once the lease runs out."""

    redelivery_wait = 0.5
    lease_flag = ""  # the driver's -...-lease-ttl flag

    def __init__(self, server: MongoServer | EsServer, lease: str = "") -> None:
        self.server, self.lease = server, lease
        self.name = "q" + uuid.uuid4().hex[:12]  # a valid collection and index name
        if lease:
            self.redelivery_wait = 2.0

    def lease_args(self) -> list[str]:
        return [self.lease_flag, self.lease] if self.lease else []


class LeaseConformance(Conformance):
    """Only what a lease changes: failing, a killed procx, the daemon (the rest is the same as without a lease)."""

    test_round_trip_byte_for_byte = test_child_receives_payload_on_stdin = test_no_work_is_not_an_error = None
    test_several_items = test_clear_removes = test_api_stream_with_explicit_clear_and_fail = None
