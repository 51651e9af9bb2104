"""etcd: procx reads a key (or the first under a prefix), then rm/put/mv; pushx puts one key."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.common import tls_options


def _after(phase: str, when: str) -> list[Option]:
    return [
        Option(f"etcd-{phase}-op", sides=PROCX,
               help=f"what to do with the key {when}: rm, put or mv (empty: leave it)"),
        Option(f"etcd-{phase}-key", sides=PROCX,
               help=f"key to act on {when} (put/rm) or move to (mv) (empty: the retrieve key)"),
        Option(f"etcd-{phase}-val", sides=PROCX,
               help=f"value written by put {when}; {{{{path}}}} takes values from the retrieved JSON"),
    ]


SPEC = DriverSpec(
    "etcd",
    "etcd: the value of a key is one unit of work",
    [
        Option("etcd-hosts", "list", help="comma list of endpoints, e.g. http://127.0.0.1:2379"),
        Option("etcd-username", help="user name (used only together with a password)"),
        Option("etcd-password", secret=True, help="password (used only together with a user name)"),
        *tls_options("etcd", enable="tls-enable", ca="tls-ca", cert="tls-cert", key="tls-key"),
        Option("etcd-retrieve-key", sides=PROCX, help="key holding the work"),
        Option("etcd-with-prefix", "bool", sides=PROCX, group="retrieve",
               help="treat the retrieve key as a prefix and take the first key under it"),
        *_after("clear", "after success"),
        *_after("fail", "after failure"),
        Option("etcd-key", sides=PUSHX, help="key to write the payload to"),
        Option("etcd-limit", "int", sides=PUSHX, group="push", advanced=True,
               help="no effect (accepted for compatibility with the original)"),
    ],
    extra="etcd",
    requires=("etcd3gw",),
)
