"""couchbase up to the client call: no Couchbase Server (or mock) can run here, so the tests check the options,
the cluster options and authenticator built from them, the documents and queries the driver builds (query
parameters bound, never spliced; op docs templated per document as JSON values) and the SDK calls it makes,
against a small RECORDING FAKE of the SDK's Cluster (the SDK's real option, authenticator and exception
classes). The shared conformance suite needs a server and is not run. Nothing here shows that the driver works
with a real cluster.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest

pytest.importorskip("couchbase", reason="pip install -e '.[couchbase]'")

import couchbase.cluster  # noqa: E402
from couchbase.exceptions import (  # noqa: E402
    AuthenticationException,
    DocumentNotFoundException,
    UnAmbiguousTimeoutException,
)
from couchbase.options import TLSVerifyMode  # noqa: E402

from core import api, settings  # noqa: E402
from core.errors import ProcxError  # noqa: E402
from drivers.couchbase import plan  # noqa: E402
from tests.support import clean_env, run  # noqa: E402

PASSWORD = "cb-S3CRET-pw"
AUTH = ["-couchbase-address", "couchbase://db1,db2", "-couchbase-user", "app", "-couchbase-password", PASSWORD]
BASE = ["-driver", "couchbase", *AUTH, "-couchbase-bucket", "jobs"]


class FakeStore:
    """Documents by (bucket, scope, collection, id), the rows the next query returns, and every call."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str, str], dict] = {}
        self.rows: list[dict] = []
        self.calls: list[tuple] = []
        self.fail_on: dict[str, Exception] = {}

    def check(self, what: str) -> None:
        if what in self.fail_on:
            raise self.fail_on[what]


class FakeResult:
    def __init__(self, doc: dict) -> None:
        self.content_as = {dict: copy.deepcopy(doc)}


class FakeCollection:
    def __init__(self, store: FakeStore, keyspace: tuple[str, str, str]) -> None:
        self.store, self.keyspace = store, keyspace

    def get(self, ident: str) -> FakeResult:
        self.store.calls.append(("get", self.keyspace, ident))
        if (*self.keyspace, ident) not in self.store.docs:
            raise DocumentNotFoundException()
        return FakeResult(self.store.docs[(*self.keyspace, ident)])

    def upsert(self, ident: str, doc: dict) -> None:
        self.store.check("upsert")
        self.store.calls.append(("upsert", self.keyspace, ident, copy.deepcopy(doc)))
        self.store.docs[(*self.keyspace, ident)] = copy.deepcopy(doc)

    def remove(self, ident: str) -> None:
        self.store.calls.append(("remove", self.keyspace, ident))
        if self.store.docs.pop((*self.keyspace, ident), None) is None:
            raise DocumentNotFoundException()


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStore]:
    fake = FakeStore()

    class FakeQueryResult:
        def __init__(self, rows: list[dict]) -> None:
            self._rows = rows

        def rows(self) -> Iterator[dict]:
            return iter(copy.deepcopy(self._rows))

    class FakeCluster:
        def __init__(self, connstr: str, options: object) -> None:
            fake.check("connect")
            fake.calls.append(("Cluster", connstr, options))

        def wait_until_ready(self, timeout: object) -> None:
            fake.calls.append(("wait_until_ready", timeout))

        def bucket(self, name: str):
            class Bucket:
                def scope(self, scope: str):
                    class Scope:
                        def collection(self, collection: str) -> FakeCollection:
                            return FakeCollection(fake, (name, scope, collection))
                    return Scope()
            return Bucket()

        def query(self, statement: str, options: dict) -> FakeQueryResult:
            fake.check("query")
            fake.calls.append(("query", statement, dict(options)))
            return FakeQueryResult(fake.rows)

        def close(self) -> None:
            fake.calls.append(("close",))

    monkeypatch.setattr(couchbase.cluster, "Cluster", FakeCluster)
    yield fake


def call(store: FakeStore, name: str) -> tuple:
    return next(c for c in store.calls if c[0] == name)


def config(side: str, *extra: str):
    return settings.load(side, [*BASE, *extra], clean_env())[1]


# -- connection ----------------------------------------------------------------------------------------------
def test_fake_cluster_options_and_password_authenticator(store: FakeStore) -> None:
    api.pushx(b'{"a":1}', [*BASE, "-couchbase-id", "k"], environ=clean_env())
    _, connstr, options = call(store, "Cluster")
    assert connstr == "couchbase://db1,db2"
    assert options["authenticator"]["username"] == "app"
    assert options["authenticator"]["password"] == PASSWORD
    assert "tls_verify" not in options


