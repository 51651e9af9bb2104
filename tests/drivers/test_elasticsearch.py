"""elasticsearch against noida-db's Elasticsearch API (ES 8.15.3), started by tests/drivers/doc_servers.py.

The conformance suite runs with -elasticsearch-payload-field (the payload text in one field), pushx
-elasticsearch-refresh true, and clear op delete. A JSON document cannot hold bytes that are not UTF-8, so the
suite's binary payloads are skipped with that reason, and their refusal is tested below. noida, like Elasticsearch,
shows writes to search only after a refresh (about a second), so tests refresh the index where they check by search.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from core import api
from core.api import _source, _take
from core.errors import ProviderError
from tests.conformance import PAYLOADS, Backend, Conformance
from tests.drivers.doc_cases import DocBackend, LeaseConformance
from tests.drivers.doc_servers import EsServer, es_server, es_tls  # noqa: F401 (the session fixtures)
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import clean_env, run

NOT_UTF8 = "elasticsearch: the payload is a JSON text field; bytes that are not UTF-8 cannot be one (pushx refuses " \
           "them: test_pushx_refuses_what_json_cannot_hold)"


class EsBackend(DocBackend):
    driver = "elasticsearch"
    lease_flag = "-elasticsearch-lease-ttl"
    server: EsServer

    def common_args(self) -> list[str]:
        return ["-driver", "elasticsearch", "-elasticsearch-address", self.server.address,
                "-elasticsearch-payload-field", "work"]

    def push_args(self, n: int) -> list[str]:
        return ["-elasticsearch-index", self.name, "-elasticsearch-refresh", "true"]

    def procx_args(self) -> list[str]:
        return ["-elasticsearch-retrieve-index", self.name, "-elasticsearch-retrieve-query", '{"sort": ["_doc"]}',
                "-elasticsearch-clear-op", "delete", *self.lease_args()]

    def pending(self) -> int:
        return len(self.server.sources(self.name))


class TestEsConformance(Conformance):
    @pytest.fixture
    def backend(self, es_server: EsServer) -> EsBackend:  # noqa: F811
        return EsBackend(es_server)

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_round_trip_byte_for_byte(self, backend: Backend, name: str) -> None:
        try:
            PAYLOADS[name].decode()
        except UnicodeDecodeError:
            pytest.skip(NOT_UTF8)
        super().test_round_trip_byte_for_byte(backend, name)

    def test_child_receives_payload_on_stdin(self, backend: Backend, tmp_path: Path) -> None:
        pytest.skip(f"the suite's payload here is binary: {NOT_UTF8}")


class TestEsLeaseConformance(LeaseConformance):
    @pytest.fixture
    def backend(self, es_server: EsServer) -> EsBackend:  # noqa: F811
        return EsBackend(es_server, lease="1s")


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def index() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def args(server: EsServer, *extra: str) -> list[str]:
    return ["-driver", "elasticsearch", "-elasticsearch-address", server.address, *extra]


def procx_args(server: EsServer, index: str, *extra: str, query: str = '{"size": 1, "sort": ["_doc"]}') -> list[str]:
    return args(server, "-elasticsearch-retrieve-index", index, "-elasticsearch-retrieve-query", query, *extra)


def put(server: EsServer, index: str, ident: str, source: dict) -> None:
    server.call("PUT", f"/{index}/_doc/{ident}", source)


def seed(server: EsServer, index: str, docs: dict[str, dict]) -> None:
    for ident, source in docs.items():
        put(server, index, ident, source)
    server.refresh(index)


# ---------------------------------------------------------------------------------------------- retrieve
def test_payload_is_the_hits_with_their_ids_and_each_job_only_its_own(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"z": 1, "w": "x<y"}, "b": {"w": "second"}})
    opts = procx_args(es_server, index, "-elasticsearch-clear-op", "delete")
    assert api.procx(opts) == b'[{"_id":"a","w":"x\\u003cy","z":1}]'
    assert api.procx(opts) == b'[{"_id":"b","w":"second"}]'  # not a and b: nothing carries over
    assert api.procx(opts) is None


def test_size_takes_several_hits_and_delete_clears_them_all(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {str(i): {"n": i} for i in range(3)})
    payload = api.procx(procx_args(es_server, index, "-elasticsearch-clear-op", "delete",
                                   query='{"size": 2, "sort": ["_doc"]}'))
    assert json.loads(payload) == [{"_id": "0", "n": 0}, {"_id": "1", "n": 1}]
    assert es_server.sources(index) == {"2": {"n": 2}}


def test_missing_index_is_no_work(es_server: EsServer, index: str) -> None:  # noqa: F811
    done = run("procx", *procx_args(es_server, index), "false")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_a_hit_cleared_before_the_refresh_is_not_run_twice(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}, "b": {"n": 2}})
    opts = procx_args(es_server, index, "-elasticsearch-clear-op", "delete")
    assert json.loads(api.procx(opts)) == [{"_id": "a", "n": 1}]
    # the search still shows "a" until the index refreshes: it is checked and skipped, and "b" is found
    assert json.loads(api.procx(opts)) == [{"_id": "b", "n": 2}]


# ---------------------------------------------------------------------------------------------- ops
def test_merge_put_fills_values_from_the_hits(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 7, "s": "pending", "meta": {"x": 1, "y": 2}}})
    doc = '{"s": "done by {{0._id}}", "copy": {{0.n}}, "meta": {"x": 5}}'
    api.procx(procx_args(es_server, index, "-elasticsearch-clear-op", "merge-put", "-elasticsearch-clear-doc", doc))
    assert es_server.sources(index) == {"a": {"n": 7, "s": "done by a", "copy": 7, "meta": {"x": 5, "y": 2}}}


def test_put_replaces_the_hit_under_its_own_id(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 7, "s": "pending"}})
    api.procx(procx_args(es_server, index, "-elasticsearch-clear-op", "put", "-elasticsearch-clear-doc",
                         '{"s": "done", "was": {{0.n}}}'))
    assert es_server.sources(index) == {"a": {"s": "done", "was": 7}}  # the original created a new random-id doc


def test_move_on_failure_goes_to_the_fail_index(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    done = run("procx", *procx_args(es_server, index, "-elasticsearch-clear-op", "move", "-elasticsearch-clear-index",
                                     f"{index}-done", "-elasticsearch-fail-op", "move", "-elasticsearch-fail-index",
                                     f"{index}-failed"), "sh", "-c", "exit 5")
    assert done.returncode == 5, done.stderr
    assert es_server.sources(index) == {}
    assert es_server.sources(f"{index}-failed") == {"a": {"n": 1}}  # the original used the clear index


def test_fail_delete_works(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    done = run("procx", *procx_args(es_server, index, "-elasticsearch-fail-op", "delete"), "false")
    assert done.returncode == 1, done.stderr  # the original crashed here
    assert es_server.sources(index) == {}


def test_merge_put_into_another_index_creates_the_document(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    api.procx(procx_args(es_server, index, "-elasticsearch-clear-op", "merge-put", "-elasticsearch-clear-index",
                         f"{index}-log", "-elasticsearch-clear-doc", '{"s": "seen"}'))
    assert es_server.sources(f"{index}-log") == {"a": {"n": 1, "s": "seen"}}
    assert es_server.sources(index) == {"a": {"n": 1}}


@pytest.mark.parametrize("hostile", ['{"$ne": 1}', '"}, "pwned": {"x": 1}, "a": "', "{{0.secret}}", "\\u0022"])
def test_template_values_stay_data(es_server: EsServer, index: str, hostile: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"name": hostile, "secret": "leaked"}})
    api.procx(procx_args(es_server, index, "-elasticsearch-clear-op", "merge-put", "-elasticsearch-clear-doc",
                         '{"quoted": "n={{0.name}}", "bare": {{0.name}}}'))
    assert es_server.sources(index)["a"] == {"name": hostile, "secret": "leaked", "quoted": f"n={hostile}",
                                             "bare": hostile}


def test_a_document_changed_since_it_was_read_is_not_overwritten(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"s": "pending"}})
    opts = procx_args(es_server, index, "-elasticsearch-clear-op", "merge-put", "-elasticsearch-clear-doc",
                      '{"s": "done"}')
    with pytest.raises(ProviderError, match="document 'a' in .* changed since it was read"), api.work(opts) as work:
        assert work is not None
        put(es_server, index, "a", {"s": "taken by another procx"})
    assert es_server.sources(index) == {"a": {"s": "taken by another procx"}}


# ---------------------------------------------------------------------------------------------- the lease
def lease_args(server: EsServer, index: str, ttl: str = "5s", *extra: str) -> list[str]:
    return procx_args(server, index, "-elasticsearch-lease-ttl", ttl, *extra)


def test_a_leased_hit_is_not_taken_twice(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}, "b": {"n": 2}})
    opts = lease_args(es_server, index, "5s", "-elasticsearch-clear-op", "delete")
    with api.work(opts) as first:
        assert first.payload == b'[{"_id":"a","n":1}]'  # the lease field is not in the payload
        es_server.refresh(index)
        with api.work(opts) as second:
            assert second.payload == b'[{"_id":"b","n":2}]'
            assert api.procx(opts) is None
    assert es_server.sources(index) == {}


def test_the_lease_is_released_when_the_hit_stays(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    assert run("procx", *lease_args(es_server, index, "60s"), "false").returncode == 1
    assert es_server.sources(index) == {"a": {"n": 1, "procx_lease": None}}
    assert api.procx(lease_args(es_server, index, "60s")) == b'[{"_id":"a","n":1}]'  # at once, not after 60 s


def test_merge_put_releases_the_lease_in_the_same_write(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"s": "p"}})
    api.procx(lease_args(es_server, index, "60s", "-elasticsearch-clear-op", "merge-put", "-elasticsearch-clear-doc",
                         '{"s": "done"}'))
    assert es_server.sources(index) == {"a": {"s": "done", "procx_lease": None}}


@pytest.mark.slow
def test_the_lease_is_renewed_while_the_work_runs(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    opts = lease_args(es_server, index, "1s", "-elasticsearch-clear-op", "delete")
    with api.work(opts) as work:
        assert work is not None
        time.sleep(2.5)  # more than twice the TTL: only the renewal holds the lease now
        es_server.refresh(index)
        assert api.procx(opts) is None
    assert es_server.sources(index) == {}


def test_a_lost_lease_is_not_cleared(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    opts = lease_args(es_server, index, "5s", "-elasticsearch-clear-op", "delete")
    with pytest.raises(ProviderError, match="document 'a' in .* changed since it was read"), api.work(opts) as work:
        assert work is not None
        put(es_server, index, "a", {"n": 1, "taken": "by another procx after the lease expired"})
    assert es_server.sources(index) == {"a": {"n": 1, "taken": "by another procx after the lease expired"}}


def test_a_lease_taken_over_stops_the_child(es_server: EsServer, index: str, tmp_path: Path) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"n": 1}})
    taken = {"n": 1, "taken": "by another procx after the lease expired"}
    events = lose_lease_while_child_runs(lease_args(es_server, index, "0.6s", "-elasticsearch-clear-op", "delete"),
                                         lambda: put(es_server, index, "a", taken), tmp_path)
    assert "document 'a'" in next(e for e in events if e["event"] == "lease-lost")["reason"]
    assert es_server.sources(index) == {"a": taken}  # neither deleted nor given back


def test_depth_is_hits_total_of_the_query(es_server: EsServer, index: str) -> None:  # noqa: F811
    seed(es_server, index, {"a": {"s": "p"}, "b": {"s": "p"}, "c": {"s": "done"}})
    source = _source(procx_args(es_server, index, query='{"size": 1, "query": {"term": {"s": "p"}}}'), clean_env())
    try:
        assert source.depth() == 2
        assert _take(source, 0) is not None
    finally:
        source.close()
    missing = _source(procx_args(es_server, index + "-none"), clean_env())
    try:
        assert missing.depth() == 0
    finally:
        missing.close()


# ---------------------------------------------------------------------------------------------- pushx
def test_pushx_indexes_the_payload_unchanged_with_or_without_an_id(es_server: EsServer, index: str) -> None:  # noqa: F811
    body = b'{"n": 9007199254740993, "s": "\xc3\xa4", "f": 1.50}'
    generated = api.pushx(body, args(es_server, "-elasticsearch-index", index))
    assert api.pushx(body, args(es_server, "-elasticsearch-index", index, "-elasticsearch-doc-id", "mine")) == "mine"
    got = es_server.call("GET", f"/{index}/_doc/{generated}")
    assert got["found"] and got["_source"] == {"n": 9007199254740993, "s": "ä", "f": 1.5}
    assert set(es_server.sources(index)) == {generated, "mine"}


def test_pushx_bulk_indexes_each_line_in_one_request_unchanged(es_server: EsServer, index: str) -> None:  # noqa: F811
    lines = [b'{"n": %d, "big": 9007199254740993}' % n for n in range(25)]
    done = run("pushx", *args(es_server, "-elasticsearch-index", index, "-bulk", "-bulk-batch", "10",
                              "-log-format", "json", "-out=-"), input=b"\n".join(lines) + b"\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"\n".join(lines) + b"\n"  # the tee passes every line on after success
    sources = es_server.sources(index)
    assert sorted(doc["n"] for doc in sources.values()) == list(range(25))
    assert {doc["big"] for doc in sources.values()} == {9007199254740993}
    # a separator other than a newline: a pretty-printed object still becomes one NDJSON line of the request
    pretty = b'{\n  "n": 100,\r\n  "s": "a\\nb"\n}'
    assert run("pushx", *args(es_server, "-elasticsearch-index", index, "-bulk", "-bulk-separator", ";"),
               input=pretty + b";" + b'{"n": 101}').returncode == 0
    assert {doc["n"]: doc.get("s") for doc in es_server.sources(index).values() if doc["n"] >= 100} == {
        100: "a\nb", 101: None}


def test_pushx_bulk_reports_the_documents_the_server_refused(es_server: EsServer, index: str) -> None:  # noqa: F811
    assert run("pushx", *args(es_server, "-elasticsearch-index", index), input=b'{"n": 1}').returncode == 0
    done = run("pushx", *args(es_server, "-elasticsearch-index", index, "-bulk", "-out=-"),
               input=b'{"n": 2}\n{"n": {"not": "a number"}}\n{"n": 3}\n')
    assert done.returncode == 69, done.stderr
    assert b"1 of 3 documents were not indexed: #1: " in done.stderr
    assert done.stdout == b""  # nothing passed on: the batch did not wholly succeed


def test_pushx_bulk_refuses_a_bad_line_before_sending_anything(es_server: EsServer, index: str) -> None:  # noqa: F811
    done = run("pushx", *args(es_server, "-elasticsearch-index", index, "-bulk"), input=b'{"n": 1}\n[2]\n')
    assert done.returncode == 2
    assert b"not a JSON list" in done.stderr
    assert es_server.sources(index) == {}


@pytest.mark.parametrize(("payload", "extra", "message"), [
    (b"\xff\xfe{}", (), b"byte 0 is not UTF-8"),
    (PAYLOADS["non-utf8"], ("-elasticsearch-payload-field", "work"), b"byte 128 is not UTF-8"),
    (b"[1]", (), b"not a JSON list"),
    (b'{"a": 1} {"b": 2}', (), b"Extra data"),
    (b"", (), b"the payload must be one JSON object"),
])
def test_pushx_refuses_what_json_cannot_hold(es_server: EsServer, index: str, payload: bytes,  # noqa: F811
                                             extra: tuple[str, ...], message: bytes) -> None:
    done = run("pushx", *args(es_server, "-elasticsearch-index", index, *extra), input=payload)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert es_server.sources(index) == {}


# ---------------------------------------------------------------------------------------------- settings and errors
@pytest.mark.parametrize(("extra", "message"), [
    (("-elasticsearch-retrieve-query", "[1]"), b"-elasticsearch-retrieve-query: must be a JSON object"),
    (("-elasticsearch-retrieve-query", "{"), b"-elasticsearch-retrieve-query (PROCX_ELASTICSEARCH_RETRIEVE_QUERY)"),
    (("-elasticsearch-clear-op", "put"), b"-elasticsearch-clear-doc is required with -elasticsearch-clear-op put"),
    (("-elasticsearch-fail-op", "merge-put", "-elasticsearch-fail-doc", '{"{{x}}": 1}'), b"templates go in values"),
    (("-elasticsearch-clear-op", "put", "-elasticsearch-clear-doc", "[{{x}}]"), b"-elasticsearch-clear-doc: must be"),
    (("-elasticsearch-clear-op", "move"), b"-elasticsearch-clear-index: move needs an index other than"),
    (("-elasticsearch-fail-op", "move", "-elasticsearch-fail-index", "jobs"), b"-elasticsearch-fail-index: move"),
    (("-elasticsearch-clear-op", "copy"), b"-elasticsearch-clear-op (PROCX_ELASTICSEARCH_CLEAR_OP): invalid value"),
    (("-elasticsearch-tls-ca-file", "/x"), b"-elasticsearch-tls-ca-file has no effect without"),
    (("-elasticsearch-enable-tls",), b"-elasticsearch-address: TLS needs an https:// address"),
    (("-elasticsearch-password", "pw"), b"-elasticsearch-password needs -elasticsearch-username"),
    (("-elasticsearch-lease-ttl", "-1s"), b"-elasticsearch-lease-ttl: must not be negative"),
    (("-elasticsearch-lease-ttl", "5s", "-elasticsearch-lease-field", "a.b"), b"-elasticsearch-lease-field: a top"),
])
def test_bad_settings_are_usage_errors(extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", "-driver", "elasticsearch", "-elasticsearch-address", "http://127.0.0.1:1",
               "-elasticsearch-retrieve-index", "jobs", *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (("-elasticsearch-index", "jobs"), b"-elasticsearch-address is required"),
    (("-elasticsearch-index", "jobs", "-elasticsearch-address", "localhost:9200"),
     b"-elasticsearch-address: a node URL is required"),
    (("-elasticsearch-index", "jobs", "-elasticsearch-address", "http://h:99999"), b"-elasticsearch-address: bad port"),
    (("-elasticsearch-address", "http://h:9200"), b"-elasticsearch-index (PUSHX_ELASTICSEARCH_INDEX) is required"),
])
def test_pushx_settings(argv: tuple[str, ...], message: bytes) -> None:
    done = run("pushx", "-driver", "elasticsearch", *argv, input=b"{}")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_unreachable_server_is_exit_69_without_credentials() -> None:
    done = run("procx", "-driver", "elasticsearch", "-elasticsearch-address", "http://me:Url-Pa55@127.0.0.1:1",
               "-elasticsearch-retrieve-index", "jobs", "-elasticsearch-username", "u", "-elasticsearch-password",
               "Fl4g-Pa55", env=clean_env(LOG_LEVEL="debug"))
    assert done.returncode == 69
    assert b"procx: driver elasticsearch: cannot reach 127.0.0.1:1: connection refused\n" in done.stderr
    assert b"Pa55" not in done.stderr


def test_credentials_are_sent_and_never_shown(es_server: EsServer, index: str) -> None:  # noqa: F811
    """noida accepts any basic authentication; the password (from the flag or the URL) appears in no output."""
    url = es_server.address.replace("http://", "http://me:Url-Pa55@")
    for address, creds in ((url, ()), (es_server.address, ("-elasticsearch-username", "u",
                                                           "-elasticsearch-password", "Fl4g-Pa55"))):
        done = run("pushx", "-driver", "elasticsearch", "-elasticsearch-address", address, "-elasticsearch-index",
                   index, *creds, input=b'{"a": 1}', env=clean_env(LOG_LEVEL="debug"))
        assert done.returncode == 0, done.stderr
        assert b"Pa55" not in done.stderr + done.stdout


def test_a_server_error_names_the_step_and_status(es_server: EsServer, index: str) -> None:  # noqa: F811
    done = run("procx", *procx_args(es_server, index, query='{"query": {"no_such_query": {}}}'))
    assert done.returncode == 69
    assert done.stderr.startswith(f"procx: driver elasticsearch: 127.0.0.1:{es_server.port}: cannot search "
                                  f"{index}: HTTP 4".encode())


def test_unreadable_tls_file_is_a_usage_error(tmp_path: Path) -> None:
    """TLS is not verified against a server here (noida serves plain HTTP); the settings are."""
    done = run("procx", "-driver", "elasticsearch", "-elasticsearch-address", "https://127.0.0.1:1",
               "-elasticsearch-retrieve-index", "jobs", "-elasticsearch-enable-tls", "-elasticsearch-tls-ca-file",
               str(tmp_path / "missing.pem"))
    assert done.returncode == 2
    assert b"-elasticsearch-enable-tls: cannot load the TLS files" in done.stderr


def test_tls_with_the_servers_ca_untrusted_and_insecure(es_tls: str, tls_cert, index: str) -> None:  # noqa: F811
    """noida serves plain HTTP: a TLS-terminating proxy (tests/drivers/doc_servers.py) stands in front of it."""
    tls = ("-driver", "elasticsearch", "-elasticsearch-address", es_tls, "-elasticsearch-enable-tls")
    done = run("pushx", *tls, "-elasticsearch-tls-ca-file", str(tls_cert.cert), "-elasticsearch-index", index,
               "-elasticsearch-refresh", "true", input=b'{"over": "tls"}')
    assert done.returncode == 0, done.stderr
    done = run("procx", *tls, "-elasticsearch-tls-ca-file", str(tls_cert.other_ca), "-elasticsearch-retrieve-index",
               index)
    assert done.returncode == 69
    assert f"cannot reach {es_tls.removeprefix('https://')}: certificate verify failed".encode() in done.stderr
    payload = api.procx(["-driver", "elasticsearch", "-elasticsearch-address", es_tls, "-elasticsearch-enable-tls",
                         "-elasticsearch-tls-skip-verify", "-elasticsearch-retrieve-index", index,
                         "-elasticsearch-clear-op", "delete"])
    assert [{k: v for k, v in d.items() if k != "_id"} for d in json.loads(payload)] == [{"over": "tls"}]


@pytest.mark.slow
def test_a_server_that_never_answers_times_out() -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        done = run("procx", "-driver", "elasticsearch", "-elasticsearch-address", f"http://127.0.0.1:{port}",
                   "-elasticsearch-retrieve-index", "jobs", timeout=15)
    assert done.returncode == 69
    assert done.stderr == f"procx: driver elasticsearch: cannot reach 127.0.0.1:{port}: timed out\n".encode()
