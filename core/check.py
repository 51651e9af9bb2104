"""`procx-tui check`: can each side of a profile reach its provider, and how much work waits there?

It connects, asks the queue depth where the provider can tell, and disconnects: it never takes work.
"""

from __future__ import annotations

import os

from core import registry, settings
from core.errors import ProcxError
from core.profiles import SCALE_QUERY, Profile
from core.work import call, connect


def clean_environment() -> dict[str, str]:
    """The environment without PROCX_*/PUSHX_* settings, so that a profile means the same everywhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PROCX_", "PUSHX_"))}


def check(profile: Profile, scale_query: str = "") -> dict[str, dict[str, object]]:
    """Per side: reachable, the queue depth (None: the provider has none) or the error. For drivers that count
    with a query (SQL, CQL: a count query; etcd: the key holding the count), `scale_query` (else the profile's
    PROCX_TUI_SCALE_QUERY) is what KEDA will read, and the depth is its answer."""
    scale_query = scale_query or profile.variables.get(SCALE_QUERY, "")
    report: dict[str, dict[str, object]] = {}
    for side in profile.sides():
        result: dict[str, object] = {"driver": profile.driver(side), "reachable": False, "depth": None,
                                     "error": None}
        try:
            _, config = settings.load(side, ["-env-file", str(profile.path)], clean_environment())
            endpoint = connect(registry.load(config.spec, side)(config))
            try:
                result["reachable"] = True
                depth = getattr(endpoint, "depth", None)
                counted = getattr(endpoint, "scale_depth", None)
                if counted is not None and scale_query:
                    result["depth"] = call(config, "run the scale query", counted, scale_query)
                elif depth is not None:
                    result["depth"] = call(config, "read the queue depth", depth)
            finally:
                endpoint.close()
        except ProcxError as exc:
            result["error"] = str(exc)
        report[side] = result
    return report
