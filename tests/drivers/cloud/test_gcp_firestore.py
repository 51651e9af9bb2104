"""gcp-firestore against the Node Firestore emulator (npm @firestore-emulator/server 0.3.15).

The conformance suite runs with documents {"work": <payload text>} and -gcp-firestore-retrieve-document-json-key
0.work, clear op rm, no fail op (a failed document stays and is taken again). Binary payloads cannot be a JSON text
field, so the suite's binary round trips are skipped with that reason; documents are ordered by id (the push
number), which is the collection's first-document order.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from core import api
from tests.conformance import PAYLOADS, Backend, Conformance
from tests.drivers.cloud.firestore_server import Firestore
from tests.support import clean_env, run

PROJECT = "px-test"


@pytest.fixture
def db(firestore_emulator: Firestore, monkeypatch: pytest.MonkeyPatch):
    """A client of the emulator in this process (FIRESTORE_EMULATOR_HOST set here too)."""
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    client = firestore.Client(project=PROJECT)
    yield client
    client.close()


def env(server: Firestore) -> dict[str, str]:
    return clean_env(FIRESTORE_EMULATOR_HOST=server.host)


def ids(db, collection: str) -> list[str]:
    return sorted(d.id for d in db.collection(collection).stream())


def docs(db, collection: str) -> dict[str, dict]:
    return {d.id: d.to_dict() for d in db.collection(collection).stream()}


class FirestoreBackend(Backend):
    driver = "gcp-firestore"
    redelivery_wait = 1.0
    api_items = (b'{"work": "a"}', b'{"work": "b"}')  # documents: the payload is their "work" field

    def __init__(self, server: Firestore, db) -> None:
        self.server = server
        self.db = db
        self.collection = "q-" + uuid.uuid4().hex[:12]

    def env(self) -> dict[str, str]:
        return env(self.server)

    def common_args(self) -> list[str]:
        return ["-driver", "gcp-firestore", "-gcp-project-id", PROJECT]

    def push_args(self, n: int) -> list[str]:
        return ["-gcp-firestore-collection", self.collection, "-gcp-firestore-id", f"{n:04d}-{uuid.uuid4().hex[:6]}"]

    def procx_args(self) -> list[str]:
        return ["-gcp-firestore-retrieve-collection", self.collection,
                "-gcp-firestore-retrieve-document-json-key", "0.work", "-gcp-firestore-clear-op", "rm"]

    def pushx(self, payload: bytes, n: int = 0) -> None:
        super().pushx(json.dumps({"work": payload.decode()}).encode(), n)

    def pending(self) -> int:
        return len(ids(self.db, self.collection))


class TestFirestoreConformance(Conformance):
    @pytest.fixture
    def backend(self, firestore_emulator: Firestore, db) -> FirestoreBackend:
        return FirestoreBackend(firestore_emulator, db)

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_round_trip_byte_for_byte(self, backend: Backend, name: str) -> None:
        try:
            PAYLOADS[name].decode()
        except UnicodeDecodeError:
            pytest.skip("gcp-firestore: the payload is a JSON text field of a document; bytes that are not UTF-8 "
                        "cannot be one")
        super().test_round_trip_byte_for_byte(backend, name)

    def test_child_receives_payload_on_stdin(self, backend: Backend, tmp_path: Path) -> None:
        pytest.skip("gcp-firestore: the suite's payload here is binary (not UTF-8), which a document field "
                    "cannot hold as text; stdin delivery is the engine's and tested with other drivers")



# ---------------------------------------------------------------------------------------------- driver tests
@pytest.fixture
def coll() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def procx(server: Firestore, coll: str, *args: str):
    return run("procx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT,
               "-gcp-firestore-retrieve-collection", coll, *args, env=env(server))


def seed(db, coll: str, **documents: dict) -> None:
    batch = db.batch()
    for ident, data in documents.items():
        batch.set(db.collection(coll).document(ident), data)
    batch.commit()


def test_query_value_is_typed_ordered_limited_and_clear_removes_exactly_those(firestore_emulator, db, coll):
    seed(db, coll, a={"n": 1, "prio": 1}, b={"n": 1, "prio": 3}, c={"n": 1, "prio": 2}, d={"n": "1", "prio": 9})
    query = ("-gcp-firestore-retrieve-query-path", "n", "-gcp-firestore-retrieve-query-op", "==",
             "-gcp-firestore-retrieve-query-value", "1", "-gcp-firestore-retrieve-query-order-by", "prio")
    done = procx(firestore_emulator, coll, *query, "-gcp-firestore-retrieve-query-order", "asc",
                 "-gcp-firestore-retrieve-limit", "2", "-gcp-firestore-clear-op", "rm")
    assert done.returncode == 0, done.stderr
    # 1 is the number 1 (the original compared the string "1", which would match only d)
    assert json.loads(done.stdout) == [{"_id": "a", "n": 1, "prio": 1}, {"_id": "c", "n": 1, "prio": 2}]
    assert ids(db, coll) == ["b", "d"]
    done = procx(firestore_emulator, coll, *query, "-gcp-firestore-retrieve-document-json-key", "0._id")
    assert done.stdout == b"b"  # empty order: descending, as the original
    quoted = procx(firestore_emulator, coll, "-gcp-firestore-retrieve-query-path", "n",
                   "-gcp-firestore-retrieve-query-op", "==", "-gcp-firestore-retrieve-query-value", '"1"')
    assert json.loads(quoted.stdout) == [{"_id": "d", "n": "1", "prio": 9}]


def test_in_query_takes_a_json_list(firestore_emulator, db, coll):
    seed(db, coll, a={"s": "new"}, b={"s": "old"}, c={"s": "retry"})
    done = procx(firestore_emulator, coll, "-gcp-firestore-retrieve-query-path", "s",
                 "-gcp-firestore-retrieve-query-op", "in", "-gcp-firestore-retrieve-query-value", '["new","retry"]',
                 "-gcp-firestore-retrieve-document-json-key", "#._id")
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)) == ["a", "c"]


def test_zero_matches_is_no_work(firestore_emulator, db, coll, tmp_path):
    seed(db, coll, a={"n": 1})
    marker = tmp_path / "ran"
    done = procx(firestore_emulator, coll, "-gcp-firestore-retrieve-query-path", "n",
                 "-gcp-firestore-retrieve-query-op", "==", "-gcp-firestore-retrieve-query-value", "2",
                 "touch", str(marker))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"" and not marker.exists()
    empty = procx(firestore_emulator, "nothing-" + coll, "touch", str(marker))
    assert empty.returncode == 0 and not marker.exists()


def test_document_mode_remembers_its_document_for_clear_update(firestore_emulator, db, coll):
    seed(db, coll, a={"work": "x", "state": "new"}, b={"work": "y", "state": "new"})
    done = procx(firestore_emulator, coll, "-gcp-firestore-retrieve-document", "b",
                 "-gcp-firestore-clear-op", "update", "-gcp-firestore-clear-update", '{"state": "done", "n": 2}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"_id": "b", "state": "new", "work": "y"}]
    assert docs(db, coll) == {"a": {"work": "x", "state": "new"}, "b": {"work": "y", "state": "done", "n": 2}}
    missing = procx(firestore_emulator, coll, "-gcp-firestore-retrieve-document", "zzz")
    assert missing.returncode == 0 and missing.stdout == b""  # a missing document is no work


def test_first_document_mode_fail_mv_moves_and_deletes_the_source(firestore_emulator, db, coll):
    seed(db, coll, a={"work": "x"}, b={"work": "y"})
    failed = coll + "-failed"
    done = procx(firestore_emulator, coll, "-gcp-firestore-fail-op", "mv", "-gcp-firestore-fail-collection", failed,
                 "-gcp-firestore-fail-update", '{"error": true}', "sh", "-c", "exit 4")
    assert done.returncode == 4
    assert ids(db, coll) == ["b"]
    assert docs(db, failed) == {"a": {"work": "x", "error": True}}


def test_each_item_clears_only_its_own_documents(firestore_emulator, db, coll):
    seed(db, coll, a={"work": "1"}, b={"work": "2"})
    args = ["-driver", "gcp-firestore", "-gcp-project-id", PROJECT, "-gcp-firestore-retrieve-collection", coll,
            "-gcp-firestore-clear-op", "rm", "-gcp-firestore-retrieve-document-json-key", "0.work"]
    with api.work(args, environ=env(firestore_emulator)) as first:
        assert first.payload == b"1"
    with api.work(args, environ=env(firestore_emulator)) as second:
        assert second.payload == b"2"
    assert ids(db, coll) == []


def test_pushx_creates_a_document_from_the_json_object(firestore_emulator, db, coll):
    done = run("pushx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT, "-gcp-firestore-collection", coll,
               "-gcp-firestore-id", "job-1", input=b'{"n": 7, "x": 1.5, "tags": ["a"], "ok": true} trailing',
               env=env(firestore_emulator))
    assert done.returncode == 0, done.stderr
    assert docs(db, coll) == {"job-1": {"n": 7, "x": 1.5, "tags": ["a"], "ok": True}}
    again = run("pushx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT, "-gcp-firestore-collection", coll,
                "-gcp-firestore-id", "job-1", input=b'{"n": 8}', env=env(firestore_emulator))
    assert again.returncode == 69 and b"job-1" in again.stderr
    assert docs(db, coll)["job-1"]["n"] == 7
    auto = run("pushx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT, "-gcp-firestore-collection", coll,
               input=b'{"n": 9}', env=env(firestore_emulator))
    assert auto.returncode == 0 and len(ids(db, coll)) == 2


@pytest.mark.parametrize("payload", [b"[1, 2]", b"not json", b'"text"', b"\xff"])
def test_pushx_refuses_a_payload_that_is_not_an_object(firestore_emulator, db, coll, payload):
    done = run("pushx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT, "-gcp-firestore-collection", coll,
               input=payload, env=env(firestore_emulator))
    assert done.returncode == 2
    assert b"must be a JSON object" in done.stderr
    assert ids(db, coll) == []


@pytest.mark.parametrize(("args", "message"), [
    ([], b"-gcp-firestore-retrieve-collection"),
    (["-gcp-firestore-retrieve-collection", "c", "-gcp-firestore-clear-op", "mv"], b"-gcp-firestore-clear-collection"),
    (["-gcp-firestore-retrieve-collection", "c", "-gcp-firestore-fail-op", "update"], b"-gcp-firestore-fail-update"),
    (["-gcp-firestore-retrieve-collection", "c", "-gcp-firestore-clear-op", "move"], b"-gcp-firestore-clear-op"),
    (["-gcp-firestore-retrieve-collection", "c", "-gcp-firestore-clear-update", "[1]"], b"JSON object"),
    (["-gcp-firestore-retrieve-collection", "c", "-gcp-firestore-retrieve-query-path", "n"], b"-op"),
])
def test_bad_settings_are_usage_errors(args, message):
    done = run("procx", "-driver", "gcp-firestore", *args, env=clean_env(FIRESTORE_EMULATOR_HOST="127.0.0.1:1"))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_pushx_without_collection_is_a_usage_error():
    done = run("pushx", "-driver", "gcp-firestore", input=b"{}", env=clean_env(FIRESTORE_EMULATOR_HOST="127.0.0.1:1"))
    assert done.returncode == 2 and b"-gcp-firestore-collection" in done.stderr


@pytest.mark.slow  # the driver's bounded retry (3 s) runs out first
def test_unreachable_emulator_is_a_provider_error_naming_it():
    done = run("procx", "-driver", "gcp-firestore", "-gcp-project-id", PROJECT,
               "-gcp-firestore-retrieve-collection", "c", env=clean_env(FIRESTORE_EMULATOR_HOST="127.0.0.1:1"))
    assert done.returncode == 69
    assert b"gcp-firestore" in done.stderr and b"127.0.0.1:1" in done.stderr
