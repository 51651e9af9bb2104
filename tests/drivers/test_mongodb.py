"""mongodb against nx-27017 (MongoDB wire protocol on SQLite), started by tests/drivers/doc_servers.py.

The conformance suite runs with -mongo-payload-field (pushx stores the raw payload in one field, text or BSON binary,
so every payload round-trips byte for byte) and a clear command deleting the document by its ObjectId
(`{"$oid": "{{0._id}}"}`), with and without -mongo-lease-ttl. The original's JSON-document mode, its templates bound
as values, the lease, and settings/errors are tested below.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core import api
from core.api import _source, _take
from core.errors import ProviderError
from core.template import JsonTemplate
from drivers.mongodb import _no_operators
from tests.conformance import Conformance
from tests.drivers.doc_cases import DocBackend, LeaseConformance
from tests.drivers.doc_servers import MongoServer, mongo_server, mongo_tls  # noqa: F401 (the session fixtures)
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import clean_env, run

if TYPE_CHECKING:
    import pymongo

DB = "procx"


def delete_by_oid(collection: str) -> str:
    return json.dumps({"delete": collection, "deletes": [{"q": {"_id": {"$oid": "{{0._id}}"}}, "limit": 1}]})


class MongoBackend(DocBackend):
    driver = "mongodb"
    lease_flag = "-mongo-lease-ttl"
    server: MongoServer

    def common_args(self) -> list[str]:
        return ["-driver", "mongodb", "-mongo-host", "127.0.0.1", "-mongo-port", str(self.server.port),
                "-mongo-database", DB, "-mongo-collection", self.name, "-mongo-payload-field", "work"]

    def procx_args(self) -> list[str]:
        return ["-mongo-retrieve-query", "{}", "-mongo-clear-query", delete_by_oid(self.name), *self.lease_args()]

    @functools.cached_property
    def client(self) -> pymongo.MongoClient:
        return self.server.client()

    def pending(self) -> int:
        return self.client[DB][self.name].count_documents({})


class TestMongoConformance(Conformance):
    @pytest.fixture
    def backend(self, mongo_server: MongoServer) -> MongoBackend:  # noqa: F811
        return MongoBackend(mongo_server)


class TestMongoLeaseConformance(LeaseConformance):
    @pytest.fixture
    def backend(self, mongo_server: MongoServer) -> MongoBackend:  # noqa: F811
        return MongoBackend(mongo_server, lease="1s")


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def coll(mongo_server: MongoServer):  # noqa: F811
    """A fresh collection: (its name, the pymongo collection)."""
    name = "t" + uuid.uuid4().hex[:12]
    client = mongo_server.client()
    yield name, client[DB][name]
    client.close()


def args(server: MongoServer, collection: str, *extra: str) -> list[str]:
    return ["-driver", "mongodb", "-mongo-host", "127.0.0.1", "-mongo-port", str(server.port), "-mongo-database", DB,
            "-mongo-collection", collection, *extra]


def procx_args(server: MongoServer, collection: str, *extra: str, query: str = "{}") -> list[str]:
    return args(server, collection, "-mongo-retrieve-query", query, *extra)


# ---------------------------------------------------------------------------------------------- the original's mode
def test_payload_is_the_sorted_json_array_of_the_documents(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    import datetime

    name, c = coll
    oid = c.insert_one({"z": 1, "a": "x<y", "when": datetime.datetime(2022, 10, 21, 18, 44, 52, 500000),
                        "s": "p"}).inserted_id
    c.insert_one({"_id": "second", "s": "p", "n": 2.5})
    c.insert_one({"_id": "other", "s": "done"})
    payload = api.procx(procx_args(mongo_server, name, query='{"s": "p"}'))
    assert payload == (f'[{{"_id":"{oid}","a":"x\\u003cy","s":"p","when":"2022-10-21T18:44:52.5Z","z":1}},'
                       '{"_id":"second","n":2.5,"s":"p"}]').encode()


def test_limit_takes_that_many(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_many([{"_id": i} for i in range(3)])
    assert json.loads(api.procx(procx_args(mongo_server, name, "-mongo-limit", "2"))) == [{"_id": 0}, {"_id": 1}]


def test_no_match_is_no_work(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({"s": "done"})
    assert api.procx(procx_args(mongo_server, name, query='{"s": "pending"}')) is None


def test_retrieve_query_accepts_extended_json(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    oid = c.insert_many([{"n": 1}, {"n": 2}]).inserted_ids[1]
    payload = api.procx(procx_args(mongo_server, name, query=json.dumps({"_id": {"$oid": str(oid)}})))
    assert json.loads(payload) == [{"_id": str(oid), "n": 2}]


def test_clear_command_runs_with_typed_values(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_many([{"_id": "a", "n": 7, "s": "p"}, {"_id": "b", "n": 8, "s": "p"}])
    clear = '{"update": "C", "updates": [{"q": {"n": {{0.n}}}, "u": {"$set": {"s": "done by {{0._id}}"}}}]}'.replace(
        '"C"', json.dumps(name))
    assert api.procx(procx_args(mongo_server, name, "-mongo-limit", "1", "-mongo-clear-query", clear,
                                query='{"s": "p"}')) == b'[{"_id":"a","n":7,"s":"p"}]'
    assert {d["_id"]: d["s"] for d in c.find()} == {"a": "done by a", "b": "p"}


def test_fail_command_runs_after_failure_and_clear_does_not(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({"_id": "j", "s": "p"})
    fail = json.dumps({"update": name, "updates": [{"q": {"_id": "{{0._id}}"}, "u": {"$set": {"s": "failed"}}}]})
    done = run("procx", *procx_args(mongo_server, name, "-mongo-clear-query", delete_by_oid(name),
                                     "-mongo-fail-query", fail), "sh", "-c", "exit 3")
    assert done.returncode == 3
    assert list(c.find()) == [{"_id": "j", "s": "failed"}]


def test_without_a_fail_command_the_document_stays(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({"_id": "j"})
    with pytest.raises(RuntimeError), api.work(procx_args(mongo_server, name)):
        raise RuntimeError("the child failed")
    assert c.count_documents({}) == 1


# ---------------------------------------------------------------------------------------------- values stay data
@pytest.mark.parametrize("hostile", ['{"$ne": 1}', '"}, "u": {"$set": {"pwned": 1}}}]}', "{{1.name}}", "'; x"])
def test_template_values_stay_data(mongo_server: MongoServer, coll, hostile: str) -> None:  # noqa: F811
    """A field holding quotes, braces, operators or a template fills exactly one value: no other document is hit."""
    name, c = coll
    c.insert_many([{"_id": "evil", "name": hostile, "s": "p"}, {"_id": "bystander", "name": "x", "s": "p"}])
    for clear in ('{"update": "C", "updates": [{"q": {"name": {{0.name}}}, "u": {"$set": {"s": "done"}}}]}',
                  '{"update": "C", "updates": [{"q": {"name": "{{0.name}}"}, "u": {"$set": {"s": "done"}}}]}'):
        c.update_many({}, {"$set": {"s": "p"}})
        clear = clear.replace('"C"', json.dumps(name))
        api.procx(procx_args(mongo_server, name, "-mongo-limit", "1", "-mongo-clear-query", clear,
                             query='{"_id": "evil"}'))
        assert {d["_id"]: d["s"] for d in c.find()} == {"evil": "done", "bystander": "p"}
        assert "pwned" not in c.find_one({"_id": "evil"})


def test_a_selected_object_with_operator_keys_is_refused() -> None:
    template = JsonTemplate('{"find": "c", "filter": {"x": {{0.f}}}}', "mongo-clear-query")
    document = '[{"f": {"a": [{"$where": "sleep(1)"}]}, "g": {"a": 1}}]'
    with pytest.raises(ProviderError, match=r"\{\{0.f\}\} selects an object with the key '\$where'"):
        template.render(document, lambda v, k: _no_operators(v, k, "mongo-clear-query"))
    ok = JsonTemplate('{"x": {{0.g}}, "y": "{{0.f}}", "n": {{0.none}}}', "f")
    assert ok.render(document, lambda v, k: _no_operators(v, k, "f")) == \
        {"x": {"a": 1}, "y": '{"a": [{"$where": "sleep(1)"}]}', "n": None}


def test_procx_payload_key_is_the_documents_as_a_string(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({"_id": "j", "v": '{{0._id}}"'})
    log = "l" + name
    clear = json.dumps({"insert": log, "documents": [{"seen": "{{procx_payload}}"}]})
    api.procx(procx_args(mongo_server, name, "-mongo-clear-query", clear))
    assert c.database[log].find_one({}, {"_id": 0}) == {"seen": '[{"_id":"j","v":"{{0._id}}\\""}]'}


# ---------------------------------------------------------------------------------------------- the lease
def lease_args(server: MongoServer, name: str, ttl: str = "5s") -> list[str]:
    return procx_args(server, name, "-mongo-limit", "1", "-mongo-lease-ttl", ttl, "-mongo-clear-query",
                      delete_by_oid(name))


def test_a_leased_document_is_not_taken_twice(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_many([{"n": 1}, {"n": 2}])
    opts = lease_args(mongo_server, name)
    with api.work(opts) as first:
        assert json.loads(first.payload)[0]["n"] == 1
        assert "_procx_lease" not in first.payload.decode()
        with api.work(opts) as second:
            assert json.loads(second.payload)[0]["n"] == 2
            assert api.procx(opts) is None
    assert c.count_documents({}) == 0


def test_the_lease_is_released_on_failure(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    oid = c.insert_one({}).inserted_id
    assert run("procx", *lease_args(mongo_server, name, "60s"), "false").returncode == 1
    assert list(c.find()) == [{"_id": oid}]  # no lease field left behind: taken again at once
    assert json.loads(api.procx(lease_args(mongo_server, name, "60s"))) == [{"_id": str(oid)}]


@pytest.mark.slow
def test_the_lease_is_renewed_while_the_work_runs(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({})
    opts = lease_args(mongo_server, name, "1s")
    with api.work(opts) as work:
        assert work is not None
        time.sleep(2.5)  # more than twice the TTL: only the renewal holds the lease now
        assert api.procx(opts) is None
    assert c.count_documents({}) == 0


def test_a_lost_lease_is_not_cleared(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    oid = c.insert_one({}).inserted_id
    opts = lease_args(mongo_server, name)
    with pytest.raises(ProviderError, match=f"lost the lease on '{oid}'"), api.work(opts) as work:
        assert work is not None
        c.update_one({"_id": oid}, {"$set": {"_procx_lease.token": "another procx"}})
    assert c.count_documents({}) == 1


def test_a_lease_taken_over_stops_the_child(mongo_server: MongoServer, coll, tmp_path: Path) -> None:  # noqa: F811
    name, c = coll
    oid = c.insert_one({"job": 1}).inserted_id

    def take_over() -> None:  # what another procx does once the lease expired
        c.update_one({"_id": oid}, {"$set": {"_procx_lease": {"token": "another procx", "until": time.time() + 60}}})

    events = lose_lease_while_child_runs(lease_args(mongo_server, name, "0.6s"), take_over, tmp_path)
    assert "expired or was taken over" in next(e for e in events if e["event"] == "lease-lost")["reason"]
    assert c.find_one({"_id": oid})["_procx_lease"]["token"] == "another procx"  # neither cleared nor given back


def test_depth_counts_the_documents_matching_the_filter(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_many([{"s": "p"}, {"s": "p"}, {"s": "done"}])
    source = _source(procx_args(mongo_server, name, query='{"s": "p"}'), clean_env())
    try:
        assert source.depth() == 2
        work = _take(source, 0)
        assert work is not None and len(json.loads(work.payload)) == 2
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_inserts_the_first_json_object_with_exact_integers(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    done = run("pushx", *args(mongo_server, name), input=b'  {"n": 9007199254740993, "f": 1.5, "s": "\xc3\xa4"}\n{}')
    assert done.returncode == 0, done.stderr
    assert list(c.find({}, {"_id": 0})) == [{"n": 9007199254740993, "f": 1.5, "s": "ä"}]


@pytest.mark.parametrize(("payload", "message"), [
    (b"\xff\xfe{}", b"byte 0 is not UTF-8"),
    (b'{"s": "\xe9t\xe9"}', b"byte 7 is not UTF-8"),
    (b"[1, 2]", b"not a JSON list"),
    (b"", b"the payload must be a JSON object"),
    (b'{"n": 99999999999999999999}', b"an integer does not fit in 64 bits"),
])
def test_pushx_refuses_what_a_json_document_cannot_hold(mongo_server: MongoServer, coll, payload: bytes,  # noqa: F811
                                                         message: bytes) -> None:
    name, c = coll
    done = run("pushx", *args(mongo_server, name), input=payload)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert c.count_documents({}) == 0


def test_payload_field_keeps_binary_as_bson_binary(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    assert run("pushx", *args(mongo_server, name, "-mongo-payload-field", "raw"), input=b"\xff\x00").returncode == 0
    assert c.find_one({}, {"_id": 0}) == {"raw": b"\xff\x00"}


# ---------------------------------------------------------------------------------------------- settings and errors
@pytest.mark.parametrize(("extra", "message"), [
    (("-mongo-retrieve-query", "[1]"), b"-mongo-retrieve-query: must be a JSON object"),
    (("-mongo-retrieve-query", "{"), b"-mongo-retrieve-query (PROCX_MONGO_RETRIEVE_QUERY): invalid JSON"),
    (("-mongo-retrieve-query", '{"_id": {"$oid": "nope"}}'), b"-mongo-retrieve-query: invalid Extended JSON"),
    (("-mongo-retrieve-query", "{}", "-mongo-clear-query", '{"delete": {{x}'), b"-mongo-clear-query: invalid JSON"),
    (("-mongo-retrieve-query", "{}", "-mongo-fail-query", '{"{{k}}": 1}'), b"-mongo-fail-query: templates go in"),
    (("-mongo-retrieve-query", "{}", "-mongo-limit", "-1"), b"-mongo-limit: must be 0"),
    (("-mongo-retrieve-query", "{}", "-mongo-limit", "2", "-mongo-payload-field", "w"), b"-mongo-limit: with"),
    (("-mongo-retrieve-query", "{}", "-mongo-user", "u"), b"-mongo-user and -mongo-password go together"),
    (("-mongo-retrieve-query", "{}", "-mongo-tls-ca-file", "/x"), b"-mongo-tls-ca-file has no effect without"),
    (("-mongo-retrieve-query", "{}", "-mongo-auth-source", "admin"), b"-mongo-auth-source has no effect without"),
    (("-mongo-retrieve-query", "{}", "-mongo-lease-ttl", "5s", "-mongo-lease-field", "a.b"), b"-mongo-lease-field"),
    ((), b"-mongo-retrieve-query (PROCX_MONGO_RETRIEVE_QUERY) is required"),
])
def test_bad_settings_are_usage_errors(extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", *args(MongoServer(1, 0), "c", *extra))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_host_database_and_collection_are_required() -> None:
    for missing in ("-mongo-host", "-mongo-database", "-mongo-collection"):
        argv = args(MongoServer(1, 0), "c")
        i = argv.index(missing)
        del argv[i:i + 2]
        done = run("pushx", *argv, input=b"{}")
        assert done.returncode == 2
        assert f"{missing} is required".encode() in done.stderr


def test_a_command_the_server_refuses_is_a_provider_error(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    name, c = coll
    c.insert_one({"_id": "j"})
    clear = delete_by_oid(name)  # "j" is no ObjectId
    done = run("procx", *procx_args(mongo_server, name, "-mongo-clear-query", clear), "true")
    assert done.returncode == 69
    assert b"-mongo-clear-query: invalid Extended JSON after filling the templates" in done.stderr
    assert c.count_documents({}) == 1


@pytest.mark.slow
def test_unreachable_server_is_exit_69_within_the_timeout_without_the_password() -> None:
    done = run("procx", *args(MongoServer(1, 0), "c", "-mongo-retrieve-query", "{}", "-mongo-user", "me",
                              "-mongo-password", "Pa55:w@rd/%?"), timeout=15)
    assert done.returncode == 69
    assert done.stderr == b"procx: driver mongodb: cannot reach 127.0.0.1:1: connection refused\n"


def test_credentials_never_appear_in_errors(mongo_server: MongoServer, coll) -> None:  # noqa: F811
    """nx-27017 has no authentication: logging in fails, and the password (with URI characters) is not shown."""
    name, _ = coll
    password = "S3cr:et@h/%3F"
    done = run("pushx", *args(mongo_server, name, "-mongo-user", "me", "-mongo-password", password),
               input=b"{}", env=clean_env(LOG_LEVEL="debug"))
    assert password.encode() not in done.stderr + done.stdout
    assert done.returncode == 69, done.stderr
    assert f"driver mongodb: 127.0.0.1:{mongo_server.port}: cannot connect".encode() in done.stderr


def test_unreadable_tls_file_is_a_usage_error(tmp_path) -> None:
    """TLS is not verified against a server here (nx-27017 has none); the settings are."""
    done = run("procx", *args(MongoServer(1, 0), "c", "-mongo-retrieve-query", "{}", "-mongo-enable-tls",
                              "-mongo-tls-ca-file", str(tmp_path / "missing.pem")))
    assert done.returncode == 2
    assert b"-mongo-enable-tls: cannot load the TLS files" in done.stderr


def test_tls_with_the_servers_ca_untrusted_and_insecure(mongo_server: MongoServer, mongo_tls: int,  # noqa: F811
                                                        tls_cert, coll) -> None:
    """nx-27017 has no TLS: a TLS-terminating proxy (tests/drivers/doc_servers.py) stands in front of it."""
    name, c = coll
    tls = [*args(MongoServer(mongo_tls, 0), name), "-mongo-enable-tls"]
    done = run("pushx", *tls, "-mongo-tls-ca-file", str(tls_cert.cert), "-mongo-tls-cert-file", str(tls_cert.cert),
               "-mongo-tls-key-file", str(tls_cert.key), input=b'{"over": "tls"}')
    assert done.returncode == 0, done.stderr
    assert list(c.find({}, {"_id": 0})) == [{"over": "tls"}]
    assert api.procx([*tls, "-mongo-tls-insecure", "-mongo-retrieve-query", '{"over": "tls"}']) is not None
