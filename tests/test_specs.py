"""Every flag of the Go originals is declared once, with its type, default and variable names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core import registry
from core.general import general
from core.options import PROCX, PUSHX, Option

DATA = Path(__file__).parent / "data"
# The 33 drivers of the Go originals (reference/procx.md §2); ours (sqlite, mqtt, ...) come on top.
ORIGINAL_NAMES = (
    "activemq aws-dynamo aws-s3 aws-sqs cassandra centauri cockroach couchbase elasticsearch etcd fs gcp-bq "
    "gcp-firestore gcp-gcs gcp-pubsub github http kafka local mongodb mssql mysql nats nfs nsq postgres pulsar "
    "rabbitmq redis-list redis-pubsub redis-stream scylla smb").split()
# A string flag of the original may be declared with a richer kind that still accepts the same text.
COMPATIBLE_KINDS = {"string": {"string", "int", "list", "json", "duration"}, "bool": {"bool"}, "int": {"int"}}


def original_flags(side: str) -> dict[str, tuple[str, str]]:
    with open(DATA / f"{side}-flags.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return {row[0].lstrip("-"): (row[1], row[2]) for row in rows[1:]}


def declared(side: str) -> dict[str, Option]:
    found: dict[str, Option] = {o.name: o for o in general(side)}
    for spec in registry.all_specs():
        for opt in spec.options_for(side):
            if opt.name in found and found[opt.name] is not opt:
                other = found[opt.name]
                assert (other.kind, other.default) == (opt.kind, opt.default), f"{opt.name} declared differently"
            found[opt.name] = opt
    return found


def test_all_original_drivers_registered():
    assert len(ORIGINAL_NAMES) == 33
    for name in ORIGINAL_NAMES:
        assert registry.get(name).name == name


@pytest.mark.parametrize("side", [PROCX, PUSHX])
def test_every_original_flag_declared_with_type_and_default(side):
    originals = original_flags(side)
    ours = declared(side)
    missing = sorted(set(originals) - set(ours))
    assert not missing, f"{side} flags not declared: {missing}"
    invented = sorted(n for n, o in ours.items() if n not in originals and not o.extension)
    assert not invented, f"{side} options not in the original must be marked extension=True: {invented}"
    for name, (kind, default) in originals.items():
        opt = ours[name]
        assert opt.kind in COMPATIBLE_KINDS[kind], f"{name}: {opt.kind} for original {kind}"
        if opt.kind == "bool":
            expected = default == "true"
        elif default == "":
            expected = Option("zero", opt.kind).default
        else:
            expected = opt.convert(default)
        assert opt.default == expected, f"{name}: default {opt.default!r}, original {default!r}"


@pytest.mark.parametrize("side", [PROCX, PUSHX])
def test_original_variable_names_accepted(side):
    for name, opt in declared(side).items():
        derived = f"{side.upper()}_{name.upper().replace('-', '_')}"
        assert derived in opt.variables(side)


IRREGULAR = {
    PROCX: {
        "couchbase-bucket": "PROCX_COUCHBASE_BUCKET_NAME",
        "gcp-pubsub-subscription": "PROCX_GCP_SUBSCRIPTION",
        "github-clear-location": "PROCX_GITHUB_CLEAR_OP_LOCATION",
        "github-fail-location": "PROCX_GITHUB_FAIL_OP_LOCATION",
        "redis-steam-consumer-name": "PROCX_REDIS_STREAM_CONSUMER_NAME",
        "redis-tls-skip-verify": "PROCX_REDIS_TLS_INSECURE",
        "nsq-tls-skip-verify": "PROCX_NSQ_TLS_INSECURE",
    },
    PUSHX: {
        "in": "PUSHX_INPUT_STR",
        "in-file": "PUSHX_INPUT_FILE",
        "out": "PUSHX_OUTPUT",
        "psql-params": "PUSHX_PSQL_QUERY_PARAMS",
        "mysql-params": "PUSHX_MYSQL_QUERY_PARAMS",
        "mssql-params": "PUSHX_MSSQL_QUERY_PARAMS",
        "cockroach-params": "PUSHX_COCKROACH_QUERY_PARAMS",
        "couchbase-bucket": "PUSHX_COUCHBASE_BUCKET_NAME",
        "gcp-pubsub-topic": "PUSHX_GCP_TOPIC",
        "http-method": "PUSHX_HTTP_REQUEST_METHOD",
        "http-url": "PUSHX_HTTP_REQUEST_URL",
        "http-content-type": "PUSHX_HTTP_REQUEST_CONTENT_TYPE",
        "http-headers": "PUSHX_HTTP_REQUEST_HEADERS",
        "http-successful-status-codes": "PUSHX_HTTP_REQUEST_SUCCESSFUL_STATUS_CODES",
        "nsq-tls-skip-verify": "PUSHX_NSQ_TLS_INSECURE",
        "redis-tls-skip-verify": "PUSHX_REDIS_TLS_INSECURE",
    },
}


@pytest.mark.parametrize("side", [PROCX, PUSHX])
def test_irregular_variable_names_read_first(side):
    ours = declared(side)
    for name, variable in IRREGULAR[side].items():
        assert ours[name].variable(side) == variable, name


def test_secrets_are_marked():
    for side in (PROCX, PUSHX):
        for name, opt in declared(side).items():
            if name.endswith(("-password", "-pass", "-token")) and "next-token" not in name:
                assert opt.secret, f"{name} must be secret"


def test_every_option_has_help():
    for side in (PROCX, PUSHX):
        for name, opt in declared(side).items():
            assert opt.help, f"{name} has no help text"


def test_every_extra_a_driver_names_exists() -> None:
    import re
    import tomllib

    with open(DATA.parent.parent / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    in_all = set(re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(","))
    for spec in registry.all_specs():
        if spec.extra:
            assert spec.extra in extras, f"{spec.name}: extra {spec.extra!r} missing from pyproject.toml"
            assert spec.extra in in_all, f"{spec.extra} missing from the extra 'all'"
