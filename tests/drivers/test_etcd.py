"""etcd: the conformance suite over a prefix (with and without claims), the original's ops with its fixes,
authentication, TLS and errors, against a real etcd started by tests/drivers/conftest.py."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from core import api
from core.errors import ProviderError
from tests.conformance import Backend, Conformance
from tests.drivers.conftest import Etcd
from tests.lease_loss import lose_lease_while_child_runs
from tests.support import run, wait_for


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def prefix_end(prefix: str) -> str:
    raw = prefix.encode()
    return b64(raw[:-1] + bytes([raw[-1] + 1]))


def keys(server: Etcd, prefix: str) -> dict[str, bytes]:
    kvs = server.call("kv/range", {"key": b64(prefix), "range_end": prefix_end(prefix)}).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")) for kv in kvs}


def put(server: Etcd, key: str, value: str | bytes) -> None:
    server.call("kv/put", {"key": b64(key), "value": b64(value)})


class EtcdBackend(Backend):
    driver = "etcd"
    redelivery_wait = 1.0

    def __init__(self, server: Etcd, prefix: str, claim_ttl: str = "") -> None:
        self.server, self.prefix, self.claim_ttl = server, prefix, claim_ttl
        if claim_ttl:
            self.redelivery_wait = 4.0

    def common_args(self) -> list[str]:
        return ["-driver", "etcd", "-etcd-hosts", f"127.0.0.1:{self.server.port}"]

    def push_args(self, n: int) -> list[str]:
        return ["-etcd-key", f"{self.prefix}job-{n:04d}"]

    def procx_args(self) -> list[str]:
        claim = ["-etcd-claim-ttl", self.claim_ttl, "-etcd-claim-prefix", f"claims/{self.prefix}"] if self.claim_ttl \
            else []
        return ["-etcd-retrieve-key", self.prefix, "-etcd-with-prefix", "-etcd-clear-op", "rm", *claim]

    def pending(self) -> int:
        return len(keys(self.server, self.prefix))


class TestEtcdConformance(Conformance):
    @pytest.fixture
    def backend(self, etcd: Etcd, unique: str) -> EtcdBackend:
        return EtcdBackend(etcd, f"conf-{unique}/")


class TestEtcdClaimConformance(Conformance):
    test_round_trip_byte_for_byte = None  # the payload path is the same as without claims (tested above)

    @pytest.fixture
    def backend(self, etcd: Etcd, unique: str) -> EtcdBackend:
        return EtcdBackend(etcd, f"claim-{unique}/", claim_ttl="2s")


def args(server: Etcd, *extra: str) -> list[str]:
    return ["-driver", "etcd", "-etcd-hosts", f"127.0.0.1:{server.port}", *extra]


# ---------------------------------------------------------------------------------------------- ops
def test_put_in_place_fills_the_template_from_each_value(etcd: Etcd, unique: str) -> None:
    key = f"put-{unique}"
    put(etcd, key, '{"hello":"world"}')
    assert api.procx(args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "put",
                          "-etcd-clear-val", '{"hello":"{{hello}}","st":"done"}')) == b'{"hello":"world"}'
    assert keys(etcd, key) == {key: b'{"hello":"world","st":"done"}'}


def test_templates_are_filled_per_item_and_never_replaced(etcd: Etcd, unique: str) -> None:
    p = f"tpl-{unique}/"
    put(etcd, f"{p}a", '{"id":1}')
    put(etcd, f"{p}b", '{"id":2}')
    opts = args(etcd, "-etcd-retrieve-key", p, "-etcd-with-prefix", "-etcd-clear-op", "mv",
                "-etcd-clear-key", f"done-{unique}/{{{{key}}}}", "-etcd-clear-val", '{"id":{{id}},"st":"ok"}')
    for work in api.consume(opts):
        work.clear()
    assert keys(etcd, p) == {}
    assert keys(etcd, f"done-{unique}/") == {f"done-{unique}/{p}a": b'{"id":1,"st":"ok"}',
                                             f"done-{unique}/{p}b": b'{"id":2,"st":"ok"}'}


def test_with_prefix_rm_removes_the_key_read_not_the_prefix(etcd: Etcd, unique: str) -> None:
    p = f"rm-{unique}/"
    put(etcd, p, "the prefix itself is a key")
    put(etcd, f"{p}x", "job")
    assert api.procx(args(etcd, "-etcd-retrieve-key", f"{p}x", "-etcd-with-prefix", "-etcd-clear-op", "rm")) == b"job"
    assert keys(etcd, p) == {p: b"the prefix itself is a key"}


def test_mv_moves_the_value_and_deletes_the_job(etcd: Etcd, unique: str) -> None:
    key, target = f"mv-{unique}", f"moved-{unique}"
    put(etcd, key, b"\x00raw\xff")
    assert run("procx", *args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "mv", "-etcd-clear-key", target,
                              "-pass-work-as-stdin"), "true").returncode == 0
    assert keys(etcd, key) == {}
    assert keys(etcd, target) == {target: b"\x00raw\xff"}


def test_fail_op_moves_failed_work_aside(etcd: Etcd, unique: str) -> None:
    p = f"fail-{unique}/"
    put(etcd, f"{p}j", "boom")
    done = run("procx", *args(etcd, "-etcd-retrieve-key", p, "-etcd-with-prefix", "-etcd-clear-op", "rm",
                              "-etcd-fail-op", "mv", "-etcd-fail-key", f"failed-{unique}/{{{{key}}}}"),
               "sh", "-c", "exit 4")
    assert done.returncode == 4
    assert keys(etcd, p) == {}
    assert keys(etcd, f"failed-{unique}/") == {f"failed-{unique}/{p}j": b"boom"}


def test_fail_without_op_leaves_the_key(etcd: Etcd, unique: str) -> None:
    key = f"keep-{unique}"
    put(etcd, key, "v")
    assert run("procx", *args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm"), "false").returncode == 1
    assert keys(etcd, key) == {key: b"v"}


def test_templated_values_are_inserted_once(etcd: Etcd, unique: str) -> None:
    """A value that itself holds a template stays data: it is not expanded again."""
    key = f"inj-{unique}"
    put(etcd, key, '{"name":"{{secret}}\\"}","secret":"leaked"}')
    api.procx(args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "put", "-etcd-clear-val", "n={{name}}"))
    assert keys(etcd, key) == {key: b'n={{secret}}"}'}


def test_missing_key_is_no_work(etcd: Etcd, unique: str) -> None:
    done = run("procx", *args(etcd, "-etcd-retrieve-key", f"absent-{unique}"), "false")
    assert (done.returncode, done.stdout) == (0, b"")


def test_pushx_overwrites_the_key(etcd: Etcd, unique: str) -> None:
    key = f"push-{unique}"
    for data in (b"one", b"two"):
        assert run("pushx", *args(etcd, "-etcd-key", key, "-etcd-limit", "5"), input=data).returncode == 0
    assert keys(etcd, key) == {key: b"two"}


def test_second_endpoint_is_used_when_the_first_is_down(etcd: Etcd, unique: str) -> None:
    key = f"multi-{unique}"
    done = run("pushx", "-driver", "etcd", "-etcd-hosts", f"127.0.0.1:1,http://127.0.0.1:{etcd.port}",
               "-etcd-key", key, "-in", "x")
    assert done.returncode == 0, done.stderr
    assert keys(etcd, key) == {key: b"x"}


# ---------------------------------------------------------------------------------------------- claims
def test_a_claimed_key_is_not_taken_twice(etcd: Etcd, unique: str) -> None:
    p = f"excl-{unique}/"
    put(etcd, f"{p}1", "first")
    put(etcd, f"{p}2", "second")
    opts = args(etcd, "-etcd-retrieve-key", p, "-etcd-with-prefix", "-etcd-clear-op", "rm", "-etcd-claim-ttl", "5s")
    with api.work(opts) as first:
        assert first.payload == b"first"
        assert keys(etcd, f"procx-claims/{p}") != {}
        with api.work(opts) as second:
            assert second.payload == b"second"
            assert api.procx(opts) is None
    assert keys(etcd, p) == {}
    assert keys(etcd, f"procx-claims/{p}") == {}


@pytest.mark.slow
def test_a_claim_is_kept_alive_while_the_work_runs(etcd: Etcd, unique: str) -> None:
    key = f"alive-{unique}"
    put(etcd, key, "long job")
    opts = args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm", "-etcd-claim-ttl", "2s")
    with api.work(opts) as work:
        assert work.payload == b"long job"
        time.sleep(4)  # twice the TTL: only the keep-alive holds the claim now
        assert api.procx(opts) is None
    assert keys(etcd, key) == {}


def test_a_lost_claim_is_not_cleared(etcd: Etcd, unique: str) -> None:
    key = f"lost-{unique}"
    put(etcd, key, "job")
    opts = args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm", "-etcd-claim-ttl", "5s")
    with pytest.raises(ProviderError, match="lost the claim"), api.work(opts) as work:
        assert work is not None
        etcd.call("kv/deleterange", {"key": b64(f"procx-claims/{key}")})  # as if its lease had expired
    assert keys(etcd, key) == {key: b"job"}


def test_an_expired_claim_stops_the_child(etcd: Etcd, unique: str, tmp_path: Path) -> None:
    key = f"expired-{unique}"
    put(etcd, key, "job")
    claim = f"procx-claims/{key}"

    def expire() -> None:  # the claim's lease runs out (procx could not reach etcd in time)
        kvs = etcd.call("kv/range", {"key": b64(claim)})["kvs"]
        etcd.call("lease/revoke", {"ID": kvs[0]["lease"]})

    opts = args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm", "-etcd-claim-ttl", "3s")
    events = lose_lease_while_child_runs(opts, expire, tmp_path)
    assert "the claim on" in next(e for e in events if e["event"] == "lease-lost")["reason"]
    assert keys(etcd, key) == {key: b"job"}  # not removed: another procx may take it now
    assert keys(etcd, claim) == {}


def test_claims_released_when_work_is_failed(etcd: Etcd, unique: str) -> None:
    key = f"rel-{unique}"
    put(etcd, key, "job")
    opts = args(etcd, "-etcd-retrieve-key", key, "-etcd-claim-ttl", "30s")
    assert run("procx", *opts, "false").returncode == 1
    assert api.procx(opts) == b"job"  # at once, not after 30 s


# ---------------------------------------------------------------------------------------------- settings and errors
@pytest.mark.parametrize(("extra", "message"), [
    (("-etcd-retrieve-key", "k", "-etcd-clear-op", "mv"), b"-etcd-clear-key: mv needs a target key"),
    (("-etcd-retrieve-key", "k", "-etcd-fail-op", "mv", "-etcd-fail-key", "k"), b"-etcd-fail-key: mv needs"),
    (("-etcd-retrieve-key", "p/", "-etcd-with-prefix", "-etcd-clear-op", "mv", "-etcd-clear-key", "p/done/{{key}}"),
     b"under the retrieve prefix"),
    (("-etcd-retrieve-key", "k", "-etcd-clear-op", "copy"), b"-etcd-clear-op (PROCX_ETCD_CLEAR_OP)"),
    (("-etcd-retrieve-key", "k", "-etcd-username", "u"), b"-etcd-username and -etcd-password go together"),
    (("-etcd-retrieve-key", "k", "-etcd-tls-ca", "/x"), b"-etcd-tls-ca has no effect without -etcd-tls-enable"),
    (("-etcd-retrieve-key", "p", "-etcd-with-prefix", "-etcd-claim-ttl", "5s", "-etcd-claim-prefix", "p/c/"),
     b"overlaps the retrieve key"),
    ((), b"-etcd-retrieve-key is required"),
])
def test_bad_settings_are_usage_errors(etcd: Etcd, extra: tuple[str, ...], message: bytes) -> None:
    done = run("procx", *args(etcd, *extra))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_pushx_needs_a_key(etcd: Etcd) -> None:
    done = run("pushx", *args(etcd), "-in", "x")
    assert done.returncode == 2
    assert b"-etcd-key is required" in done.stderr


def test_unreachable_server_names_host_and_port() -> None:
    done = run("procx", "-driver", "etcd", "-etcd-hosts", "127.0.0.1:1", "-etcd-retrieve-key", "k")
    assert done.returncode == 69
    assert done.stderr == b"procx: driver etcd: cannot reach 127.0.0.1:1: connection refused\n"


def test_authentication(etcd_auth: Etcd, unique: str) -> None:
    key = f"auth-{unique}"
    creds = ("-etcd-username", etcd_auth.user, "-etcd-password", etcd_auth.password)
    assert run("pushx", *args(etcd_auth, "-etcd-key", key, *creds), "-in", "secret job").returncode == 0
    assert run("procx", *args(etcd_auth, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm", *creds)).stdout \
        == b"secret job"
    assert api.procx(args(etcd_auth, "-etcd-retrieve-key", key, *creds)) is None


def test_wrong_password_is_a_provider_error_without_the_password(etcd_auth: Etcd) -> None:
    done = run("procx", *args(etcd_auth, "-etcd-retrieve-key", "k", "-etcd-username", etcd_auth.user,
                              "-etcd-password", "Wr0ng-Pa55"))
    assert done.returncode == 69
    assert b"authentication failed for user 'procx'" in done.stderr
    assert b"Wr0ng-Pa55" not in done.stderr


def test_missing_credentials_are_reported(etcd_auth: Etcd) -> None:
    done = run("procx", *args(etcd_auth, "-etcd-retrieve-key", "k"))
    assert done.returncode == 69
    assert b"driver etcd:" in done.stderr and b"user name is empty" in done.stderr


def tls_args(server: Etcd, *extra: str) -> list[str]:
    return ["-driver", "etcd", "-etcd-hosts", server.tls_endpoint, "-etcd-tls-enable", *extra]


def test_tls_with_the_servers_ca(etcd: Etcd, tls_cert, unique: str) -> None:
    key = f"tls-{unique}"
    opts = tls_args(etcd, "-etcd-tls-ca", str(tls_cert.cert))
    assert run("pushx", *opts, "-etcd-key", key, "-in", "over tls").returncode == 0
    assert api.procx([*opts, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm"]) == b"over tls"


def test_tls_with_a_client_certificate_and_host_without_scheme(etcd: Etcd, tls_cert, unique: str) -> None:
    key = f"tlsc-{unique}"
    opts = ["-driver", "etcd", "-etcd-hosts", f"127.0.0.1:{etcd.tls_port}", "-etcd-tls-enable", "-etcd-tls-ca",
            str(tls_cert.cert), "-etcd-tls-cert", str(tls_cert.cert), "-etcd-tls-key", str(tls_cert.key)]
    assert run("pushx", *opts, "-etcd-key", key, "-in", "x").returncode == 0


def test_tls_untrusted_certificate_fails_and_insecure_skips_the_check(etcd: Etcd, tls_cert, unique: str) -> None:
    done = run("procx", *tls_args(etcd, "-etcd-tls-ca", str(tls_cert.other_ca), "-etcd-retrieve-key", "k"))
    assert done.returncode == 69
    assert f"cannot reach 127.0.0.1:{etcd.tls_port}: certificate verify failed".encode() in done.stderr
    key = f"insecure-{unique}"
    done = run("pushx", *tls_args(etcd, "-etcd-tls-insecure", "-etcd-key", key), "-in", "x")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""  # no urllib3 warning noise
    assert keys(etcd, key) == {key: b"x"}


def test_unreadable_tls_file_is_a_usage_error(etcd: Etcd, tmp_path) -> None:
    done = run("procx", *tls_args(etcd, "-etcd-tls-ca", str(tmp_path / "missing.pem"), "-etcd-retrieve-key", "k"))
    assert done.returncode == 2
    assert b"-etcd-tls-enable: cannot load the TLS files" in done.stderr


def test_binary_and_json_values_round_trip_through_the_api(etcd: Etcd, unique: str) -> None:
    key = f"api-{unique}"
    api.pushx(json.dumps({"x": "ä"}), args(etcd, "-etcd-key", key))
    with api.work(args(etcd, "-etcd-retrieve-key", key, "-etcd-clear-op", "rm")) as work:
        assert json.loads(work.payload) == {"x": "ä"}
        assert work.id == key
    wait_for(lambda: keys(etcd, key) == {})


def test_an_exact_key_may_look_like_the_claim_prefix(etcd: Etcd) -> None:
    assert api.procx(args(etcd, "-etcd-retrieve-key", "procx", "-etcd-claim-ttl", "2s")) is None


def test_an_expired_token_is_renewed(etcd_auth: Etcd, unique: str) -> None:
    p = f"token-{unique}/"
    creds = ("-etcd-username", etcd_auth.user, "-etcd-password", etcd_auth.password)
    for n in range(2):
        api.pushx(b"t", args(etcd_auth, "-etcd-key", f"{p}{n}", *creds))
    taken = 0
    for work in api.consume(args(etcd_auth, "-etcd-retrieve-key", p, "-etcd-with-prefix", "-etcd-clear-op", "rm",
                                 "-etcd-claim-ttl", "3s", *creds)):
        work.source.client.gw.session.headers["Authorization"] = "expired.1"  # as if the token had expired
        work.clear()
        taken += 1
    assert taken == 2