def test_fake_tls_with_ca_and_insecure(store: FakeStore, tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    api.pushx(b'{"a":1}', [*BASE, "-couchbase-id", "k", "-couchbase-enable-tls", "-couchbase-tls-ca-file", str(ca),
                           "-couchbase-tls-insecure"], environ=clean_env())
    _, connstr, options = call(store, "Cluster")
    assert connstr == "couchbases://db1,db2"
    assert options["authenticator"]["trust_store_path"] == str(ca)
    assert options["tls_verify"] in (TLSVerifyMode.NONE, "none")


def test_fake_client_certificate_is_used(store: FakeStore, tmp_path) -> None:
    """The original loaded the client certificate and ignored it."""
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    args = ["-driver", "couchbase", "-couchbase-address", "couchbases://db", "-couchbase-bucket", "b",
            "-couchbase-id", "k", "-couchbase-enable-tls", "-couchbase-tls-cert-file", str(cert),
            "-couchbase-tls-key-file", str(key)]
    api.pushx(b'{"a":1}', args, environ=clean_env())
    auth = call(store, "Cluster")[2]["authenticator"]
    assert auth == {"cert_path": str(cert), "key_path": str(key)}


def test_address_variable_is_read_as_well(store: FakeStore) -> None:
    """The original read no variable for the address."""
    env = clean_env(PUSHX_COUCHBASE_ADDRESS="couchbase://fromenv", PUSHX_COUCHBASE_BUCKET_NAME="b")
    api.pushx(b'{"a":1}', ["-driver", "couchbase", "-couchbase-user", "u", "-couchbase-password", "p",
                           "-couchbase-id", "k"], environ=env)
    assert call(store, "Cluster")[1] == "couchbase://fromenv"
    assert call(store, "upsert")[1][0] == "b"


# -- pushx ---------------------------------------------------------------------------------------------------------
def test_fake_pushx_upserts_with_an_id_from_the_payload_text(store: FakeStore) -> None:
    payload = b'{"user": {"id": 12345678901234567890}, "name": "x\\"y", "n": 1.50}'
    ident = api.pushx(payload, [*BASE, "-couchbase-scope", "s", "-couchbase-collection", "c", "-couchbase-id",
                                "user::{{user.id}}"], environ=clean_env())
    assert ident == "user::12345678901234567890"  # not re-encoded through float64 as in the original
    assert call(store, "upsert") == ("upsert", ("jobs", "s", "c"), ident,
                                     {"user": {"id": 12345678901234567890}, "name": 'x"y', "n": 1.5})


@pytest.mark.parametrize(("payload", "detail"), [(b"[1]", "not a JSON list"), (b"{bad", "position 1"),
                                                  (b"\xff", "not UTF-8")])
def test_fake_pushx_payload_must_be_an_object(store: FakeStore, payload: bytes, detail: str) -> None:
    with pytest.raises(ProcxError) as err:
        api.pushx(payload, [*BASE, "-couchbase-id", "k"], environ=clean_env())
    assert err.value.exit_code == 2 and detail in str(err.value)
    assert not any(c[0] == "upsert" for c in store.calls)


def test_fake_pushx_empty_id_is_refused(store: FakeStore) -> None:
    with pytest.raises(ProcxError) as err:
        api.pushx(b'{"a": 1}', [*BASE, "-couchbase-id", "{{missing}}"], environ=clean_env())
    assert "-couchbase-id" in str(err.value)


# -- procx: retrieval --------------------------------------------------------------------------------------------
def test_fake_get_by_id_payload_and_missing_is_no_work(store: FakeStore) -> None:
    store.docs[("jobs", "_default", "_default", "j1")] = {"b": 2, "a": "<x>"}
    with api.work([*BASE, "-couchbase-id", "j1"], environ=clean_env()) as work:
        assert work.payload == b'[{"a":"\\u003cx\\u003e","b":2}]'  # Go-style JSON, as the original
        assert work.id == "j1"
    assert call(store, "wait_until_ready")[1].total_seconds() == 5
    assert api.procx([*BASE, "-couchbase-id", "gone"], environ=clean_env()) is None


def test_fake_query_params_are_bound_and_no_rows_is_no_work(store: FakeStore) -> None:
    query = "SELECT META().id AS id, j.* FROM jobs j WHERE j.state = $1 AND j.owner = $2 LIMIT 1"
    hostile = "x' OR '1'='1"
    assert api.procx([*BASE, "-couchbase-retrieve-query", query, "-couchbase-retrieve-params", f"new,{hostile}"],
                     environ=clean_env()) is None  # the original ran the child with null
    _, statement, options = call(store, "query")
    assert statement == query  # the text is never changed
    assert options["positional_parameters"] == ["new", hostile]


def test_fake_query_rows_do_not_accumulate(store: FakeStore) -> None:
    args = [*BASE, "-couchbase-retrieve-query", "SELECT META().id AS id, j.* FROM jobs j LIMIT 1"]
    seen = []
    for n in (1, 2):
        store.rows = [{"id": f"j{n}", "work": n}]
        with api.work(args, environ=clean_env()) as work:
            seen.append(work.payload)
    assert seen == [b'[{"id":"j1","work":1}]', b'[{"id":"j2","work":2}]']


# -- procx: clear and fail ops -------------------------------------------------------------------------------------
def test_fake_clear_merge_templates_each_document(store: FakeStore) -> None:
    store.rows = [{"id": "a", "owner": "ann", "n": 1}, {"id": "b", "owner": "bob", "n": 2}]
    doc = '{"state": "done", "by": "{{owner}}", "count": {{n}}}'
    args = [*BASE, "-couchbase-retrieve-query", "SELECT ...", "-couchbase-clear-op", "merge",
            "-couchbase-clear-doc", doc]
    with api.work(args, environ=clean_env()):
        pass
    upserts = [c for c in store.calls if c[0] == "upsert"]
    assert upserts == [
        ("upsert", ("jobs", "_default", "_default"), "a", {"id": "a", "owner": "ann", "n": 1, "state": "done",
                                                           "by": "ann", "count": 1}),
        ("upsert", ("jobs", "_default", "_default"), "b", {"id": "b", "owner": "bob", "n": 2, "state": "done",
                                                           "by": "bob", "count": 2}),
    ]


def test_fake_fail_mv_to_another_collection_keeps_the_source_scope(store: FakeStore) -> None:
    store.docs[("jobs", "work", "queue", "j1")] = {"task": "t"}
    args = [*BASE, "-couchbase-scope", "work", "-couchbase-collection", "queue", "-couchbase-id", "j1",
            "-couchbase-fail-op", "mv", "-couchbase-fail-collection", "failed", "-couchbase-fail-doc",
            '{"failed": true}']
    with pytest.raises(RuntimeError), api.work(args, environ=clean_env()):
        raise RuntimeError("child failed")
    assert store.docs == {("jobs", "work", "failed", "j1"): {"task": "t", "failed": True}}


def test_fake_clear_rm_and_set(store: FakeStore) -> None:
    store.docs[("jobs", "_default", "_default", "j1")] = {"x": 1}
    with api.work([*BASE, "-couchbase-id", "j1", "-couchbase-clear-op", "rm"], environ=clean_env()):
        pass
    assert store.docs == {}
    store.docs[("jobs", "_default", "_default", "j2")] = {"x": 2}
    args = [*BASE, "-couchbase-id", "j2", "-couchbase-clear-op", "set", "-couchbase-clear-bucket", "archive",
            "-couchbase-clear-id", "done::{{x}}", "-couchbase-clear-doc", '{"was": {{x}}}']
    with api.work(args, environ=clean_env()):
        pass
    assert store.docs[("archive", "_default", "_default", "done::2")] == {"was": 2}


def test_plan_is_pure_and_refuses_moving_onto_itself() -> None:
    cfg = config("procx", "-couchbase-id", "j", "-couchbase-clear-op", "mv")
    with pytest.raises(ValueError, match="target is the source"):
        plan(cfg, "clear", [("j", {"a": 1})])
    cfg = config("procx", "-couchbase-retrieve-query", "q", "-couchbase-clear-op", "rm")
    with pytest.raises(ValueError, match="-couchbase-clear-id"):
        plan(cfg, "clear", [("", {"no": "id"})])
    cfg = config("procx", "-couchbase-id", "j", "-couchbase-fail-op", "merge", "-couchbase-fail-doc",
                 '{"note": "{{quote}}"}')
    [(action, _, ident, body)] = plan(cfg, "fail", [("j", {"quote": 'a"}, "x": {"y'})])
    assert (action, ident, body) == ("upsert", "j", {"quote": 'a"}, "x": {"y', "note": 'a"}, "x": {"y'})
    assert plan(cfg, "clear", [("j", {})]) == []  # no clear op: nothing


# -- errors and secrets ------------------------------------------------------------------------------------------
def test_fake_errors_are_exit_69_naming_the_hosts_never_the_password(store: FakeStore) -> None:
    store.fail_on["connect"] = UnAmbiguousTimeoutException(message="unable to connect")
    with pytest.raises(ProcxError) as err:
        api.pushx(b'{"a":1}', [*BASE, "-couchbase-id", "k"], environ=clean_env())
    assert err.value.exit_code == 69
    assert "db1,db2" in str(err.value) and PASSWORD not in str(err.value)
    store.fail_on["connect"] = AuthenticationException(message="auth failed")
    with pytest.raises(ProcxError) as err:
        api.pushx(b'{"a":1}', [*BASE, "-couchbase-id", "k"], environ=clean_env())
    assert "authentication refused for user 'app'" in str(err.value) and PASSWORD not in str(err.value)


def test_fake_failed_clear_is_an_error(store: FakeStore) -> None:
    store.docs[("jobs", "_default", "_default", "j1")] = {"x": 1}
    store.fail_on["upsert"] = UnAmbiguousTimeoutException(message="kv timeout")
    with pytest.raises(ProcxError) as err, api.work([*BASE, "-couchbase-id", "j1", "-couchbase-clear-op", "set"],
                                                    environ=clean_env()):
        pass
    assert "upsert document 'j1'" in str(err.value)


def test_password_is_masked() -> None:
    assert config("pushx", "-couchbase-id", "k").masked()["couchbase-password"] == "********"


@pytest.mark.parametrize(("tool", "extra", "flag"), [
    ("procx", ["-couchbase-bucket", "b", "-couchbase-id", "k"], "-couchbase-address"),
    ("procx", ["-couchbase-address", "http://h", "-couchbase-user", "u", "-couchbase-password", "p",
               "-couchbase-id", "k", "-couchbase-bucket", "b"], "-couchbase-address"),
    ("procx", ["-couchbase-address", "h", "-couchbase-user", "u", "-couchbase-id", "k", "-couchbase-bucket", "b"],
     "-couchbase-password"),
    ("procx", [*AUTH, "-couchbase-bucket", "b"], "-couchbase-id or -couchbase-retrieve-query"),
    ("procx", [*AUTH, "-couchbase-id", "k"], "-couchbase-bucket"),
    ("procx", [*AUTH, "-couchbase-retrieve-query", "q", "-couchbase-clear-op", "rm"], "-couchbase-clear-bucket"),
    ("procx", [*AUTH, "-couchbase-id", "k", "-couchbase-bucket", "b", "-couchbase-fail-op", "copy"],
     "-couchbase-fail-op"),
    ("procx", [*AUTH, "-couchbase-id", "k", "-couchbase-bucket", "b", "-couchbase-clear-op", "set",
               "-couchbase-clear-doc", "[1]"], "-couchbase-clear-doc"),
    ("procx", [*AUTH, "-couchbase-id", "k", "-couchbase-bucket", "b", "-couchbase-tls-ca-file", "/x"],
     "-couchbase-tls-ca-file"),
    ("pushx", [*AUTH, "-couchbase-id", "k"], "-couchbase-bucket"),
    ("pushx", [*AUTH, "-couchbase-bucket", "b"], "-couchbase-id"),
])
def test_usage_errors_exit_2_naming_the_flag(tool: str, extra: list[str], flag: str) -> None:
    done = run(tool, "-driver", "couchbase", *extra, *(["-in", "{}"] if tool == "pushx" else ["true"]))
    assert done.returncode == 2, done.stderr.decode()
    assert flag in done.stderr.decode()
    assert PASSWORD not in done.stderr.decode()


def test_bucket_by_the_originals_variable(store: FakeStore) -> None:
    env = clean_env(PROCX_COUCHBASE_BUCKET_NAME="legacy")
    store.docs[("legacy", "_default", "_default", "k")] = {"v": 1}
    args = ["-driver", "couchbase", *AUTH, "-couchbase-id", "k"]
    assert json.loads(api.procx(args, environ=env) or b"") == [{"v": 1}]
