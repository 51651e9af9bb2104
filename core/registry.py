"""Driver names -> declarations (cheap) and -> implementations (imported on first use).

Built-in drivers are listed here by module path so that naming a driver imports only its own module.
Third-party drivers register in the entry-point group `procx_tui.drivers` with a value of the form
`package.module:SPEC` (a DriverSpec); they are looked up only when a name is not built in.
"""

from __future__ import annotations

import importlib
import importlib.util

from core.errors import UsageError
from core.options import PROCX, DriverSpec, Option

ENTRY_POINT_GROUP = "procx_tui.drivers"

BUILTIN: dict[str, str] = {
    "activemq": "drivers.activemq",
    "aws-dynamo": "drivers.aws.dynamo",
    "aws-s3": "drivers.aws.s3",
    "aws-sqs": "drivers.aws.sqs",
    "cassandra": "drivers.cql.cassandra",
    "centauri": "drivers.centauri",
    "cockroach": "drivers.sql.cockroach",
    "couchbase": "drivers.couchbase",
    "elasticsearch": "drivers.elasticsearch",
    "etcd": "drivers.etcd",
    "fs": "drivers.fs",
    "gcp-bq": "drivers.gcp.bq",
    "gcp-firestore": "drivers.gcp.firestore",
    "gcp-gcs": "drivers.gcp.gcs",
    "gcp-pubsub": "drivers.gcp.pubsub",
    "github": "drivers.github",
    "http": "drivers.http",
    "kafka": "drivers.kafka",
    "local": "drivers.local",
    "mongodb": "drivers.mongodb",
    "mqtt": "drivers.mqtt",
    "mssql": "drivers.sql.mssql",
    "mysql": "drivers.sql.mysql",
    "nats": "drivers.nats",
    "nfs": "drivers.nfs",
    "nsq": "drivers.nsq",
    "postgres": "drivers.sql.postgres",
    "pulsar": "drivers.pulsar",
    "rabbitmq": "drivers.rabbitmq",
    "redis-list": "drivers.redis.list",
    "redis-pubsub": "drivers.redis.pubsub",
    "redis-stream": "drivers.redis.stream",
    "scylla": "drivers.cql.scylla",
    "smb": "drivers.smb",
    "sqlite": "drivers.sqlite",
}

_plugins: dict[str, object] | None = None


def _entry_points() -> dict[str, object]:
    global _plugins
    if _plugins is None:
        from importlib.metadata import entry_points

        _plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}
    return _plugins


def names() -> list[str]:
    """Every driver name: built-in and registered through entry points, sorted."""
    return sorted({*BUILTIN, *_entry_points()})


def suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, names(), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def get(name: str) -> DriverSpec:
    """The declaration of driver `name`; UsageError with a suggestion for an unknown name."""
    if name in BUILTIN:
        spec = importlib.import_module(BUILTIN[name]).SPEC
    elif name in _entry_points():
        spec = _entry_points()[name].load()  # type: ignore[attr-defined]
        if not isinstance(spec, DriverSpec):
            raise UsageError(f"driver {name}: entry point {ENTRY_POINT_GROUP} does not name a DriverSpec")
    else:
        raise UsageError(f"unknown driver '{name}'{suggest(name)} (drivers: procx -h)")
    return spec


def all_specs() -> list[DriverSpec]:
    return [get(n) for n in names()]


def flag_index(side: str) -> dict[str, Option]:
    """Every flag name any driver accepts on `side` -> its option (used for flags of another driver)."""
    index: dict[str, Option] = {}
    for spec in all_specs():
        for opt in spec.options_for(side):
            for flag in opt.flag_names():
                index.setdefault(flag, opt)
    return index


def load(spec: DriverSpec, side: str) -> type:
    """The Source (procx) or Sink (pushx) class of a driver, importing its module and client library check."""
    path = spec.implementation(side)
    if path is None:
        what = "source (procx)" if side == PROCX else "sink (pushx)"
        raise UsageError(f"driver {spec.name}: the {what} side is not implemented yet in this release")
    for module in spec.requires:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            extra = spec.extra or spec.family
            raise UsageError(
                f"driver {spec.name} needs the Python package '{module}': pip install 'procx-tui[{extra}]'")
    mod_name, _, cls_name = path.partition(":")
    return getattr(importlib.import_module(mod_name), cls_name)
